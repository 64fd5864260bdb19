/**
 * Gateway API status end to end: meshd on the (fake) Kubernetes API translates a Gateway and its
 * HTTPRoutes, and its controller writes what the translation says back to each object's status:
 * the Gateway's listener with its attached routes, a route that attaches (Accepted, ResolvedRefs),
 * one whose backend does not exist (ResolvedRefs False, BackendNotFound) and one from a namespace
 * the listener does not allow (Accepted False, NotAllowedByListeners), each with the generation it
 * was computed from; and a spec change is written with the new generation. A BackendTLSPolicy whose
 * CA is a ConfigMap read from the API gets its ancestors (the Service, and the Gateway whose route
 * sends to it) written, Accepted and ResolvedRefs.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { makeCa } from './helpers/certs';
import { type KubeApiServer, startKubeApiServer } from './helpers/kube-api-server';

const GW_API = 'gateway.networking.k8s.io/v1';
const NS = 'shop';
let api: KubeApiServer;
let meshd: MeshdHandle;

type Json = Record<string, unknown>;

async function until<T>(what: string, get: () => T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const statusOf = (kind: string, ns: string, name: string): Json | undefined => api.store.get(GW_API, kind, ns, name)?.['status'] as Json | undefined;
const conditions = (o: Json | undefined): Record<string, Json> => Object.fromEntries(((o?.['conditions'] ?? []) as Json[]).map((c) => [String(c['type']), c]));
/** Our parent entry of a route's status. */
const parentOf = (ns: string, name: string): Json | undefined =>
  ((statusOf('HTTPRoute', ns, name)?.['parents'] ?? []) as Json[]).find((p) => p['controllerName'] === 'istio.io/gateway-controller');

function route(ns: string, name: string, backend: string): Json {
  return {
    apiVersion: GW_API,
    kind: 'HTTPRoute',
    metadata: { name, namespace: ns },
    spec: {
      parentRefs: [{ name: 'edge', namespace: NS }],
      hostnames: ['shop.example.com'],
      rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [{ name: backend, port: 8080 }] }],
    },
  };
}

before(async () => {
  api = await startKubeApiServer();
  for (const ns of [NS, 'elsewhere']) api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  api.store.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: NS }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 8080 }] } });
  api.store.create({
    apiVersion: GW_API,
    kind: 'Gateway',
    metadata: { name: 'edge', namespace: NS },
    spec: { gatewayClassName: 'istio', listeners: [{ name: 'http', port: 80, protocol: 'HTTP', hostname: '*.example.com', allowedRoutes: { namespaces: { from: 'Same' } } }] },
  });
  api.store.create(route(NS, 'good', 'web'));
  api.store.create(route(NS, 'dangling', 'no-such-service'));
  api.store.create(route('elsewhere', 'intruder', 'web'));
  api.store.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'web-ca', namespace: NS }, data: { 'ca.crt': makeCa('web CA').cert } });
  api.store.create({
    apiVersion: GW_API,
    kind: 'BackendTLSPolicy',
    metadata: { name: 'web-tls', namespace: NS },
    spec: {
      targetRefs: [{ group: '', kind: 'Service', name: 'web' }],
      validation: { hostname: 'web.internal', caCertificateRefs: [{ group: '', kind: 'ConfigMap', name: 'web-ca' }] },
    },
  });
  meshd = await startMeshd({
    kubeconfig: api.kubeconfigPath,
    podName: 'meshd-0',
    podNamespace: 'istio-system',
    xdsPort: 0,
    debugPort: 0,
    monitoringPort: -1,
    webhookPort: -1,
    secureXdsPort: -1,
    logger: pino({ level: 'silent' }),
    kube: { backoffInitialMs: 20, backoffMaxMs: 200, missingRetryMs: 200 },
    leaseTimings: { leaseDurationMs: 4000, renewDeadlineMs: 3000, retryPeriodMs: 200 },
    gatewayController: { debounceMs: 20, resyncMs: 300 },
  });
});

after(async () => {
  await meshd?.close();
  await api?.close();
});

test("the translation's statuses reach the API: listener attached routes, accepted, unresolved and refused routes", { timeout: 60_000 }, async () => {
  const generation = (ns: string, name: string): number => Number((api.store.get(GW_API, 'HTTPRoute', ns, name)?.['metadata'] as Json)['generation']);
  const good = await until('the good route accepted', () => {
    const p = parentOf(NS, 'good');
    return conditions(p)['Accepted']?.['status'] === 'True' ? p : undefined;
  });
  assert.deepEqual(good['parentRef'], { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'edge', namespace: NS });
  assert.equal(conditions(good)['ResolvedRefs']?.['status'], 'True');
  assert.equal(conditions(good)['Accepted']?.['observedGeneration'], generation(NS, 'good'));

  const dangling = await until('the dangling route reported', () => parentOf(NS, 'dangling'));
  assert.equal(conditions(dangling)['Accepted']?.['status'], 'True', 'a route with a missing backend still attaches');
  assert.deepEqual(
    { status: conditions(dangling)['ResolvedRefs']?.['status'], reason: conditions(dangling)['ResolvedRefs']?.['reason'] },
    { status: 'False', reason: 'BackendNotFound' },
  );

  const intruder = await until('the route from another namespace reported', () => parentOf('elsewhere', 'intruder'));
  assert.deepEqual(
    { status: conditions(intruder)['Accepted']?.['status'], reason: conditions(intruder)['Accepted']?.['reason'] },
    { status: 'False', reason: 'NotAllowedByListeners' },
  );

  const gw = await until('the Gateway accepted', () => {
    const s = statusOf('Gateway', NS, 'edge');
    return conditions(s)['Accepted']?.['status'] === 'True' ? s : undefined;
  });
  const listener = ((gw['listeners'] ?? []) as Json[]).find((l) => l['name'] === 'http');
  assert.equal(listener?.['attachedRoutes'], 2, 'good and dangling attach; the intruder does not');
  assert.equal(conditions(listener)['Accepted']?.['status'], 'True');
  assert.equal(conditions(statusOf('GatewayClass', '', 'istio'))['Accepted']?.['status'], 'True');

  // A spec change: the route now names an existing backend; its status follows, with the new generation.
  const before = generation(NS, 'dangling');
  const obj = api.store.get(GW_API, 'HTTPRoute', NS, 'dangling') as Json;
  api.store.update({ ...obj, spec: (route(NS, 'dangling', 'web') as { spec: Json }).spec });
  assert.equal(generation(NS, 'dangling'), before + 1);
  const fixed = await until('the fixed route resolved', () => {
    const p = parentOf(NS, 'dangling');
    return conditions(p)['ResolvedRefs']?.['status'] === 'True' ? p : undefined;
  });
  assert.equal(conditions(fixed)['ResolvedRefs']?.['observedGeneration'], before + 1);
});

test('a BackendTLSPolicy gets its ancestors written: the Service (mesh controller) and the Gateway routing to it', { timeout: 60_000 }, async () => {
  const ancestors = await until('the policy ancestors', () => {
    const a = (statusOf('BackendTLSPolicy', NS, 'web-tls')?.['ancestors'] ?? []) as Json[];
    return a.length === 2 ? a : undefined;
  });
  assert.deepEqual(
    ancestors.map((a) => [a['controllerName'], a['ancestorRef'], conditions(a)['Accepted']?.['status'], conditions(a)['ResolvedRefs']?.['status']]),
    [
      ['istio.io/mesh-controller', { group: '', kind: 'Service', name: 'web' }, 'True', 'True'],
      ['istio.io/gateway-controller', { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'edge' }, 'True', 'True'],
    ],
    'the ConfigMap CA was read from the API (ResolvedRefs True)',
  );
  const generation = Number((api.store.get(GW_API, 'BackendTLSPolicy', NS, 'web-tls')?.['metadata'] as Json)['generation']);
  assert.equal(conditions(ancestors[0])['Accepted']?.['observedGeneration'], generation);
});
