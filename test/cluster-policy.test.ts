/**
 * DestinationRule traffic policies in CDS/EDS: istiod's merge order (port level inside rule and
 * subset, subset over rule), locality priorities and weights relative to the proxy, the gRPC
 * outlier mapping, cache keys, and which clusters get EDS at all.
 */
import assert from 'node:assert/strict';
import { ConfigEngine } from '../src/xds/engine';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { test } from 'node:test';
import { outboundClusters } from '../src/generate/clusters';
import { endpointResources } from '../src/generate/endpoints';
import { grpcOutlierDetection, mergeTrafficPolicy } from '../src/generate/cluster-policy';
import { type LocalityGroup, applyLocalityLb, lbPriority, localityLbPlan, localityMatch } from '../src/generate/locality';
import type { ProtoObject } from '../src/generate/types';
import { buildSnapshot } from '../src/model/build';
import type { TrafficPolicy } from '../src/model/objects';
import { parseProxy } from '../src/model/proxy';
import type { Locality, MeshSnapshot, ServiceEndpoint } from '../src/model/snapshot';
import { loadText } from '../src/sources/file-source';

// ---- merge order ----

const TOP: TrafficPolicy = {
  loadBalancer: { simple: 'RANDOM' },
  connectionPool: { tcp: { maxConnections: 10 } },
  outlierDetection: { consecutive5xxErrors: 3 },
  tls: { mode: 'ISTIO_MUTUAL' },
  portLevelSettings: [{ port: { number: 9090 }, loadBalancer: { simple: 'LEAST_REQUEST' } }],
};

test('merge: without a subset policy the rule applies, port level replacing all four groups on its port', () => {
  assert.deepEqual(mergeTrafficPolicy(TOP, undefined, 8080), {
    loadBalancer: { simple: 'RANDOM' },
    connectionPool: { tcp: { maxConnections: 10 } },
    outlierDetection: { consecutive5xxErrors: 3 },
    tls: { mode: 'ISTIO_MUTUAL' },
  });
  // Port-level settings do not inherit: pool, outlier detection and TLS fall back to defaults.
  assert.deepEqual(mergeTrafficPolicy(TOP, undefined, 9090), { loadBalancer: { simple: 'LEAST_REQUEST' } });
  assert.equal(mergeTrafficPolicy(undefined, undefined, 80), undefined);
});

test('merge: a subset policy overrides the rule group by group', () => {
  const sub: TrafficPolicy = { loadBalancer: { simple: 'ROUND_ROBIN' }, tls: { mode: 'DISABLE' } };
  assert.deepEqual(mergeTrafficPolicy(TOP, sub, 8080), {
    loadBalancer: { simple: 'ROUND_ROBIN' },
    connectionPool: { tcp: { maxConnections: 10 } },
    outlierDetection: { consecutive5xxErrors: 3 },
    tls: { mode: 'DISABLE' },
  });
  // On 9090 the rule's port-level policy is the base the subset overrides.
  assert.deepEqual(mergeTrafficPolicy(TOP, { tls: { mode: 'SIMPLE' } }, 9090), {
    loadBalancer: { simple: 'LEAST_REQUEST' },
    tls: { mode: 'SIMPLE' },
  });
  // Without a rule policy the subset's stands alone.
  assert.deepEqual(mergeTrafficPolicy(undefined, sub, 8080), sub);
});

test('merge: a subset port-level match replaces every group, even those it leaves unset', () => {
  const sub: TrafficPolicy = {
    outlierDetection: { interval: '1s' },
    portLevelSettings: [{ port: { number: 8080 }, connectionPool: { http: { http2MaxRequests: 1 } } }],
  };
  assert.deepEqual(mergeTrafficPolicy(TOP, sub, 8080), { connectionPool: { http: { http2MaxRequests: 1 } } });
  // Other ports: the subset's own groups over the rule's.
  assert.deepEqual(mergeTrafficPolicy(TOP, sub, 9090), { loadBalancer: { simple: 'LEAST_REQUEST' }, outlierDetection: { interval: '1s' } });
  // tunnel and proxyProtocol come from the subset when it sets them.
  assert.deepEqual(mergeTrafficPolicy({ proxyProtocol: { version: 'V1' } }, { proxyProtocol: { version: 'V2' } }, 80), { proxyProtocol: { version: 'V2' } });
});

// ---- locality ----

function group(locality: Locality, eps: Array<{ labels?: Record<string, string>; weight?: number }> = [{}]): LocalityGroup {
  const endpoints: ServiceEndpoint[] = eps.map((e, i) => ({ address: `10.0.0.${i + 1}`, port: 80, ready: true, labels: e.labels ?? {}, locality, weight: e.weight }));
  return {
    locality,
    endpoints,
    lbEndpoints: endpoints.map((e): ProtoObject => ({
      endpoint: { address: { socket_address: { address: e.address, port_value: 80 } } },
      load_balancing_weight: { value: e.weight ?? 1 },
    })),
    weight: endpoints.reduce((s, e) => s + (e.weight ?? 1), 0),
    priority: 0,
  };
}

const A1 = { region: 'us-east', zone: 'us-east-1a' };
const A1X = { region: 'us-east', zone: 'us-east-1a', subZone: 'rack-9' };
const A2 = { region: 'us-east', zone: 'us-east-1b' };
const EU = { region: 'eu-west', zone: 'eu-west-1a' };
const AP = { region: 'ap-south', zone: 'ap-south-1a' };

function priorities(groups: LocalityGroup[]): Record<string, number> {
  return Object.fromEntries(groups.map((g) => [`${g.locality.region}/${g.locality.zone}/${g.locality.subZone ?? ''}:${g.endpoints.map((e) => e.address).join(',')}`, g.priority]));
}

test('locality: lbPriority ranks subzone, zone, region, elsewhere', () => {
  assert.equal(lbPriority(A1, A1), 0);
  assert.equal(lbPriority(A1, A1X), 1);
  assert.equal(lbPriority(A1, A2), 2);
  assert.equal(lbPriority(A1, EU), 3);
  assert.equal(lbPriority({}, {}), 0);
  assert.equal(localityMatch(A1X, 'us-east/*'), true);
  assert.equal(localityMatch(A1X, 'us-east/us-east-1a'), true);
  assert.equal(localityMatch(A1X, 'us-east/us-east-1b'), false);
  assert.equal(localityMatch(EU, '*'), true);
});

test('locality: default failover gives contiguous priorities by distance from the proxy', () => {
  const plan = localityLbPlan({ outlierDetection: {} });
  assert.ok(plan);
  const out = applyLocalityLb([group(AP), group(EU), group(A1), group(A1X), group(A2)], A1, {}, plan, true);
  // raw 3, 3, 0, 1, 2 → same, compacted without gaps
  assert.deepEqual(
    out.map((g) => g.priority),
    [3, 3, 0, 1, 2],
  );
});

test('locality: failover moves the named region ahead of the other remote regions', () => {
  const plan = localityLbPlan({ outlierDetection: {}, loadBalancer: { localityLbSetting: { failover: [{ from: 'us-east', to: 'eu-west' }] } } });
  assert.ok(plan);
  const out = applyLocalityLb([group(AP), group(EU), group(A1), group(A2)], A1, {}, plan, true);
  assert.deepEqual(
    out.map((g) => g.priority),
    [3, 2, 0, 1],
  );
  // A proxy in another region is unaffected by the us-east rule.
  const eu = applyLocalityLb([group(AP), group(EU), group(A1)], EU, {}, plan, true);
  assert.deepEqual(
    eu.map((g) => g.priority),
    [1, 0, 1],
  );
});

test('locality: failoverPriority splits localities by matching labels, overrides pin a value', () => {
  const plan = localityLbPlan({
    outlierDetection: {},
    loadBalancer: { localityLbSetting: { failoverPriority: ['topology.kubernetes.io/region', 'tier=gold'] } },
  });
  assert.ok(plan);
  const groups = [group(A1, [{ labels: { tier: 'gold' } }, { labels: { tier: 'silver' } }]), group(EU, [{ labels: { tier: 'gold' } }])];
  const out = applyLocalityLb(groups, A1, { 'topology.kubernetes.io/region': 'us-east', tier: 'bronze' }, plan, true);
  assert.deepEqual(priorities(out), { 'us-east/us-east-1a/:10.0.0.1': 0, 'us-east/us-east-1a/:10.0.0.2': 1, 'eu-west/eu-west-1a/:10.0.0.1': 2 });
  // Inline (DNS) assignments take no label priorities, as istiod.
  assert.deepEqual(
    applyLocalityLb([group(A1), group(EU)], A1, { tier: 'gold' }, plan, false).map((g) => g.priority),
    [0, 0],
  );
});

test('locality: distribute sets weights from the first matching rule and empties unnamed localities', () => {
  const plan = localityLbPlan({ loadBalancer: { localityLbSetting: { distribute: [{ from: 'us-east/*', to: { 'us-east/us-east-1a': 70, 'eu-west/*': 30 } }] } } });
  assert.ok(plan, 'distribute applies without outlier detection');
  const out = applyLocalityLb([group(A1, [{}, {}]), group(EU, [{ weight: 3 }]), group(AP)], A1X, {}, plan, true);
  assert.deepEqual(
    out.map((g) => [g.weight, g.lbEndpoints.length]),
    [
      [70, 2],
      [30, 1],
      [1, 0],
    ],
  );
});

test('locality: without outlier detection (or when disabled) endpoints do not depend on the proxy', () => {
  assert.equal(localityLbPlan(undefined), undefined);
  assert.equal(localityLbPlan({ loadBalancer: { localityLbSetting: { failover: [{ from: 'a', to: 'b' }] } } }), undefined);
  assert.equal(localityLbPlan({ outlierDetection: {}, loadBalancer: { localityLbSetting: { enabled: false } } }), undefined);
  assert.ok(localityLbPlan({ outlierDetection: {} }), 'the mesh default (enabled) applies once outlier detection is set');
});

// ---- outlier detection for gRPC ----

test('gRPC outlier detection: consecutive errors become failure-percentage ejection', () => {
  assert.equal(grpcOutlierDetection(undefined), undefined);
  assert.deepEqual(grpcOutlierDetection({ consecutive5xxErrors: 4, interval: '2s', baseEjectionTime: '30s', maxEjectionPercent: 40 }), {
    enforcing_success_rate: { value: 0 },
    interval: { seconds: 2, nanos: 0 },
    base_ejection_time: { seconds: 30, nanos: 0 },
    max_ejection_percent: { value: 40 },
    failure_percentage_threshold: { value: 85 },
    enforcing_failure_percentage: { value: 100 },
    failure_percentage_minimum_hosts: { value: 1 },
    failure_percentage_request_volume: { value: 4 },
  });
  // Unset → Envoy's default 5; 0 turns 5xx off and gateway errors take over; both off → none.
  assert.deepEqual(grpcOutlierDetection({})?.failure_percentage_request_volume, { value: 5 });
  assert.deepEqual(grpcOutlierDetection({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 2 })?.failure_percentage_request_volume, { value: 2 });
  assert.equal(grpcOutlierDetection({ consecutive5xxErrors: 0 })?.enforcing_failure_percentage, undefined);
});

// ---- generation: keys, EDS presence, TLS by proxy type ----

const MESH = `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec: { clusterIP: 10.96.0.5, ports: [{ name: http, port: 80 }] }
---
apiVersion: v1
kind: Pod
metadata: { name: web-a, namespace: shop, labels: { app: web, topology.kubernetes.io/region: r1 } }
status: { podIP: 10.0.0.1 }
---
apiVersion: v1
kind: Pod
metadata: { name: web-b, namespace: shop, labels: { app: web, topology.kubernetes.io/region: r2 } }
status: { podIP: 10.0.0.2 }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-1, namespace: shop, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: 80 }]
endpoints:
- { addresses: [10.0.0.1], targetRef: { kind: Pod, name: web-a } }
- { addresses: [10.0.0.2], targetRef: { kind: Pod, name: web-b } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web, namespace: shop }
spec:
  host: web
  trafficPolicy:
    tls: { mode: SIMPLE, credentialName: web-ca }
  subsets:
  - name: failover
    labels: { app: web }
    trafficPolicy: { outlierDetection: { consecutive5xxErrors: 2 } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext, namespace: shop }
spec:
  hosts: [ext.example.com]
  resolution: DNS
  ports: [{ number: 443, name: tls, protocol: TLS }]
`;

function snapshot(): MeshSnapshot {
  const r = loadText(MESH, 'in.yaml');
  assert.deepEqual(r.errors, []);
  const s = buildSnapshot({ objects: r.objects, errors: [], sequence: 1, now: new Date(0), domain: 'cluster.local' });
  assert.deepEqual(s.errors, []);
  return s;
}

function proxyIn(region: string, type: 'sidecar' | 'router' = 'sidecar') {
  return parseProxy(`${type}~10.1.0.1~client-${region}.shop~shop.svc.cluster.local`, { NAMESPACE: 'shop' }, { region });
}

test('EDS depends on the proxy locality only where locality load balancing applies', () => {
  const snap = snapshot();
  // One engine for both proxies, as the server has: what it shares, it shares by what was read.
  const engine = new ConfigEngine({ protos: new EnvoyProtos() });
  engine.setSnapshot(snap);
  // The same pod name for both, so they differ in locality alone.
  const at = (region: string) => parseProxy('sidecar~10.1.0.1~client.shop~shop.svc.cluster.local', { NAMESPACE: 'shop' }, { region });
  const eds = (region: string): ReadonlyMap<string, { hash: string }> => engine.resources(engine.attach(at(region)), TypeUrl.Endpoint, undefined).resources;
  const r1 = eds('r1');
  const computed = engine.stats().resources.computed;
  const r2 = eds('r2');
  const plain = 'outbound|80||web.shop.svc.cluster.local';
  const failover = 'outbound|80|failover|web.shop.svc.cluster.local';
  assert.equal(r1.get(plain)?.hash, r2.get(plain)?.hash, 'no outlier detection: the same for both localities');
  assert.notEqual(r1.get(failover)?.hash, r2.get(failover)?.hash, 'failover: per locality');
  // The second proxy differs in locality only: just the failover assignment was computed again.
  assert.equal(engine.stats().resources.computed - computed, 1, `of ${[...r2.keys()].join(', ')}`);
  const cla = endpointResources({ snap, proxy: proxyIn('r2'), names: new Set([failover]) })[0]?.build();
  const prio = (cla?.endpoints as ProtoObject[]).map((e) => [(e.locality as ProtoObject).region, e.priority ?? 0]);
  assert.deepEqual(prio, [
    ['r1', 1],
    ['r2', 0],
  ]);
});

test('EDS is served for EDS clusters only (no assignments for DNS clusters)', () => {
  const snap = snapshot();
  const names = endpointResources({ snap, proxy: proxyIn('r1') }).map((r) => r.name);
  assert.ok(!names.some((n) => n.includes('ext.example.com')), `no EDS for the DNS entry: ${names.join(', ')}`);
  assert.deepEqual(endpointResources({ snap, proxy: proxyIn('r1'), names: new Set(['outbound|443||ext.example.com']) }), []);
  const cds = outboundClusters({ snap, proxy: proxyIn('r1') }, 'envoy')
    .find((r) => r.name === 'outbound|443||ext.example.com')
    ?.build();
  assert.equal(cds?.type, 'STRICT_DNS');
});

test('credentialName from a rule without workloadSelector: gateways get SDS, sidecars no TLS', () => {
  const snap = snapshot();
  const name = 'outbound|80||web.shop.svc.cluster.local';
  const build = (type: 'sidecar' | 'router'): ProtoObject | undefined => outboundClusters({ snap, proxy: proxyIn('r1', type), names: new Set([name]) }, 'envoy')[0]?.build();
  assert.equal(build('sidecar')?.transport_socket, undefined);
  const ts = build('router')?.transport_socket as ProtoObject | undefined;
  const ctx = (ts?.typed_config as ProtoObject | undefined)?.common_tls_context as ProtoObject | undefined;
  const validation = ctx?.combined_validation_context as ProtoObject | undefined;
  assert.equal((validation?.validation_context_sds_secret_config as ProtoObject | undefined)?.name, 'kubernetes://web-ca-cacert');
});
