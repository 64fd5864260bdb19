/**
 * The model for Istio's scoping rules: ServiceEntry and WorkloadEntry in the registry, exportTo,
 * which VirtualService and DestinationRule a proxy gets, rule merging, Secrets and localities.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildSnapshot } from '../src/model/build';
import { destinationRuleFor, parseLocality, proxyLocality, virtualServiceFor, visibleServices } from '../src/model/lookup';
import { parseProxy } from '../src/model/proxy';
import { loadText } from '../src/sources/file-source';

function snap(yaml: string) {
  const r = loadText(yaml, 'in.yaml');
  assert.deepEqual(r.errors, []);
  return buildSnapshot({ objects: r.objects, errors: [], sequence: 1, now: new Date(0), domain: 'cluster.local' });
}

const doc = (s: string): string => `---\n${s.trim()}\n`;

test('ServiceEntry hosts join the registry with their resolution, ports and endpoints', () => {
  const s = snap(
    doc(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: external, namespace: shop }
spec:
  hosts: [api.example.com]
  ports: [{ number: 443, name: https, protocol: TLS }]
  resolution: DNS
`) +
      doc(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: static, namespace: shop }
spec:
  hosts: [db.internal]
  addresses: [240.0.0.1]
  location: MESH_INTERNAL
  ports: [{ number: 5432, name: tcp-pg, protocol: TCP, targetPort: 15432 }]
  resolution: STATIC
  endpoints:
  - { address: 10.1.0.1, labels: { version: a }, locality: us-east/zone-1, weight: 3 }
  - { address: 10.1.0.2, ports: { tcp-pg: 25432 } }
`) +
      doc(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: wild, namespace: shop }
spec:
  hosts: ["*.wikipedia.org"]
  ports: [{ number: 80, name: http, protocol: HTTP }]
`),
  );
  const ext = s.serviceByHost.get('api.example.com');
  assert.equal(ext?.resolution, 'DNS');
  assert.equal(ext?.meshExternal, true);
  assert.equal(ext?.ports[0]?.protocol, 'TLS');
  assert.deepEqual(
    s.endpoints
      .get('api.example.com')
      ?.get(443)
      ?.map((e) => [e.address, e.port]),
    [['api.example.com', 443]],
    'DNS without endpoints resolves the host itself',
  );
  const db = s.serviceByHost.get('db.internal');
  assert.equal(db?.resolution, 'EDS');
  assert.equal(db?.meshExternal, false);
  assert.equal(db?.clusterIP, '240.0.0.1');
  assert.deepEqual(
    s.endpoints
      .get('db.internal')
      ?.get(5432)
      ?.map((e) => [e.address, e.port, e.weight, e.locality.region, e.locality.zone]),
    [
      ['10.1.0.1', 15432, 3, 'us-east', 'zone-1'],
      ['10.1.0.2', 25432, undefined, undefined, undefined],
    ],
  );
  assert.equal(s.serviceByHost.get('*.wikipedia.org')?.resolution, 'PASSTHROUGH', 'resolution NONE is the default');
  assert.equal(s.endpoints.get('*.wikipedia.org'), undefined);
});

test('WorkloadEntries are endpoints of Services and ServiceEntries that select them', () => {
  const s = snap(
    doc(`
apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: shop }
spec: { selector: { app: ratings }, ports: [{ name: http, port: 9080, targetPort: 8080 }] }
`) +
      doc(`
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ratings-vm, namespace: shop }
spec: { address: 10.2.0.7, labels: { app: ratings, version: vm }, serviceAccount: ratings, locality: eu/west-1 }
`) +
      doc(`
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: other-ns, namespace: elsewhere }
spec: { address: 10.2.0.8, labels: { app: ratings } }
`) +
      doc(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: mongo, namespace: shop }
spec:
  hosts: [mongo.shop.mesh]
  location: MESH_INTERNAL
  ports: [{ number: 27017, name: mongo, protocol: MONGO }]
  resolution: STATIC
  workloadSelector: { labels: { app: mongo } }
`) +
      doc(`
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: mongo-vm, namespace: shop }
spec: { address: 10.3.0.1, labels: { app: mongo }, ports: { mongo: 27018 } }
`) +
      doc(`
apiVersion: v1
kind: Pod
metadata: { name: mongo-0, namespace: shop, labels: { app: mongo, topology.kubernetes.io/region: eu, topology.kubernetes.io/zone: eu-1a } }
status: { podIP: 10.0.0.40 }
`),
  );
  assert.deepEqual(
    s.endpoints
      .get('ratings.shop.svc.cluster.local')
      ?.get(9080)
      ?.map((e) => [e.address, e.port, e.serviceAccount, e.locality.region]),
    [['10.2.0.7', 8080, 'ratings', 'eu']],
    'same-namespace WorkloadEntry only, on the numeric targetPort',
  );
  assert.deepEqual(
    s.endpoints
      .get('mongo.shop.mesh')
      ?.get(27017)
      ?.map((e) => [e.address, e.port, e.locality.zone ?? '']),
    [
      ['10.0.0.40', 27017, 'eu-1a'],
      ['10.3.0.1', 27018, ''],
    ],
  );
});

test('a ServiceEntry host that a Service already defines is reported and left out', () => {
  const s = snap(
    doc(`
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec: { ports: [{ name: http, port: 80 }] }
`) +
      doc(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: dup, namespace: shop }
spec: { hosts: [web.shop.svc.cluster.local], ports: [{ number: 80, name: http }], resolution: DNS }
`),
  );
  assert.equal(s.serviceByHost.get('web.shop.svc.cluster.local')?.source.kind, 'Service');
  assert.equal(s.errors.length, 1);
  assert.equal(s.errors[0]?.errors[0]?.path, 'spec.hosts[0]');
  assert.match(s.errors[0]?.errors[0]?.message ?? '', /already defined by Service shop\/web/);
});

const EXPORTS =
  doc(`
apiVersion: v1
kind: Service
metadata: { name: private, namespace: team-a, annotations: { networking.istio.io/exportTo: "." } }
spec: { ports: [{ name: http, port: 80 }] }
`) +
  doc(`
apiVersion: v1
kind: Service
metadata: { name: shared, namespace: team-a, annotations: { networking.istio.io/exportTo: "team-b, team-a" } }
spec: { ports: [{ name: http, port: 80 }] }
`) +
  doc(`
apiVersion: v1
kind: Service
metadata: { name: public, namespace: team-a }
spec: { ports: [{ name: http, port: 80 }] }
`) +
  doc(`
apiVersion: v1
kind: Namespace
metadata: { name: team-b }
`) +
  doc(`
apiVersion: v1
kind: Namespace
metadata: { name: team-c }
`);

test('exportTo on Services: each namespace sees only what is exported to it', () => {
  const s = snap(EXPORTS);
  const names = (ns: string): string[] => visibleServices(s, ns).map((x) => x.name);
  assert.deepEqual(names('team-a'), ['private', 'public', 'shared']);
  assert.deepEqual(names('team-b'), ['public', 'shared']);
  assert.deepEqual(names('team-c'), ['public']);
  assert.deepEqual(names('never-seen'), ['public'], 'an unknown namespace sees public services only');
});

test('VirtualServices: the one in the proxy namespace wins; exportTo "." hides one elsewhere', () => {
  const vs = (name: string, ns: string, exportTo?: string): string =>
    doc(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: ${ns} }
spec:
  hosts: [public.team-a.svc.cluster.local]
  ${exportTo ? `exportTo: ["${exportTo}"]` : ''}
  http: [{ route: [{ destination: { host: public.team-a.svc.cluster.local } }] }]
`);
  const s = snap(EXPORTS + vs('owner', 'team-a') + vs('override', 'team-b', '.'));
  const host = 'public.team-a.svc.cluster.local';
  assert.equal(virtualServiceFor(s, 'team-a', host)?.meta.name, 'owner');
  assert.equal(virtualServiceFor(s, 'team-b', host)?.meta.name, 'override', "a proxy's own namespace first");
  assert.equal(virtualServiceFor(s, 'team-c', host)?.meta.name, 'owner', 'exportTo "." keeps team-b\'s out of team-c');
  assert.deepEqual(s.errors, [], 'different namespaces do not conflict');
});

test('DestinationRules: proxy namespace, then the service namespace, then the root namespace; selectors; merging', () => {
  const dr = (name: string, ns: string, extra = ''): string =>
    doc(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: ${ns} }
spec:
  host: public.team-a.svc.cluster.local
${extra}
`);
  const host = 'public.team-a.svc.cluster.local';
  const s = snap(
    EXPORTS +
      dr('root', 'istio-system', '  trafficPolicy: { loadBalancer: { simple: RANDOM } }') +
      dr('svc-ns', 'team-a', '  trafficPolicy: { loadBalancer: { simple: LEAST_REQUEST } }\n  subsets: [{ name: v1, labels: { version: v1 } }]') +
      dr('svc-ns-more', 'team-a', '  subsets: [{ name: v2, labels: { version: v2 } }]') +
      dr('local', 'team-b', '  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }') +
      dr('selected', 'team-b', '  workloadSelector: { matchLabels: { app: canary } }\n  trafficPolicy: { loadBalancer: { simple: PASSTHROUGH } }') +
      dr('private', 'team-x', '  exportTo: ["."]\n  trafficPolicy: { loadBalancer: { simple: RANDOM } }'),
  );
  const pick = (ns: string, labels: Record<string, string> = {}) => destinationRuleFor(s, ns, labels, host);
  assert.deepEqual(pick('team-a')?.sources, ['team-a/svc-ns', 'team-a/svc-ns-more'], 'rules for one host in one namespace merge');
  assert.deepEqual(
    pick('team-a')?.spec.subsets?.map((x) => x.name),
    ['v1', 'v2'],
  );
  assert.equal(pick('team-a')?.spec.trafficPolicy?.loadBalancer?.simple, 'LEAST_REQUEST', 'the first keeps its policy');
  assert.equal(pick('team-b')?.meta.name, 'local');
  assert.equal(pick('team-b', { app: 'canary' })?.meta.name, 'selected', 'a matching workloadSelector wins in its namespace');
  assert.equal(pick('team-c')?.meta.name, 'svc-ns', "the service's namespace before the root namespace");
  assert.equal(pick('team-x')?.meta.name, 'private');
  const noSvcNs = destinationRuleFor(s, 'team-c', {}, 'unknown.example.com');
  assert.equal(noSvcNs, undefined);
});

test('a later rule for the same host and namespace keeps its subsets but not its policy, and says so', () => {
  const s = snap(
    doc(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: a, namespace: shop }
spec: { host: web, trafficPolicy: { loadBalancer: { simple: RANDOM } }, subsets: [{ name: v1, labels: { v: "1" } }] }
`) +
      doc(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: b, namespace: shop }
spec: { host: web, trafficPolicy: { loadBalancer: { simple: LEAST_REQUEST } }, subsets: [{ name: v1, labels: { v: "x" } }, { name: v2, labels: { v: "2" } }] }
`),
  );
  const dr = destinationRuleFor(s, 'shop', {}, 'web.shop.svc.cluster.local');
  assert.deepEqual(
    dr?.spec.subsets?.map((x) => [x.name, x.labels?.v]),
    [
      ['v1', '1'],
      ['v2', '2'],
    ],
  );
  assert.equal(dr?.spec.trafficPolicy?.loadBalancer?.simple, 'RANDOM');
  assert.deepEqual(
    s.errors.map((e) => [e.name, e.errors.map((x) => x.path)]),
    [['b', ['spec.trafficPolicy', 'spec.subsets[0].name']]],
  );
});

test('Secrets: TLS material decoded from kubernetes.io/tls and generic keys; others ignored', () => {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const s = snap(
    doc(`
apiVersion: v1
kind: Secret
metadata: { name: web-cert, namespace: istio-system }
type: kubernetes.io/tls
data: { tls.crt: ${b64('CERT')}, tls.key: ${b64('KEY')}, ca.crt: ${b64('CA')} }
`) +
      doc(`
apiVersion: v1
kind: Secret
metadata: { name: generic, namespace: istio-system }
stringData: { cert: C2, key: K2 }
`) +
      doc(`
apiVersion: v1
kind: Secret
metadata: { name: unrelated, namespace: istio-system }
stringData: { password: hunter2 }
`),
  );
  assert.deepEqual({ ...s.secrets.get('istio-system/web-cert') }, { namespace: 'istio-system', name: 'web-cert', certChain: 'CERT', privateKey: 'KEY', caCert: 'CA' });
  assert.equal(s.secrets.get('istio-system/generic')?.certChain, 'C2');
  assert.equal(s.secrets.has('istio-system/unrelated'), false);
});

test('localities: the node wins, then pod labels (istio-locality, then topology labels)', () => {
  const s = snap(
    doc(`
apiVersion: v1
kind: Pod
metadata: { name: a, namespace: shop, labels: { istio-locality: us.us-east-1a.rack7, topology.kubernetes.io/region: ignored } }
status: { podIP: 10.0.0.1 }
`) +
      doc(`
apiVersion: v1
kind: Pod
metadata: { name: b, namespace: shop, labels: { topology.kubernetes.io/region: eu, topology.kubernetes.io/zone: eu-1b } }
status: { podIP: 10.0.0.2 }
`),
  );
  const a = parseProxy('sidecar~10.0.0.1~a.shop~shop.svc.cluster.local', { NAMESPACE: 'shop' });
  assert.deepEqual(proxyLocality(a, s), { region: 'us', zone: 'us-east-1a', subZone: 'rack7' });
  const b = parseProxy('sidecar~10.0.0.2~b.shop~shop.svc.cluster.local', { NAMESPACE: 'shop' });
  assert.deepEqual(proxyLocality(b, s), { region: 'eu', zone: 'eu-1b' });
  const node = parseProxy('sidecar~10.0.0.2~b.shop~shop.svc.cluster.local', { NAMESPACE: 'shop' }, { region: 'ap', zone: 'ap-2', sub_zone: '' });
  assert.deepEqual(proxyLocality(node, s), { region: 'ap', zone: 'ap-2' });
  assert.deepEqual(parseLocality('r/z'), { region: 'r', zone: 'z' });
});
