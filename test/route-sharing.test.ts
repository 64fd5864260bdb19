/**
 * Sharing of route configurations: the engine reuses one computed RouteConfiguration for proxies
 * that agree on what its generation read (the namespace; labels only where a sourceLabels match
 * or a selecting DestinationRule reads them), and proxies that differ there get their own, with
 * different contents.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigEngine } from '../src/xds/engine';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
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

const protos = new EnvoyProtos();

/** One engine per snapshot, as the server has; `route(...)` → the RouteConfiguration's hash and JSON. */
function routes(s: MeshSnapshot): { engine: ConfigEngine; route: (app: string, ns?: string, generator?: string, name?: string) => { hash: string; json: string } } {
  const engine = new ConfigEngine({ protos });
  engine.setSnapshot(s);
  const route = (app: string, ns = 'default', generator?: string, name = '9080'): { hash: string; json: string } => {
    const r = engine.resources(engine.attach(sidecar(app, ns, generator)), TypeUrl.Route, undefined).resources.get(name);
    assert.ok(r, `route ${name}`);
    return { hash: r.hash, json: JSON.stringify(protos.decode(TypeUrl.Route, r.bytes)) };
  };
  return { engine, route };
}

const computed = (e: ConfigEngine): number => e.stats().resources.computed + e.stats().shared.computed;

test('labels alone do not split route configurations; namespaces do', () => {
  const { engine, route } = routes(snap(SERVICES));
  const a = route('a');
  const before = computed(engine);
  assert.equal(route('b').hash, a.hash);
  assert.equal(computed(engine), before, 'a proxy with other labels in the same namespace reuses the computed routes');
  route('a', 'other');
  assert.ok(computed(engine) > before, 'a proxy in another namespace gets its own');
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
  const { route } = routes(s);
  const canary = route('canary');
  const other = route('other');
  assert.notEqual(canary.hash, other.hash);
  assert.equal(other.hash, route('third').hash, 'proxies the match does not fit get the same routes');
  assert.match(canary.json, /\|v2\|reviews/);
  assert.doesNotMatch(other.json, /\|v2\|reviews/);
});

test('a hashing DestinationRule selected by workload labels splits route configurations', () => {
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
  const { route } = routes(s);
  const sticky = route('sticky');
  const plain = route('plain');
  assert.notEqual(sticky.hash, plain.hash);
  assert.match(sticky.json, /"header_name":"x-user"/);
  assert.doesNotMatch(plain.json, /hash_policy/);
  // gRPC route configs follow the same rule.
  const g = (app: string): { hash: string; json: string } => route(app, 'default', 'grpc', 'ratings.default.svc.cluster.local:9080');
  assert.notEqual(g('sticky').hash, g('plain').hash);
  assert.match(g('sticky').json, /"header_name":"x-user"/);
  assert.doesNotMatch(g('plain').json, /hash_policy/);
});

test("a namespace's first VirtualService reaches proxies that were served the public index before", () => {
  const before = snap(SERVICES);
  const vs = `${SERVICES}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: local-reviews, namespace: lonely }
spec:
  hosts: [reviews.default.svc.cluster.local]
  exportTo: [.]
  http:
  - route: [{ destination: { host: reviews.default.svc.cluster.local }, weight: 100 }]
    timeout: 7s
`;
  const r = loadText(vs, 'in.yaml');
  assert.deepEqual(r.errors, []);
  const after = buildSnapshot({ objects: r.objects, errors: [], sequence: 2, now: new Date(0), domain: 'cluster.local', previous: before });
  const engine = new ConfigEngine({ protos });
  engine.setSnapshot(before);
  const h = engine.attach(sidecar('app', 'lonely'));
  const route = (): string => JSON.stringify(protos.decode(TypeUrl.Route, engine.resources(h, TypeUrl.Route, undefined).resources.get('9080')?.bytes ?? new Uint8Array()));
  assert.doesNotMatch(route(), /"seconds":7/);
  engine.setSnapshot(after);
  assert.match(route(), /"seconds":7/, 'the namespace now has its own index, with its own VirtualService');
});
