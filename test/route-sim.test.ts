/**
 * The route simulator (`meshctl x route`) against real traffic: Istio's traffic-management
 * examples (examples/traffic-management, `ratings` rules moved onto the `reviews` fixture) are
 * written into a running meshd's folder one at a time; for each, three requests (no user,
 * `end-user: jason`, `end-user: bob`) are simulated through the config meshd serves a real
 * grpc-js-xds client, and the same requests are sent by that client to real gRPC backends on
 * 127.0.0.1. The simulator's answer (the clusters and their endpoints, or the fault) must be
 * what the calls did: the backends reached, or the status the calls failed with.
 *
 * Then `meshctl x route` as its own process, for a sidecar (text and JSON).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { configDumpJson } from '../src/debug/config-dump';
import { type MeshdHandle, startMeshd } from '../src/main';
import { type SimResult, grpcStatusForHttp, simulateRoute } from '../src/cli/route-sim';
import { askXds } from '../src/cli/xds-ask';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient } from './helpers/ads-client';
import { type BackendSet, WHO_METHOD, startBackends } from './helpers/backends';
import { FQDN, SERVICE_PORT, VS_FILE, type MeshFixture, createMeshFixture } from './helpers/mesh-fixture';
import { closeInOrder } from './helpers/teardown';
import { type CallResult, type XdsClient, runUntil, startGrpcJsXdsClient } from './helpers/xds-clients';

const ROOT = path.join(__dirname, '..');
const EXAMPLES = path.join(ROOT, 'examples', 'traffic-management');
const MESHCTL = path.join(ROOT, 'src', 'cli', 'meshctl.ts');
const NAMES = ['reviews-v1', 'reviews-v2', 'reviews-v3'];
const CALLS = 40;
const DEADLINE_MS = 1000;
const protos = new EnvoyProtos();

let backends: BackendSet;
let fixture: MeshFixture;
let meshd: MeshdHandle;
let client: XdsClient;
let probeSeq = 0;

type Json = Record<string, unknown>;

/** An example's VirtualService for `reviews`: `ratings` renamed, and a probe route in front. */
function exampleVs(dir: string, tag: string): Json {
  const files = fs.readdirSync(path.join(EXAMPLES, dir)).filter((f) => f.startsWith('virtualservice-'));
  // 7-timeouts has one for each service; the reviews one is the example's point.
  const file = files.find((f) => f.includes('reviews')) ?? (files[0] as string);
  const text = fs.readFileSync(path.join(EXAMPLES, dir, file), 'utf8').replace(/\bratings\b/g, 'reviews');
  const vs = parseAllDocuments(text)[0]?.toJS() as Json;
  const spec = vs['spec'] as Json;
  const probe = { match: [{ headers: { 'x-probe': { exact: tag } } }], route: [{ destination: { host: 'reviews', subset: 'v3' } }] };
  spec['http'] = [probe, ...(spec['http'] as Json[])];
  return vs;
}

async function apply(dir: string): Promise<void> {
  const tag = `p${++probeSeq}`;
  await fixture.writeObjects(VS_FILE, [exampleVs(dir, tag)]);
  await runUntil(client, { calls: 2, metadata: { 'x-probe': tag } }, (r) => r.errors === 0 && r.counts['reviews-v3'] === 2, {
    timeoutMs: 10_000,
    intervalMs: 100,
    what: `${dir} applied`,
  });
}

async function simulate(headers: Record<string, string>): Promise<SimResult> {
  const { response } = await askXds(
    protos,
    { address: `127.0.0.1:${meshd.xdsPort}`, plaintext: true, insecure: false, namespace: 'istio-system', timeoutMs: 10_000 },
    'istio.io/debug/config_dump',
    [client.nodeId],
  );
  const dump = configDumpJson(protos, response.resources) as Json;
  return simulateRoute(dump, { host: FQDN, port: SERVICE_PORT, path: WHO_METHOD, method: 'POST', headers: { 'content-type': 'application/grpc', ...headers } });
}

/** The backend names the simulator says calls may reach (clusters with a share, their endpoints). */
function reachable(sim: SimResult): Set<string> {
  const out = new Set<string>();
  if (sim.action.type !== 'forward') return out;
  for (const c of sim.action.clusters) {
    if (c.weight <= 0) continue;
    for (const e of c.endpoints) for (const b of backends.backends) if (b.address === e.address && e.health !== 'UNHEALTHY') out.add(b.name);
  }
  return out;
}

/** The calls did what the simulator said. */
function agree(sim: SimResult, r: CallResult, what: string): void {
  const detail = `${what}: simulated ${JSON.stringify({ action: sim.action, fault: sim.fault, route: sim.route })}, calls ${JSON.stringify(r)}`;
  const abort = sim.fault?.abort;
  const delay = sim.fault?.delay;
  if (abort && abort.percent >= 100) {
    const code = abort.grpcStatus ?? grpcStatusForHttp(abort.httpStatus ?? 0);
    assert.deepEqual(r.errorCodes, { [String(code)]: CALLS }, detail);
    return;
  }
  if (delay && delay.percent >= 100 && parseFloat(delay.fixedDelay) * 1000 > DEADLINE_MS) {
    assert.deepEqual(r.errorCodes, { '4': CALLS }, `${detail} (a delay past the deadline: DEADLINE_EXCEEDED)`);
    return;
  }
  assert.equal(sim.action.type, 'forward', detail);
  assert.equal(r.errors, 0, detail);
  const want = reachable(sim);
  const got = new Set(Object.keys(r.counts));
  assert.deepEqual(
    [...got].filter((n) => !want.has(n)),
    [],
    `${detail}: reached a backend the simulator did not name`,
  );
  // Every cluster with a share was reached (40 calls: a 50 % share is missed with p = 2^-40).
  if (sim.action.type === 'forward')
    for (const c of sim.action.clusters)
      if (c.weight >= 50)
        assert.ok(
          c.endpoints.some((e) => [...got].some((n) => backends.get(n).address === e.address)),
          `${detail}: ${c.name} not reached`,
        );
}

before(async () => {
  backends = await startBackends(NAMES);
  fixture = await createMeshFixture({ ports: { v1: backends.get('reviews-v1').port, v2: backends.get('reviews-v2').port, v3: backends.get('reviews-v3').port } });
  // Plaintext debug requests, as `meshctl --plaintext` sends them, need debug-endpoint auth off.
  meshd = await startMeshd({ configDir: fixture.configDir, xdsPort: 0, debugPort: 0, monitoringPort: 0, logLevel: 'warn', debugEndpointAuth: false });
  client = await startGrpcJsXdsClient({ xdsPort: meshd.xdsPort, podName: 'route-sim' });
  await runUntil(client, { calls: 2, waitForReady: true, deadlineMs: 2000 }, (r) => r.errors === 0, { timeoutMs: 10_000, what: 'first call' });
});

after(async () => {
  await closeInOrder([() => client?.close(), () => meshd?.close(), () => backends?.close(), () => fixture?.cleanup()]);
});

const USERS: readonly Record<string, string>[] = [{}, { 'end-user': 'jason' }, { 'end-user': 'bob' }];
const DIRS = ['1-request-routing-all-v1', '2-request-routing-jason', '3-fault-delay', '4-fault-abort', '5-traffic-shifting-50-v3', '6-traffic-shifting-v3', '7-timeouts'];

test('the simulator agrees with a real grpc-js client on 21 requests across the traffic-management examples', { timeout: 240_000 }, async () => {
  let compared = 0;
  const seen = new Set<string>();
  for (const dir of DIRS) {
    await apply(dir);
    for (const headers of USERS) {
      const sim = await simulate(headers);
      assert.equal(sim.route?.virtualService, 'reviews.default', `${dir}: the route names its VirtualService`);
      const r = await client.run({ calls: CALLS, metadata: headers, deadlineMs: DEADLINE_MS, concurrency: 10 });
      agree(sim, r, `${dir} ${JSON.stringify(headers)}`);
      seen.add(sim.fault?.abort ? 'abort' : sim.fault?.delay ? 'delay' : sim.action.type === 'forward' && sim.action.clusters.length > 1 ? 'split' : 'single');
      compared++;
    }
  }
  assert.equal(compared, 21);
  // The examples exercised every kind of answer.
  assert.deepEqual([...seen].sort(), ['abort', 'delay', 'single', 'split']);
});

function meshctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', MESHCTL, ...args], { cwd: ROOT, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('meshctl x route for a sidecar: listener by port, virtual host by Host, the header route and its VirtualService', { timeout: 60_000 }, async () => {
  await apply('2-request-routing-jason');
  const id = 'sidecar~127.0.0.20~productpage-v1.default~default.svc.cluster.local';
  const ads = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id, metadata: { NAMESPACE: 'default' } });
  try {
    await ads.subscribe(TypeUrl.Cluster);
    await ads.subscribe(TypeUrl.Listener);
    await ads.subscribe(TypeUrl.Route, [String(SERVICE_PORT)]);
    await ads.subscribe(TypeUrl.Endpoint, ['outbound|9080|v2|reviews.default.svc.cluster.local']);
    const flags = ['--plaintext', '--xds-address', `127.0.0.1:${meshd.xdsPort}`, '--from', id];
    const text = await meshctl(['x', 'route', ...flags, '--to', 'reviews:9080', '--path', '/reviews/1', '--header', 'end-user=jason']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^Listener: +0\.0\.0\.0_9080/m);
    assert.match(text.stdout, /^Virtual host: +reviews\.default\.svc\.cluster\.local:9080 \(domain reviews:9080\)$/m);
    assert.match(text.stdout, /^Route: +#1 matching prefix \/, header end-user exact jason, from VirtualService reviews\.default$/m);
    assert.match(text.stdout, new RegExp(`^Cluster: +outbound\\|9080\\|v2\\|reviews\\.default\\.svc\\.cluster\\.local \\(100%\\), EDS`, 'm'));
    assert.match(text.stdout, new RegExp(`^  endpoint +${backends.get('reviews-v2').address.replace(/\./g, '\\.')} HEALTHY`, 'm'));
    const json = await meshctl(['x', 'route', ...flags, '--to', 'reviews:9080', '-o', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const r = JSON.parse(json.stdout) as SimResult;
    assert.equal(r.action.type === 'forward' && r.action.clusters.map((c) => c.name).join(), 'outbound|9080|v1|reviews.default.svc.cluster.local');
    const nowhere = await meshctl(['x', 'route', ...flags, '--to', 'reviews:9999']);
    assert.equal(nowhere.code, 0, nowhere.stderr);
    assert.match(nowhere.stdout, /^Result: +no route: the proxy has no listener for reviews:9999$/m);
    const bad = await meshctl(['x', 'route', ...flags, '--to', 'reviews']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--to must be host:port/);
  } finally {
    ads.close();
  }
});
