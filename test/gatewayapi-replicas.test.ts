/**
 * The Gateway API controller inside meshd, two replicas on one (fake) Kubernetes API: only the
 * leader creates GatewayClass istio, deploys the Gateway and writes its status; when it stops,
 * the other replica takes over and follows the next change.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { type KubeApiServer, startKubeApiServer } from './helpers/kube-api-server';

const TIMINGS = { leaseDurationMs: 4000, renewDeadlineMs: 3000, retryPeriodMs: 200 };
const GW_API = 'gateway.networking.k8s.io/v1';
let api: KubeApiServer;
const replicas = new Map<string, MeshdHandle>();

async function replica(pod: string): Promise<MeshdHandle> {
  const m = await startMeshd({
    kubeconfig: api.kubeconfigPath,
    podName: pod,
    podNamespace: 'istio-system',
    xdsPort: 0,
    debugPort: 0,
    monitoringPort: -1,
    webhookPort: -1,
    secureXdsPort: -1,
    logger: pino({ level: 'silent' }),
    kube: { backoffInitialMs: 20, backoffMaxMs: 200, missingRetryMs: 200 },
    leaseTimings: TIMINGS,
    // A short resync: a follower that wrote would show up within the test.
    gatewayController: { debounceMs: 20, resyncMs: 300 },
  });
  replicas.set(pod, m);
  return m;
}

async function until(what: string, ok: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

before(async () => {
  api = await startKubeApiServer();
});

after(async () => {
  for (const m of replicas.values()) await m.close();
  await api.close();
});

type Json = Record<string, unknown>;
const gw = (): Json | undefined => api.store.get(GW_API, 'Gateway', 'default', 'web');
const cond = (o: Json | undefined, type: string): Json | undefined => (((o?.['status'] as Json | undefined)?.['conditions'] ?? []) as Json[]).find((c) => c['type'] === type);

/** The pod names behind the controller's writes (its User-Agent names the replica). */
function writers(): Set<string> {
  const out = new Set<string>();
  for (const r of api.requests) {
    if (!['PUT', 'PATCH', 'POST'].includes(r.method)) continue;
    if (!/gateway\.networking\.k8s\.io|\/deployments|\/services\/|\/serviceaccounts/.test(r.path)) continue;
    out.add(/\(([^)]+)\)/.exec(r.userAgent ?? '')?.[1] ?? `unknown UA ${r.userAgent ?? ''}`);
  }
  return out;
}

test('only the leader of two replicas creates the class, deploys and writes status; the other takes over when it stops', async () => {
  const a = await replica('meshd-a');
  const b = await replica('meshd-b');
  await until('a leader', () => a.leader()?.leading === true || b.leader()?.leading === true);
  const [leader, follower] = a.leader()?.leading ? (['meshd-a', 'meshd-b'] as const) : (['meshd-b', 'meshd-a'] as const);
  await until('GatewayClass istio', () => api.store.get(GW_API, 'GatewayClass', '', 'istio') !== undefined);
  await until('GatewayClass istio Accepted', () => cond(api.store.get(GW_API, 'GatewayClass', '', 'istio'), 'Accepted')?.['status'] === 'True');

  api.store.create({
    apiVersion: GW_API,
    kind: 'Gateway',
    metadata: { name: 'web', namespace: 'default' },
    spec: { gatewayClassName: 'istio', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] },
  });
  await until('Gateway Programmed', () => cond(gw(), 'Programmed')?.['status'] === 'True');
  assert.equal(cond(gw(), 'Accepted')?.['observedGeneration'], 1);
  assert.ok(api.store.get('apps/v1', 'Deployment', 'default', 'web-istio'));
  // Several resyncs later: still only the leader wrote, and it wrote each status once.
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual([...writers()], [leader]);
  const statusWrites = api.requests.filter((r) => r.method === 'PUT' && r.path.endsWith('/gateways/web/status')).length;
  assert.ok(statusWrites <= 2, `status written ${statusWrites} times for two changes (Accepted, then Programmed)`);

  // The leader stops; the other replica takes over and follows the next change.
  await replicas.get(leader)?.close();
  replicas.delete(leader);
  const next = replicas.get(follower) as MeshdHandle;
  await until('the other replica leads', () => next.leader()?.leading === true);
  api.clearRequests();
  const live = gw() as Json;
  api.store.update({
    ...live,
    spec: {
      ...(live['spec'] as Json),
      listeners: [
        { name: 'http', port: 80, protocol: 'HTTP' },
        { name: 'tcp', port: 9000, protocol: 'TCP' },
      ],
    },
  });
  await until(
    'the Service follows the new listener',
    () => ((api.store.get('v1', 'Service', 'default', 'web-istio')?.['spec'] as Json | undefined)?.['ports'] as Json[] | undefined)?.some((p) => p['port'] === 9000) === true,
  );
  await until('observedGeneration 2', () => cond(gw(), 'Accepted')?.['observedGeneration'] === 2);
  assert.deepEqual([...writers()], [follower]);
});
