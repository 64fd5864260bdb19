/**
 * End to end: VirtualService fault injection, retries, timeouts and weight shifting, with real
 * proxyless gRPC clients (@grpc/grpc-js-xds and gRPC C-core from python3-grpcio) calling real
 * gRPC backends on 127.0.0.1 through meshd.
 *
 * Setup as in e2e-grpc-xds.test.ts: backends reviews-v1/v2/v3, Service reviews:9080 with one
 * EndpointSlice per version and DestinationRule subsets v1/v2/v3, meshd on free ports.
 *
 * Every VirtualService written here starts with a probe route: calls carrying `x-probe: <tag>`
 * go to v3. A client that reaches v3 with the new tag has the new RouteConfiguration (routes
 * arrive as one resource), so the scenario can start without sleeping and without the probe
 * going through the fault, retry or timeout under test. Scenario routes never use v3, and
 * backend counts are reset after probing.
 *
 * Every outcome is checked on both sides: the status codes and answers the client got, and
 * the calls each backend saw.
 *
 * With CI=true a missing python3-grpcio fails the C-core tests instead of skipping them.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import type { MeshdHandle } from '../src/main';
import { closeInOrder } from './helpers/teardown';
import { requirePythonGrpc, startE2eMeshd } from './helpers/e2e';
import { startBackends, type BackendSet } from './helpers/backends';
import { NAMESPACE, SERVICE, SERVICE_PORT, VS_FILE, createMeshFixture, type MeshFixture } from './helpers/mesh-fixture';
import { type CallResult, type ClientImpl, type XdsClient, runUntil, startGrpcCoreClient, startGrpcJsXdsClient } from './helpers/xds-clients';

const V1 = 'reviews-v1';
const V2 = 'reviews-v2';
const V3 = 'reviews-v3';
/** Only for delayed calls: grpc-js still sends a fault-delayed call once its delay is over, even
 * when the call's deadline expired meanwhile, so those late calls must not land on a backend
 * another test counts. One per client: one suite's late calls can arrive during the other's test. */
const V4 = 'reviews-v4';
const V5 = 'reviews-v5';
const CONVERGE_MS = 10_000;
const TEST_TIMEOUT = 30_000;

/*
 * Tolerance for anything that should happen to half of N = 400 independent calls (a 50 %
 * abort, a 50/50 split): the count is Binomial(400, 0.5), mean 200, standard deviation
 * sqrt(400 · 0.25) = 10. Accepting 140..260 is ±6 σ: a correct implementation fails by chance
 * with probability ≈ 2·10⁻⁹, while "never", "always" or a percentage misread by a factor of
 * 100 (0.5 % or 100 %) is far outside.
 */
const HALF_CALLS = 400;
const HALF_MIN = 140;
const HALF_MAX = 260;

interface Env {
  backends: BackendSet;
  fixture: MeshFixture;
  meshd: MeshdHandle;
}
const env: Partial<Env> = {};
const clients: XdsClient[] = [];
let probeSeq = 0;

function ready(): Env {
  assert.ok(env.backends && env.fixture && env.meshd, 'setup did not complete');
  return env as Env;
}

function dest(subset: string, weight?: number): object {
  return { destination: { host: SERVICE, subset, port: { number: SERVICE_PORT } }, ...(weight !== undefined ? { weight } : {}) };
}

/** Writes the reviews VirtualService (probe route first) and waits until `client` routes by it. */
async function applyRoutes(client: XdsClient, http: object[]): Promise<void> {
  const e = ready();
  const tag = `p${++probeSeq}`;
  const probe = { name: 'probe', match: [{ headers: { 'x-probe': { exact: tag } } }], route: [dest('v3')] };
  await e.fixture.writeObjects(VS_FILE, [
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: SERVICE, namespace: NAMESPACE },
      spec: { hosts: [SERVICE], http: [probe, ...http] },
    },
  ]);
  await runUntil(client, { calls: 4, metadata: { 'x-probe': tag } }, (r) => r.errors === 0 && (r.counts[V3] ?? 0) === 4, {
    timeoutMs: CONVERGE_MS,
    intervalMs: 100,
    what: `routes with probe ${tag} applied`,
  });
  for (const b of e.backends.backends) b.setBehaviour({});
  e.backends.resetAll();
}

function codes(r: CallResult): Record<string, number> {
  return r.errorCodes;
}

/** Backends' own counts for v1..v3, for the names given (others must be 0). */
function assertBackends(want: Record<string, number>, why: string): void {
  const all = ready().backends.counts();
  const got = { [V1]: all[V1], [V2]: all[V2], [V3]: all[V3] };
  assert.deepEqual(got, { [V1]: want[V1] ?? 0, [V2]: want[V2] ?? 0, [V3]: want[V3] ?? 0 }, why);
}

function inHalfRange(n: number): boolean {
  return n >= HALF_MIN && n <= HALF_MAX;
}

before(async () => {
  env.backends = await startBackends([V1, V2, V3, V4, V5]);
  env.fixture = await createMeshFixture({
    ports: { v1: env.backends.get(V1).port, v2: env.backends.get(V2).port, v3: env.backends.get(V3).port, v4: env.backends.get(V4).port, v5: env.backends.get(V5).port },
  });
  env.meshd = await startE2eMeshd(env.fixture.configDir);
});

after(async () => {
  await closeInOrder([...clients.map((c) => () => c.close()), () => env.meshd?.close(), () => env.backends?.close(), () => env.fixture?.cleanup()]);
});

function routingSuite(impl: ClientImpl): void {
  describe(`${impl} client`, { timeout: 120_000 }, () => {
    let client: XdsClient | undefined;
    let pid = -1;

    /** The suite's one client (one process, one channel for every test), or undefined when skipped. */
    async function get(t: TestContext): Promise<XdsClient | undefined> {
      if (impl === 'grpc-core' && !requirePythonGrpc(t)) return undefined;
      if (!client) {
        const opts = { xdsPort: ready().meshd.xdsPort, podName: `routing-${impl}` };
        client = impl === 'grpc-core' ? await startGrpcCoreClient(opts) : await startGrpcJsXdsClient(opts);
        clients.push(client);
        pid = client.pid;
        await runUntil(client, { calls: 4, waitForReady: true, deadlineMs: 2000 }, (r) => r.errors === 0, {
          timeoutMs: CONVERGE_MS,
          what: `${impl}: first successful call`,
        });
      }
      return client;
    }

    test('fault abort 100 % with grpcStatus PERMISSION_DENIED: every call fails with code 7, no backend is called', { timeout: TEST_TIMEOUT }, async (t) => {
      const c = await get(t);
      if (!c) return;
      await applyRoutes(c, [{ name: 'abort-all', fault: { abort: { grpcStatus: 'PERMISSION_DENIED', percentage: { value: 100 } } }, route: [dest('v1')] }]);
      const r = await c.run({ calls: 50, concurrency: 10 });
      assert.deepEqual({ counts: r.counts, codes: codes(r) }, { counts: {}, codes: { [String(status.PERMISSION_DENIED)]: 50 } }, `${impl}: ${JSON.stringify(r)}`);
      assertBackends({}, `${impl}: an aborted call never reaches a backend`);
    });

    test(`fault abort 50 % (ABORTED) over ${HALF_CALLS} calls: ${HALF_MIN}..${HALF_MAX} aborted, the rest reach v1`, { timeout: TEST_TIMEOUT }, async (t) => {
      const c = await get(t);
      if (!c) return;
      await applyRoutes(c, [{ name: 'abort-half', fault: { abort: { grpcStatus: 'ABORTED', percentage: { value: 50 } } }, route: [dest('v1')] }]);
      const r = await c.run({ calls: HALF_CALLS, concurrency: 16 });
      const aborted = r.errorCodes[String(status.ABORTED)] ?? 0;
      const ok = r.counts[V1] ?? 0;
      assert.equal(aborted + ok, HALF_CALLS, `${impl}: only ABORTED failures and v1 answers: ${JSON.stringify(r)}`);
      assert.ok(inHalfRange(aborted), `${impl}: ${aborted} of ${HALF_CALLS} aborted, want ${HALF_MIN}..${HALF_MAX}`);
      assertBackends({ [V1]: ok }, `${impl}: v1 saw exactly the calls that were not aborted`);
    });

    test('fault delay 10 s on 100 % with a 500 ms deadline: DEADLINE_EXCEEDED; on 0 %: no delay', { timeout: TEST_TIMEOUT }, async (t) => {
      const c = await get(t);
      if (!c) return;
      const e = ready();
      const [delayedName, delayedSubset] = impl === 'grpc-core' ? [V5, 'v5'] : [V4, 'v4'];
      await applyRoutes(c, [{ name: 'delay-all', fault: { delay: { fixedDelay: '10s', percentage: { value: 100 } } }, route: [dest(delayedSubset)] }]);
      const r = await c.run({ calls: 16, concurrency: 16, deadlineMs: 500 });
      assert.deepEqual({ counts: r.counts, codes: codes(r) }, { counts: {}, codes: { [String(status.DEADLINE_EXCEEDED)]: 16 } }, `${impl}: ${JSON.stringify(r)}`);
      // Checked right after the deadlines, 9.5 s before any delay could be over.
      assert.equal(e.backends.get(delayedName).calls, 0, `${impl}: no delayed call reached ${delayedSubset} before its deadline`);
      await applyRoutes(c, [{ name: 'delay-none', fault: { delay: { fixedDelay: '10s', percentage: { value: 0 } } }, route: [dest('v1')] }]);
      // Were the 10 s delay applied, none of these would beat the 500 ms deadline.
      const r0 = await c.run({ calls: 16, concurrency: 16, deadlineMs: 500 });
      assert.deepEqual({ counts: r0.counts, errors: r0.errors }, { counts: { [V1]: 16 }, errors: 0 }, `${impl}: ${JSON.stringify(r0)}`);
      assertBackends({ [V1]: 16 }, `${impl}: v1 saw every call`);
    });

    /*
     * v1 fails its next K = 3 calls with UNAVAILABLE. Calls run one at a time, so the first call
     * meets all K failures. With attempts 4 (4 retries, 5 attempts: gRPC's cap) it still
     * succeeds and v1 sees N + K calls; without retries the first K calls fail and v1 sees N.
     */
    test('retries: attempts 4 on unavailable hide 3 failures; without retries they reach the client', { timeout: TEST_TIMEOUT }, async (t) => {
      const c = await get(t);
      if (!c) return;
      const e = ready();
      const K = 3;
      const N = 10;
      await applyRoutes(c, [{ name: 'retry', retries: { attempts: 4, retryOn: 'unavailable', perTryTimeout: '2s' }, route: [dest('v1')] }]);
      e.backends.get(V1).setBehaviour({ failFirst: K, failCode: status.UNAVAILABLE });
      const r = await c.run({ calls: N, concurrency: 1, deadlineMs: 5000 });
      assert.deepEqual({ counts: r.counts, errors: r.errors }, { counts: { [V1]: N }, errors: 0 }, `${impl}: retried calls all succeed: ${JSON.stringify(r)}`);
      assertBackends({ [V1]: N + K }, `${impl}: v1 saw the ${K} failed attempts as well`);
      assert.equal(e.backends.get(V1).failed, K, `${impl}: v1 failed exactly ${K} calls`);

      await applyRoutes(c, [{ name: 'no-retry', route: [dest('v1')] }]);
      e.backends.get(V1).setBehaviour({ failFirst: K, failCode: status.UNAVAILABLE });
      const r0 = await c.run({ calls: N, concurrency: 1, deadlineMs: 5000 });
      assert.deepEqual(
        { counts: r0.counts, codes: codes(r0) },
        { counts: { [V1]: N - K }, codes: { [String(status.UNAVAILABLE)]: K } },
        `${impl}: without retries the first ${K} calls fail: ${JSON.stringify(r0)}`,
      );
      assertBackends({ [V1]: N }, `${impl}: v1 saw each call once`);
    });

    test('timeout 200ms: a backend answering after 2 s gives DEADLINE_EXCEEDED under a 10 s client deadline', { timeout: TEST_TIMEOUT }, async (t) => {
      const c = await get(t);
      if (!c) return;
      const e = ready();
      await applyRoutes(c, [{ name: 'slow', timeout: '200ms', route: [dest('v1')] }]);
      e.backends.get(V1).setBehaviour({ delayMs: 2000 });
      const r = await c.run({ calls: 8, concurrency: 8, deadlineMs: 10_000 });
      // Without the route timeout every call would succeed after 2 s.
      assert.deepEqual({ counts: r.counts, codes: codes(r) }, { counts: {}, codes: { [String(status.DEADLINE_EXCEEDED)]: 8 } }, `${impl}: ${JSON.stringify(r)}`);
      if (impl === 'grpc-js-xds') {
        // The calls did reach v1: the deadline came from the route, not from a failure to send.
        assertBackends({ [V1]: 8 }, `${impl}: v1 received every call`);
      }
      // Not for gRPC C-core 1.51: it takes the xDS route timeout (max_stream_duration) as a
      // deadline counted from its process start rather than from the call's start, so once the
      // client has run longer than the timeout it fails such calls at once, before sending them.
      // A fixed C-core would send them; either way the client must see DEADLINE_EXCEEDED.
      e.backends.get(V1).setBehaviour({});
    });

    /*
     * The client must accept a RouteConfiguration built from every HTTP route feature (the
     * probe would never arrive through a rejected one). gRPC cannot redirect or answer
     * directly, so those routes fail matching calls with the HTTP status mapped to gRPC
     * (503 → UNAVAILABLE, 301 → UNKNOWN) instead of falling through to the next route. A call
     * that matches no route fails with UNAVAILABLE (gRPC C-core 1.51 would crash on its own).
     */
    test('every route feature is accepted; directResponse, redirect and no matching route fail calls', { timeout: TEST_TIMEOUT }, async (t) => {
      const c = await get(t);
      if (!c) return;
      await applyRoutes(c, [
        { name: 'direct', match: [{ headers: { 'x-mode': { exact: 'direct' } } }], directResponse: { status: 503, body: { string: 'down' } } },
        { name: 'redirect', match: [{ headers: { 'x-mode': { exact: 'redirect' } } }], redirect: { uri: '/elsewhere', authority: 'example.com' } },
        { name: 'query', match: [{ queryParams: { q: { exact: '1' } } }], route: [dest('v2')] },
        {
          name: 'everything-else',
          match: [{ uri: { prefix: '/MESHD.test.echo/' }, ignoreUriCase: true, withoutHeaders: { 'x-mode': { regex: 'other.*' } } }],
          rewrite: { uri: '/meshd.test.Echo/' },
          headers: { request: { set: { 'x-a': '1' } }, response: { remove: ['x-b'] } },
          mirrors: [{ destination: { host: SERVICE, subset: 'v2' }, percentage: { value: 10 } }],
          corsPolicy: { allowOrigins: [{ exact: 'https://example.com' }] },
          retries: { attempts: 2, retryOn: 'unavailable,5xx', perTryTimeout: '1s', backoff: '50ms' },
          timeout: '5s',
          route: [dest('v1', 100), dest('v2', 0)],
        },
      ]);
      const direct = await c.run({ calls: 10, metadata: { 'x-mode': 'direct' } });
      assert.deepEqual({ counts: direct.counts, codes: codes(direct) }, { counts: {}, codes: { [String(status.UNAVAILABLE)]: 10 } }, `${impl} direct: ${JSON.stringify(direct)}`);
      const redirect = await c.run({ calls: 10, metadata: { 'x-mode': 'redirect' } });
      assert.deepEqual(
        { counts: redirect.counts, codes: codes(redirect) },
        { counts: {}, codes: { [String(status.UNKNOWN)]: 10 } },
        `${impl} redirect: ${JSON.stringify(redirect)}`,
      );
      const none = await c.run({ calls: 10, metadata: { 'x-mode': 'other-one' } });
      assert.deepEqual({ counts: none.counts, codes: codes(none) }, { counts: {}, codes: { [String(status.UNAVAILABLE)]: 10 } }, `${impl} no route: ${JSON.stringify(none)}`);
      assertBackends({}, `${impl}: refused calls reach no backend`);
      const rest = await c.run({ calls: 20, metadata: { 'x-mode': 'plain' } });
      assert.deepEqual({ counts: rest.counts, errors: rest.errors }, { counts: { [V1]: 20 }, errors: 0 }, `${impl} other calls: ${JSON.stringify(rest)}`);
      assertBackends({ [V1]: 20 }, `${impl}: the other calls reach v1 only (no mirroring in gRPC)`);
    });

    /*
     * Istio's withoutHeaders matches a call whose header is absent, or present with another
     * value. gRPC-Go and C-core never match an absent header with an inverted value matcher
     * (they ignore treat_missing_header_as_empty), so meshd gives gRPC clients the rule as one
     * route per way it can hold: "absent" (present_match inverted) and "present and not equal".
     */
    test('withoutHeaders: a call without the header, or with another value, matches; the excluded value falls through', { timeout: TEST_TIMEOUT }, async (t) => {
      const c = await get(t);
      if (!c) return;
      await applyRoutes(c, [
        { name: 'not-canary', match: [{ withoutHeaders: { 'x-canary': { exact: 'yes' }, 'x-tier': { prefix: 'gold' } } }], route: [dest('v2')] },
        { name: 'rest', route: [dest('v1')] },
      ]);
      const cases: Array<[Record<string, string>, string]> = [
        [{}, V2],
        [{ 'x-canary': 'no' }, V2],
        [{ 'x-tier': 'silver' }, V2],
        [{ 'x-canary': 'no', 'x-tier': 'bronze' }, V2],
        [{ 'x-canary': 'yes' }, V1],
        [{ 'x-tier': 'gold-plus' }, V1],
        [{ 'x-canary': 'no', 'x-tier': 'gold' }, V1],
      ];
      for (const [metadata, want] of cases) {
        const r = await c.run({ calls: 5, metadata });
        assert.deepEqual({ counts: r.counts, errors: r.errors }, { counts: { [want]: 5 }, errors: 0 }, `${impl} ${JSON.stringify(metadata)}: ${JSON.stringify(r)}`);
      }
    });

    test('weights 0/100 → 50/50 → 100/0 shift traffic on the same channel', { timeout: TEST_TIMEOUT }, async (t) => {
      const c = await get(t);
      if (!c) return;
      const e = ready();
      await applyRoutes(c, [{ name: 'shift', route: [dest('v1', 0), dest('v2', 100)] }]);
      const a = await c.run({ calls: 100, concurrency: 16 });
      assert.deepEqual({ counts: a.counts, errors: a.errors }, { counts: { [V2]: 100 }, errors: 0 }, `${impl} 0/100: ${JSON.stringify(a)}`);
      assertBackends({ [V2]: 100 }, `${impl} 0/100: backends`);

      await applyRoutes(c, [{ name: 'shift', route: [dest('v1', 50), dest('v2', 50)] }]);
      const b = await c.run({ calls: HALF_CALLS, concurrency: 16 });
      assert.equal(b.errors, 0, `${impl} 50/50: ${JSON.stringify(b)}`);
      assert.deepEqual(Object.keys(b.counts).sort(), [V1, V2], `${impl} 50/50: only v1 and v2: ${JSON.stringify(b.counts)}`);
      assert.ok(inHalfRange(b.counts[V1] ?? 0), `${impl} 50/50: v1 got ${b.counts[V1]} of ${HALF_CALLS}, want ${HALF_MIN}..${HALF_MAX}`);
      assertBackends({ [V1]: b.counts[V1] ?? 0, [V2]: b.counts[V2] ?? 0 }, `${impl} 50/50: backends match the client's view`);

      await applyRoutes(c, [{ name: 'shift', route: [dest('v1', 100), dest('v2', 0)] }]);
      const d = await c.run({ calls: 100, concurrency: 16 });
      assert.deepEqual({ counts: d.counts, errors: d.errors }, { counts: { [V1]: 100 }, errors: 0 }, `${impl} 100/0: ${JSON.stringify(d)}`);
      assertBackends({ [V1]: 100 }, `${impl} 100/0: backends`);

      assert.equal(c.pid, pid, `${impl}: the same client process served every test`);
      assert.equal(await c.state(), 'READY', `${impl}: the channel is still READY`);
      void e;
    });
  });
}

routingSuite('grpc-js-xds');
routingSuite('grpc-core');
