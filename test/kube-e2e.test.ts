/**
 * End to end through the Kubernetes API: objects written with @kubernetes/client-node to the
 * fake API server reach meshd's informers (`--kubeconfig`), become xDS, and route real calls
 * of real @grpc/grpc-js-xds clients to real grpc-js backends on 127.0.0.1.
 *
 *   backends   reviews-v1/v2/v3 and ratings-v1 (each answers its own name)
 *   API        Services reviews and ratings (port 9080 `grpc`), a Pod per backend (podIP
 *              127.0.0.1, set through the /status subresource), an EndpointSlice per
 *              backend (its port is the backend's port), a DestinationRule with subsets
 *              v1/v2/v3, a VirtualService; the WorkloadEntry CRD is not installed
 *   clients    A dials reviews, B dials ratings: one long-lived channel each
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api, CustomObjectsApi, KubernetesObjectApi, PatchStrategy, setHeaderOptions, type KubernetesObject } from '@kubernetes/client-node';
import { startMeshd, type MeshdHandle } from '../src/main';
import { loadKubeConfig } from '../src/sources/kube-http';
import type { KubeSource } from '../src/sources/kube-source';
import { startBackends, type BackendSet } from './helpers/backends';
import { resourcesWithout, startKubeApiServer, type KubeApiServer } from './helpers/kube-api-server';
import { captureLog, caughtUp, waitFor, type LogCapture } from './helpers/kube-testing';
import { closeInOrder } from './helpers/teardown';
import { runUntil, startGrpcJsXdsClient, type CallResult, type XdsClient } from './helpers/xds-clients';
import { portArgs } from './helpers/meshd-process';

const NS = 'default';
const PORT = 9080;
const CONVERGE_MS = 10_000;
const T = { timeout: 30_000 };
const VERSIONS = ['v1', 'v2', 'v3'] as const;

interface Env {
  api: KubeApiServer;
  backends: BackendSet;
  meshd: MeshdHandle;
  logs: LogCapture;
  objects: KubernetesObjectApi;
  a: XdsClient;
  b: XdsClient;
}
const env: Partial<Env> = {};
const clients: XdsClient[] = [];

function ready(): Env {
  assert.ok(env.api && env.backends && env.meshd && env.a && env.b, 'setup did not complete');
  return env as Env;
}

function only(name: string): (r: CallResult) => boolean {
  return (r) => r.errors === 0 && Object.keys(r.counts).length === 1 && (r.counts[name] ?? 0) > 0;
}

const service = (name: string): object => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: NS, labels: { app: name } },
  spec: { selector: { app: name }, clusterIP: name === 'reviews' ? '10.96.90.80' : '10.96.90.81', ports: [{ name: 'grpc', port: PORT, targetPort: PORT, protocol: 'TCP' }] },
});
const pod = (app: string, version: string): object => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: `${app}-${version}`, namespace: NS, labels: { app, version } },
  spec: { containers: [{ name: app, image: `${app}:${version}`, ports: [{ name: 'grpc', containerPort: PORT }] }] },
});
const slice = (app: string, version: string, port: number): object => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: `${app}-${version}`, namespace: NS, labels: { 'kubernetes.io/service-name': app } },
  addressType: 'IPv4',
  ports: [{ name: 'grpc', port, protocol: 'TCP' }],
  endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: `${app}-${version}`, namespace: NS } }],
});
const route = (subset: string): object[] => [{ route: [{ destination: { host: 'reviews', subset, port: { number: PORT } } }] }];

async function metric(e: Env, type: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${e.meshd.monitoringPort}/metrics`)).text();
  const m = new RegExp(`^pilot_xds_pushes\\{type="${type}"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

async function pushes(e: Env): Promise<Record<string, number>> {
  return Object.fromEntries(await Promise.all(['cds', 'eds', 'lds', 'rds'].map(async (t) => [t, await metric(e, t)] as const)));
}

async function getJson(e: Env, p: string): Promise<Record<string, unknown>> {
  return (await (await fetch(`http://127.0.0.1:${e.meshd.debugPort}${p}`)).json()) as Record<string, unknown>;
}

type Sync = Record<string, { sent_nonce?: string; status?: string }>;

/** Per client and type: the nonce of the last response sent (a new nonce = a push). */
async function sentNonces(e: Env): Promise<Record<string, Record<string, string | undefined>>> {
  const rows = (await (await fetch(`http://127.0.0.1:${e.meshd.debugPort}/debug/syncz`)).json()) as Array<{ proxy: string; types?: Sync }>;
  const out: Record<string, Record<string, string | undefined>> = {};
  for (const c of [e.a, e.b]) {
    const types = rows.find((r) => r.proxy === c.nodeId)?.types ?? {};
    out[c === e.a ? 'A' : 'B'] = Object.fromEntries(Object.entries(types).map(([t, w]) => [t, w.sent_nonce]));
  }
  return out;
}

/** Every type of both clients sent and ACKed: nothing in flight. */
async function settled(e: Env): Promise<boolean> {
  const rows = (await (await fetch(`http://127.0.0.1:${e.meshd.debugPort}/debug/syncz`)).json()) as Array<{ proxy: string; types?: Sync }>;
  return [e.a, e.b].every((c) => {
    const types = Object.values(rows.find((r) => r.proxy === c.nodeId)?.types ?? {});
    return types.length === 4 && types.every((w) => w.status === 'SYNCED');
  });
}

before(async () => {
  env.backends = await startBackends(['reviews-v1', 'reviews-v2', 'reviews-v3', 'ratings-v1']);
  env.api = await startKubeApiServer({ resources: resourcesWithout('WorkloadEntry') });
  const kc = loadKubeConfig({ kubeconfig: env.api.kubeconfigPath });
  env.objects = KubernetesObjectApi.makeApiClient(kc);
  const core = kc.makeApiClient(CoreV1Api);
  const create = (o: object): Promise<KubernetesObject> => (env.objects as KubernetesObjectApi).create(o as KubernetesObject);
  for (const name of ['reviews', 'ratings']) await create(service(name));
  const pods: Array<[string, string, number]> = [
    ...VERSIONS.map((v): [string, string, number] => ['reviews', v, env.backends?.get(`reviews-${v}`).port ?? 0]),
    ['ratings', 'v1', env.backends.get('ratings-v1').port],
  ];
  for (const [app, version, port] of pods) {
    await create(pod(app, version));
    // The kubelet's part: the Pod's IP, through the status subresource (POST drops status).
    const p = await core.readNamespacedPod({ name: `${app}-${version}`, namespace: NS });
    p.status = { phase: 'Running', podIP: '127.0.0.1', podIPs: [{ ip: '127.0.0.1' }] };
    await core.replaceNamespacedPodStatus({ name: `${app}-${version}`, namespace: NS, body: p });
    await create(slice(app, version, port));
  }
  await create({
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'reviews', namespace: NS },
    spec: { host: 'reviews', subsets: VERSIONS.map((v) => ({ name: v, labels: { version: v } })) },
  });
  await create({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews', namespace: NS }, spec: { hosts: ['reviews'], http: route('v1') } });
  env.logs = captureLog('info');
});

after(async () => {
  await closeInOrder([...clients.map((c) => () => c.close()), () => env.meshd?.close(), () => env.api?.close(), () => env.backends?.close()]);
});

describe('meshd --kubeconfig against the fake API server', { timeout: 120_000 }, () => {
  test('/ready stays 503 until every kind is listed; then clients route by the API objects', T, async () => {
    const api = env.api as KubeApiServer;
    await api.stop();
    env.meshd = await startMeshd({
      kubeconfig: api.kubeconfigPath,
      xdsPort: 0,
      debugPort: 0,
      monitoringPort: 0,
      logger: (env.logs as LogCapture).log,
      kube: { backoffInitialMs: 20, backoffMaxMs: 200, missingRetryMs: 100 },
    });
    const readyz = async (): Promise<number> => (await fetch(`http://127.0.0.1:${env.meshd?.debugPort}/ready`)).status;
    assert.equal(await readyz(), 503, 'not ready while the API server is unreachable');
    assert.equal(env.meshd.snapshot(), undefined);
    await api.start();
    await env.meshd.whenReady();
    assert.equal(await readyz(), 200);
    env.a = await startGrpcJsXdsClient({ xdsPort: env.meshd.xdsPort, podName: 'client-a' });
    clients.push(env.a);
    env.b = await startGrpcJsXdsClient({ xdsPort: env.meshd.xdsPort, podName: 'client-b', target: `xds:///ratings.${NS}.svc.cluster.local:${PORT}` });
    clients.push(env.b);
    const e = ready();
    await runUntil(e.a, { calls: 10, waitForReady: true, deadlineMs: 2000 }, only('reviews-v1'), { timeoutMs: CONVERGE_MS, what: 'A routed to reviews-v1' });
    await runUntil(e.b, { calls: 10, waitForReady: true, deadlineMs: 2000 }, only('ratings-v1'), { timeoutMs: CONVERGE_MS, what: 'B routed to ratings-v1' });
    e.backends.resetAll();
    const r = await e.a.run({ calls: 50 });
    assert.deepEqual(r.counts, { 'reviews-v1': 50 });
    assert.equal(e.backends.get('reviews-v1').calls, 50, "the backend's own count");
  });

  test('a VirtualService update through the API moves traffic to v3 on the same channel', T, async () => {
    const e = ready();
    const custom = loadKubeConfig({ kubeconfig: e.api.kubeconfigPath }).makeApiClient(CustomObjectsApi);
    await custom.patchNamespacedCustomObject(
      { group: 'networking.istio.io', version: 'v1', namespace: NS, plural: 'virtualservices', name: 'reviews', body: { spec: { http: route('v3') } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await runUntil(e.a, { calls: 20 }, only('reviews-v3'), { timeoutMs: CONVERGE_MS, what: 'traffic moved to reviews-v3' });
    e.backends.resetAll();
    assert.deepEqual((await e.a.run({ calls: 50 })).counts, { 'reviews-v3': 50 });
    assert.equal(e.backends.get('reviews-v3').calls, 50);
    assert.equal(await e.a.state(), 'READY');
  });

  test('status-only and annotation-only writes: no rebuild, no push', T, async () => {
    const e = ready();
    // The Gateway API controller creates GatewayClass `istio` once this replica leads: a real
    // change, which must have landed before the writes that must change nothing.
    await waitFor(() => (e.meshd.snapshot()?.counts['GatewayClass'] ?? 0) > 0 || undefined, 'GatewayClass istio created and read');
    await waitFor(() => settled(e), 'both clients in sync');
    const version = e.meshd.snapshot()?.version;
    const lastPush = JSON.stringify((await getJson(e, '/debug/push_status'))['last_push']);
    const before = await pushes(e);
    const rv0 = Number(e.api.store.resourceVersion());
    const status = { conditions: [{ type: 'Reconciled', status: 'True', lastTransitionTime: new Date().toISOString() }], observedGeneration: 2 };
    e.api.store.patch('networking.istio.io/v1', 'VirtualService', NS, 'reviews', { status }, 'merge', 'status');
    e.api.store.patch('networking.istio.io/v1', 'DestinationRule', NS, 'reviews', { metadata: { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' } } });
    e.api.store.patch('v1', 'Pod', NS, 'reviews-v3', { status: { conditions: [{ type: 'Ready', status: 'True', lastProbeTime: new Date().toISOString() }] } }, 'merge', 'status');
    e.api.store.patch('v1', 'Service', NS, 'reviews', { status: { loadBalancer: { ingress: [{ ip: '203.0.113.9' }] } } }, 'merge', 'status');
    e.api.store.patch('discovery.k8s.io/v1', 'EndpointSlice', NS, 'reviews-v3', {
      metadata: { annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': new Date().toISOString() } },
    });
    assert.equal(Number(e.api.store.resourceVersion()), rv0 + 5, 'five real writes');
    // meshd's informers have seen all five; then give the 100 ms debounce ample time to act, were it triggered.
    await caughtUp(e.api, e.meshd.source as KubeSource);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(e.meshd.snapshot()?.version, version, 'the snapshot was not rebuilt');
    assert.equal(JSON.stringify((await getJson(e, '/debug/push_status'))['last_push']), lastPush, 'no push');
    assert.deepEqual(await pushes(e), before, 'pilot_xds_pushes unchanged');

    // The same measures do see a write that matters: an annotation meshd reads rebuilds and pushes.
    e.api.store.patch('v1', 'Service', NS, 'reviews', { metadata: { annotations: { 'networking.istio.io/exportTo': '*' } } });
    await waitFor(() => e.meshd.snapshot()?.version !== version, 'a rebuild for the exportTo annotation');
    await waitFor(async () => JSON.stringify((await getJson(e, '/debug/push_status'))['last_push']) !== lastPush, 'a push');
  });

  test('an endpoint-only change pushes EDS alone, and only to the client whose clusters changed', T, async () => {
    const e = ready();
    await waitFor(() => settled(e), 'both clients in sync');
    const nonces = await sentNonces(e);
    const before = await pushes(e);
    // Point the v3 EndpointSlice at reviews-v2's port: calls routed to subset v3 now land on reviews-v2.
    e.api.store.patch('discovery.k8s.io/v1', 'EndpointSlice', NS, 'reviews-v3', { ports: [{ name: 'grpc', port: e.backends.get('reviews-v2').port, protocol: 'TCP' }] });
    await runUntil(e.a, { calls: 20 }, only('reviews-v2'), { timeoutMs: CONVERGE_MS, what: 'v3 cluster endpoints moved to the reviews-v2 backend' });
    await waitFor(() => settled(e), 'both clients in sync again');
    const after = await sentNonces(e);
    const now = await pushes(e);
    assert.ok((now['eds'] ?? 0) > (before['eds'] ?? 0), 'EDS was pushed');
    assert.deepEqual({ cds: now['cds'], lds: now['lds'], rds: now['rds'] }, { cds: before['cds'], lds: before['lds'], rds: before['rds'] }, 'no CDS, LDS or RDS push');
    assert.deepEqual(Object.keys(nonces['A'] ?? {}).sort(), ['CDS', 'EDS', 'LDS', 'RDS']);
    assert.notEqual(after['A']?.['EDS'], nonces['A']?.['EDS'], 'A got new endpoints');
    assert.deepEqual({ ...after['A'], EDS: undefined }, { ...nonces['A'], EDS: undefined }, 'A got nothing else');
    assert.deepEqual(after['B'], nonces['B'], 'B (ratings) got nothing');
    e.backends.resetAll();
    assert.deepEqual((await e.a.run({ calls: 30 })).counts, { 'reviews-v2': 30 });
    assert.equal(e.backends.get('reviews-v2').calls, 30);
  });

  test('a CRD that is not installed: one /debug/configz entry, logged once across rebuilds', T, async () => {
    const e = ready();
    const configz = await getJson(e, '/debug/configz');
    const errors = (configz['errors'] as Array<{ source: string }>).filter((x) => x.source === 'kubernetes:WorkloadEntry');
    assert.equal(errors.length, 1, JSON.stringify(configz['errors']));
    assert.ok(Number(e.meshd.snapshot()?.version.split('-')[0]) >= 3, 'several rebuilds happened');
    const logged = e.logs.records().filter((r) => String(r['msg']).includes('config left out: kubernetes:WorkloadEntry'));
    assert.equal(logged.length, 1);
  });
});

describe('the meshd command line', { timeout: 60_000 }, () => {
  const ROOT = path.join(__dirname, '..');
  const MAIN = path.join(ROOT, 'src', 'main.ts');

  test('--kubeconfig serves the API server it names; /ready turns 200', T, async () => {
    const api = ready().api;
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--kubeconfig', api.kubeconfigPath, ...portArgs({ webhook: true, secureXds: true }), '--log-level', 'warn'], {
      cwd: ROOT,
    });
    try {
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      const m = await waitFor(() => /debug http:\/\/127\.0\.0\.1:(\d+)\/debug/.exec(out), 'the listening line', 20_000);
      await waitFor(async () => (await fetch(`http://127.0.0.1:${m[1]}/ready`)).status === 200, '/ready 200');
      const vs = (await (await fetch(`http://127.0.0.1:${m[1]}/debug/configz`)).json()) as { virtual_services: Array<{ name: string }> };
      assert.deepEqual(
        vs.virtual_services.map((v) => v.name),
        ['reviews'],
      );
    } finally {
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    }
  });

  test('--config-dir and --kubeconfig together are refused', T, () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, '--config-dir', 'examples/bookinfo', '--kubeconfig', ready().api.kubeconfigPath], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /exclusive/);
  });
});
