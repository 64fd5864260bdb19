/**
 * Route cache keys: proxies share encoded RouteConfigurations exactly when the per-proxy inputs
 * agree (namespace, the sourceLabels matches they satisfy, the hashing DestinationRules in
 * effect), and get different ones, with different contents, when they do not.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { grpcRoutes, sidecarRoutes } from '../src/generate/routes';
import type { Resource } from '../src/generate/types';
import { buildSnapshot } from '../src/model/build';
import { parseProxy } from '../src/model/proxy';
import type { MeshSnapshot } from '../src/model/snapshot';
import { loadText } from '../src/sources/file-source';

function snap(yaml: string): MeshSnapshot {
  const r = loadText(yaml, 'in.yaml');
  assert.deepEqual(r.errors, []);
  const s = buildSnapshot({ objects: r.objects, errors: [], sequence: 1, now: new Date(0), domain: 'cluster.local' });
  assert.deepEqual(s.errors, []);
  return s;
}

const SERVICES = `
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { clusterIP: 10.96.0.10, ports: [{ name: http, port: 9080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: default }
spec: { clusterIP: 10.96.0.11, ports: [{ name: http, port: 9080 }] }
`;

function sidecar(app: string, ns = 'default', generator?: string): ReturnType<typeof parseProxy> {
  return parseProxy(`sidecar~10.0.0.1~${app}-1.${ns}~${ns}.svc.cluster.local`, { NAMESPACE: ns, LABELS: { app }, ...(generator ? { GENERATOR: generator } : {}) });
}

function route9080(s: MeshSnapshot, app: string, ns = 'default'): Resource {
  const r = sidecarRoutes({ snap: s, proxy: sidecar(app, ns) }).find((x) => x.name === '9080');
  assert.ok(r);
  return r;
}

test('labels alone do not split the cache; namespaces do', () => {
  const s = snap(SERVICES);
  assert.equal(route9080(s, 'a').key, route9080(s, 'b').key);
  assert.notEqual(route9080(s, 'a').key, route9080(s, 'a', 'other').key);
});

test('a sourceLabels match splits the cache between proxies it does and does not fit', () => {
  const s = snap(`${SERVICES}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - match: [{ sourceLabels: { app: canary } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
  - route: [{ destination: { host: reviews, subset: v1 } }]
`);
  const canary = route9080(s, 'canary');
  const other = route9080(s, 'other');
  assert.notEqual(canary.key, other.key);
  assert.equal(other.key, route9080(s, 'third').key, 'proxies the match does not fit share one entry');
  assert.match(JSON.stringify(canary.build()), /\|v2\|reviews/);
  assert.doesNotMatch(JSON.stringify(other.build()), /\|v2\|reviews/);
});

test('a hashing DestinationRule selected by workload labels splits the cache; the key names the rule', () => {
  const s = snap(`${SERVICES}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ratings-sticky, namespace: default }
spec:
  host: ratings
  workloadSelector: { matchLabels: { app: sticky } }
  trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: x-user } } }
`);
  const sticky = route9080(s, 'sticky');
  const plain = route9080(s, 'plain');
  assert.notEqual(sticky.key, plain.key);
  assert.match(sticky.key, /default\/ratings-sticky/);
  assert.match(JSON.stringify(sticky.build()), /"header_name":"x-user"/);
  assert.doesNotMatch(JSON.stringify(plain.build()), /hash_policy/);
  // gRPC route configs follow the same rule.
  const g = (app: string): Resource | undefined =>
    grpcRoutes({ snap: s, proxy: sidecar(app, 'default', 'grpc') }).find((r) => r.name === 'ratings.default.svc.cluster.local:9080');
  assert.notEqual(g('sticky')?.key, g('plain')?.key);
  assert.match(JSON.stringify(g('sticky')?.build()), /"header_name":"x-user"/);
});
