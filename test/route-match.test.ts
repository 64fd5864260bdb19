/** Route matches that need a gateway scope or a flavour the golden cases do not show. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { virtualServiceRoutes } from '../src/generate/http-route';
import { MAX_GRPC_WITHOUT_HEADERS, routeMatch, routeMatches } from '../src/generate/route-match';
import { buildSnapshot } from '../src/model/build';
import { parseProxy } from '../src/model/proxy';
import { loadText } from '../src/sources/file-source';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { ResourceValidator } from '../src/xds/validate-rules';

const validator = new ResourceValidator(new EnvoyProtos());

test('JWT claim conditions become dynamic metadata matches on the jwt_authn payload (gateways); gRPC never matches them', () => {
  const m = { headers: { '@request.auth.claims.group': { exact: 'admin' }, 'x-a': { exact: '1' } }, withoutHeaders: { '@request.auth.claims[org][id]': {} } };
  const envoy = routeMatch(m, 'envoy');
  assert.deepEqual(envoy?.dynamic_metadata, [
    {
      filter: 'envoy.filters.http.jwt_authn',
      path: [{ key: 'payload' }, { key: 'group' }],
      value: { or_match: { value_matchers: [{ list_match: { one_of: { string_match: { exact: 'admin' } } } }, { string_match: { exact: 'admin' } }] } },
    },
    {
      filter: 'envoy.filters.http.jwt_authn',
      path: [{ key: 'payload' }, { key: 'org' }, { key: 'id' }],
      value: { or_match: { value_matchers: [{ list_match: { one_of: { present_match: true } } }, { present_match: true }] } },
      invert: true,
    },
  ]);
  assert.deepEqual(envoy?.headers, [{ name: 'x-a', string_match: { exact: '1' } }]);
  const route = { name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: envoy, route: { cluster: 'c' } }] }] };
  assert.deepEqual(validator.validate(TypeUrl.Route, route), []);
  // A required claim can never be present on a gRPC call; an excluded one always is absent.
  assert.equal(routeMatch(m, 'grpc'), undefined);
  assert.deepEqual(routeMatch({ withoutHeaders: { '@request.auth.claims.group': { exact: 'x' } } }, 'grpc'), { prefix: '/', case_sensitive: { value: true } });
});

test('match-level gateways: a route bound to a gateway applies in that gateway scope only', () => {
  const r = loadText(
    `
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { clusterIP: 10.96.0.10, ports: [{ name: http, port: 9080 }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  gateways: [mesh, ingress]
  http:
  - match: [{ gateways: [ingress], uri: { prefix: /edge } }]
    route: [{ destination: { host: reviews, subset: edge } }]
  - route: [{ destination: { host: reviews, subset: v1 } }]
`,
    'in.yaml',
  );
  const snap = buildSnapshot({ objects: r.objects, errors: r.errors, sequence: 1, now: new Date(0), domain: 'cluster.local' });
  assert.deepEqual(snap.errors, []);
  const vs = snap.virtualServices[0];
  const svc = snap.serviceByHost.get('reviews.default.svc.cluster.local');
  assert.ok(vs && svc);
  const proxy = parseProxy('router~10.0.0.1~gw-1.default~default.svc.cluster.local', { NAMESPACE: 'default' });
  const clusters = (gateways: string[]): unknown[] =>
    virtualServiceRoutes(vs, { snap, proxy, flavor: 'envoy', port: 9080, gateways: new Set(gateways) }, svc).map((x) => (x.route as { cluster?: string }).cluster);
  assert.deepEqual(clusters(['mesh']), ['outbound|9080|v1|reviews.default.svc.cluster.local']);
  // The short name in the match resolves in the VirtualService's namespace.
  assert.deepEqual(clusters(['default/ingress']), ['outbound|9080|edge|reviews.default.svc.cluster.local', 'outbound|9080|v1|reviews.default.svc.cluster.local']);
});

test('withoutHeaders for gRPC: one route per way each value condition holds (absent, or present and not matching)', () => {
  const m = { headers: { 'x-user': { exact: 'jason' } }, withoutHeaders: { 'x-canary': { exact: 'yes' }, 'x-tier': { prefix: 'gold' } } };
  // Envoy keeps one route and treats a missing header as empty.
  const envoy = routeMatches(m, 'envoy');
  assert.equal(envoy.length, 1);
  const grpc = routeMatches(m, 'grpc');
  const names = (h: Record<string, unknown>[]): string[] =>
    h.map((x) => `${String(x['name'])}:${x['present_match'] ? 'present' : String(x['exact_match'] ?? x['prefix_match'])}${x['invert_match'] ? ':not' : ''}`);
  assert.deepEqual(
    grpc.map((r) => names(r.headers as Record<string, unknown>[])),
    [
      ['x-canary:present', 'x-canary:yes:not', 'x-tier:present', 'x-tier:gold:not', 'x-user:jason'],
      ['x-canary:present:not', 'x-tier:present', 'x-tier:gold:not', 'x-user:jason'],
      ['x-canary:present', 'x-canary:yes:not', 'x-tier:present:not', 'x-user:jason'],
      ['x-canary:present:not', 'x-tier:present:not', 'x-user:jason'],
    ],
  );
  for (const r of grpc) for (const h of r.headers as Record<string, unknown>[]) assert.equal(h['treat_missing_header_as_empty'], undefined);
  // Presence conditions need no split: every gRPC client inverts present_match alike.
  assert.equal(routeMatches({ withoutHeaders: { 'x-canary': {} } }, 'grpc').length, 1);
  // Past the bound the compact form stays (no route explosion).
  const many = Object.fromEntries(Array.from({ length: MAX_GRPC_WITHOUT_HEADERS + 1 }, (_, i) => [`x-h${i}`, { exact: 'v' }]));
  assert.equal(routeMatches({ withoutHeaders: many }, 'grpc').length, 1);
  assert.equal(routeMatches({ withoutHeaders: Object.fromEntries(Object.entries(many).slice(1)) }, 'grpc').length, 2 ** MAX_GRPC_WITHOUT_HEADERS);
});
