/**
 * End to end: meshd serves real proxyless gRPC clients, which route real calls to real
 * gRPC backends.
 *
 *   backends reviews-v1/v2/v3 (grpc-js servers on 127.0.0.1, each answers its own name)
 *   config folder: Service reviews:9080, Pods reviews-vN (version=vN, all podIP 127.0.0.1),
 *                  one EndpointSlice per version (targetRef → Pod), DestinationRule subsets
 *                  v1/v2/v3, a VirtualService the tests rewrite on disk
 *   meshd:         startMeshd({configDir, xdsPort: 0, debugPort: 0})
 *   clients:       @grpc/grpc-js-xds and gRPC C-core (python3-grpcio), each in its own
 *                  process with an Istio-style bootstrap, dialing
 *                  xds:///reviews.default.svc.cluster.local:9080 over ONE long-lived channel
 *
 * Every routing assertion is checked twice: from what the client received (the backend's
 * name in each response) and from what each backend counted on its side.
 *
 * Run: node --import tsx --test test/e2e-grpc-xds.test.ts
 * With CI=true a missing python3-grpcio fails the C-core tests instead of skipping them.
 * Debugging: client processes inherit the environment, so GRPC_TRACE=xds_client,xds_resolver
 * GRPC_VERBOSITY=DEBUG shows both clients' xDS traffic in failure messages (stderr tail);
 * MESHD_LOG_LEVEL=info shows meshd's log.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { MeshdHandle } from '../src/main';
import { closeInOrder } from './helpers/teardown';
import { only, requirePythonGrpc, startE2eMeshd } from './helpers/e2e';
import { startBackends, type BackendSet } from './helpers/backends';
import { createMeshFixture, headerRoute, routeAllTo, weightedRoute, type MeshFixture } from './helpers/mesh-fixture';
import { fractions, runUntil, startGrpcCoreClient, startGrpcJsXdsClient, type CallResult, type XdsClient } from './helpers/xds-clients';

const V1 = 'reviews-v1';
const V2 = 'reviews-v2';
const V3 = 'reviews-v3';

/** How long config may take to reach a client: 100 ms debounce + push + client apply. */
const CONVERGE_MS = 10_000;
const TEST_TIMEOUT = 25_000;

/*
 * Tolerance for a 50/50 split over N = 400 calls. Each call independently picks a weighted
 * cluster, so the v1 count is Binomial(400, 0.5): mean 200, standard deviation
 * sqrt(400 · 0.5 · 0.5) = 10 calls = 2.5 %. Accepting 35 %..65 % (140..260 calls) is ±6 σ,
 * so a correct 50/50 split fails this by chance with probability ≈ 2·10⁻⁹, while a
 * broken split (all to one side, 100/0, or weights ignored as 33/33/33 across all three
 * subsets, which puts ~33 % on v2) is far outside it.
 */
const SPLIT_CALLS = 400;
const SPLIT_MIN = 0.35;
const SPLIT_MAX = 0.65;

interface Env {
  backends: BackendSet;
  fixture: MeshFixture;
  meshd: MeshdHandle;
}

/** Both sides seen, nothing else, no errors: the split is in effect. */
function exactly(names: readonly string[]): (r: CallResult) => boolean {
  return (r) => r.errors === 0 && Object.keys(r.counts).length === names.length && names.every((n) => (r.counts[n] ?? 0) > 0);
}

/** Run `calls` calls and check both the client's view and every backend's own count. */
async function assertAllTo(env: Env, client: XdsClient, want: string, calls: number, metadata?: Record<string, string>): Promise<void> {
  env.backends.resetAll();
  const r = await client.run({ calls, metadata });
  assert.deepEqual(
    { counts: r.counts, errors: r.errors, errorSamples: r.errorSamples },
    { counts: { [want]: calls }, errors: 0, errorSamples: [] },
    `${client.impl}: every call with metadata ${JSON.stringify(metadata ?? {})} should reach ${want}`,
  );
  const server = env.backends.counts();
  assert.deepEqual(server, Object.fromEntries(Object.keys(server).map((n) => [n, n === want ? calls : 0])), `${client.impl}: backends' own call counts`);
}

async function assertSplit(env: Env, client: XdsClient, a: string, b: string): Promise<void> {
  env.backends.resetAll();
  const r = await client.run({ calls: SPLIT_CALLS, concurrency: 16 });
  assert.equal(r.errors, 0, `${client.impl}: no call may fail during the split: ${JSON.stringify(r)}`);
  assert.deepEqual(Object.keys(r.counts).sort(), [a, b].sort(), `${client.impl}: only ${a} and ${b} receive traffic: ${JSON.stringify(r.counts)}`);
  const f = fractions(r);
  for (const name of [a, b]) {
    const share = f[name] ?? 0;
    assert.ok(
      share >= SPLIT_MIN && share <= SPLIT_MAX,
      `${client.impl}: ${name} got ${(share * 100).toFixed(1)} % of ${SPLIT_CALLS} calls, ` + `want ${SPLIT_MIN * 100}..${SPLIT_MAX * 100} % (counts ${JSON.stringify(r.counts)})`,
    );
  }
  assert.deepEqual(
    env.backends.counts(),
    Object.fromEntries(env.backends.backends.map((be) => [be.name, r.counts[be.name] ?? 0])),
    `${client.impl}: backends' own counts match what the client received`,
  );
}

async function getText(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

// ---- shared setup: backends, config folder, meshd ----

const env: Partial<Env> = {};
const clients: XdsClient[] = [];

before(async () => {
  env.backends = await startBackends([V1, V2, V3]);
  env.fixture = await createMeshFixture({
    ports: {
      v1: env.backends.get(V1).port,
      v2: env.backends.get(V2).port,
      v3: env.backends.get(V3).port,
    },
    http: routeAllTo('v1'),
  });
  env.meshd = await startE2eMeshd(env.fixture.configDir);
});

after(async () => {
  // Clients first (they hold streams to meshd), then meshd, backends, files. Each step runs
  // even if an earlier one throws.
  await closeInOrder([...clients.map((c) => () => c.close()), () => env.meshd?.close(), () => env.backends?.close(), () => env.fixture?.cleanup()]);
});

function ready(): Env {
  assert.ok(env.backends && env.fixture && env.meshd, 'setup did not complete');
  return env as Env;
}

// ---- @grpc/grpc-js-xds ----

describe('grpc-js-xds client', { timeout: 60_000 }, () => {
  let client: XdsClient;
  let pid: number;

  before(async () => {
    const e = ready();
    client = await startGrpcJsXdsClient({ xdsPort: e.meshd.xdsPort, podName: 'ratings-js' });
    clients.push(client);
    pid = client.pid;
  });

  test('(a) VirtualService routing everything to v1: every call reaches reviews-v1', { timeout: TEST_TIMEOUT }, async () => {
    const e = ready();
    // First contact: LDS → RDS → CDS → EDS must all arrive before a call can succeed.
    await runUntil(client, { calls: 10, waitForReady: true, deadlineMs: 2000 }, only(V1), {
      timeoutMs: CONVERGE_MS,
      what: 'first successful routing to reviews-v1',
    });
    await assertAllTo(e, client, V1, 100);
  });

  test('(b) header match end-user: jason → v2, everything else → v1', { timeout: TEST_TIMEOUT }, async () => {
    const e = ready();
    await e.fixture.writeVirtualService(headerRoute('end-user', 'jason', 'v2', 'v1'));
    await runUntil(client, { calls: 10, metadata: { 'end-user': 'jason' } }, only(V2), {
      timeoutMs: CONVERGE_MS,
      what: 'end-user: jason routed to reviews-v2',
    });
    await assertAllTo(e, client, V2, 100, { 'end-user': 'jason' });
    await assertAllTo(e, client, V1, 100);
    await assertAllTo(e, client, V1, 50, { 'end-user': 'alice' });
    // exact match: a value that only starts with "jason" is not a match
    await assertAllTo(e, client, V1, 50, { 'end-user': 'jasonx' });
  });

  test('(c) 50/50 weights between v1 and v3 over 400 calls', { timeout: TEST_TIMEOUT }, async () => {
    const e = ready();
    await e.fixture.writeVirtualService(weightedRoute({ v1: 50, v3: 50 }));
    // 40 calls under the old config are all v1; under the split, P(no v3 in 40) = 2⁻⁴⁰.
    await runUntil(client, { calls: 40 }, exactly([V1, V3]), {
      timeoutMs: CONVERGE_MS,
      what: 'split between reviews-v1 and reviews-v3',
    });
    await assertSplit(e, client, V1, V3);
  });

  test('(d) editing the VirtualService file reroutes the connected client to v3', { timeout: TEST_TIMEOUT }, async () => {
    const e = ready();
    await e.fixture.writeVirtualService(routeAllTo('v3'));
    await runUntil(client, { calls: 20 }, only(V3), {
      timeoutMs: CONVERGE_MS,
      intervalMs: 100,
      what: 'all traffic moved to reviews-v3 after the file edit',
    });
    await assertAllTo(e, client, V3, 100);
    // Same process, same channel: the client never restarted.
    assert.equal(client.pid, pid, 'the client process is the one started before (a)');
    assert.equal(await client.state(), 'READY', 'the channel is still READY');
  });

  test('/debug/syncz lists the connected grpc-js-xds client', { timeout: TEST_TIMEOUT }, async () => {
    const e = ready();
    const { status, body } = await getText(e.meshd.debugPort, '/debug/syncz');
    assert.equal(status, 200, `/debug/syncz status; body: ${body.slice(0, 500)}`);
    assert.ok(body.includes(client.nodeId), `/debug/syncz should mention ${client.nodeId}; got: ${body.slice(0, 2000)}`);
  });
});

// ---- gRPC C-core (python3-grpcio) ----

describe('gRPC C-core client (python3-grpcio)', { timeout: 60_000 }, () => {
  let client: XdsClient | undefined;

  async function core(t: TestContext): Promise<XdsClient | undefined> {
    if (!requirePythonGrpc(t)) return undefined;
    if (!client) {
      client = await startGrpcCoreClient({ xdsPort: ready().meshd.xdsPort, podName: 'ratings-core' });
      clients.push(client);
    }
    return client;
  }

  test('default routing: VirtualService to v1, every call reaches reviews-v1', { timeout: TEST_TIMEOUT }, async (t) => {
    const e = ready();
    const c = await core(t);
    if (!c) return;
    await e.fixture.writeVirtualService(routeAllTo('v1'));
    await runUntil(c, { calls: 10, waitForReady: true, deadlineMs: 2000 }, only(V1), {
      timeoutMs: CONVERGE_MS,
      what: 'C-core: routing to reviews-v1',
    });
    await assertAllTo(e, c, V1, 100);
  });

  test('50/50 weights between v1 and v3 over 400 calls', { timeout: TEST_TIMEOUT }, async (t) => {
    const e = ready();
    const c = await core(t);
    if (!c) return;
    await e.fixture.writeVirtualService(weightedRoute({ v1: 50, v3: 50 }));
    await runUntil(c, { calls: 40 }, exactly([V1, V3]), {
      timeoutMs: CONVERGE_MS,
      what: 'C-core: split between reviews-v1 and reviews-v3',
    });
    await assertSplit(e, c, V1, V3);
  });

  /*
   * Last on purpose: if the client rejects the RouteConfiguration it keeps the previous one,
   * which would distort any test after this. gRPC C-core before gRFC A63 (Debian ships
   * 1.51) only understands HeaderMatcher's legacy fields (exact_match, prefix_match,
   * safe_regex_match, present_match …) and NACKs a route that uses `string_match` with
   * "Invalid route header matcher specified."
   */
  test('header match end-user: jason → v2, everything else → v1', { timeout: TEST_TIMEOUT }, async (t) => {
    const e = ready();
    const c = await core(t);
    if (!c) return;
    await e.fixture.writeVirtualService(headerRoute('end-user', 'jason', 'v2', 'v1'));
    await runUntil(c, { calls: 10, metadata: { 'end-user': 'jason' } }, only(V2), {
      timeoutMs: CONVERGE_MS,
      what: 'C-core: end-user: jason routed to reviews-v2',
    });
    await assertAllTo(e, c, V2, 50, { 'end-user': 'jason' });
    await assertAllTo(e, c, V1, 50);
  });
});
