/**
 * End to end: Gateway API routes attached to a Service (GAMMA) route proxyless gRPC traffic,
 * with real clients of both libraries (@grpc/grpc-js-xds and gRPC C-core from python3-grpcio)
 * calling real gRPC backends on 127.0.0.1 through meshd.
 *
 * The mesh fixture's `reviews` Service keeps its VirtualService (everything to subset v1): an
 * HTTPRoute or GRPCRoute whose parentRef is the Service takes precedence over it, as in Istio.
 * The Gateway API has no subsets, so each version also gets its own Service (reviews-v1..v3)
 * with one EndpointSlice, and routes name those as backendRefs.
 *
 * With CI=true a missing python3-grpcio fails the C-core tests instead of skipping them.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { MeshdHandle } from '../src/main';
import { closeInOrder } from './helpers/teardown';
import { only, requirePythonGrpc, startE2eMeshd } from './helpers/e2e';
import { ECHO_SERVICE, startBackends, type BackendSet } from './helpers/backends';
import { NAMESPACE, SERVICE, SERVICE_PORT, createMeshFixture, type MeshFixture } from './helpers/mesh-fixture';
import { type ClientImpl, type XdsClient, runUntil, startGrpcCoreClient, startGrpcJsXdsClient } from './helpers/xds-clients';

const V1 = 'reviews-v1';
const V2 = 'reviews-v2';
const V3 = 'reviews-v3';
const VERSIONS = [V1, V2, V3];
const ROUTES_FILE = 'gateway-api-routes.yaml';
const CONVERGE_MS = 10_000;
const TEST_TIMEOUT = 30_000;

/* Half of N = 400 calls: Binomial(400, 0.5), σ = 10; 140..260 is ±6 σ (see e2e-routing.test.ts). */
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

function ready(): Env {
  assert.ok(env.backends && env.fixture && env.meshd, 'setup did not complete');
  return env as Env;
}

/** One Service per version, each with one EndpointSlice: what backendRefs name. */
function versionServices(ports: Readonly<Record<string, number>>): object[] {
  return VERSIONS.flatMap((name) => [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: NAMESPACE },
      spec: { selector: { app: name }, clusterIP: `10.96.90.${81 + VERSIONS.indexOf(name)}`, ports: [{ name: 'grpc', port: SERVICE_PORT, protocol: 'TCP' }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      // Named apart from the fixture's own slices for the reviews Service (reviews-v1..v3).
      metadata: { name: `${name}-own`, namespace: NAMESPACE, labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      ports: [{ name: 'grpc', port: ports[name], protocol: 'TCP' }],
      endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true, serving: true, terminating: false }, targetRef: { kind: 'Pod', name, namespace: NAMESPACE } }],
    },
  ]);
}

const parentRefs = [{ group: '', kind: 'Service', name: SERVICE, port: SERVICE_PORT }];
const backend = (name: string, weight?: number): object => ({ name, port: SERVICE_PORT, ...(weight !== undefined ? { weight } : {}) });

function httpRoute(rules: object[]): object {
  return { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'reviews', namespace: NAMESPACE }, spec: { parentRefs, rules } };
}

function grpcRoute(rules: object[]): object {
  return { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GRPCRoute', metadata: { name: 'reviews', namespace: NAMESPACE }, spec: { parentRefs, rules } };
}

async function writeRoutes(objects: object[]): Promise<void> {
  const e = { backends: env.backends, fixture: env.fixture };
  assert.ok(e.backends && e.fixture);
  const backends = e.backends;
  const ports = Object.fromEntries(VERSIONS.map((v) => [v, backends.get(v).port]));
  await e.fixture.writeObjects(ROUTES_FILE, [...versionServices(ports), ...objects]);
}

before(async () => {
  env.backends = await startBackends(VERSIONS);
  env.fixture = await createMeshFixture({ ports: { v1: env.backends.get(V1).port, v2: env.backends.get(V2).port, v3: env.backends.get(V3).port } });
  await writeRoutes([]);
  env.meshd = await startE2eMeshd(env.fixture.configDir);
});

after(async () => {
  await closeInOrder([...clients.map((c) => () => c.close()), () => env.meshd?.close(), () => env.backends?.close(), () => env.fixture?.cleanup()]);
});

function gammaSuite(impl: ClientImpl): void {
  describe(`${impl} client`, { timeout: 120_000 }, () => {
    let client: XdsClient | undefined;

    async function get(t: TestContext): Promise<XdsClient | undefined> {
      if (impl === 'grpc-core' && !requirePythonGrpc(t)) return undefined;
      if (!client) {
        client =
          impl === 'grpc-core'
            ? await startGrpcCoreClient({ xdsPort: ready().meshd.xdsPort, podName: `gamma-${impl}` })
            : await startGrpcJsXdsClient({ xdsPort: ready().meshd.xdsPort, podName: `gamma-${impl}` });
        clients.push(client);
        await runUntil(client, { calls: 4, waitForReady: true, deadlineMs: 2000 }, (r) => r.errors === 0, { timeoutMs: 2 * CONVERGE_MS, what: `${impl}: first successful call` });
      }
      return client;
    }

    test('an HTTPRoute on the Service takes precedence over its VirtualService; a live edit moves the traffic', { timeout: TEST_TIMEOUT }, async (t) => {
      const c = await get(t);
      if (!c) return;
      // Without a route, the VirtualService sends everything to v1.
      await writeRoutes([]);
      await runUntil(c, { calls: 8 }, only(V1), { timeoutMs: CONVERGE_MS, what: 'the VirtualService routes to v1' });
      await writeRoutes([httpRoute([{ backendRefs: [backend(V2)] }])]);
      const r = await runUntil(c, { calls: 8 }, only(V2), { timeoutMs: CONVERGE_MS, what: 'the HTTPRoute routes to v2' });
      assert.deepEqual(r.counts, { [V2]: 8 });
      // A live edit of the route moves the traffic.
      await writeRoutes([httpRoute([{ backendRefs: [backend(V3)] }])]);
      await runUntil(c, { calls: 8 }, only(V3), { timeoutMs: CONVERGE_MS, what: 'the edited HTTPRoute routes to v3' });
      // Deleting it gives the Service back to its VirtualService.
      await writeRoutes([]);
      await runUntil(c, { calls: 8 }, only(V1), { timeoutMs: CONVERGE_MS, what: 'back to the VirtualService' });
    });

    test('HTTPRoute header match: matching calls go to v3, the rest to v2', { timeout: TEST_TIMEOUT }, async (t) => {
      const c = await get(t);
      if (!c) return;
      await writeRoutes([httpRoute([{ matches: [{ headers: [{ name: 'x-user', value: 'jason' }] }], backendRefs: [backend(V3)] }, { backendRefs: [backend(V2)] }])]);
      await runUntil(c, { calls: 8, metadata: { 'x-user': 'jason' } }, only(V3), { timeoutMs: CONVERGE_MS, what: 'x-user: jason → v3' });
      const other = await runUntil(c, { calls: 8, metadata: { 'x-user': 'mary' } }, only(V2), { timeoutMs: CONVERGE_MS, what: 'x-user: mary → v2' });
      assert.deepEqual(other.counts, { [V2]: 8 });
    });

    test('HTTPRoute weighted backendRefs split calls 1:1 between v1 and v2', { timeout: TEST_TIMEOUT }, async (t) => {
      const c = await get(t);
      if (!c) return;
      // Probe first: header-matched calls reach v3 once the new routes are in.
      await writeRoutes([
        httpRoute([{ matches: [{ headers: [{ name: 'x-probe', value: 'split' }] }], backendRefs: [backend(V3)] }, { backendRefs: [backend(V1, 50), backend(V2, 50)] }]),
      ]);
      await runUntil(c, { calls: 4, metadata: { 'x-probe': 'split' } }, only(V3), { timeoutMs: CONVERGE_MS, what: 'the split routes are in' });
      const r = await c.run({ calls: HALF_CALLS });
      assert.equal(r.errors, 0, JSON.stringify(r.errorSamples));
      const v1 = r.counts[V1] ?? 0;
      const v2 = r.counts[V2] ?? 0;
      assert.equal(v1 + v2, HALF_CALLS, JSON.stringify(r.counts));
      assert.ok(v1 >= HALF_MIN && v1 <= HALF_MAX, `v1 got ${v1} of ${HALF_CALLS}`);
    });

    test('GRPCRoute: service/method and header matches route to their backends, the rest to the default rule', { timeout: TEST_TIMEOUT }, async (t) => {
      const c = await get(t);
      if (!c) return;
      await writeRoutes([
        grpcRoute([
          { matches: [{ method: { service: ECHO_SERVICE, method: 'Who' }, headers: [{ name: 'x-user', value: 'jason' }] }], backendRefs: [backend(V3)] },
          { matches: [{ method: { service: 'other.Service' } }], backendRefs: [backend(V1)] },
          { matches: [{ method: { service: ECHO_SERVICE } }], backendRefs: [backend(V2)] },
        ]),
      ]);
      await runUntil(c, { calls: 8, metadata: { 'x-user': 'jason' } }, only(V3), { timeoutMs: CONVERGE_MS, what: 'Who with x-user: jason → v3' });
      await runUntil(c, { calls: 8 }, only(V2), { timeoutMs: CONVERGE_MS, what: 'the service match → v2' });
      // A weighted split by GRPCRoute.
      await writeRoutes([
        grpcRoute([{ matches: [{ headers: [{ name: 'x-probe', value: 'grpc-split' }] }], backendRefs: [backend(V3)] }, { backendRefs: [backend(V1, 1), backend(V2, 1)] }]),
      ]);
      await runUntil(c, { calls: 4, metadata: { 'x-probe': 'grpc-split' } }, only(V3), { timeoutMs: CONVERGE_MS, what: 'the GRPCRoute split is in' });
      const r = await c.run({ calls: HALF_CALLS });
      const v1 = r.counts[V1] ?? 0;
      assert.equal(v1 + (r.counts[V2] ?? 0), HALF_CALLS, JSON.stringify(r.counts));
      assert.ok(v1 >= HALF_MIN && v1 <= HALF_MAX, `v1 got ${v1} of ${HALF_CALLS}`);
    });
  });
}

gammaSuite('grpc-js-xds');
gammaSuite('grpc-core');
