/** VirtualService delegation in the model: merge semantics and the problems reported. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildSnapshot } from '../src/model/build';
import { mergeRoute } from '../src/model/delegate';
import type { ConfigError } from '../src/model/objects';
import type { MeshSnapshot } from '../src/model/snapshot';
import { loadText } from '../src/sources/file-source';

function snap(yaml: string): MeshSnapshot {
  const r = loadText(yaml, 'in.yaml');
  assert.deepEqual(r.errors, []);
  return buildSnapshot({ objects: r.objects, errors: [], sequence: 1, now: new Date(0), domain: 'cluster.local' });
}

function root(http: string): string {
  return `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: root, namespace: default }
spec:
  hosts: [reviews]
  http:
${http}
`;
}

function delegateVs(name: string, ns: string, http: string, extra = ''): string {
  return `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: ${ns} }
spec:
${extra}  http:
${http}
`;
}

function rootRoutes(s: MeshSnapshot): unknown[] {
  const vs = s.virtualServices.find((v) => v.meta.name === 'root');
  assert.ok(vs);
  return vs.spec.http ?? [];
}

function errorsOf(s: MeshSnapshot, name: string): ConfigError['errors'] {
  return s.errors.filter((e) => e.name === name).flatMap((e) => e.errors);
}

test('delegate routes replace the delegating route in place, merged under its match', () => {
  const s = snap(
    root(`  - name: first
    route: [{ destination: { host: reviews, subset: v0 } }]
  - name: api
    match: [{ name: m, uri: { prefix: /api }, headers: { x-a: { exact: "1" } } }]
    timeout: 3s
    delegate: { name: d, namespace: team }
  - route: [{ destination: { host: reviews, subset: v9 } }]`) +
      delegateVs(
        'd',
        'team',
        `  - name: one
    match: [{ name: n, uri: { prefix: /api/v1 }, headers: { x-b: { exact: "2" } } }]
    route: [{ destination: { host: reviews.default.svc.cluster.local, subset: v1 } }]
  - timeout: 1s
    route: [{ destination: { host: reviews.default.svc.cluster.local, subset: v2 } }]`,
      ),
  );
  assert.deepEqual(s.errors, []);
  assert.deepEqual(rootRoutes(s), [
    { name: 'first', route: [{ destination: { host: 'reviews', subset: 'v0' } }] },
    {
      name: 'api-one',
      match: [{ name: 'm-n', uri: { prefix: '/api/v1' }, headers: { 'x-a': { exact: '1' }, 'x-b': { exact: '2' } } }],
      timeout: '3s',
      route: [{ destination: { host: 'reviews.default.svc.cluster.local', subset: 'v1' } }],
    },
    {
      name: 'api',
      match: [{ name: 'm', uri: { prefix: '/api' }, headers: { 'x-a': { exact: '1' } } }],
      timeout: '1s',
      route: [{ destination: { host: 'reviews.default.svc.cluster.local', subset: 'v2' } }],
    },
    { route: [{ destination: { host: 'reviews', subset: 'v9' } }] },
  ]);
  // The delegate itself is kept (it has no hosts, so no proxy routes by it directly).
  assert.ok(s.virtualServices.some((v) => v.meta.name === 'd' && v.hosts.length === 0));
});

test('a delegate match compatible with only some root matches merges with those; a conflicting route is dropped and reported', () => {
  const s = snap(
    root(`  - match: [{ uri: { prefix: /a } }, { uri: { prefix: /b } }]
    delegate: { name: d }`) +
      delegateVs(
        'd',
        'default',
        `  - name: narrow
    match: [{ uri: { prefix: /b/x } }]
    route: [{ destination: { host: reviews, subset: v1 } }]
  - name: elsewhere
    match: [{ uri: { prefix: /c } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
  - name: regex
    match: [{ uri: { regex: "/a.*" } }]
    route: [{ destination: { host: reviews, subset: v3 } }]`,
      ),
  );
  assert.deepEqual(rootRoutes(s), [{ name: 'narrow', match: [{ uri: { prefix: '/b/x' } }], route: [{ destination: { host: 'reviews', subset: 'v1' } }] }]);
  const errs = errorsOf(s, 'root');
  assert.deepEqual(
    errs.map((e) => e.path),
    ['spec.http[0].delegate', 'spec.http[0].delegate'],
  );
  assert.match(errs[0]?.message ?? '', /route 1 \(elsewhere\) of delegate default\/d has matches that conflict/);
  assert.match(errs[1]?.message ?? '', /route 2 \(regex\) of delegate default\/d/);
});

test('missing, hosted, unexported and chained delegates are reported with their field paths', () => {
  const s = snap(
    root(`  - delegate: { name: nowhere, namespace: default }
  - delegate: { name: hosted, namespace: default }
  - delegate: { name: private, namespace: team }
  - delegate: { name: chain, namespace: default }
  - route: [{ destination: { host: reviews, subset: v1 } }]`) +
      delegateVs('hosted', 'default', `  - route: [{ destination: { host: ratings } }]`, '  hosts: [ratings]\n') +
      delegateVs('private', 'team', `  - route: [{ destination: { host: reviews } }]`, '  exportTo: ["."]\n') +
      delegateVs(
        'chain',
        'default',
        `  - delegate: { name: private, namespace: team }
  - route: [{ destination: { host: reviews, subset: v2 } }]`,
      ),
  );
  const errs = errorsOf(s, 'root');
  assert.deepEqual(
    errs.map((e) => [e.path, e.message.replace(/;.*/, '')]),
    [
      ['spec.http[0].delegate', 'delegate VirtualService default/nowhere not found'],
      ['spec.http[1].delegate', 'VirtualService default/hosted has hosts, so it is not a delegate'],
      ['spec.http[2].delegate', 'delegate VirtualService team/private is not exported to namespace default'],
    ],
  );
  const chained = s.errors.find((e) => e.name === 'chain');
  assert.equal(chained?.kind, 'VirtualService');
  assert.equal(chained?.source, 'in.yaml');
  assert.deepEqual(
    chained?.errors.map((e) => e.path),
    ['spec.http[0].delegate'],
  );
  // What is left: the chained delegate's plain route, then the root's own route.
  assert.deepEqual(rootRoutes(s), [{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }, { route: [{ destination: { host: 'reviews', subset: 'v1' } }] }]);
});

test('mergeRoute: root fields fill unset delegate fields; delegate fields win', () => {
  const merged = mergeRoute(
    { name: 'r', timeout: '5s', retries: { attempts: 2 }, headers: { request: { set: { a: '1' } } }, fault: { abort: { httpStatus: 503 } } },
    { name: 'd', timeout: '1s', route: [{ destination: { host: 'x' } }] },
  );
  assert.deepEqual(merged, {
    name: 'r-d',
    timeout: '1s',
    retries: { attempts: 2 },
    headers: { request: { set: { a: '1' } } },
    fault: { abort: { httpStatus: 503 } },
    route: [{ destination: { host: 'x' } }],
  });
  // Source conditions combine: labels merge, the root's port and gateways carry over.
  const m = mergeRoute(
    { match: [{ sourceLabels: { app: 'a' }, port: 80, gateways: ['mesh'] }] },
    { match: [{ sourceLabels: { tier: 'b' } }], route: [{ destination: { host: 'x' } }] },
  );
  assert.deepEqual(m?.match, [{ sourceLabels: { app: 'a', tier: 'b' }, port: 80, gateways: ['mesh'] }]);
  // Conflicts: a different exact value, a different port, and (as in istiod) a root source
  // namespace the delegate match does not repeat.
  assert.equal(mergeRoute({ match: [{ headers: { h: { exact: 'a' } } }] }, { match: [{ headers: { h: { exact: 'b' } } }] }), undefined);
  assert.equal(mergeRoute({ match: [{ port: 80 }] }, { match: [{ port: 81 }] }), undefined);
  assert.equal(mergeRoute({ match: [{ sourceNamespace: 'a' }] }, { match: [{ sourceNamespace: 'b' }] }), undefined);
  assert.equal(mergeRoute({ match: [{ sourceNamespace: 'a' }] }, { match: [{ port: 80 }] }), undefined);
});
