/**
 * The Gateway API controller against the fake Kubernetes API server over HTTP: GatewayClass
 * `istio` created and Accepted, automated deployment (created, updated, left alone for a manual
 * address, garbage-collected with the Gateway), and status written as the spec says (conditions,
 * observedGeneration, kept lastTransitionTime), only when it changed, retried on conflict, never
 * for another controller's objects.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { GatewayController, type GatewayControllerOptions } from '../src/gatewayapi/controller';
import { type Json, kubeRest } from '../src/gatewayapi/kube-rest';
import { ISTIO_GATEWAY_CONTROLLER } from '../src/gatewayapi/names';
import { standInStatusSource } from '../src/gatewayapi/standin';
import type { GatewayApiStatus, GatewayApiStatusSource } from '../src/gatewayapi/status-types';
import { resolveInjectionOptions } from '../src/inject/options';
import type { ConfigObject } from '../src/model/objects';
import { KUBE_KINDS, toConfigObject } from '../src/sources/kube-kinds';
import { type KubeApiServer, startKubeApiServer } from './helpers/kube-api-server';

const GW_API = 'gateway.networking.k8s.io/v1';
const log = pino({ level: 'silent' });
let api: KubeApiServer;
let kc: KubeConfig;

before(async () => {
  api = await startKubeApiServer();
  api.install({ group: 'gateway.networking.k8s.io', versions: ['v1'], resource: 'httproutes', kind: 'HTTPRoute', namespaced: true, crd: true, status: true });
  kc = new KubeConfig();
  kc.loadFromString(api.kubeconfig);
});

after(async () => {
  await api.close();
});

beforeEach(() => {
  for (const kind of ['Gateway', 'GatewayClass', 'HTTPRoute']) for (const o of api.store.list(GW_API, kind)) del(kind, o);
  for (const [v, kind] of [
    ['apps/v1', 'Deployment'],
    ['v1', 'Service'],
    ['v1', 'ServiceAccount'],
  ] as const) {
    for (const o of api.store.list(v, kind)) del(kind, o, v);
  }
  api.clearRequests();
});

function del(kind: string, o: Json, v = GW_API): void {
  const m = o['metadata'] as Json;
  api.store.delete(v, kind, String(m['namespace'] ?? ''), String(m['name']));
}

/** meshd's config view of what the API server holds (the kinds the controller reads). */
function configObjects(): ConfigObject[] {
  const out: ConfigObject[] = [];
  for (const k of KUBE_KINDS.filter((x) => ['KubernetesGateway', 'GatewayClass', 'Service'].includes(x.kind))) {
    const apiVersion = k.group === '' ? 'v1' : `${k.group}/v1`;
    const kind = k.kind === 'KubernetesGateway' ? 'Gateway' : k.kind;
    for (const raw of api.store.list(apiVersion, kind)) {
      const r = toConfigObject(k, 'v1', raw);
      if (r.object) out.push(r.object);
    }
  }
  return out;
}

function controller(o: Partial<GatewayControllerOptions> = {}): GatewayController {
  return new GatewayController({
    kubeConfig: kc,
    log,
    statuses: standInStatusSource(configObjects),
    objects: configObjects,
    injection: () => resolveInjectionOptions({ image: 'example.com/meshd/proxyv2:1.24.0', trustDomain: 'cluster.local' }),
    ...o,
  });
}

const round = (c: GatewayController): ReturnType<GatewayController['round']> => c.round(kubeRest(kc));

function gateway(name: string, listeners: Json[], extra: Json = {}, metadata: Json = {}): Json {
  return { apiVersion: GW_API, kind: 'Gateway', metadata: { name, namespace: 'default', ...metadata }, spec: { gatewayClassName: 'istio', listeners, ...extra } };
}

const HTTP80 = { name: 'http', port: 80, protocol: 'HTTP' };
const get = (v: string, kind: string, name: string, ns = 'default'): Json | undefined => api.store.get(v, kind, ns, name);
const statusWrites = (): number => api.requests.filter((r) => (r.method === 'PUT' || r.method === 'PATCH') && r.path.endsWith('/status')).length;
const conditions = (o: Json | undefined): Json[] => ((o?.['status'] as Json | undefined)?.['conditions'] ?? []) as Json[];
const cond = (o: Json | undefined, type: string): Json | undefined => conditions(o).find((c) => c['type'] === type);

test("GatewayClass istio is created when absent, then marked Accepted with observedGeneration; another controller's class is not touched", async () => {
  api.store.create({ apiVersion: GW_API, kind: 'GatewayClass', metadata: { name: 'other' }, spec: { controllerName: 'example.com/other' } });
  const c = controller();
  const first = await round(c);
  assert.equal(first.classCreated, true);
  const cls = get(GW_API, 'GatewayClass', 'istio', '');
  assert.equal((cls?.['spec'] as Json)['controllerName'], ISTIO_GATEWAY_CONTROLLER);
  // The class reaches the config view; the next round writes its status.
  await round(c);
  const accepted = cond(get(GW_API, 'GatewayClass', 'istio', ''), 'Accepted');
  assert.deepEqual(
    { ...accepted, lastTransitionTime: undefined },
    {
      type: 'Accepted',
      status: 'True',
      observedGeneration: 1,
      lastTransitionTime: undefined,
      reason: 'Accepted',
      message: 'Handled by Istio controller',
    },
  );
  assert.match(String(accepted?.['lastTransitionTime']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(get(GW_API, 'GatewayClass', 'other', '')?.['status'], undefined);
  assert.equal((await round(c)).classCreated, false, 'created once');
});

test("automated deployment: ServiceAccount, Deployment and Service <gateway>-istio with istiod's labels, owned by the Gateway", async () => {
  const c = controller();
  await round(c);
  const gw = api.store.create(gateway('web', [HTTP80], {}, { labels: { team: 'a' } }));
  api.store.create({ apiVersion: GW_API, kind: 'Gateway', metadata: { name: 'theirs', namespace: 'default' }, spec: { gatewayClassName: 'other', listeners: [HTTP80] } });
  api.store.create({ ...gateway('canary', [HTTP80], {}, { labels: { 'istio.io/rev': 'canary' } }) });
  const uid = (gw['metadata'] as Json)['uid'];
  const r = await round(c);
  // Another class's Gateway, and one for another revision, get nothing.
  assert.equal(get('apps/v1', 'Deployment', 'theirs-istio'), undefined);
  assert.equal(get('apps/v1', 'Deployment', 'canary-istio'), undefined);
  assert.deepEqual(r.applied.sort(), ['Deployment default/web-istio', 'Service default/web-istio', 'ServiceAccount default/web-istio']);
  const owner = [{ apiVersion: GW_API, kind: 'Gateway', name: 'web', uid }];
  const sa = get('v1', 'ServiceAccount', 'web-istio');
  const dep = get('apps/v1', 'Deployment', 'web-istio');
  const svc = get('v1', 'Service', 'web-istio');
  for (const o of [sa, dep, svc]) {
    const m = o?.['metadata'] as Json;
    assert.deepEqual(m['ownerReferences'], owner);
    assert.equal((m['labels'] as Json)['gateway.networking.k8s.io/gateway-name'], 'web');
    assert.equal((m['labels'] as Json)['gateway.networking.k8s.io/gateway-class-name'], 'istio');
    // Without spec.infrastructure, the Gateway's own labels are the infrastructure's (istiod's fallback).
    assert.equal((m['labels'] as Json)['team'], 'a');
  }
  const tpl = (dep?.['spec'] as Json)['template'] as Json;
  const podLabels = (tpl['metadata'] as Json)['labels'] as Json;
  assert.equal(podLabels['sidecar.istio.io/inject'], 'false');
  assert.equal(podLabels['istio.io/gateway-name'], 'web');
  assert.equal(podLabels['gateway.istio.io/managed'], 'istio.io-gateway-controller');
  assert.equal(podLabels['istio.io/rev'], 'default');
  assert.deepEqual((dep?.['spec'] as Json)['selector'], { matchLabels: { 'gateway.networking.k8s.io/gateway-name': 'web' } });
  const pod = tpl['spec'] as Json;
  assert.equal(pod['serviceAccountName'], 'web-istio');
  const proxy = (pod['containers'] as Json[])[0] as Json;
  assert.equal(proxy['name'], 'istio-proxy');
  assert.equal(proxy['image'], 'example.com/meshd/proxyv2:1.24.0');
  assert.deepEqual((proxy['args'] as string[]).slice(0, 2), ['proxy', 'router']);
  const env = new Map((proxy['env'] as Json[]).map((e) => [e['name'], e['value']]));
  assert.equal(env.get('ISTIO_META_WORKLOAD_NAME'), 'web-istio');
  assert.equal(env.get('ISTIO_META_OWNER'), 'kubernetes://apis/apps/v1/namespaces/default/deployments/web-istio');
  assert.equal(env.get('CA_ADDR'), 'istiod.istio-system.svc:15012');
  assert.ok((pod['volumes'] as Json[]).some((v) => v['name'] === 'istio-token'));
  const spec = svc?.['spec'] as Json;
  assert.equal(spec['type'], 'LoadBalancer');
  assert.deepEqual(spec['selector'], { 'gateway.networking.k8s.io/gateway-name': 'web' });
  assert.deepEqual(
    (spec['ports'] as Json[]).map((p) => [p['name'], p['port'], p['appProtocol']]),
    [
      ['status-port', 15021, 'tcp'],
      ['http', 80, 'http'],
    ],
  );
  // Applied server-side under istiod's field manager.
  const applies = api.requests.filter((q) => q.method === 'PATCH' && !q.path.endsWith('/status'));
  assert.equal(applies.length, 3);
  for (const q of applies) assert.equal(q.query['fieldManager'], 'istio.io/gateway-controller');
  // Nothing changed: nothing applied again.
  api.clearRequests();
  assert.deepEqual((await round(c)).applied, []);
  assert.equal(api.requests.filter((q) => q.method === 'PATCH' && !q.path.endsWith('/status')).length, 0);
});

test('a listener added to the Gateway adds its port to the Service; spec.infrastructure and the service-type annotation are honoured', async () => {
  const c = controller();
  await round(c);
  api.store.create(gateway('web', [HTTP80], { infrastructure: { labels: { tier: 'edge' }, annotations: { 'networking.istio.io/service-type': 'ClusterIP', note: 'x' } } }));
  await round(c);
  const gw = get(GW_API, 'Gateway', 'web') as Json;
  api.store.update({ ...gw, spec: { ...(gw['spec'] as Json), listeners: [HTTP80, { name: 'https', port: 443, protocol: 'HTTPS', tls: { mode: 'Terminate' } }] } });
  const r = await round(c);
  assert.deepEqual(r.applied, ['Service default/web-istio'], 'only the Service changed');
  const svc = get('v1', 'Service', 'web-istio') as Json;
  assert.deepEqual(
    ((svc['spec'] as Json)['ports'] as Json[]).map((p) => p['port']),
    [15021, 80, 443],
  );
  assert.equal((svc['spec'] as Json)['type'], 'ClusterIP');
  const m = svc['metadata'] as Json;
  assert.equal((m['labels'] as Json)['tier'], 'edge');
  assert.equal((m['annotations'] as Json)['note'], 'x');
});

test('a Gateway with a manual address (Hostname) is left alone; deleting a Gateway garbage-collects what was deployed for it', async () => {
  const c = controller();
  await round(c);
  api.store.create(gateway('manual', [HTTP80], { addresses: [{ type: 'Hostname', value: 'my-gw.default.svc.cluster.local' }] }));
  api.store.create(gateway('auto', [HTTP80]));
  const r = await round(c);
  assert.ok(
    r.applied.every((a) => a.endsWith('/auto-istio')),
    r.applied.join(', '),
  );
  assert.equal(get('apps/v1', 'Deployment', 'manual-istio'), undefined);
  assert.equal(get('v1', 'Service', 'manual-istio'), undefined);
  assert.ok(get('apps/v1', 'Deployment', 'auto-istio'));
  // Its status names the Service its address names, once that exists (istiod's messages).
  assert.deepEqual(
    [cond(get(GW_API, 'Gateway', 'manual'), 'Programmed')?.['reason'], cond(get(GW_API, 'Gateway', 'manual'), 'Programmed')?.['message']],
    ['AddressNotAssigned', 'Failed to assign to any requested addresses: hostname "my-gw.default.svc.cluster.local" not found'],
  );
  api.store.create({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'my-gw', namespace: 'default' },
    spec: {
      ports: [
        { name: 'http', port: 80 },
        { name: 'https', port: 443 },
      ],
    },
  });
  await round(c);
  const manual = get(GW_API, 'Gateway', 'manual');
  assert.equal(cond(manual, 'Programmed')?.['message'], 'Resource programmed, assigned to service(s) my-gw.default.svc.cluster.local:80 and my-gw.default.svc.cluster.local:443');
  assert.deepEqual((manual?.['status'] as Json)['addresses'], [{ type: 'Hostname', value: 'my-gw.default.svc.cluster.local' }]);
  assert.equal(get('apps/v1', 'Deployment', 'manual-istio'), undefined);
  api.store.delete(GW_API, 'Gateway', 'default', 'auto');
  assert.equal(get('apps/v1', 'Deployment', 'auto-istio'), undefined);
  assert.equal(get('v1', 'Service', 'auto-istio'), undefined);
  assert.equal(get('v1', 'ServiceAccount', 'auto-istio'), undefined);
  assert.deepEqual((await round(c)).applied, [], 'nothing recreated for a deleted Gateway');
});

test('Gateway status: Accepted and Programmed with the address and observedGeneration; not rewritten when unchanged; lastTransitionTime kept until a status flips', async () => {
  let now = new Date('2026-01-01T00:00:00Z');
  const c = controller({ now: () => now });
  await round(c);
  api.store.create(gateway('web', [HTTP80]));
  // Not deployed yet (a controller without automated deployment): no Service, Programmed is False.
  await round(controller({ now: () => now, deployments: false }));
  let gw = get(GW_API, 'Gateway', 'web');
  assert.equal(cond(gw, 'Accepted')?.['status'], 'True');
  assert.equal(cond(gw, 'Programmed')?.['status'], 'False');
  assert.equal(cond(gw, 'Programmed')?.['reason'], 'AddressNotAssigned');
  now = new Date('2026-01-01T00:01:00Z');
  await round(c);
  gw = get(GW_API, 'Gateway', 'web');
  assert.deepEqual((gw?.['status'] as Json)['addresses'], [{ type: 'Hostname', value: 'web-istio.default.svc.cluster.local' }]);
  assert.deepEqual(cond(gw, 'Programmed'), {
    type: 'Programmed',
    status: 'True',
    observedGeneration: 1,
    lastTransitionTime: '2026-01-01T00:01:00Z',
    reason: 'Programmed',
    message: 'Resource programmed, assigned to service(s) web-istio.default.svc.cluster.local:80',
  });
  assert.equal(cond(gw, 'Accepted')?.['lastTransitionTime'], '2026-01-01T00:00:00Z', 'Accepted did not change: its time is kept');
  // Nothing changed: no write.
  api.clearRequests();
  now = new Date('2026-01-01T00:02:00Z');
  const again = await round(c);
  assert.equal(statusWrites(), 0);
  assert.ok(again.unchanged >= 2);
  // A spec change (new generation): observedGeneration follows, transition times stay.
  const live = get(GW_API, 'Gateway', 'web') as Json;
  api.store.update({ ...live, spec: { ...(live['spec'] as Json), listeners: [{ ...HTTP80, hostname: 'a.example.com' }] } });
  now = new Date('2026-01-01T00:03:00Z');
  await round(c);
  gw = get(GW_API, 'Gateway', 'web');
  assert.equal((gw?.['metadata'] as Json)['generation'], 2);
  for (const t of ['Accepted', 'Programmed']) {
    assert.equal(cond(gw, t)?.['observedGeneration'], 2, t);
  }
  assert.equal(cond(gw, 'Accepted')?.['lastTransitionTime'], '2026-01-01T00:00:00Z');
  assert.equal(cond(gw, 'Programmed')?.['lastTransitionTime'], '2026-01-01T00:01:00Z');
  assert.equal(statusWrites(), 1, 'one write for one change');
});

test('status writes: retried on conflict; skipped for another class, for a stale generation, and for objects that are gone', async () => {
  let wanted: GatewayApiStatus[] = [];
  const source: GatewayApiStatusSource = () => wanted;
  const c = controller({ statuses: source, deployments: false });
  await round(c);
  api.store.create(gateway('mine', [HTTP80]));
  api.store.create({ apiVersion: GW_API, kind: 'Gateway', metadata: { name: 'theirs', namespace: 'default' }, spec: { gatewayClassName: 'other', listeners: [HTTP80] } });
  const accepted = { conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'ok' }] };
  const st = (name: string): GatewayApiStatus => ({ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'default', name, status: accepted });
  wanted = [st('mine'), st('theirs'), st('gone')];
  api.injectFailures({ status: 409, method: 'PUT', path: '/gateways/mine/status', count: 2 });
  const r = await round(c);
  assert.deepEqual(r.written, ['Gateway default/mine']);
  assert.deepEqual(r.skipped.sort(), ['Gateway default/gone: gone', 'Gateway default/theirs: another class']);
  assert.equal(cond(get(GW_API, 'Gateway', 'mine'), 'Accepted')?.['message'], 'ok');
  assert.equal(get(GW_API, 'Gateway', 'theirs')?.['status'], undefined);
  // The view is behind the API server (generation 1 computed, 2 live): wait for the newer config.
  const stale = controller({
    statuses: source,
    deployments: false,
    objects: () => configObjects().map((o) => (o.metadata.name === 'mine' ? { ...o, metadata: { ...o.metadata, generation: 1 } } : o)),
  });
  const live = get(GW_API, 'Gateway', 'mine') as Json;
  api.store.update({ ...live, spec: { ...(live['spec'] as Json), listeners: [{ ...HTTP80, port: 8080 }] } });
  wanted = [{ ...st('mine'), status: { conditions: [{ type: 'Accepted', status: 'False', reason: 'Invalid', message: 'no' }] } }];
  assert.deepEqual((await round(stale)).skipped, ['Gateway default/mine: stale']);
  assert.equal(cond(get(GW_API, 'Gateway', 'mine'), 'Accepted')?.['status'], 'True');
});

test("route status: this controller's parents replaced, other controllers' parents kept", async () => {
  const other = {
    parentRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'foreign' },
    controllerName: 'example.com/other',
    conditions: [{ type: 'Accepted', status: 'True', observedGeneration: 1, lastTransitionTime: '2025-01-01T00:00:00Z', reason: 'Accepted', message: 'theirs' }],
  };
  api.store.create({
    apiVersion: GW_API,
    kind: 'HTTPRoute',
    metadata: { name: 'r', namespace: 'default' },
    spec: { parentRefs: [{ name: 'web' }, { name: 'foreign' }] },
    status: { parents: [other] },
  });
  const mineRef = { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'web' };
  const wanted: GatewayApiStatus = {
    group: 'gateway.networking.k8s.io',
    kind: 'HTTPRoute',
    namespace: 'default',
    name: 'r',
    status: {
      parents: [
        {
          parentRef: mineRef,
          controllerName: ISTIO_GATEWAY_CONTROLLER,
          conditions: [
            { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Route was valid' },
            { type: 'ResolvedRefs', status: 'False', reason: 'BackendNotFound', message: 'backend(nope.default.svc.cluster.local) not found' },
          ],
        },
      ],
    },
  };
  const c = controller({ statuses: () => [wanted], deployments: false });
  const r = await round(c);
  assert.deepEqual(
    r.written.filter((w) => w.startsWith('HTTPRoute')),
    ['HTTPRoute default/r'],
  );
  const parents = ((get(GW_API, 'HTTPRoute', 'r')?.['status'] as Json)['parents'] ?? []) as Json[];
  assert.deepEqual(parents[0], other);
  assert.equal(parents.length, 2);
  assert.deepEqual(parents[1]?.['parentRef'], mineRef);
  assert.deepEqual(
    (parents[1]?.['conditions'] as Json[]).map((x) => [x['type'], x['status'], x['reason'], x['observedGeneration']]),
    [
      ['Accepted', 'True', 'Accepted', 1],
      ['ResolvedRefs', 'False', 'BackendNotFound', 1],
    ],
  );
  api.clearRequests();
  await round(c);
  assert.equal(statusWrites(), 0, 'unchanged: not written again');
});
