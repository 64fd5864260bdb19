/**
 * meshctl proxy-status and proxy-config against a running meshd: real ADS clients connected and
 * ACKing (one NACKs), meshctl run as its own process asking meshd over a real gRPC stream.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient, type Response } from './helpers/ads-client';

const ROOT = path.join(__dirname, '..');
const MESHCTL = path.join(ROOT, 'src', 'cli', 'meshctl.ts');
const protos = new EnvoyProtos();
const PRODUCTPAGE = 'sidecar~10.244.0.10~productpage-v1.default~default.svc.cluster.local';
const RATINGS = 'sidecar~10.244.0.11~ratings-v1.default~default.svc.cluster.local';
const REVIEWS_V1 = 'outbound|9080|v1|reviews.default.svc.cluster.local';
const T = { timeout: 60_000 };

let meshd: MeshdHandle;
const clients: AdsClient[] = [];
const received: Record<string, Response> = {};

function meshctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', MESHCTL, ...args], { cwd: ROOT, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const xds = (): string[] => ['--plaintext', '--xds-address', `127.0.0.1:${meshd.xdsPort}`];

/** The table's rows as cells, cut where the header's columns start (header names may hold spaces). */
function cells(out: string, header: readonly string[]): string[][] {
  const lines = out.trimEnd().split('\n');
  const head = lines[0] ?? '';
  const starts = header.map((h) => head.indexOf(h));
  assert.ok(
    starts.every((x, i) => x >= 0 && (i === 0 || x > (starts[i - 1] as number))),
    `header ${JSON.stringify(head)} is not ${header.join(', ')}`,
  );
  return lines.map((l) => starts.map((x, i) => l.slice(x, starts[i + 1]).trim()));
}

const STATUS = ['NAME', 'CLUSTER', 'CDS', 'LDS', 'EDS', 'RDS', 'ECDS', 'ISTIOD', 'VERSION'];
const CLUSTER = ['SERVICE FQDN', 'PORT', 'SUBSET', 'DIRECTION', 'TYPE', 'DESTINATION RULE'];
const LISTENER = ['ADDRESSES', 'PORT', 'MATCH', 'DESTINATION'];
const ROUTE = ['NAME', 'VHOST NAME', 'DOMAINS', 'MATCH', 'VIRTUAL SERVICE'];
const ENDPOINT = ['ENDPOINT', 'STATUS', 'LOCALITY', 'CLUSTER'];

before(async () => {
  meshd = await startMeshd({
    configDir: path.join(ROOT, 'examples', 'bookinfo'),
    xdsPort: 0,
    secureXdsPort: -1,
    debugPort: 0,
    monitoringPort: -1,
    webhookPort: -1,
    logger: pino({ level: 'silent' }),
    podName: 'meshd-test-0',
    debugEndpointAuth: false,
  });
  const pp = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id: PRODUCTPAGE, metadata: { NAMESPACE: 'default', ISTIO_VERSION: '1.24.0', CLUSTER_ID: 'Kubernetes' } });
  clients.push(pp);
  received['cds'] = await pp.subscribe(TypeUrl.Cluster);
  received['lds'] = await pp.subscribe(TypeUrl.Listener);
  received['rds'] = await pp.subscribe(TypeUrl.Route, ['9080']);
  received['eds'] = await pp.subscribe(TypeUrl.Endpoint, [REVIEWS_V1]);
  // ratings ACKs its listeners and rejects its clusters.
  const ratings = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id: RATINGS, metadata: { NAMESPACE: 'default', CLUSTER_ID: 'Kubernetes' } });
  clients.push(ratings);
  await ratings.subscribe(TypeUrl.Listener);
  ratings.send({ type_url: TypeUrl.Cluster });
  ratings.nack(await ratings.next(TypeUrl.Cluster), 'cluster outbound|9080||reviews: forced rejection');
  // The NACK and the ACK are on another stream than meshctl's: wait until meshd has taken them in.
  for (;;) {
    const syncz = (await (await fetch(`http://127.0.0.1:${meshd.debugPort}/debug/syncz`)).text()).toString();
    if (syncz.includes('forced rejection') && !/"STALE"/.test(syncz)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
});

after(async () => {
  for (const c of clients) c.close();
  await meshd.close();
});

test("proxy-status: istioctl's table, SYNCED for what a proxy ACKed, NACKED for what it rejected", T, async () => {
  const r = await meshctl(['proxy-status', ...xds()]);
  assert.equal(r.code, 0, r.stderr);
  const rows = cells(r.stdout, STATUS);
  assert.deepEqual(rows[0], STATUS);
  const byName = Object.fromEntries(rows.slice(1).map((c) => [c[0], c]));
  const version = (await import('../src/version')).MESHD_VERSION;
  assert.deepEqual(byName['productpage-v1.default'], ['productpage-v1.default', 'Kubernetes', 'SYNCED', 'SYNCED', 'SYNCED', 'SYNCED', 'NOT SENT', 'meshd-test-0', version]);
  assert.deepEqual(byName['ratings-v1.default'], ['ratings-v1.default', 'Kubernetes', 'NACKED', 'SYNCED', 'NOT SENT', 'NOT SENT', 'NOT SENT', 'meshd-test-0', version]);

  const j = await meshctl(['ps', ...xds(), '-o', 'json']);
  assert.equal(j.code, 0, j.stderr);
  const list = JSON.parse(j.stdout) as { name: string; status: Record<string, string>; errors: Record<string, string> }[];
  const ratings = list.find((p) => p.name === RATINGS);
  assert.equal(ratings?.status['CDS'], 'NACKED');
  assert.match(ratings?.errors['CDS'] ?? '', /forced rejection/);
});

test('proxy-status <proxy>: whether the proxy holds what meshd would send, per type', T, async () => {
  const ok = await meshctl(['proxy-status', 'productpage-v1.default', ...xds()]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, 'Clusters Match\nListeners Match\nRoutes Match\nEndpoints Match\n');
  const bad = await meshctl(['proxy-status', 'ratings-v1', '-n', 'default', ...xds()]);
  assert.equal(bad.code, 0, bad.stderr);
  assert.match(bad.stdout, /^Clusters Don't Match \(the proxy rejected meshd's last CDS response: cluster outbound\|9080\|\|reviews: forced rejection\)$/m);
  assert.match(bad.stdout, /^Listeners Match$/m);
  const missing = await meshctl(['proxy-status', 'nobody.default', ...xds()]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /proxy nobody\.default is not connected/);
});

test('proxy-config cluster: the clusters the proxy received, in istioctl columns, with its filters', T, async () => {
  const r = await meshctl(['proxy-config', 'cluster', 'productpage-v1.default', ...xds()]);
  assert.equal(r.code, 0, r.stderr);
  const rows = cells(r.stdout, CLUSTER);
  assert.deepEqual(rows[0], CLUSTER);
  assert.equal(rows.length - 1, received['cds']?.names.length);
  assert.ok(
    rows.some((c) => c.join(' ') === 'reviews.default.svc.cluster.local 9080 v1 outbound EDS reviews.default'),
    r.stdout,
  );
  assert.ok(
    rows.some((c) => c[0] === 'BlackHoleCluster' && c[1] === '-' && c[4] === 'STATIC'),
    r.stdout,
  );

  const f = await meshctl(['pc', 'clusters', 'productpage-v1.default', ...xds(), '--fqdn', 'reviews.default.svc.cluster.local', '--subset', 'v2']);
  assert.equal(f.code, 0, f.stderr);
  assert.deepEqual(
    cells(f.stdout, CLUSTER)
      .slice(1)
      .map((c) => c.slice(0, 4).join(' ')),
    ['reviews.default.svc.cluster.local 9080 v2 outbound'],
  );
  const inbound = await meshctl(['pc', 'cluster', 'productpage-v1.default', ...xds(), '--direction', 'inbound']);
  const inRows = cells(inbound.stdout, CLUSTER).slice(1);
  assert.ok(inRows.length > 0 && inRows.every((c) => c[3] === 'inbound'), inbound.stdout);

  const j = await meshctl(['pc', 'cluster', 'productpage-v1.default', ...xds(), '-o', 'json', '--port', '9080']);
  const names = (JSON.parse(j.stdout) as { name: string }[]).map((c) => c.name).sort();
  assert.deepEqual(names, (received['cds']?.names ?? []).filter((n) => n.includes('|9080|')).sort());
});

test('proxy-config listener, route, endpoint: what the proxy received, filtered as istioctl filters', T, async () => {
  const l = await meshctl(['pc', 'listener', 'productpage-v1.default', ...xds(), '--port', '9080']);
  assert.equal(l.code, 0, l.stderr);
  const lrows = cells(l.stdout, LISTENER);
  assert.deepEqual(lrows[0], LISTENER);
  assert.ok(lrows.length > 1 && lrows.slice(1).every((c) => c[1] === '9080'), l.stdout);
  assert.ok(
    lrows.some((c) => c[3] === 'Route: 9080'),
    l.stdout,
  );
  const all = await meshctl(['pc', 'listener', 'productpage-v1.default', ...xds(), '-o', 'yaml']);
  assert.match(all.stdout, /^- name: virtualOutbound$/m);

  const rt = await meshctl(['pc', 'route', 'productpage-v1.default', ...xds(), '--name', '9080']);
  assert.equal(rt.code, 0, rt.stderr);
  const rrows = cells(rt.stdout, ROUTE);
  assert.deepEqual(rrows[0], ROUTE);
  assert.equal(rrows[1]?.[0], '9080');
  assert.ok(
    rrows.some((c) => c[1] === 'reviews.default.svc.cluster.local:9080' && (c[2] ?? '').startsWith('reviews.default, reviews') && c[3] === '/*' && c[4] === 'reviews.default'),
    rt.stdout,
  );
  const none = await meshctl(['pc', 'route', 'productpage-v1.default', ...xds(), '--name', '8080']);
  assert.equal(cells(none.stdout, ROUTE).length, 1, none.stdout);

  const ep = await meshctl(['pc', 'endpoint', 'productpage-v1.default', ...xds()]);
  assert.equal(ep.code, 0, ep.stderr);
  const erows = cells(ep.stdout, ENDPOINT);
  assert.deepEqual(erows[0], ENDPOINT);
  const sent = received['eds']?.resources[0] as { endpoints: { lb_endpoints: { endpoint: { address: { socket_address: { address: string; port_value: number } } } }[] }[] };
  const addrs = sent.endpoints.flatMap((l) => l.lb_endpoints.map((e) => `${e.endpoint.address.socket_address.address}:${e.endpoint.address.socket_address.port_value}`));
  assert.ok(addrs.length > 0);
  assert.deepEqual(
    erows
      .slice(1)
      .map((c) => c[0])
      .sort(),
    addrs.sort(),
  );
  assert.ok(erows.slice(1).every((c) => c[c.length - 1] === REVIEWS_V1));
  const noPort = await meshctl(['pc', 'endpoint', 'productpage-v1.default', ...xds(), '--port', '1']);
  assert.equal(cells(noPort.stdout, ENDPOINT).length, 1, noPort.stdout);
});
