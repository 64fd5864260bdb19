/**
 * The RBAC step of `meshctl x route` end to end: a running meshd with real ADS clients connected
 * as sidecars (node IDs `sidecar~<ip>~<pod>.<ns>~…`): callers `productpage` and `ratings`
 * subscribed to CDS/LDS/RDS/EDS, the destination `reviews-v1` to LDS (its virtualInbound), and
 * AuthorizationPolicies on `reviews` (one on a JWT claim). meshctl asks meshd over xDS (syncz
 * and config dumps) and must say what the policies say: allowed or denied by path, method and
 * caller identity, with the policy that decided; undecidable where a JWT would decide; a
 * destination whose proxy is not connected is said to be so. And the same over /debug/route.
 *
 * The real-traffic comparison (grpc-js enforcing RBAC) is in route-sim-rbac-grpc.test.ts.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { routeSimCommand } from '../src/cli/xds-commands';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient } from './helpers/ads-client';
import { toYaml } from './helpers/mesh-fixture';

const protos = new EnvoyProtos();
const NS = 'default';
const PRODUCTPAGE = 'sidecar~127.0.0.20~productpage-v1.default~default.svc.cluster.local';
const RATINGS = 'sidecar~127.0.0.21~ratings-v1.default~default.svc.cluster.local';
const REVIEWS_V1 = 'sidecar~127.0.0.31~reviews-v1.default~default.svc.cluster.local';
const ISTIO = { 'security.istio.io/tlsMode': 'istio' };

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-route-rbac-'));
let meshd: MeshdHandle;
const clients: AdsClient[] = [];

function pod(name: string, ip: string, sa: string, labels: Record<string, string>): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: { ...labels, ...ISTIO } },
    spec: { serviceAccountName: sa, containers: [{ name: 'app' }] },
    status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
  };
}

function service(name: string, ip: string, endpoints: [string, string][]): object[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: NS },
      spec: { clusterIP: ip, selector: { app: name }, ports: [{ name: 'http', port: 9080, targetPort: 9080 }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${name}-1`, namespace: NS, labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 9080, protocol: 'TCP' }],
      endpoints: endpoints.map(([addr, p]) => ({ addresses: [addr], conditions: { ready: true }, targetRef: { kind: 'Pod', name: p, namespace: NS } })),
    },
  ];
}

const POLICIES = [
  {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'reviews-viewer', namespace: NS },
    spec: {
      selector: { matchLabels: { app: 'reviews' } },
      action: 'ALLOW',
      rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/bookinfo-productpage'] } }], to: [{ operation: { methods: ['GET'], paths: ['/reviews/*'] } }] }],
    },
  },
  {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'reviews-editors', namespace: NS },
    spec: {
      selector: { matchLabels: { app: 'reviews' } },
      action: 'ALLOW',
      rules: [{ to: [{ operation: { methods: ['POST'] } }], when: [{ key: 'request.auth.claims[groups]', values: ['editors'] }] }],
    },
  },
  {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'deny-admin', namespace: NS },
    spec: { selector: { matchLabels: { app: 'reviews' } }, action: 'DENY', rules: [{ to: [{ operation: { paths: ['/reviews/admin'] } }] }] },
  },
];

async function connect(id: string, sa: string, subscribe: (c: AdsClient) => Promise<void>): Promise<void> {
  const c = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id, metadata: { NAMESPACE: NS, SERVICE_ACCOUNT: sa, INSTANCE_IPS: id.split('~')[1] as string } });
  clients.push(c);
  await subscribe(c);
}

async function asCaller(c: AdsClient): Promise<void> {
  await c.subscribe(TypeUrl.Cluster);
  await c.subscribe(TypeUrl.Listener);
  await c.subscribe(TypeUrl.Route, ['9080']);
  await c.subscribe(TypeUrl.Endpoint, ['outbound|9080||reviews.default.svc.cluster.local', 'outbound|9080||details.default.svc.cluster.local']);
}

before(async () => {
  fs.mkdirSync(path.join(dir, 'config'));
  const objects = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } },
    pod('productpage-v1', '127.0.0.20', 'bookinfo-productpage', { app: 'productpage' }),
    pod('ratings-v1', '127.0.0.21', 'bookinfo-ratings', { app: 'ratings' }),
    pod('reviews-v1', '127.0.0.31', 'bookinfo-reviews', { app: 'reviews', version: 'v1' }),
    pod('details-v1', '127.0.0.41', 'bookinfo-details', { app: 'details' }),
    ...service('reviews', '10.96.0.31', [['127.0.0.31', 'reviews-v1']]),
    ...service('details', '10.96.0.41', [['127.0.0.41', 'details-v1']]),
    ...POLICIES,
  ];
  fs.writeFileSync(path.join(dir, 'config', 'mesh.yaml'), toYaml(objects));
  meshd = await startMeshd({ configDir: path.join(dir, 'config'), xdsPort: 0, secureXdsPort: -1, debugPort: 0, monitoringPort: -1, logLevel: 'warn', debugEndpointAuth: false });
  await connect(PRODUCTPAGE, 'bookinfo-productpage', asCaller);
  await connect(RATINGS, 'bookinfo-ratings', asCaller);
  await connect(REVIEWS_V1, 'bookinfo-reviews', async (c) => {
    await c.subscribe(TypeUrl.Listener);
  });
});

after(async () => {
  for (const c of clients) c.close();
  await meshd?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function route(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  const before = process.exitCode;
  process.exitCode = 0;
  const cmd = routeSimCommand({ stdout: { write: (s: string) => (out.stdout += s) }, stderr: { write: (s: string) => (out.stderr += s) } });
  cmd.exitOverride();
  await cmd.parseAsync(['--plaintext', '--xds-address', `127.0.0.1:${meshd.xdsPort}`, ...args], { from: 'user' });
  const code = Number(process.exitCode ?? 0);
  process.exitCode = before;
  return { code, ...out };
}

async function rbacLine(from: string, extra: string[]): Promise<string> {
  const r = await route(['--from', from, '--to', 'reviews:9080', ...extra]);
  assert.equal(r.code, 0, r.stderr);
  const line = /^RBAC: +(.*)$/m.exec(r.stdout)?.[1];
  assert.ok(line, r.stdout);
  return line;
}

const ALLOWED_BY = 'ALLOW by ns[default]-policy[reviews-viewer]-rule[0] (envoy.filters.http.rbac)';
const NO_ALLOW = 'DENY: no ALLOW policy matched (envoy.filters.http.rbac)';

test('allowed: GET /reviews/1 from productpage (mTLS identity), with the policy that decided and where', { timeout: 30_000 }, async () => {
  const r = await route(['--from', PRODUCTPAGE, '--to', 'reviews:9080', '--path', '/reviews/1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^RBAC: +${ALLOWED_BY.replace(/[[\]().]/g, '\\$&')}$`, 'm'));
  assert.match(
    r.stdout,
    /^ {2}at +endpoint 127\.0\.0\.31:9080, proxy sidecar~127\.0\.0\.31~reviews-v1\.default~default\.svc\.cluster\.local, virtualInbound chain 0\.0\.0\.0_9080$/m,
  );
  assert.match(r.stdout, /^ {2}caller +spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-productpage$/m);
});

test('denied by method and by path (no ALLOW policy matches; the DENY policy wins over the ALLOW one)', { timeout: 30_000 }, async () => {
  assert.equal(await rbacLine(PRODUCTPAGE, ['--path', '/reviews/1', '--method', 'PUT']), NO_ALLOW);
  assert.equal(await rbacLine(PRODUCTPAGE, ['--path', '/ratings/1']), NO_ALLOW);
  assert.equal(await rbacLine(PRODUCTPAGE, ['--path', '/reviews/admin']), 'DENY by ns[default]-policy[deny-admin]-rule[0] (envoy.filters.http.rbac)');
});

test('a rule on JWT claims is undecidable from the request, and says which policy and claim; a rule that surely matches still decides', { timeout: 30_000 }, async () => {
  assert.equal(
    await rbacLine(PRODUCTPAGE, ['--path', '/reviews/1', '--method', 'POST']),
    "undecidable: ns[default]-policy[reviews-editors]-rule[0] needs the request's JWT claims (groups) (envoy.filters.http.rbac)",
  );
  assert.equal(await rbacLine(PRODUCTPAGE, ['--path', '/reviews/1']), ALLOWED_BY);
});

test('denied by caller identity: ratings (its SERVICE_ACCOUNT from syncz), or a --principal override; allowed again by overriding', { timeout: 30_000 }, async () => {
  assert.equal(await rbacLine(RATINGS, ['--path', '/reviews/1']), NO_ALLOW);
  assert.equal(await rbacLine(PRODUCTPAGE, ['--path', '/reviews/1', '--principal', 'spiffe://cluster.local/ns/default/sa/other']), NO_ALLOW);
  assert.equal(await rbacLine(RATINGS, ['--path', '/reviews/1', '--principal', 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage']), ALLOWED_BY);
  // JSON carries the decision too.
  const j = await route(['--from', RATINGS, '--to', 'reviews:9080', '--path', '/reviews/1', '-o', 'json']);
  const rbac = (JSON.parse(j.stdout) as { rbac: { decision: { decision: string }; principal: string }[] }).rbac;
  assert.deepEqual(
    rbac.map((x) => [x.decision.decision, x.principal]),
    [['DENY', 'spiffe://cluster.local/ns/default/sa/bookinfo-ratings']],
  );
});

test('GET /debug/route: the same simulation and RBAC decision from meshd itself; bad input is a 400 naming the parameter', { timeout: 30_000 }, async () => {
  const get = async (q: string): Promise<{ status: number; text: string }> => {
    const r = await fetch(`http://127.0.0.1:${meshd.debugPort}/debug/route?${q}`);
    return { status: r.status, text: await r.text() };
  };
  const ok = await get('proxyID=productpage-v1.default&to=reviews:9080&path=/reviews/1&header=x-a%3D1');
  assert.equal(ok.status, 200, ok.text);
  assert.match(ok.text, /^Request: +GET reviews:9080\/reviews\/1 \(x-a: 1\)$/m);
  assert.ok(ok.text.includes(`RBAC:           ${ALLOWED_BY}\n`), ok.text);
  const post = await get('proxyID=productpage-v1.default&to=reviews:9080&path=/reviews/1&method=put');
  assert.ok(post.text.includes(`RBAC:           ${NO_ALLOW}\n`), post.text);
  assert.deepEqual(await get('proxyID=productpage-v1.default&to=reviews'), { status: 400, text: 'to: must be host:port (got "reviews")\n' });
  assert.deepEqual(await get('proxyID=productpage-v1.default&to=reviews:9080&header=novalue'), { status: 400, text: 'header[0]: must be name=value (got "novalue")\n' });
  assert.deepEqual(await get('to=reviews:9080'), { status: 400, text: 'proxyID: required (a node ID or <pod>.<namespace>)\n' });
  assert.equal((await get('proxyID=nobody.default&to=reviews:9080')).status, 404);
});

test('a destination whose proxy is not connected, and --no-rbac', { timeout: 30_000 }, async () => {
  const r = await route(['--from', PRODUCTPAGE, '--to', 'details:9080', '--path', '/details/1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^RBAC: +destination proxy not connected$/m);
  assert.match(r.stdout, /no connected proxy has the address 127\.0\.0\.41/);
  const off = await route(['--from', PRODUCTPAGE, '--to', 'reviews:9080', '--no-rbac']);
  assert.doesNotMatch(off.stdout, /^RBAC:/m);
});

test('no policy: with the policies removed, the decision is "no policy (allowed)"', { timeout: 30_000 }, async () => {
  fs.writeFileSync(
    path.join(dir, 'config', 'mesh.yaml'),
    fs
      .readFileSync(path.join(dir, 'config', 'mesh.yaml'), 'utf8')
      .split(/^---$/m)
      .filter((d) => !d.includes('AuthorizationPolicy'))
      .join('---'),
  );
  const deadline = Date.now() + 15_000;
  let line = '';
  while (Date.now() < deadline) {
    line = await rbacLine(PRODUCTPAGE, ['--path', '/reviews/admin']);
    if (line === 'no policy (allowed)') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(line, 'no policy (allowed)');
});
