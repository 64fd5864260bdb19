/**
 * MeshConfig end to end: meshd serves a folder with a mesh.yaml (REGISTRY_ONLY), a sidecar on a
 * real ADS stream gets no passthrough for hosts outside the registry, and live edits of mesh.yaml
 * change what is served (ALLOW_ANY, then an invalid MeshConfig that keeps the last good one);
 * `--mesh-config FILE` replaces the folder's mesh.yaml.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient, type Response } from './helpers/ads-client';

const protos = new EnvoyProtos();
const IN = path.join(__dirname, 'golden', 'mesh-config', 'in');
const REVIEWS = 'sidecar~10.244.0.12~reviews-v1.default~default.svc.cluster.local';

function folder(mesh: string | undefined): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-meshcfg-'));
  fs.copyFileSync(path.join(IN, 'mesh-objects.yaml'), path.join(dir, 'mesh-objects.yaml'));
  if (mesh !== undefined) fs.writeFileSync(path.join(dir, 'mesh.yaml'), mesh);
  return dir;
}

async function start(dir: string, extra: { meshConfigFile?: string } = {}): Promise<MeshdHandle> {
  return startMeshd({ configDir: dir, xdsPort: 0, debugPort: 0, monitoringPort: -1, debounceQuietMs: 20, logger: pino({ level: 'silent' }), ...extra });
}

async function getJson(m: MeshdHandle, p: string): Promise<Record<string, unknown>> {
  const r = await fetch(`http://127.0.0.1:${m.debugPort}${p}`);
  assert.equal(r.status, 200);
  return (await r.json()) as Record<string, unknown>;
}

/** The cluster virtualOutbound's catch-all chain proxies unknown destinations to. */
function catchAll(lds: Response): string {
  const l = lds.resources.find((r) => r['name'] === 'virtualOutbound') as {
    filter_chains: Array<{ name: string; filters: Array<{ name: string; typed_config: { cluster: string } }> }>;
  };
  const chain = l.filter_chains.find((c) => c.name === 'virtualOutbound-catchall-tcp');
  return chain?.filters.find((f) => f.name === 'envoy.filters.network.tcp_proxy')?.typed_config.cluster ?? '';
}

/** The last virtual host of route table `name` (the catch-all for unknown hosts). */
function lastVirtualHost(rds: Response, name: string): Record<string, unknown> {
  const rc = rds.resources.find((r) => r['name'] === name) as { virtual_hosts: Record<string, unknown>[] };
  return rc.virtual_hosts[rc.virtual_hosts.length - 1] as Record<string, unknown>;
}

/** Reads pushes of `type` until one satisfies `ok` (each is ACKed); the client's own timeout bounds the wait. */
async function until(c: AdsClient, type: string, ok: (r: Response) => boolean, names?: string[]): Promise<Response> {
  for (;;) {
    const r = await c.next(type, 10_000);
    c.ack(r, names);
    if (ok(r)) return r;
  }
}

test('REGISTRY_ONLY from mesh.yaml: no passthrough for hosts outside the registry; live edits re-push; an invalid edit keeps the last good', async (t) => {
  const dir = folder('outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\naccessLogFile: /dev/stdout\n');
  const meshd = await start(dir);
  const client = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id: REVIEWS, metadata: { NAMESPACE: 'default' } });
  t.after(async () => {
    client.close();
    await meshd.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  await client.subscribe(TypeUrl.Cluster);
  const lds = await client.subscribe(TypeUrl.Listener);
  assert.equal(catchAll(lds), 'BlackHoleCluster', 'unknown TCP destinations go nowhere');
  const rds = await client.subscribe(TypeUrl.Route, ['9080']);
  const vh = lastVirtualHost(rds, '9080');
  assert.equal(vh['name'], 'block_all');
  assert.deepEqual((vh['routes'] as Array<Record<string, unknown>>)[0]?.['direct_response'], { status: 502 });
  assert.ok(!JSON.stringify(rds.resources).includes('PassthroughCluster'), 'no route leads to PassthroughCluster');
  const mesh = await getJson(meshd, '/debug/mesh');
  assert.deepEqual(mesh['outboundTrafficPolicy'], { mode: 'REGISTRY_ONLY' });
  assert.equal((mesh['meshd_status'] as { source: string }).source, 'mesh.yaml');

  // A live edit: ALLOW_ANY reaches the connected sidecar as a push.
  fs.writeFileSync(path.join(dir, 'mesh.yaml'), 'outboundTrafficPolicy:\n  mode: ALLOW_ANY\n');
  const lds2 = await until(client, TypeUrl.Listener, (r) => catchAll(r) === 'PassthroughCluster');
  assert.ok(!JSON.stringify(lds2.resources).includes('envoy.access_loggers.file'), 'the access log went with the edit');
  const rds2 = await until(client, TypeUrl.Route, (r) => lastVirtualHost(r, '9080')['name'] === 'allow_any', ['9080']);
  assert.ok(JSON.stringify(rds2.resources).includes('PassthroughCluster'));

  // An invalid MeshConfig: reported with its field path, the last good one (ALLOW_ANY) stays.
  fs.writeFileSync(path.join(dir, 'mesh.yaml'), 'outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\nconnectTimeout: 0s\ndefaultConfg: {}\n');
  let status: { kept_last_good: boolean; errors: Array<{ path: string; message: string }>; warnings: Array<{ path: string; message: string }> };
  for (;;) {
    status = (await getJson(meshd, '/debug/mesh'))['meshd_status'] as typeof status;
    if (status.kept_last_good) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(status.errors.some((e) => e.path === 'connectTimeout' && /greater than 1ms/.test(e.message)));
  assert.ok(status.warnings.some((w) => w.path === 'defaultConfg' && /did you mean "defaultConfig"/.test(w.message)));
  assert.deepEqual((await getJson(meshd, '/debug/mesh'))['outboundTrafficPolicy'], { mode: 'ALLOW_ANY' });
  const configz = await getJson(meshd, '/debug/configz');
  assert.ok(JSON.stringify(configz['errors']).includes('MeshConfig'), 'listed with the rejected config');
  assert.equal(meshd.snapshot()?.outboundTrafficPolicy, 'ALLOW_ANY');
});

test('--mesh-config FILE replaces the folder mesh.yaml, and is watched', async (t) => {
  const dir = folder('outboundTrafficPolicy:\n  mode: ALLOW_ANY\n');
  const fileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-meshfile-'));
  const file = path.join(fileDir, 'mesh');
  fs.writeFileSync(file, 'outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n');
  const meshd = await start(dir, { meshConfigFile: file });
  const client = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id: REVIEWS, metadata: { NAMESPACE: 'default' } });
  t.after(async () => {
    client.close();
    await meshd.close();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(fileDir, { recursive: true, force: true });
  });
  await client.subscribe(TypeUrl.Cluster);
  assert.equal(catchAll(await client.subscribe(TypeUrl.Listener)), 'BlackHoleCluster', 'the flag file wins over mesh.yaml');
  // A ConfigMap volume updates by swapping a symlink: write elsewhere, rename over.
  fs.writeFileSync(`${file}.new`, 'outboundTrafficPolicy:\n  mode: ALLOW_ANY\nconnectTimeout: 3s\n');
  fs.renameSync(`${file}.new`, file);
  await until(client, TypeUrl.Listener, (r) => catchAll(r) === 'PassthroughCluster');
  assert.equal(((await getJson(meshd, '/debug/mesh'))['meshd_status'] as { source: string }).source, file);
});
