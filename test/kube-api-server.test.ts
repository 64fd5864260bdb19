/**
 * The fake Kubernetes API server itself (test/helpers/kube-api-server.ts): that it speaks
 * the protocol real clients rely on, checked with @kubernetes/client-node's typed clients
 * and with raw HTTP where the wire format matters (list items, watch events, Status bodies).
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { test, type TestContext } from 'node:test';
import { CoordinationV1Api, CoreV1Api, type KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { loadKubeConfig } from '../src/sources/kube-http';
import { startKubeApiServer, type KubeApiServer, type KubeApiServerOptions } from './helpers/kube-api-server';

const T = { timeout: 20_000 };
type Obj = Record<string, unknown>;

/** Walks parsed JSON: at(o, 'items', 0, 'kind'). */
function at(o: unknown, ...path: Array<string | number>): unknown {
  let cur = o;
  for (const k of path) cur = cur !== null && typeof cur === 'object' ? (cur as Record<string | number, unknown>)[k] : undefined;
  return cur;
}

function list(o: unknown, ...path: Array<string | number>): Obj[] {
  const v = at(o, ...path);
  return Array.isArray(v) ? (v as Obj[]) : [];
}

async function server(t: TestContext, opts: KubeApiServerOptions = {}): Promise<{ api: KubeApiServer; kc: KubeConfig }> {
  const api = await startKubeApiServer(opts);
  t.after(() => api.close());
  return { api, kc: loadKubeConfig({ kubeconfig: api.kubeconfigPath }) };
}

async function raw(api: KubeApiServer, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; json: Obj; text: string }> {
  const res = await fetch(api.url + path, {
    method,
    headers: { authorization: `Bearer ${api.token}`, 'content-type': contentType },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Obj = {};
  try {
    json = JSON.parse(text) as Obj;
  } catch {
    // not JSON
  }
  return { status: res.status, json, text };
}

/** Opens a watch and collects its events until `n` arrived or the server ends the stream. */
function watch(api: KubeApiServer, path: string, n: number, onOpen?: () => void): Promise<{ status: number; events: Obj[]; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const events: Obj[] = [];
    const req = http.get(api.url + path, { headers: { authorization: `Bearer ${api.token}` } }, (res) => {
      let buf = '';
      const finish = (ended: boolean): void => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, events, ended });
      };
      onOpen?.();
      res.on('data', (c: Buffer) => {
        buf += c.toString();
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          events.push(JSON.parse(buf.slice(0, i)) as Obj);
          buf = buf.slice(i + 1);
          if (events.length >= n) finish(false);
        }
      });
      res.on('end', () => finish(true));
      res.on('error', () => finish(true));
    });
    req.on('error', reject);
  });
}

test('discovery, authentication, and 404 for resources that are not installed', T, async (t) => {
  const { api } = await server(t);
  assert.deepEqual(at((await raw(api, 'GET', '/api')).json, 'versions'), ['v1']);
  const core = (await raw(api, 'GET', '/api/v1')).json;
  assert.ok(list(core, 'resources').some((r) => r['name'] === 'pods' && r['namespaced'] === true && r['kind'] === 'Pod'));
  assert.ok(list(core, 'resources').some((r) => r['name'] === 'pods/status'));
  const groups = list((await raw(api, 'GET', '/apis')).json, 'groups');
  assert.deepEqual(
    list(
      groups.find((g) => g['name'] === 'networking.istio.io'),
      'versions',
    ).map((v) => v['version']),
    ['v1', 'v1beta1', 'v1alpha3'],
  );
  assert.equal(at((await raw(api, 'GET', '/apis/coordination.k8s.io/v1')).json, 'resources', 0, 'name'), 'leases');
  assert.equal((await raw(api, 'GET', '/apis/example.com/v1')).status, 404);
  const missing = await raw(api, 'GET', '/apis/networking.istio.io/v1/namespaces/default/telemetries');
  assert.deepEqual([missing.status, at(missing.json, 'kind'), at(missing.json, 'reason')], [404, 'Status', 'NotFound']);
  const res = await fetch(`${api.url}/api/v1/pods`);
  assert.equal(res.status, 401, 'no token, no access');
});

test('Lease CRUD with the typed client: 409 AlreadyExists, 409 Conflict on a stale resourceVersion, patches, 404', T, async (t) => {
  const { api, kc } = await server(t);
  const leases = kc.makeApiClient(CoordinationV1Api);
  const ns = 'istio-system';
  const created = await leases.createNamespacedLease({ namespace: ns, body: { metadata: { name: 'meshd' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15 } } });
  assert.ok(created.metadata?.uid && created.metadata.resourceVersion);
  await assert.rejects(
    leases.createNamespacedLease({ namespace: ns, body: { metadata: { name: 'meshd' }, spec: {} } }),
    (e: Obj) => e['code'] === 409 && at(JSON.parse(String(e['body'])), 'reason') === 'AlreadyExists',
  );
  const stale = await leases.readNamespacedLease({ name: 'meshd', namespace: ns });
  stale.spec = { ...stale.spec, holderIdentity: 'b' };
  const won = await leases.replaceNamespacedLease({ name: 'meshd', namespace: ns, body: stale });
  assert.ok(Number(won.metadata?.resourceVersion) > Number(created.metadata?.resourceVersion));
  stale.spec = { ...stale.spec, holderIdentity: 'c' };
  await assert.rejects(
    leases.replaceNamespacedLease({ name: 'meshd', namespace: ns, body: stale }),
    (e: Obj) => e['code'] === 409 && at(JSON.parse(String(e['body'])), 'reason') === 'Conflict',
  );
  const jp = await leases.patchNamespacedLease({ name: 'meshd', namespace: ns, body: [{ op: 'replace', path: '/spec/holderIdentity', value: 'd' }] });
  assert.equal(jp.spec?.holderIdentity, 'd');
  const mp = await leases.patchNamespacedLease(
    { name: 'meshd', namespace: ns, body: { spec: { holderIdentity: 'e' } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  assert.equal(mp.spec?.holderIdentity, 'e');
  assert.equal(mp.spec?.leaseDurationSeconds, 15, 'a merge patch keeps what it does not name');
  await leases.deleteNamespacedLease({ name: 'meshd', namespace: ns });
  await assert.rejects(leases.readNamespacedLease({ name: 'meshd', namespace: ns }), (e: Obj) => e['code'] === 404);
  assert.equal(api.store.get('coordination.k8s.io/v1', 'Lease', ns, 'meshd'), undefined);
});

test('one global resourceVersion; list items of built-in kinds carry no kind; custom resources are read at every version', T, async (t) => {
  const { api } = await server(t);
  const a = api.store.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'default' }, data: {} });
  const b = api.store.create({ apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name: 'b', namespace: 'default' }, spec: { hosts: ['b'] } });
  assert.ok(Number(at(b, 'metadata', 'resourceVersion')) > Number(at(a, 'metadata', 'resourceVersion')));
  const cms = (await raw(api, 'GET', '/api/v1/configmaps')).json;
  assert.equal(at(cms, 'kind'), 'ConfigMapList');
  assert.equal(at(cms, 'metadata', 'resourceVersion'), api.store.resourceVersion());
  assert.equal(at(cms, 'items', 0, 'kind'), undefined, 'built-in list items have no kind');
  const vs = (await raw(api, 'GET', '/apis/networking.istio.io/v1/namespaces/default/virtualservices')).json;
  assert.deepEqual([at(vs, 'items', 0, 'apiVersion'), at(vs, 'items', 0, 'kind')], ['networking.istio.io/v1', 'VirtualService']);
  assert.equal(at((await raw(api, 'GET', '/apis/networking.istio.io/v1alpha3/namespaces/default/virtualservices/b')).json, 'apiVersion'), 'networking.istio.io/v1alpha3');
});

test('status subresource, generation, and writes that change nothing', T, async (t) => {
  const { api } = await server(t);
  const path = '/apis/networking.istio.io/v1/namespaces/default/destinationrules/r';
  const c = await raw(api, 'POST', '/apis/networking.istio.io/v1/namespaces/default/destinationrules', {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'r' },
    spec: { host: 'r' },
    status: { x: 1 },
  });
  assert.equal(c.status, 201);
  assert.equal(at(c.json, 'status'), undefined, 'POST drops status');
  const s = await raw(api, 'PUT', `${path}/status`, { ...c.json, spec: { host: 'ignored' }, status: { observedGeneration: 1 } });
  assert.deepEqual([at(s.json, 'spec', 'host'), at(s.json, 'status', 'observedGeneration'), at(s.json, 'metadata', 'generation')], ['r', 1, 1]);
  const m = await raw(api, 'PUT', path, { ...s.json, spec: { host: 'r2' }, status: { observedGeneration: 99 } });
  assert.deepEqual([at(m.json, 'spec', 'host'), at(m.json, 'status', 'observedGeneration'), at(m.json, 'metadata', 'generation')], ['r2', 1, 2]);
  const same = await raw(api, 'PATCH', path, { spec: { host: 'r2' } }, 'application/merge-patch+json');
  assert.equal(at(same.json, 'metadata', 'resourceVersion'), at(m.json, 'metadata', 'resourceVersion'), 'a no-op write gets no new resourceVersion');
});

test('garbage collection: deleting an owner deletes the objects whose every owner is gone, down the chain', T, async (t) => {
  const { api } = await server(t);
  const owner = api.store.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'owner', namespace: 'default' } });
  const other = api.store.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'other', namespace: 'default' } });
  const ref = (o: Obj): Obj => ({ apiVersion: 'v1', kind: 'ConfigMap', name: at(o, 'metadata', 'name'), uid: at(o, 'metadata', 'uid') });
  const child = api.store.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'child', namespace: 'default', ownerReferences: [ref(owner)] } });
  api.store.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'grandchild', namespace: 'default', ownerReferences: [{ ...ref(child), kind: 'Secret' }] } });
  api.store.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'shared', namespace: 'default', ownerReferences: [ref(owner), ref(other)] } });
  assert.equal((await raw(api, 'DELETE', '/api/v1/namespaces/default/configmaps/owner')).status, 200);
  assert.equal(api.store.get('v1', 'Secret', 'default', 'child'), undefined);
  assert.equal(api.store.get('v1', 'ServiceAccount', 'default', 'grandchild'), undefined);
  assert.ok(api.store.get('v1', 'Service', 'default', 'shared'), 'another owner still exists');
  api.store.delete('v1', 'ConfigMap', 'default', 'other');
  assert.equal(api.store.get('v1', 'Service', 'default', 'shared'), undefined);
});

test('paged LIST: limit, continue, remainingItemCount; an expired continue token is 410', T, async (t) => {
  const { api } = await server(t);
  for (let i = 0; i < 5; i++) api.store.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `c${i}`, namespace: 'default' } });
  const p1 = (await raw(api, 'GET', '/api/v1/configmaps?limit=2')).json;
  assert.deepEqual([list(p1, 'items').length, at(p1, 'metadata', 'remainingItemCount')], [2, 3]);
  const p2 = (await raw(api, 'GET', `/api/v1/configmaps?limit=2&continue=${at(p1, 'metadata', 'continue')}`)).json;
  assert.deepEqual(
    list(p2, 'items').map((o) => at(o, 'metadata', 'name')),
    ['c2', 'c3'],
  );
  assert.equal(at(p2, 'metadata', 'resourceVersion'), at(p1, 'metadata', 'resourceVersion'), 'every page is the same snapshot');
  api.expireResourceVersions();
  const p3 = await raw(api, 'GET', `/api/v1/configmaps?limit=2&continue=${at(p2, 'metadata', 'continue')}`);
  assert.deepEqual([p3.status, at(p3.json, 'reason')], [410, 'Expired']);
});

test('WATCH: events after the resourceVersion in order, selectors with transitions, 410 when too old', T, async (t) => {
  const { api } = await server(t);
  const rv = api.store.resourceVersion();
  api.store.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'w', namespace: 'default', labels: { app: 'x' } } });
  api.store.patch('v1', 'ConfigMap', 'default', 'w', { data: { k: 'v' } });
  api.store.patch('v1', 'ConfigMap', 'default', 'w', { metadata: { labels: { app: 'y' } } });
  api.store.delete('v1', 'ConfigMap', 'default', 'w');
  const all = await watch(api, `/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${rv}`, 4);
  assert.deepEqual(
    all.events.map((e) => at(e, 'type')),
    ['ADDED', 'MODIFIED', 'MODIFIED', 'DELETED'],
  );
  const rvs = all.events.map((e) => Number(at(e, 'object', 'metadata', 'resourceVersion')));
  assert.deepEqual(
    rvs,
    [...rvs].sort((x, y) => x - y),
  );
  assert.equal(at(all.events, 0, 'object', 'kind'), 'ConfigMap', 'watch events carry kind');
  const sel = await watch(api, `/api/v1/configmaps?watch=1&resourceVersion=${rv}&labelSelector=app%3Dx`, 3);
  assert.deepEqual(
    sel.events.map((e) => at(e, 'type')),
    ['ADDED', 'MODIFIED', 'DELETED'],
    'leaving the selector is a DELETED',
  );

  api.expireResourceVersions();
  const old = await watch(api, `/api/v1/configmaps?watch=true&resourceVersion=${rv}`, 5);
  assert.equal(old.status, 200);
  assert.equal(old.ended, true, 'the server ends the watch');
  assert.deepEqual(
    old.events.map((e) => [at(e, 'type'), at(e, 'object', 'code'), at(e, 'object', 'reason')]),
    [['ERROR', 410, 'Expired']],
  );
});

test('WATCH controls: bookmarks only when asked for, timeoutSeconds, dropWatches, restart', T, async (t) => {
  const { api } = await server(t, { expiredWatchAs: 'status' });
  const rv = api.store.resourceVersion();
  api.expireResourceVersions();
  assert.equal((await watch(api, `/api/v1/pods?watch=true&resourceVersion=${rv}`, 1)).status, 410, 'expiredWatchAs: status');

  const now = api.store.resourceVersion();
  const marked = watch(api, `/api/v1/pods?watch=true&resourceVersion=${now}&allowWatchBookmarks=true`, 1, () => setImmediate(() => api.sendBookmarks()));
  assert.deepEqual(
    (await marked).events.map((e) => [at(e, 'type'), at(e, 'object', 'metadata', 'resourceVersion')]),
    [['BOOKMARK', now]],
  );
  const plain = watch(api, `/api/v1/pods?watch=true&resourceVersion=${now}&timeoutSeconds=1`, 1, () => setImmediate(() => assert.equal(api.sendBookmarks(), 0)));
  assert.deepEqual(await plain, { status: 200, events: [], ended: true }, 'no bookmark without allowWatchBookmarks; ended after timeoutSeconds');

  const cut = watch(api, `/api/v1/pods?watch=true&resourceVersion=${now}`, 1, () => setImmediate(() => assert.equal(api.dropWatches(), 1)));
  assert.equal((await cut).ended, true);
  assert.equal(api.watches().length, 0);

  api.store.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'default' } });
  const port = api.port;
  await api.restart();
  assert.equal(api.port, port);
  assert.equal((await raw(api, 'GET', '/api/v1/namespaces/default/secrets/s')).status, 200, 'state kept');
  await api.restart({ resetState: true });
  assert.equal((await raw(api, 'GET', '/api/v1/namespaces/default/secrets/s')).status, 404, 'state reset');
});

test('deleting a Namespace deletes what is in it; injected failures', T, async (t) => {
  const { api, kc } = await server(t);
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'gone' } } });
  await core.createNamespacedConfigMap({ namespace: 'gone', body: { metadata: { name: 'c' } } });
  await core.deleteNamespace({ name: 'gone' });
  assert.equal(api.store.get('v1', 'ConfigMap', 'gone', 'c'), undefined);
  api.injectFailures({ method: 'GET', path: '/api/v1/namespaces', status: 503, count: 1 });
  await assert.rejects(core.listNamespace(), (e: Obj) => e['code'] === 503);
  assert.equal((await core.listNamespace()).items.length, 0);
  assert.deepEqual(
    api.requests.slice(-2).map((r) => r.status),
    [503, 200],
  );
});
