/**
 * The Kubernetes source: real @kubernetes/client-node informers against the fake API server
 * (test/helpers/kube-api-server.ts), which speaks the real list/watch protocol.
 *
 * After each scenario the source's model must equal the model a brand-new source builds from
 * a fresh LIST of the same server (same snapshot content hash, objects and errors). The
 * "caught up" barrier sends BOOKMARKs with the server's resourceVersion, so the comparison
 * happens only once the long-lived source has applied everything before it.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { loadText } from '../src/sources/file-source';
import { loadKubeConfig } from '../src/sources/kube-http';
import { KUBE_KINDS } from '../src/sources/kube-kinds';
import { DEFAULT_RESOURCES, startKubeApiServer, type ApiResource, type KubeApiServer, type KubeApiServerOptions } from './helpers/kube-api-server';
import { SHOP, caughtUp, freshModel, kubeSource, modelOf, originOfObject, shopObjects, waitFor, type SourceUnderTest } from './helpers/kube-testing';

const T = { timeout: 30_000 };
/** Kinds watched: one watch for each kind the source registers. */
const KINDS = KUBE_KINDS.length;
/** Objects of the fixture the model keeps (shopObjects). */
const OBJECTS = 22;

async function setup(t: TestContext, opts: KubeApiServerOptions = {}, objects = shopObjects()): Promise<{ api: KubeApiServer; s: SourceUnderTest }> {
  const api = await startKubeApiServer(opts);
  for (const o of objects) api.store.create(o);
  const s = kubeSource(api);
  t.after(async () => {
    await s.src.close();
    await api.close();
  });
  await s.src.load();
  return { api, s };
}

function bodyOf(s: SourceUnderTest, origin: string): Record<string, unknown> | undefined {
  return s.src.state().objects.find((o) => o.origin.source === origin)?.body as Record<string, unknown> | undefined;
}

async function assertMatchesFreshList(api: KubeApiServer, s: SourceUnderTest): Promise<void> {
  await caughtUp(api, s.src);
  const mine = modelOf(s.src.state());
  assert.equal(new Set(mine.objects).size, mine.objects.length, `no object twice: ${mine.objects.join(', ')}`);
  assert.deepEqual(mine, await freshModel(api), 'the model equals the one a fresh list builds');
}

/** LIST requests (not watches) since the request log was cleared, by path. */
function lists(api: KubeApiServer): string[] {
  return api.requests.filter((r) => r.method === 'GET' && !r.watch && r.query['limit'] !== undefined).map((r) => r.path);
}

test('initial list: every kind becomes the ConfigObject the folder source makes of the same YAML', T, async (t) => {
  const bad = [
    { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'bad', namespace: SHOP }, spec: { hosts: [] } },
    { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'dup', namespace: SHOP }, spec: { host: 'web', subsets: [{ name: 'v1' }, { name: 'v1' }] } },
  ];
  const { api, s } = await setup(t, {}, [...shopObjects(), ...bad]);
  assert.equal(s.src.synced(), true);
  assert.deepEqual(s.changes, [], 'nothing is a change before the initial lists are done');
  const state = s.src.state();
  assert.equal(state.objects.length, OBJECTS);
  for (const obj of shopObjects()) {
    const kube = state.objects.find((o) => o.origin.source === originOfObject(obj));
    assert.ok(kube, `${originOfObject(obj)} is in the state`);
    const file = loadText(JSON.stringify(obj), 'file.json').objects[0];
    assert.ok(file);
    const fileBody = structuredClone(file.body) as Record<string, Record<string, unknown>>;
    // A Pod keeps only the status fields meshd reads: IPs and phase.
    if (obj['kind'] === 'Pod') delete fileBody['status']?.['conditions'];
    // The Gateway API kinds keep metadata.generation (the API server's): their status carries it.
    // ... and metadata.creationTimestamp (the older object wins a conflict).
    const generation = String(obj['apiVersion']).startsWith('gateway.networking.k8s.io/') ? { generation: 1, creationTimestamp: kube.metadata.creationTimestamp } : {};
    if (fileBody['metadata']) fileBody['metadata'] = { ...fileBody['metadata'], ...generation };
    assert.deepEqual(
      { kind: kube.kind, apiVersion: kube.apiVersion, metadata: kube.metadata, body: kube.body },
      { kind: file.kind, apiVersion: file.apiVersion, metadata: { ...file.metadata, ...generation }, body: fileBody },
      obj['kind'] as string,
    );
  }
  for (const obj of bad) {
    const fromFile = loadText(JSON.stringify(obj), 'file.json').errors[0];
    const fromKube = state.errors.find((e) => e.source === originOfObject(obj));
    assert.ok(fromFile && fromKube, `${originOfObject(obj)} is reported`);
    assert.deepEqual({ ...fromKube, source: '' }, { ...fromFile, source: '', document: undefined }, 'reported exactly as the folder source reports it');
  }
  await assertMatchesFreshList(api, s);
});

test('create, update and delete of every kind through the API reach the source', T, async (t) => {
  const { api, s } = await setup(t, {}, []);
  const client = KubernetesObjectApi.makeApiClient(loadKubeConfig({ kubeconfig: api.kubeconfigPath }));
  for (const obj of shopObjects()) {
    const origin = originOfObject(obj);
    await client.create(obj as KubernetesObject);
    await waitFor(() => bodyOf(s, origin), `${origin} created`);
    const m = obj['metadata'] as { name: string; namespace?: string };
    await client.patch(
      { apiVersion: obj['apiVersion'], kind: obj['kind'], metadata: { name: m.name, namespace: m.namespace, labels: { touched: 'yes' } } } as KubernetesObject,
      undefined,
      undefined,
      undefined,
      undefined,
      PatchStrategy.MergePatch,
    );
    await waitFor(() => (bodyOf(s, origin)?.['metadata'] as { labels?: Record<string, string> })?.labels?.['touched'] === 'yes', `${origin} updated`);
  }
  assert.equal(s.src.state().objects.length, OBJECTS);
  await assertMatchesFreshList(api, s);
  for (const obj of shopObjects().reverse()) {
    await client.delete(obj as KubernetesObject);
    await waitFor(() => bodyOf(s, originOfObject(obj)) === undefined, `${originOfObject(obj)} deleted`);
  }
  assert.deepEqual(s.src.state(), { objects: [], errors: [] });
  for (const obj of shopObjects()) assert.equal(s.changes.filter((c) => c === originOfObject(obj)).length, 3, `create, update, delete of ${obj['kind']}`);
  await assertMatchesFreshList(api, s);
});

test('status, managedFields, resourceVersion and most annotations leave the model unchanged', T, async (t) => {
  const { api, s } = await setup(t);
  await caughtUp(api, s.src);
  const before = modelOf(s.src.state());
  const rv0 = Number(api.store.resourceVersion());
  const cond = { conditions: [{ type: 'Reconciled', status: 'True', lastTransitionTime: new Date().toISOString() }], observedGeneration: 1 };
  api.store.patch('networking.istio.io/v1', 'VirtualService', SHOP, 'web', { status: cond }, 'merge', 'status');
  api.store.patch('networking.istio.io/v1', 'ServiceEntry', SHOP, 'ext', { status: cond }, 'merge', 'status');
  api.store.patch('networking.istio.io/v1', 'DestinationRule', SHOP, 'web', { metadata: { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' } } });
  api.store.patch('networking.istio.io/v1', 'WorkloadEntry', SHOP, 'vm1', { metadata: { annotations: { note: 'x' } } });
  api.store.patch('networking.istio.io/v1', 'Gateway', SHOP, 'gw', { metadata: { annotations: { note: 'y' }, finalizers: ['example.com/keep'] } });
  api.store.patch('discovery.k8s.io/v1', 'EndpointSlice', SHOP, 'web-abc', {
    metadata: { annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': new Date().toISOString() } },
  });
  api.store.patch('v1', 'Pod', SHOP, 'web-0', { status: { conditions: [{ type: 'Ready', status: 'False' }], startTime: new Date().toISOString() } }, 'merge', 'status');
  api.store.patch('v1', 'Service', SHOP, 'web', { status: { loadBalancer: { ingress: [{ ip: '203.0.113.7' }] } } }, 'merge', 'status');
  api.store.patch('v1', 'Namespace', '', SHOP, { status: { phase: 'Active' } }, 'merge', 'status');
  assert.equal(Number(api.store.resourceVersion()), rv0 + 9, 'every write was a real write with its own resourceVersion');
  await caughtUp(api, s.src);
  assert.deepEqual(s.changes, [], 'no change event');
  assert.deepEqual(modelOf(s.src.state()), before, 'same model, same content hash');

  // The same path does report writes that matter: an exportTo annotation on a Service, a Pod's IP.
  api.store.patch('v1', 'Service', SHOP, 'web', { metadata: { annotations: { 'networking.istio.io/exportTo': '.' } } });
  api.store.patch('v1', 'Pod', SHOP, 'web-0', { status: { podIP: '10.1.0.6', podIPs: [{ ip: '10.1.0.6' }] } }, 'merge', 'status');
  await caughtUp(api, s.src);
  assert.deepEqual(s.changes.sort(), ['kubernetes:Pod/shop/web-0', 'kubernetes:Service/shop/web']);
  assert.notEqual(modelOf(s.src.state()).hash, before.hash);
  await assertMatchesFreshList(api, s);
});

test('a watch cut mid-stream resumes from its resourceVersion, without a relist', T, async (t) => {
  const { api, s } = await setup(t);
  await caughtUp(api, s.src);
  api.clearRequests();
  assert.equal(api.dropWatches(), KINDS, 'every kind had a watch open');
  api.store.create({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'late', namespace: SHOP },
    spec: { hosts: ['late'], http: [{ route: [{ destination: { host: 'web' } }] }] },
  });
  api.store.delete('networking.istio.io/v1', 'WorkloadEntry', SHOP, 'vm1');
  await waitFor(() => bodyOf(s, 'kubernetes:VirtualService/shop/late') && !bodyOf(s, 'kubernetes:WorkloadEntry/shop/vm1'), 'changes made during the reconnect');
  await caughtUp(api, s.src);
  assert.deepEqual(lists(api), [], 'no LIST after the cut');
  const resumed = api.requests.filter((r) => r.watch);
  assert.ok(resumed.length >= KINDS);
  for (const r of resumed) assert.match(r.query['resourceVersion'] ?? '', /^[1-9]\d*$/, `${r.path} resumed from a resourceVersion`);
  await assertMatchesFreshList(api, s);
});

/** Changes made while the source cannot see them: a delete only a relist can reveal, an update, a create. */
function changeBehindItsBack(api: KubeApiServer): void {
  api.store.delete('networking.istio.io/v1', 'WorkloadEntry', SHOP, 'vm1');
  api.store.patch('networking.istio.io/v1', 'VirtualService', SHOP, 'web', { spec: { http: [{ route: [{ destination: { host: 'web', subset: 'v1' } }], timeout: '3s' }] } });
  api.store.create({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'new', namespace: SHOP }, spec: { host: 'new' } });
}

async function assertRelistedCorrectly(api: KubeApiServer, s: SourceUnderTest): Promise<void> {
  await waitFor(() => bodyOf(s, 'kubernetes:DestinationRule/shop/new') && !bodyOf(s, 'kubernetes:WorkloadEntry/shop/vm1'), 'the relist');
  await caughtUp(api, s.src);
  // Exactly one LIST per kind: the source relisted every kind once (before the fresh source lists too).
  assert.deepEqual([...lists(api)].sort(), [...new Set(lists(api))].sort(), `one relist per kind: ${lists(api).join(', ')}`);
  assert.equal(lists(api).length, KINDS, `every kind relisted: ${lists(api).join(', ')}`);
  const vs = bodyOf(s, 'kubernetes:VirtualService/shop/web') as { spec: { http: Array<{ timeout?: string }> } };
  assert.equal(vs.spec.http[0]?.timeout, '3s');
  await assertMatchesFreshList(api, s);
}

test('410 Gone inside the watch stream: relist; nothing lost, nothing twice', T, async (t) => {
  const { api, s } = await setup(t);
  await caughtUp(api, s.src);
  await api.stop();
  changeBehindItsBack(api);
  api.expireResourceVersions();
  api.clearRequests();
  await api.start();
  await assertRelistedCorrectly(api, s);
  const expired = api.requests.filter((r) => r.watch && r.query['resourceVersion'] !== undefined && Number(r.query['resourceVersion']) < Number(api.store.resourceVersion()) - 3);
  assert.ok(expired.length >= KINDS, 'watches first tried their old resourceVersions');
});

test('410 Gone as the HTTP status of the watch request: relist as well', T, async (t) => {
  const { api, s } = await setup(t, { expiredWatchAs: 'status' });
  await caughtUp(api, s.src);
  api.clearRequests();
  changeBehindItsBack(api);
  api.expireResourceVersions();
  api.dropWatches();
  await assertRelistedCorrectly(api, s);
  assert.ok(
    api.requests.some((r) => r.watch && r.status === 410),
    'a watch was answered 410',
  );
});

test('410 Gone on open watches (the server compacted under them): relist', T, async (t) => {
  const { api, s } = await setup(t);
  await caughtUp(api, s.src);
  api.clearRequests();
  api.expireResourceVersions({ errorOpenWatches: true });
  changeBehindItsBack(api);
  await assertRelistedCorrectly(api, s);
});

test('API server restart: reconnect with bounded backoff and catch up; a reset server empties the model', T, async (t) => {
  const { api, s } = await setup(t);
  await caughtUp(api, s.src);
  await api.stop();
  changeBehindItsBack(api);
  await new Promise((r) => setTimeout(r, 600));
  await api.start();
  await waitFor(() => bodyOf(s, 'kubernetes:DestinationRule/shop/new') && !bodyOf(s, 'kubernetes:WorkloadEntry/shop/vm1'), 'changes made while the server was down');
  await assertMatchesFreshList(api, s);
  const records = s.logs.records();
  const retries = records.filter((r) => typeof r['retryInMs'] === 'number' && r['kind'] !== undefined && String(r['msg']).includes('failed'));
  assert.ok(retries.length >= KINDS, 'every kind retried');
  assert.ok(
    retries.every((r) => (r['retryInMs'] as number) <= 500),
    'backoff stays under its cap',
  );
  const warnings = records.filter((r) => r['level'] === 40 && String(r['msg']).includes('retrying with backoff'));
  assert.ok(warnings.length <= KINDS * 2, `one warning per kind per outage, not one per retry (${warnings.length})`);

  await api.restart({ resetState: true });
  await waitFor(() => s.src.state().objects.length === 0, 'every object gone after the reset');
  await assertMatchesFreshList(api, s);
});

test('BOOKMARKs move each watch to the latest resourceVersion, so a later reconnect needs no relist', T, async (t) => {
  const { api, s } = await setup(t);
  await caughtUp(api, s.src);
  for (let i = 0; i < 20; i++) api.store.patch('v1', 'Service', SHOP, 'web', { metadata: { labels: { round: String(i) } } });
  const latest = api.store.resourceVersion();
  await waitFor(() => s.src.status().find((x) => x.kind === 'Service')?.resourceVersion === latest, 'the Service updates');
  const vsBefore = s.src.status().find((x) => x.kind === 'VirtualService')?.resourceVersion;
  assert.ok(Number(vsBefore) < Number(latest), 'the VirtualService watch saw none of those events');
  const changesBefore = s.changes.length;
  await waitFor(() => api.sendBookmarks() === KINDS && s.src.status().every((x) => x.resourceVersion === latest), 'every kind at the bookmark');
  assert.equal(s.changes.length, changesBefore, 'a bookmark is not a change');
  // Compact everything before the bookmark: resuming from it still works, from vsBefore would not.
  api.expireResourceVersions({ olderThan: latest });
  api.clearRequests();
  api.dropWatches({ graceful: true });
  api.store.patch('networking.istio.io/v1', 'VirtualService', SHOP, 'web', { metadata: { labels: { after: 'bookmark' } } });
  await waitFor(() => (bodyOf(s, 'kubernetes:VirtualService/shop/web')?.['metadata'] as { labels?: Record<string, string> })?.labels?.['after'], 'the update after the bookmark');
  await caughtUp(api, s.src);
  assert.deepEqual(lists(api), [], 'resumed from the bookmark: no relist');
  assert.ok(api.requests.some((r) => r.watch && r.path.endsWith('/virtualservices') && r.query['resourceVersion'] === latest && r.query['allowWatchBookmarks'] === 'true'));
  await assertMatchesFreshList(api, s);
});

test('a CRD that is not installed is reported once, looked for again, and watched once installed', T, async (t) => {
  const { api, s } = await setup(
    t,
    { resources: DEFAULT_RESOURCES.filter((r) => !(r.kind === 'Gateway' && r.group === 'networking.istio.io')) },
    shopObjects().filter((o) => o['apiVersion'] !== 'networking.istio.io/v1' || o['kind'] !== 'Gateway'),
  );
  assert.equal(s.src.synced(), true, 'a missing kind does not block readiness');
  // Only Gateway discovery falls through to v1alpha3: count its rounds.
  await waitFor(() => api.requests.filter((r) => r.path === '/apis/networking.istio.io/v1alpha3').length >= 4, 'repeated discovery');
  const notServed = (): number => s.logs.records().filter((r) => String(r['msg']).includes('Gateway is not served')).length;
  assert.equal(notServed(), 1, 'logged once');
  const gatewayErrors = (): string[] =>
    s.src
      .state()
      .errors.filter((e) => e.source === 'kubernetes:Gateway')
      .map((e) => e.errors[0]?.message ?? '');
  assert.equal(gatewayErrors().length, 1);
  assert.match(gatewayErrors()[0] ?? '', /not served by the API server \(tried v1, v1beta1, v1alpha3\)/);
  await assertMatchesFreshList(api, s);

  const gw = DEFAULT_RESOURCES.find((r) => r.kind === 'Gateway');
  assert.ok(gw);
  api.install({ ...gw, versions: ['v1beta1'] });
  api.store.create({ ...shopObjects().find((o) => o['kind'] === 'Gateway' && o['apiVersion'] === 'networking.istio.io/v1'), apiVersion: 'networking.istio.io/v1beta1' });
  await waitFor(() => s.src.state().objects.find((o) => o.kind === 'Gateway')?.apiVersion === 'networking.istio.io/v1beta1', 'the Gateway once its CRD is installed');
  assert.deepEqual(gatewayErrors(), []);
  assert.equal(s.src.status().find((x) => x.kind === 'Gateway')?.version, 'v1beta1');
  await assertMatchesFreshList(api, s);

  api.uninstall('Gateway', 'networking.istio.io');
  await waitFor(() => !s.src.state().objects.some((o) => o.kind === 'Gateway') && gatewayErrors().length === 1, 'Gateways gone with their CRD');
  assert.equal(s.logs.records().filter((r) => String(r['msg']).includes('Gateway is no longer served')).length, 1);
  assert.equal(notServed(), 1);
  await assertMatchesFreshList(api, s);
});

test('Istio kinds meshd does not know are reported: a log line once per kind, a source error, gone with their CRD', T, async (t) => {
  const ext: ApiResource = {
    group: 'extensions.istio.io',
    versions: ['v1alpha1'],
    resource: 'trafficextensions',
    kind: 'TrafficExtension',
    namespaced: true,
    crd: true,
    status: true,
  };
  const api = await startKubeApiServer({ resources: [...DEFAULT_RESOURCES, ext] });
  for (const o of shopObjects()) api.store.create(o);
  api.store.create({ apiVersion: 'extensions.istio.io/v1alpha1', kind: 'TrafficExtension', metadata: { name: 'lua', namespace: SHOP }, spec: {} });
  const s = kubeSource(api, { unknownKindRetryMs: 50 });
  t.after(async () => {
    await s.src.close();
    await api.close();
  });
  await s.src.load();
  const unknownErrors = (): string[] =>
    s.src
      .state()
      .errors.filter((e) => e.errors[0]?.message.includes('meshd does not support it'))
      .map((e) => `${e.source} ${e.apiVersion ?? ''}: ${e.errors[0]?.message ?? ''}`);
  // Part of the initial state: the first snapshot already lists it (and so /debug/configz).
  assert.deepEqual(unknownErrors(), [
    'kubernetes:TrafficExtension extensions.istio.io/v1alpha1: extensions.istio.io TrafficExtension is served by the API server (v1alpha1) but meshd does not support it; objects of this kind are ignored',
  ]);
  assert.match(modelOf(s.src.state()).errors, /TrafficExtension is served by the API server/);
  assert.equal(s.src.state().objects.length, OBJECTS, 'the known kinds are served as before');

  // A CRD installed later (a kind in a known group, at two versions) is found by the next pass.
  const future: ApiResource = { group: 'networking.istio.io', versions: ['v1', 'v1alpha3'], resource: 'meshpolicies', kind: 'MeshPolicy', namespaced: true, crd: true };
  const nonIstio: ApiResource = { group: 'example.com', versions: ['v1'], resource: 'widgets', kind: 'Widget', namespaced: true, crd: true };
  api.install(future);
  api.install(nonIstio);
  await waitFor(() => unknownErrors().length === 2, 'the CRD installed later is reported');
  assert.match(unknownErrors()[1] ?? '', /^kubernetes:MeshPolicy networking.istio.io\/v1: networking.istio.io MeshPolicy is served by the API server \(v1, v1alpha3\)/);
  assert.ok(s.changes.includes('kubernetes:unknown-kinds'), 'a change, so the snapshot is rebuilt');
  // Several more passes: each kind is still logged once.
  const rounds = api.requests.filter((r) => r.path === '/apis').length;
  await waitFor(() => api.requests.filter((r) => r.path === '/apis').length >= rounds + 3, 'more discovery passes');
  const logged = (kind: string): number => s.logs.records().filter((r) => r['kind'] === kind && String(r['msg']).includes('does not support it')).length;
  assert.deepEqual([logged('TrafficExtension'), logged('MeshPolicy'), logged('Widget')], [1, 1, 0]);
  assert.equal(s.logs.records().find((r) => r['kind'] === 'TrafficExtension' && String(r['msg']).includes('does not support it'))?.['level'], 40, 'a warning');

  api.uninstall('TrafficExtension', 'extensions.istio.io');
  await waitFor(() => unknownErrors().length === 1, 'gone with its CRD');
  assert.match(unknownErrors()[0] ?? '', /MeshPolicy/);
});

test('Istio kinds fall back to v1beta1, then v1alpha3, when v1 is not served', T, async (t) => {
  const resources = DEFAULT_RESOURCES.map((r) =>
    r.kind === 'VirtualService' ? { ...r, versions: ['v1alpha3'] } : r.kind === 'DestinationRule' ? { ...r, versions: ['v1beta1', 'v1alpha3'] } : r,
  );
  const objects = shopObjects().map((o) =>
    o['kind'] === 'VirtualService'
      ? { ...o, apiVersion: 'networking.istio.io/v1alpha3' }
      : o['kind'] === 'DestinationRule'
        ? { ...o, apiVersion: 'networking.istio.io/v1beta1' }
        : o,
  );
  const { api, s } = await setup(t, { resources }, objects);
  const version = (k: string): string | undefined => s.src.status().find((x) => x.kind === k)?.version;
  assert.deepEqual([version('VirtualService'), version('DestinationRule'), version('ServiceEntry')], ['v1alpha3', 'v1beta1', 'v1']);
  const apiVersion = (k: string): string | undefined => s.src.state().objects.find((o) => o.kind === k)?.apiVersion;
  assert.deepEqual([apiVersion('VirtualService'), apiVersion('DestinationRule')], ['networking.istio.io/v1alpha3', 'networking.istio.io/v1beta1']);
  await assertMatchesFreshList(api, s);
});

test('a large initial list arrives in pages of 500', T, async (t) => {
  const pods = Array.from({ length: 1203 }, (_, i) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `p-${i}`, namespace: SHOP, labels: { app: 'bulk' } },
    spec: {},
    status: { podIP: `10.9.${Math.floor(i / 250)}.${(i % 250) + 1}` },
  }));
  const { api, s } = await setup(t, {}, pods);
  assert.equal(s.src.state().objects.length, 1203);
  const podLists = api.requests.filter((r) => r.path === '/api/v1/pods' && !r.watch);
  assert.deepEqual(
    podLists.map((r) => [r.query['limit'], r.query['continue'] !== undefined]),
    [
      ['500', false],
      ['500', true],
      ['500', true],
    ],
  );
  await assertMatchesFreshList(api, s);
});

test('failing LISTs are retried with backoff and logged once per streak', T, async (t) => {
  const api = await startKubeApiServer();
  for (const o of shopObjects()) api.store.create(o);
  api.injectFailures({ path: '/api/v1/services', watch: false, status: 500, count: 4 });
  const s = kubeSource(api);
  t.after(async () => {
    await s.src.close();
    await api.close();
  });
  await s.src.load();
  assert.ok(bodyOf(s, 'kubernetes:Service/shop/web'));
  const failures = s.logs.records().filter((r) => r['kind'] === 'Service' && String(r['msg']).includes('failed'));
  assert.deepEqual(
    failures.map((r) => r['level']),
    [40, 20, 20, 20],
    'a warning, then debug',
  );
  assert.deepEqual(
    failures.map((r) => r['retryInMs']),
    [20, 40, 80, 160],
    'exponential backoff',
  );
  await assertMatchesFreshList(api, s);
});

test('an HTTPS API server with its CA in the kubeconfig', T, async (t) => {
  const { api, s } = await setup(t, { tls: true });
  assert.match(api.url, /^https:/);
  assert.equal(s.src.state().objects.length, OBJECTS);
  await assertMatchesFreshList(api, s);
});
