/**
 * EnvoyFilter: validation with Istio's messages and field paths (pkg/config/validation/envoyfilter),
 * proto.Merge's rules on meshd's resource shape, the filter-type allowlist, and reuse: an
 * EnvoyFilter change rebuilds only what it reaches, and the incremental engine agrees with a
 * fresh build through EnvoyFilter changes. Patch application per applyTo and operation is in the
 * golden cases envoyfilter (every applyTo and operation) and envoyfilter-broken (withheld patches).
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { buildSnapshot } from '../src/model/build';
import type { ConfigObject } from '../src/model/objects';
import { parseProxy } from '../src/model/proxy';
import type { MeshSnapshot } from '../src/model/snapshot';
import { checkObject, validateObject } from '../src/model/validate';
import { FileSource } from '../src/sources/file-source';
import { protoMerge } from '../src/generate/envoyfilter/merge';
import { convertMessage } from '../src/generate/envoyfilter/proto-json';
import type { ProtoObject } from '../src/generate/types';
import { ConfigEngine } from '../src/xds/engine';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { ResourceValidator } from '../src/xds/validate-rules';
import { render } from './helpers/render';

const ROOT = path.join(__dirname, '..');
const protos = new EnvoyProtos();
const checker = new ResourceValidator(protos);
const REVIEWS = 'sidecar~10.244.0.12~reviews-v1.default~default.svc.cluster.local';
const REVIEWS_META = { NAMESPACE: 'default', ISTIO_VERSION: '1.24.2', LABELS: { app: 'reviews', version: 'v1' } };
const GATEWAY = 'router~10.244.0.50~istio-ingressgateway-5d8f7c9b6-x2k4q.istio-system~istio-system.svc.cluster.local';
const GATEWAY_META = { NAMESPACE: 'istio-system', LABELS: { app: 'istio-ingressgateway', istio: 'ingressgateway' } };
const LUA = 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua';

function envoyFilter(spec: unknown, name = 'ef', namespace = 'default'): ConfigObject {
  return {
    kind: 'EnvoyFilter',
    apiVersion: 'networking.istio.io/v1alpha3',
    metadata: { name, namespace, labels: {}, annotations: {} },
    body: { spec },
    origin: { source: 'test' },
  } as ConfigObject;
}

const hcmMatch = (sub?: string): unknown => ({
  listener: { filterChain: { filter: { name: 'envoy.filters.network.http_connection_manager', ...(sub ? { subFilter: { name: sub } } : {}) } } },
});

test("EnvoyFilter validation: Istio's messages, at the field that is wrong", () => {
  const lua = { name: 'x.lua', typed_config: { '@type': LUA } };
  const cases: [unknown, string, RegExp][] = [
    [{ configPatches: [{ patch: { operation: 'ADD', value: lua } }] }, 'spec.configPatches[0].applyTo', /^Envoy filter: missing applyTo$/],
    [{ configPatches: [{ applyTo: 'INVALID', patch: { operation: 'ADD', value: lua } }] }, 'spec.configPatches[0].applyTo', /^Envoy filter: missing applyTo$/],
    [{ configPatches: [{ applyTo: 'LISTENER' }] }, 'spec.configPatches[0].patch', /^Envoy filter: missing patch$/],
    [{ configPatches: [{ applyTo: 'LISTENER', patch: {} }] }, 'spec.configPatches[0].patch.operation', /^Envoy filter: missing patch operation$/],
    [
      { configPatches: [{ applyTo: 'LISTENER', patch: { operation: 'ADD' } }] },
      'spec.configPatches[0].patch.value',
      /^Envoy filter: missing patch value for non-remove operation$/,
    ],
    [
      { configPatches: [{ applyTo: 'LISTENER', match: { proxy: { proxyVersion: '%#@~++==`24c234`' } }, patch: { operation: 'REMOVE' } }] },
      'spec.configPatches[0].match.proxy.proxyVersion',
      /^Envoy filter: invalid regex for proxy version, \[.+\]$/,
    ],
    [
      { configPatches: [{ applyTo: 'HTTP_FILTER', match: { cluster: { service: 'a' } }, patch: { operation: 'ADD', value: lua } }] },
      'spec.configPatches[0].match',
      /^Envoy filter: applyTo for listener class objects cannot have non listener match$/,
    ],
    [
      { configPatches: [{ applyTo: 'HTTP_FILTER', match: { listener: { filterChain: { filter: {} } } }, patch: { operation: 'ADD', value: lua } }] },
      'spec.configPatches[0].match.listener.filterChain.filter.name',
      /^Envoy filter: filter match has no name to match on$/,
    ],
    [
      { configPatches: [{ applyTo: 'NETWORK_FILTER', match: hcmMatch('envoy.filters.http.router'), patch: { operation: 'ADD', value: lua } }] },
      'spec.configPatches[0].match.listener.filterChain.filter.subFilter',
      /^Envoy filter: subfilter match can be used with applyTo HTTP_FILTER only$/,
    ],
    [
      {
        configPatches: [
          {
            applyTo: 'HTTP_FILTER',
            match: { listener: { filterChain: { filter: { name: 'envoy.filters.network.tcp_proxy', subFilter: { name: 'x' } } } } },
            patch: { operation: 'ADD', value: lua },
          },
        ],
      },
      'spec.configPatches[0].match.listener.filterChain.filter.name',
      /^Envoy filter: subfilter match requires filter match with envoy.filters.network.http_connection_manager$/,
    ],
    [
      {
        configPatches: [
          {
            applyTo: 'HTTP_FILTER',
            match: { listener: { filterChain: { filter: { name: 'envoy.filters.network.http_connection_manager', subFilter: {} } } } },
            patch: { operation: 'ADD', value: lua },
          },
        ],
      },
      'spec.configPatches[0].match.listener.filterChain.filter.subFilter.name',
      /^Envoy filter: subfilter match has no name to match on$/,
    ],
    [
      { configPatches: [{ applyTo: 'VIRTUAL_HOST', match: { listener: { name: 'x' } }, patch: { operation: 'MERGE', value: {} } }] },
      'spec.configPatches[0].match',
      /^Envoy filter: applyTo for http route class objects cannot have non route configuration match$/,
    ],
    [
      { configPatches: [{ applyTo: 'CLUSTER', match: { routeConfiguration: { name: 'x' } }, patch: { operation: 'MERGE', value: {} } }] },
      'spec.configPatches[0].match',
      /^Envoy filter: applyTo for cluster class objects cannot have non cluster match$/,
    ],
    [{ configPatches: [{ applyTo: 'CLUSTER', patch: { operation: 'MERGE', value: 'text' } }] }, 'spec.configPatches[0].patch.value', /must be an object/],
    [{ configPatches: [{ applyTo: 'FILTERS', patch: { operation: 'MERGE', value: {} } }] }, 'spec.configPatches[0].applyTo', /.+/],
    [{ configPatches: [{ applyTo: 'CLUSTER', patch: { operation: 'UPSERT', value: {} } }] }, 'spec.configPatches[0].patch.operation', /.+/],
    [{ configPatches: [{ applyTo: 'CLUSTER', match: { context: 'OUTBOUND' }, patch: { operation: 'REMOVE' } }] }, 'spec.configPatches[0].match.context', /.+/],
    [{ configPatches: [{ applyTo: 'CLUSTER', match: { cluster: { portNumber: -1 } }, patch: { operation: 'REMOVE' } }] }, 'spec.configPatches[0].match.cluster.portNumber', /.+/],
    [{ configPatches: [{ applyTo: 'CLUSTER', match: { cluster: { host: 'a' } }, patch: { operation: 'REMOVE' } }] }, 'spec.configPatches[0].match.cluster.host', /unknown field/],
    [{ workloadSelector: { labels: { 'app*': 'a' } } }, 'spec.workloadSelector.labels["app*"]', /^wildcard is not supported in selector/],
    [
      { workloadSelector: { labels: { app: 'a' } }, targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'gw' }] },
      'spec',
      /only one of targetRefs or workloadSelector/,
    ],
    [{ priority: 'high' }, 'spec.priority', /.+/],
  ];
  for (const [spec, p, msg] of cases) {
    const errors = validateObject(envoyFilter(spec));
    const hit = errors.find((e) => e.path === p);
    assert.ok(hit, `${JSON.stringify(spec)}: want an error at ${p}, got ${JSON.stringify(errors)}`);
    assert.match(hit.message, msg);
  }
  for (const spec of [
    {},
    {
      configPatches: [
        { applyTo: 'HTTP_FILTER', match: { context: 'SIDECAR_INBOUND', ...(hcmMatch('envoy.filters.http.router') as object) }, patch: { operation: 'INSERT_BEFORE', value: lua } },
      ],
    },
    { configPatches: [{ applyTo: 'CLUSTER', match: { proxy: { proxyVersion: '^1\\.2[0-9].*' }, cluster: { service: 'a.b.svc.cluster.local' } }, patch: { operation: 'REMOVE' } }] },
    {
      priority: -10,
      workloadSelector: { labels: { app: 'a' } },
      configPatches: [{ applyTo: 'VIRTUAL_HOST', match: { routeConfiguration: { vhost: { name: 'a' } } }, patch: { operation: 'REMOVE' } }],
    },
  ]) {
    assert.deepEqual(validateObject(envoyFilter(spec)), [], JSON.stringify(spec));
  }
  // Warnings, as istiod gives them: every EnvoyFilter, a filter match that does nothing, a selector without labels.
  const w = checkObject(envoyFilter({ workloadSelector: {}, configPatches: [{ applyTo: 'LISTENER', match: hcmMatch(), patch: { operation: 'MERGE', value: {} } }] }));
  assert.deepEqual(w.errors, []);
  assert.ok(w.warnings.some((x) => x.path === 'spec' && /internal implementation details/.test(x.message)));
  assert.ok(w.warnings.some((x) => /filter match has no effect when used with LISTENER/.test(x.message)));
  assert.ok(w.warnings.some((x) => /workload selector specified without labels/.test(x.message)));
});

test("proto.Merge's rules on meshd's shape: lists append, maps replace entries, oneofs clear siblings, proto3 defaults replace nothing, Durations replace", () => {
  const cluster = protos.type('envoy.config.cluster.v3.Cluster');
  const dst: ProtoObject = {
    name: 'c',
    type: 'EDS',
    connect_timeout: { seconds: 10, nanos: 5 },
    per_connection_buffer_limit_bytes: { value: 1 },
    metadata: { filter_metadata: { a: { fields: { x: { stringValue: '1' } } }, b: { fields: {} } } },
    transport_socket_matches: [{ name: 'one' }],
    respect_dns_ttl: true,
  };
  const value = convertMessage(
    cluster,
    {
      clusterType: { name: 'envoy.clusters.aggregate' },
      connectTimeout: '2.5s',
      perConnectionBufferLimitBytes: 7,
      metadata: { filterMetadata: { a: { y: 2 } } },
      transportSocketMatches: [{ name: 'two' }],
      respectDnsTtl: false,
    },
    '',
    protos,
  );
  const out = protoMerge(cluster, dst, value, protos);
  assert.equal(out['type'], undefined, 'cluster_type replaced its oneof sibling type');
  assert.deepEqual(out['cluster_type'], { name: 'envoy.clusters.aggregate' });
  assert.deepEqual(out['connect_timeout'], { seconds: 2, nanos: 500000000 }, 'a Duration is replaced whole');
  assert.deepEqual(out['per_connection_buffer_limit_bytes'], { value: 7 });
  assert.deepEqual(out['metadata'], { filter_metadata: { a: { fields: { y: { numberValue: 2 } } }, b: { fields: {} } } }, 'map entries are replaced, not merged');
  assert.deepEqual(out['transport_socket_matches'], [{ name: 'one' }, { name: 'two' }], 'lists append');
  assert.equal(out['respect_dns_ttl'], true, 'a proto3 false is unset: it replaces nothing');
  assert.deepEqual(dst['transport_socket_matches'], [{ name: 'one' }], 'inputs are not mutated');
  assert.throws(() => convertMessage(cluster, { connectTimeout: 'soon' }, 'v', protos), /v\.connectTimeout: invalid duration/);
  assert.throws(() => convertMessage(cluster, { lbPolicy: 'FASTEST' }, 'v', protos), /unknown value "FASTEST"/);
  assert.throws(() => convertMessage(cluster, { typedExtensionProtocolOptions: { x: { '@type': 'type.googleapis.com/no.such.Type' } } }, 'v', protos), /referenced type unknown/);
});

function mesh(extra: readonly ConfigObject[], allowed?: string[], previous?: MeshSnapshot, sequence = 1): MeshSnapshot {
  const src = new FileSource(path.join(ROOT, 'test/golden/envoyfilter/in'));
  src.load();
  const st = src.state();
  const objects = [...st.objects.filter((o) => o.kind !== 'EnvoyFilter'), ...extra];
  return buildSnapshot({
    objects,
    errors: st.errors,
    sequence,
    now: new Date(0),
    domain: 'cluster.local',
    ...(allowed ? { envoyFilterAllowedTypes: allowed } : {}),
    ...(previous ? { previous } : {}),
  });
}

function goldenFilters(): ConfigObject[] {
  const src = new FileSource(path.join(ROOT, 'test/golden/envoyfilter/in'));
  src.load();
  return src.state().objects.filter((o) => o.kind === 'EnvoyFilter');
}

function httpFilterNames(snap: MeshSnapshot, listener: string): string[] {
  const out = render(protos, snap, REVIEWS, REVIEWS_META);
  assert.deepEqual(out.rejected, []);
  const l = (out.byType['LDS'] ?? []).find((x) => x['name'] === listener) as {
    filter_chains?: { filters: { name: string; typed_config?: { http_filters?: { name: string }[] } }[] }[];
  };
  return (l.filter_chains ?? []).flatMap((c) => c.filters.flatMap((f) => (f.typed_config?.http_filters ?? []).map((h) => h.name)));
}

test('--envoy-filter-allowed-types: a patch inserting another filter type is left out and reported on its EnvoyFilter; allowed types are applied', () => {
  const all = mesh(goldenFilters());
  assert.deepEqual(all.errors, []);
  assert.ok(httpFilterNames(all, '0.0.0.0_9080').includes('envoy.filters.http.local_ratelimit'));

  const snap = mesh(goldenFilters(), [LUA]);
  const reviews = snap.errors.find((e) => e.name === 'reviews-patches');
  assert.ok(reviews, JSON.stringify(snap.errors));
  assert.equal(reviews.kind, 'EnvoyFilter');
  const paths = reviews.errors.map((e) => e.path);
  // The listener ADD (a tcp_proxy), the FILTER_CHAIN ADD (a tcp_proxy), the network and HTTP rate limits.
  assert.deepEqual(paths, ['spec.configPatches[1].patch.value', 'spec.configPatches[3].patch.value', 'spec.configPatches[4].patch.value', 'spec.configPatches[6].patch.value']);
  assert.match(
    reviews.errors[3]?.message ?? '',
    /^filter type type\.googleapis\.com\/envoy\.extensions\.filters\.http\.local_ratelimit\.v3\.LocalRateLimit is not allowed \(allowed: type\.googleapis\.com\/envoy\.extensions\.filters\.http\.lua\.v3\.Lua\); the patch is not applied$/,
  );
  // MERGEs into existing filters insert nothing and stay; Lua is allowed.
  assert.ok(!httpFilterNames(snap, '0.0.0.0_9080').includes('envoy.filters.http.local_ratelimit'));
  assert.ok(httpFilterNames(snap, 'virtualInbound').includes('mesh.lua'));
  const gw = snap.errors.find((e) => e.name === 'gateway-patches');
  assert.match(gw?.errors[0]?.message ?? '', /Compressor is not allowed/);
});

test('an EnvoyFilter change rebuilds what it reaches; a proxy it does not reach keeps its resource sets', () => {
  const engine = new ConfigEngine({ protos, checker, checkFromScratch: true });
  const reviews = engine.attach(parseProxy(REVIEWS, REVIEWS_META));
  const gateway = engine.attach(parseProxy(GATEWAY, GATEWAY_META));
  const lua = (code: string): ConfigObject =>
    envoyFilter(
      {
        workloadSelector: { labels: { app: 'reviews' } },
        configPatches: [
          {
            applyTo: 'HTTP_FILTER',
            match: { context: 'SIDECAR_INBOUND', ...(hcmMatch('envoy.filters.http.router') as object) },
            patch: { operation: 'INSERT_BEFORE', value: { name: 'x.lua', typed_config: { '@type': LUA, default_source_code: { inline_string: code } } } },
          },
        ],
      },
      'lua',
    );
  let snap = mesh([]);
  engine.setSnapshot(snap);
  const types = [TypeUrl.Cluster, TypeUrl.Listener] as const;
  const before = types.map((t) => engine.resources(gateway, t, undefined).resources);
  const reviewsLds = engine.resources(reviews, TypeUrl.Listener, undefined).resources;
  for (const [i, code] of ['function envoy_on_request(h) end', 'function envoy_on_response(h) end'].entries()) {
    snap = mesh([lua(code)], undefined, snap, i + 2);
    engine.setSnapshot(snap);
    const computed = engine.stats().parts.computed;
    types.forEach((t, j) => assert.equal(engine.resources(gateway, t, undefined).resources, before[j], `gateway ${t} kept`));
    assert.equal(engine.stats().parts.computed, computed, 'nothing of the gateway was recomputed');
    const now = engine.resources(reviews, TypeUrl.Listener, undefined).resources;
    assert.notEqual(now.get('virtualInbound'), reviewsLds.get('virtualInbound'), 'the patched listener is rebuilt');
    assert.equal(now.get('0.0.0.0_9080'), reviewsLds.get('0.0.0.0_9080'), 'an outbound listener no patch reaches keeps its bytes');
    const decoded = JSON.stringify(protos.decode(TypeUrl.Listener, now.get('virtualInbound')?.bytes ?? new Uint8Array()));
    assert.ok(decoded.includes(code));
  }
  // Every EnvoyFilter of the golden case, then none: still what a fresh build gives.
  snap = mesh(goldenFilters(), undefined, snap, 10);
  engine.setSnapshot(snap);
  for (const t of [TypeUrl.Cluster, TypeUrl.Listener, TypeUrl.Route]) engine.resources(reviews, t, undefined);
  snap = mesh([], undefined, snap, 11);
  engine.setSnapshot(snap);
  for (const t of [TypeUrl.Cluster, TypeUrl.Listener, TypeUrl.Route]) engine.resources(reviews, t, undefined);
  assert.deepEqual(engine.currentRejections(), []);
});
