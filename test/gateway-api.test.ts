/**
 * The Gateway API in the model: validation (the CRDs' schema and CEL rules, with field paths),
 * the wanted status of every object (accepted, conflicting and unresolved cases, with the spec's
 * reasons), and what the conversion hands the generators (GAMMA precedence over
 * VirtualServices, per-namespace gateway selection).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { buildSnapshot } from '../src/model/build';
import type { MeshSnapshot } from '../src/model/snapshot';
import { loadText } from '../src/sources/file-source';
import { gatewayApiStatusSource, gatewayApiStatuses } from '../src/gatewayapi/status';
import type { GatewayApiCondition, GatewayApiStatus } from '../src/gatewayapi/status-types';
import { toPercent } from '../src/gatewayapi/routes';
import { parseProxy } from '../src/model/proxy';
import { ConfigEngine } from '../src/xds/engine';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { ResourceValidator } from '../src/xds/validate-rules';

const GW = 'gateway.networking.k8s.io/v1';

function snap(yaml: string): MeshSnapshot {
  const r = loadText(yaml, 'in.yaml');
  assert.deepEqual(r.errors, [], 'inputs are valid');
  return buildSnapshot({ objects: r.objects, errors: [], sequence: 1, now: new Date(0), domain: 'cluster.local' });
}

function refused(yaml: string): Array<{ path: string; message: string }> {
  const r = loadText(yaml, 'in.yaml');
  assert.equal(r.objects.length, 0, 'the object is left out');
  return r.errors.flatMap((e) => e.errors.map((f) => ({ path: f.path, message: f.message })));
}

function statusOf(s: MeshSnapshot, kind: string, name: string): GatewayApiStatus {
  const found = gatewayApiStatuses(s).find((x) => x.kind === kind && x.name === name);
  assert.ok(found, `${kind} ${name} has a status`);
  return found;
}

function conditions(list: unknown): Record<string, string> {
  return Object.fromEntries((list as GatewayApiCondition[]).map((c) => [c.type, `${c.status}/${c.reason}`]));
}

function parentConditions(s: MeshSnapshot, kind: string, name: string): Array<Record<string, string>> {
  const parents = statusOf(s, kind, name).status['parents'] as Array<{ conditions: GatewayApiCondition[]; controllerName: string }>;
  for (const p of parents) assert.equal(p.controllerName, 'istio.io/gateway-controller');
  return parents.map((p) => conditions(p.conditions));
}

const BASE = `
apiVersion: ${GW}
kind: GatewayClass
metadata: { name: istio }
spec: { controllerName: istio.io/gateway-controller }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: apps }
spec: { clusterIP: 10.96.1.1, ports: [{ name: http, port: 8080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: gw-istio, namespace: gws }
spec: { clusterIP: 10.96.0.9, ports: [{ name: http, port: 80 }] }
---
apiVersion: ${GW}
kind: Gateway
metadata: { name: gw, namespace: gws }
spec:
  gatewayClassName: istio
  listeners:
  - { name: http, port: 80, protocol: HTTP, hostname: "*.example.com", allowedRoutes: { namespaces: { from: All } } }
  - { name: same-ns, port: 8080, protocol: HTTP }
`;

test('validation: the CEL and schema rules refuse bad objects with field paths', () => {
  const errs = refused(`
apiVersion: ${GW}
kind: Gateway
metadata: { name: gw, namespace: gws }
spec:
  gatewayClassName: istio
  listeners:
  - { name: a, port: 80, protocol: HTTP, tls: { mode: Terminate, certificateRefs: [{ name: c }] } }
  - { name: a, port: 443, protocol: HTTPS }
  - { name: b, port: 9000, protocol: TCP, hostname: x.example.com }
`);
  const paths = errs.map((e) => e.path);
  assert.ok(paths.includes('spec.listeners[0].tls'), JSON.stringify(errs));
  assert.ok(paths.includes('spec.listeners[1].name'), 'listener names are unique');
  assert.ok(paths.includes('spec.listeners[1].tls'), 'HTTPS needs tls');
  assert.ok(paths.includes('spec.listeners[2].hostname'), 'TCP takes no hostname');

  const route = refused(`
apiVersion: ${GW}
kind: HTTPRoute
metadata: { name: r, namespace: apps }
spec:
  parentRefs: [{ name: gw }]
  rules:
  - matches: [{ path: { type: Exact, value: "/a//b" } }, { path: { type: PathPrefix, value: "nope" } }]
    filters:
    - { type: RequestHeaderModifier }
    - { type: URLRewrite, urlRewrite: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /x } } }
    - { type: RequestRedirect, requestRedirect: { statusCode: 301 } }
    backendRefs: [{ name: web }]
    timeouts: { request: 1s, backendRequest: 2s }
`);
  const rp = route.map((e) => e.path);
  for (const want of [
    'spec.rules[0].matches[0].path.value',
    'spec.rules[0].matches[1].path.value',
    'spec.rules[0].filters[0].requestHeaderModifier',
    'spec.rules[0].filters[1].urlRewrite.path.type',
    'spec.rules[0].filters',
    'spec.rules[0].backendRefs[0].port',
    'spec.rules[0].timeouts.backendRequest',
  ]) {
    assert.ok(rp.includes(want), `${want} in ${JSON.stringify(route)}`);
  }
  // A Gateway API Gateway is not mistaken for Istio's Gateway, nor Istio's for it.
  assert.deepEqual(
    loadText(`apiVersion: ${GW}\nkind: Gateway\nmetadata: { name: g }\nspec: { gatewayClassName: istio, listeners: [{ name: h, port: 80, protocol: HTTP }] }\n`, 'x.yaml')
      .objects[0]?.kind,
    'KubernetesGateway',
  );
  assert.equal(
    loadText(
      `apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: { name: g }\nspec: { servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ['*'] }] }\n`,
      'x.yaml',
    ).objects[0]?.kind,
    'Gateway',
  );
});

test('status: an accepted Gateway and route — class Accepted, listeners Programmed with attachedRoutes, address from its Service', () => {
  const s = snap(`${BASE}
---
apiVersion: ${GW}
kind: HTTPRoute
metadata: { name: web, namespace: apps }
spec:
  parentRefs: [{ name: gw, namespace: gws, sectionName: http }]
  hostnames: [www.example.com]
  rules: [{ backendRefs: [{ name: web, port: 8080 }] }]
`);
  assert.deepEqual(conditions(statusOf(s, 'GatewayClass', 'istio').status['conditions']), { Accepted: 'True/Accepted' });
  const gw = statusOf(s, 'Gateway', 'gw');
  assert.equal(gw.namespace, 'gws');
  assert.deepEqual(conditions(gw.status['conditions']), { Accepted: 'True/Accepted', Programmed: 'True/Programmed' });
  assert.deepEqual(gw.status['addresses'], [{ type: 'IPAddress', value: '10.96.0.9' }]);
  const listeners = gw.status['listeners'] as Array<{ name: string; attachedRoutes: number; conditions: GatewayApiCondition[]; supportedKinds: unknown }>;
  assert.deepEqual(
    listeners.map((l) => [l.name, l.attachedRoutes]),
    [
      ['http', 1],
      ['same-ns', 0],
    ],
  );
  assert.deepEqual(conditions(listeners[0]?.conditions), {
    Accepted: 'True/Accepted',
    ResolvedRefs: 'True/ResolvedRefs',
    Conflicted: 'False/NoConflicts',
    Programmed: 'True/Programmed',
  });
  assert.deepEqual(listeners[0]?.supportedKinds, [
    { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' },
    { group: 'gateway.networking.k8s.io', kind: 'GRPCRoute' },
  ]);
  assert.deepEqual(parentConditions(s, 'HTTPRoute', 'web'), [{ Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' }]);
  // The source the status writer calls reads the current snapshot.
  const holder: { current?: MeshSnapshot } = {};
  const source = gatewayApiStatusSource(() => holder.current);
  assert.deepEqual(source(), []);
  holder.current = s;
  assert.equal(source().length, 3);
});

test('status: conflicting listeners and routes the listeners do not allow', () => {
  const s = snap(`${BASE}
---
apiVersion: ${GW}
kind: Gateway
metadata: { name: clash, namespace: gws }
spec:
  gatewayClassName: istio
  listeners:
  - { name: web, port: 9000, protocol: HTTP }
  - { name: raw, port: 9000, protocol: TCP }
---
apiVersion: ${GW}
kind: HTTPRoute
metadata: { name: other-ns, namespace: apps }
spec:
  parentRefs: [{ name: gw, namespace: gws, sectionName: same-ns }]
  rules: [{ backendRefs: [{ name: web, port: 8080 }] }]
---
apiVersion: ${GW}
kind: HTTPRoute
metadata: { name: wrong-host, namespace: apps }
spec:
  parentRefs: [{ name: gw, namespace: gws, sectionName: http }]
  hostnames: [www.other.org]
  rules: [{ backendRefs: [{ name: web, port: 8080 }] }]
---
apiVersion: ${GW}
kind: HTTPRoute
metadata: { name: no-listener, namespace: apps }
spec:
  parentRefs: [{ name: gw, namespace: gws, sectionName: missing }, { name: nope, namespace: gws }]
  rules: [{ backendRefs: [{ name: web, port: 8080 }] }]
`);
  const clash = statusOf(s, 'Gateway', 'clash');
  const ls = clash.status['listeners'] as Array<{ conditions: GatewayApiCondition[] }>;
  for (const l of ls) assert.deepEqual(conditions(l.conditions)['Conflicted'], 'True/ProtocolConflict');
  for (const l of ls) assert.deepEqual(conditions(l.conditions)['Programmed'], 'False/Invalid');
  assert.deepEqual(conditions(clash.status['conditions'])['Accepted'], 'True/ListenersNotValid');
  assert.deepEqual(conditions(clash.status['conditions'])['Programmed'], 'False/AddressNotAssigned');
  // A conflicted listener serves nothing.
  assert.equal(
    s.gateways.some((g) => g.meta.name.startsWith('clash-')),
    false,
  );

  assert.equal(parentConditions(s, 'HTTPRoute', 'other-ns')[0]?.['Accepted'], 'False/NotAllowedByListeners');
  assert.equal(parentConditions(s, 'HTTPRoute', 'wrong-host')[0]?.['Accepted'], 'False/NoMatchingListenerHostname');
  assert.deepEqual(
    parentConditions(s, 'HTTPRoute', 'no-listener').map((c) => c['Accepted']),
    ['False/NoMatchingParent', 'False/NoMatchingParent'],
  );
  const gw = statusOf(s, 'Gateway', 'gw').status['listeners'] as Array<{ attachedRoutes: number }>;
  assert.deepEqual(
    gw.map((l) => l.attachedRoutes),
    [0, 0],
    'refused routes are not counted',
  );
});

test('status: unresolved references — BackendNotFound, RefNotPermitted (until a ReferenceGrant), InvalidKind, certificates', () => {
  const routes = `${BASE}
---
apiVersion: v1
kind: Service
metadata: { name: catalog, namespace: shared }
spec: { clusterIP: 10.96.2.1, ports: [{ name: http, port: 8080 }] }
---
apiVersion: ${GW}
kind: HTTPRoute
metadata: { name: broken, namespace: apps }
spec:
  parentRefs: [{ name: gw, namespace: gws, sectionName: http }]
  hostnames: [www.example.com]
  rules:
  - matches: [{ path: { value: /missing } }]
    backendRefs: [{ name: missing, port: 8080 }]
  - matches: [{ path: { value: /shared } }]
    backendRefs: [{ name: catalog, namespace: shared, port: 8080 }]
  - matches: [{ path: { value: /bucket } }]
    backendRefs: [{ group: storage.example.com, kind: Bucket, name: b }]
---
apiVersion: ${GW}
kind: Gateway
metadata: { name: tls, namespace: gws }
spec:
  gatewayClassName: istio
  listeners:
  - { name: https, port: 443, protocol: HTTPS, tls: { certificateRefs: [{ name: cert, namespace: certs }] } }
`;
  const s = snap(routes);
  const parent = statusOf(s, 'HTTPRoute', 'broken').status['parents'] as Array<{ conditions: GatewayApiCondition[] }>;
  const refs = parent[0]?.conditions.find((c) => c.type === 'ResolvedRefs');
  assert.equal(refs?.status, 'False');
  assert.equal(refs?.reason, 'BackendNotFound');
  assert.match(refs?.message ?? '', /spec\.rules\[0\]\.backendRefs\[0\]: backend Service apps\/missing not found/);
  assert.match(refs?.message ?? '', /RefNotPermitted|not permitted/);
  assert.match(refs?.message ?? '', /only Services are supported/);
  // The same problems are config errors (shown in /debug/configz), with field paths.
  const err = s.errors.find((e) => e.name === 'broken');
  assert.deepEqual(
    err?.errors.map((e) => e.path),
    ['spec.rules[0].backendRefs[0]', 'spec.rules[1].backendRefs[0]', 'spec.rules[2].backendRefs[0]'],
  );
  const tls = statusOf(s, 'Gateway', 'tls').status['listeners'] as Array<{ conditions: GatewayApiCondition[] }>;
  assert.equal(conditions(tls[0]?.conditions)['ResolvedRefs'], 'False/RefNotPermitted');

  // ReferenceGrants make both references permitted.
  const granted = snap(`${routes}
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: { name: routes, namespace: shared }
spec:
  from: [{ group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: apps }]
  to: [{ group: "", kind: Service, name: catalog }]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: { name: gateways, namespace: certs }
spec:
  from: [{ group: gateway.networking.k8s.io, kind: Gateway, namespace: gws }]
  to: [{ group: "", kind: Secret }]
---
apiVersion: v1
kind: Secret
metadata: { name: cert, namespace: certs }
type: kubernetes.io/tls
stringData: { tls.crt: x, tls.key: y }
`);
  const after = granted.errors.find((e) => e.name === 'broken');
  assert.deepEqual(
    after?.errors.map((e) => e.path),
    ['spec.rules[0].backendRefs[0]', 'spec.rules[2].backendRefs[0]'],
    'the granted reference resolves',
  );
  const tlsAfter = statusOf(granted, 'Gateway', 'tls').status['listeners'] as Array<{ conditions: GatewayApiCondition[] }>;
  assert.equal(conditions(tlsAfter[0]?.conditions)['ResolvedRefs'], 'True/ResolvedRefs');
  // The listener names the Secret in istiod's cross-namespace form, and SDS may serve exactly that one to gws.
  const server = granted.gateways.find((g) => g.meta.name === 'tls-istio-autogenerated-k8s-gateway-https')?.spec.servers[0];
  assert.equal(server?.tls?.credentialName, 'kubernetes-gateway://certs/cert');
  assert.deepEqual(granted.gatewayCredentialGrants, ['gws|certs/cert']);
  assert.deepEqual(s.gatewayCredentialGrants, [], 'none without the grant');
  // Calls to an unresolved backend get a 500; the resolved one is routed.
  const vs = granted.virtualServices.find((v) => v.hosts.includes('www.example.com'));
  const http = vs?.spec.http ?? [];
  assert.deepEqual(http.find((r) => r.match?.[0]?.uri?.exact === '/missing')?.directResponse, { status: 500 });
  assert.equal(http.find((r) => r.match?.[0]?.uri?.exact === '/shared')?.route?.[0]?.destination.host, 'catalog.shared.svc.cluster.local');
});

test('GAMMA: a route on a Service takes precedence over a VirtualService for its host; a consumer route stays in its namespace', () => {
  const s = snap(`${BASE}
---
apiVersion: v1
kind: Service
metadata: { name: web-v2, namespace: apps }
spec: { clusterIP: 10.96.1.2, ports: [{ name: http, port: 8080 }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: apps }
spec: { hosts: [web], http: [{ route: [{ destination: { host: web } }] }] }
---
# A VirtualService for the same host in a client namespace would win there over one elsewhere; not over the HTTPRoute.
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web-from-default, namespace: default }
spec: { hosts: [web.apps.svc.cluster.local], http: [{ route: [{ destination: { host: web.apps.svc.cluster.local } }] }] }
---
apiVersion: ${GW}
kind: HTTPRoute
metadata: { name: web, namespace: apps }
spec:
  parentRefs: [{ group: "", kind: Service, name: web, port: 8080 }]
  rules: [{ backendRefs: [{ name: web-v2, port: 8080 }] }]
---
apiVersion: ${GW}
kind: HTTPRoute
metadata: { name: consumer, namespace: client }
spec:
  parentRefs: [{ group: "", kind: Service, name: web-v2, namespace: apps }]
  rules: [{ backendRefs: [{ name: web, namespace: apps, port: 8080 }] }]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: { name: client, namespace: apps }
spec:
  from: [{ group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: client }]
  to: [{ group: "", kind: Service }]
`);
  const host = 'web.apps.svc.cluster.local';
  for (const ns of ['apps', 'default', 'client']) {
    const vs = s.meshVirtualServicesIn.get(ns)?.get(host);
    assert.equal(vs?.meta.annotations['internal.istio.io/route-semantics'], 'gateway', `the HTTPRoute wins in ${ns}`);
    assert.equal(vs?.spec.http?.[0]?.route?.[0]?.destination.host, 'web-v2.apps.svc.cluster.local');
    assert.equal(vs?.spec.http?.[0]?.match?.[0]?.port, 8080, 'the parentRef port becomes a port match');
  }
  const v2 = 'web-v2.apps.svc.cluster.local';
  assert.equal(s.meshVirtualServicesIn.get('client')?.get(v2)?.spec.http?.[0]?.route?.[0]?.destination.host, host, 'the consumer route applies in its namespace');
  assert.equal(s.meshVirtualServicesIn.get('apps')?.get(v2), undefined, 'and nowhere else');
  assert.deepEqual(parentConditions(s, 'HTTPRoute', 'consumer'), [{ Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' }]);
});

test('ingress: Gateways from the Gateway API select their own pods in their own namespace only', () => {
  const s = snap(BASE);
  const gws = s.gateways.filter((g) => g.meta.namespace === 'gws');
  assert.deepEqual(
    gws.map((g) => [g.meta.name, g.spec.selector]),
    [
      ['gw-istio-autogenerated-k8s-gateway-http', { 'gateway.networking.k8s.io/gateway-name': 'gw' }],
      ['gw-istio-autogenerated-k8s-gateway-same-ns', { 'gateway.networking.k8s.io/gateway-name': 'gw' }],
    ],
  );
});

test('weights: relative weights become percentages that sum to 100', () => {
  assert.deepEqual(toPercent([1, 1]), [50, 50]);
  assert.deepEqual(toPercent([1, 2]), [33, 67]);
  assert.deepEqual(toPercent([1, 1, 1]), [34, 33, 33]);
  assert.deepEqual(toPercent([0, 5]), [0, 100]);
});

test('push engine: a route edit rebuilds only what reads it, and equals a fresh build', () => {
  const protos = new EnvoyProtos();
  const engine = new ConfigEngine({ protos, checker: new ResourceValidator(protos), checkFromScratch: true });
  const world = (meshBackend: string): string => `${BASE}
---
apiVersion: v1
kind: Service
metadata: { name: web-v2, namespace: apps }
spec: { clusterIP: 10.96.1.2, ports: [{ name: http, port: 8080 }] }
---
apiVersion: ${GW}
kind: HTTPRoute
metadata: { name: mesh, namespace: apps }
spec:
  parentRefs: [{ group: "", kind: Service, name: web }]
  rules: [{ backendRefs: [{ name: ${meshBackend}, port: 8080 }] }]
---
apiVersion: ${GW}
kind: HTTPRoute
metadata: { name: ingress, namespace: gws }
spec:
  parentRefs: [{ name: gw, sectionName: same-ns }]
  rules: [{ backendRefs: [{ name: web, namespace: apps, port: 8080 }] }]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: { name: gws, namespace: apps }
spec:
  from: [{ group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: gws }]
  to: [{ group: "", kind: Service }]
`;
  const build = (yaml: string, previous?: MeshSnapshot): MeshSnapshot => {
    const r = loadText(yaml, 'in.yaml');
    assert.deepEqual(r.errors, []);
    return buildSnapshot({ objects: r.objects, errors: [], sequence: 1, now: new Date(0), domain: 'cluster.local', ...(previous ? { previous } : {}) });
  };
  const first = build(world('web'));
  engine.setSnapshot(first);
  const sidecar = engine.attach(parseProxy('sidecar~10.244.1.5~client-1.apps~apps.svc.cluster.local', { NAMESPACE: 'apps' }));
  const gateway = engine.attach(
    parseProxy('router~10.244.0.9~gw-istio-1.gws~gws.svc.cluster.local', { NAMESPACE: 'gws', LABELS: { 'gateway.networking.k8s.io/gateway-name': 'gw' } }),
  );
  const gwRoutes = engine.resources(gateway, TypeUrl.Route, new Set(['http.8080']));
  assert.ok(JSON.stringify([...gwRoutes.resources.keys()]).includes('http.8080'), 'the gateway serves its listener route');
  const sideRoutes = engine.resources(sidecar, TypeUrl.Route, new Set(['8080']));
  engine.setSnapshot(build(world('web-v2'), first));
  assert.equal(engine.resources(gateway, TypeUrl.Route, new Set(['http.8080'])), gwRoutes, "the gateway's routes are reused as they were");
  const after = engine.resources(sidecar, TypeUrl.Route, new Set(['8080']));
  assert.notEqual(after, sideRoutes, "the sidecar's routes are rebuilt");
  assert.ok(
    Buffer.from(after.resources.get('8080')?.bytes ?? new Uint8Array())
      .toString('latin1')
      .includes('web-v2.apps'),
    'and route to the new backend',
  );
});

test('robustness: mutated Gateway API objects never crash the build, and the untouched ones are still served', () => {
  const dir = path.join(__dirname, 'golden', 'gateway-api', 'in');
  const docs = fs
    .readdirSync(dir)
    .sort()
    .flatMap((f) => YAML.parseAllDocuments(fs.readFileSync(path.join(dir, f), 'utf8')).map((d) => d.toJS() as Record<string, unknown>));
  const gatewayApi = docs.filter((d) => String(d['apiVersion']).startsWith('gateway.networking.k8s.io/'));
  const others = docs.filter((d) => !gatewayApi.includes(d));
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const ODD: unknown[] = [null, 0, -1, 70000, 1e308, '', '*', '/', '//x', '%2f', 'a b', true, [], {}, [1, 'x'], { x: 1 }, 'Exact', 'Service', 'kubernetes-gateway://x/y'];
  function mutate(v: unknown): unknown {
    if (Array.isArray(v)) {
      if (v.length === 0 || rnd(5) === 0) return rnd(2) ? ODD[rnd(ODD.length)] : [...v, ...v];
      const i = rnd(v.length);
      const out = [...v];
      if (rnd(6) === 0) out.splice(i, 1);
      else out[i] = mutate(out[i]);
      return out;
    }
    if (v && typeof v === 'object') {
      const keys = Object.keys(v);
      if (keys.length === 0 || rnd(6) === 0) return ODD[rnd(ODD.length)];
      const k = keys[rnd(keys.length)] ?? '';
      const out: Record<string, unknown> = { ...(v as Record<string, unknown>) };
      if (rnd(6) === 0) delete out[k];
      else out[k] = mutate(out[k]);
      return out;
    }
    return ODD[rnd(ODD.length)];
  }
  for (let round = 0; round < 200; round++) {
    const victim = rnd(gatewayApi.length);
    const objects = gatewayApi.map((o, i) => (i === victim ? { ...o, spec: mutate(o['spec']) } : o));
    const text = [...others, ...objects].map((o) => JSON.stringify(o)).join('\n---\n');
    const r = loadText(text, 'fuzz.yaml');
    let s: MeshSnapshot | undefined;
    assert.doesNotThrow(
      () => {
        s = buildSnapshot({ objects: r.objects, errors: r.errors, sequence: round, now: new Date(0), domain: 'cluster.local' });
      },
      `round ${round}: ${JSON.stringify(objects[victim]).slice(0, 300)}`,
    );
    assert.ok(s);
    for (const e of s.errors) for (const f of e.errors) assert.equal(typeof f.path, 'string');
    // The Gateway itself untouched: its listeners are still served.
    if (gatewayApi[victim]?.['kind'] !== 'Gateway' && gatewayApi[victim]?.['kind'] !== 'GatewayClass') {
      assert.ok(
        s.gateways.some((g) => g.meta.name === 'web-gw-istio-autogenerated-k8s-gateway-http'),
        `round ${round}: the Gateway is still served`,
      );
    }
  }
});
