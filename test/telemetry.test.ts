/**
 * The Telemetry API: tracing providers compared field by field with the shapes istiod generates,
 * validation of Telemetry objects (field paths), and the merge of mesh, namespace and workload
 * Telemetry. Shapes follow istio/istio pilot/pkg/networking/core/tracing.go (zipkinConfig,
 * otelConfig, configureSampling, buildHCMTracing) and pilot/pkg/model/telemetry.go
 * (generateStatsConfig, mergeMetrics) as of Istio 1.22-1.27.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { validateObject } from '../src/model/validate';
import type { ConfigObject } from '../src/model/objects';
import { EnvoyProtos } from '../src/xds/protos';
import { render, snapshotFromDir } from './helpers/render';

const ROOT = path.join(__dirname, '..');
const protos = new EnvoyProtos();
const snap = snapshotFromDir(path.join(ROOT, 'test/golden/telemetry/in'), undefined, ROOT);
const SIDECAR = 'sidecar~10.244.0.12~reviews-v1.default~default.svc.cluster.local';
const META = { NAMESPACE: 'default', LABELS: { app: 'reviews', version: 'v1' } };

type Obj = Record<string, unknown>;
const o = (v: unknown): Obj => v as Obj;

/** The HCMs of one listener. */
function hcms(listener: Obj): Obj[] {
  const chains = [...((listener['filter_chains'] as Obj[] | undefined) ?? [])];
  return chains.flatMap((c) => (c['filters'] as Obj[]).filter((f) => f['name'] === 'envoy.filters.network.http_connection_manager').map((f) => o(f['typed_config'])));
}

function listener(name: string): Obj {
  const out = render(protos, snap, SIDECAR, META);
  assert.deepEqual(out.rejected, []);
  const l = (out.byType['LDS'] ?? []).find((x) => x['name'] === name);
  assert.ok(l, `listener ${name}`);
  return l;
}

test('a Zipkin provider gives the outbound HCM the tracing Envoy needs: provider config, collector cluster, sampling', () => {
  assert.deepEqual(snap.errors, []);
  const hcm = hcms(listener('0.0.0.0_80'))[0];
  assert.ok(hcm);
  const tracing = o(hcm['tracing']);
  // configureSampling: client and overall 100 %, random from the Telemetry's randomSamplingPercentage.
  assert.deepEqual(tracing['client_sampling'], { value: 100 });
  assert.deepEqual(tracing['random_sampling'], { value: 10 });
  assert.deepEqual(tracing['overall_sampling'], { value: 100 });
  // buildHCMTracing: the provider by Envoy's tracer name; no spawn_upstream_span on a sidecar.
  const provider = o(tracing['provider']);
  assert.equal(provider['name'], 'envoy.tracers.zipkin');
  assert.equal(tracing['spawn_upstream_span'], undefined);
  // zipkinConfig: the collector's outbound cluster (LookupCluster), v2 JSON endpoint, 128-bit IDs.
  assert.deepEqual(provider['typed_config'], {
    '@type': 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig',
    collector_cluster: 'outbound|9411||zipkin.istio-system.svc.cluster.local',
    collector_endpoint: '/api/v2/spans',
    trace_id_128bit: true,
    shared_span_context: { value: false },
    collector_endpoint_version: 'HTTP_JSON',
    collector_hostname: 'zipkin.istio-system.svc.cluster.local',
  });
  // The collector cluster is one the sidecar actually has.
  const clusters = (render(protos, snap, SIDECAR, META).byType['CDS'] ?? []).map((c) => c['name']);
  assert.ok(clusters.includes('outbound|9411||zipkin.istio-system.svc.cluster.local'));
  // configureCustomTags: Istio's tags plus the Telemetry's, sorted by tag.
  const tags = (tracing['custom_tags'] as Obj[]).map((t) => t['tag']);
  assert.deepEqual(tags, [...tags].sort());
  const byTag = new Map((tracing['custom_tags'] as Obj[]).map((t) => [t['tag'], t]));
  assert.deepEqual(byTag.get('team'), { tag: 'team', literal: { value: 'payments' } });
  assert.deepEqual(byTag.get('pod'), { tag: 'pod', environment: { name: 'POD_NAME', default_value: 'unknown' } });
  assert.deepEqual(byTag.get('user'), { tag: 'user', request_header: { name: 'x-user' } });
  assert.deepEqual(byTag.get('istio.canonical_service'), { tag: 'istio.canonical_service', literal: { value: 'unknown' } });
  assert.deepEqual(o(hcm['request_id_extension'])['typed_config'], {
    '@type': 'type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig',
    use_request_id_for_trace_sampling: { value: true },
  });
});

test('an OpenTelemetry provider for server spans gives the inbound HCM OTLP/gRPC to the collector cluster', () => {
  const hcm = hcms(listener('virtualInbound'))[0];
  assert.ok(hcm);
  const tracing = o(hcm['tracing']);
  assert.deepEqual(tracing['random_sampling'], { value: 100 });
  assert.deepEqual(tracing['max_path_tag_length'], { value: 256 });
  const provider = o(tracing['provider']);
  assert.equal(provider['name'], 'envoy.tracers.opentelemetry');
  // otelConfig: envoy_grpc to the collector's cluster with its hostname as authority, the node's service cluster as service name.
  assert.deepEqual(provider['typed_config'], {
    '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig',
    grpc_service: { envoy_grpc: { cluster_name: 'outbound|4317||otel-collector.istio-system.svc.cluster.local', authority: 'otel-collector.istio-system.svc.cluster.local' } },
    service_name: 'reviews.default',
  });
});

test('stats filters: metadata exchange first, istio.stats before the router, with the merged overrides', () => {
  const hcm = hcms(listener('virtualInbound'))[0];
  assert.ok(hcm);
  const names = (hcm['http_filters'] as Obj[]).map((f) => f['name']);
  assert.equal(names[0], 'istio.metadata_exchange');
  assert.deepEqual(names.slice(-2), ['istio.stats', 'envoy.filters.http.router']);
  const stats = o((hcm['http_filters'] as Obj[]).find((f) => f['name'] === 'istio.stats')?.['typed_config']);
  // Inbound: no Host header fallback; the mesh-wide REQUEST_COUNT override (the workload's CLIENT-only drop does not apply).
  assert.deepEqual(stats, {
    '@type': 'type.googleapis.com/stats.PluginConfig',
    disable_host_header_fallback: true,
    metrics: [{ dimensions: { request_host: 'request.host' }, name: 'requests_total', tags_to_remove: ['request_protocol'] }],
  });
});

function telemetry(spec: unknown): ConfigObject {
  return {
    kind: 'Telemetry',
    apiVersion: 'telemetry.istio.io/v1',
    metadata: { name: 't', namespace: 'default', labels: {}, annotations: {} },
    body: { spec },
    origin: { source: 'test' },
  };
}

test('Telemetry validation: field paths and reasons', () => {
  const cases: [unknown, string, RegExp][] = [
    [{ tracing: [{ randomSamplingPercentage: 101 }] }, 'spec.tracing[0].randomSamplingPercentage', /range/],
    [{ tracing: [{ customTags: { a: {} } }] }, 'spec.tracing[0].customTags.a', /exactly one/],
    [{ tracing: [{ customTags: { a: { literal: { value: 'x' }, header: { name: 'h' } } } }] }, 'spec.tracing[0].customTags.a', /exactly one/],
    [{ tracing: [{ providers: [{ name: 'a' }, { name: 'b' }] }] }, 'spec.tracing[0].providers', /multiple providers/],
    [{ metrics: [{ providers: [{}] }] }, 'spec.metrics[0].providers[0].name', /must be set/],
    [{ metrics: [{ overrides: [{ tagOverrides: { t: {} } }] }] }, 'spec.metrics[0].overrides[0].tagOverrides.t.value', /UPSERT/],
    [{ metrics: [{ overrides: [{ tagOverrides: { t: { operation: 'REMOVE', value: 'x' } } }] }] }, 'spec.metrics[0].overrides[0].tagOverrides.t.value', /REMOVE/],
    [{ metrics: [{ overrides: [{ match: { metric: 'NOPE' } }] }] }, 'spec.metrics[0].overrides[0].match.metric', /.+/],
    [{ metrics: [{ overrides: [{ match: { metric: 'REQUEST_COUNT', customMetric: 'x' } }] }] }, 'spec.metrics[0].overrides[0].match', /only one/],
    [{ metrics: [{ reportingInterval: '0s' }] }, 'spec.metrics[0].reportingInterval', /greater than zero/],
    [{ accessLogging: [{ filter: { expression: '' } }] }, 'spec.accessLogging[0].filter.expression', /empty/],
    [{ accessLogging: [{ match: { mode: 'BOTH' } }] }, 'spec.accessLogging[0].match.mode', /.+/],
    [
      { selector: { matchLabels: { app: 'a' } }, targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'gw' }] },
      'spec',
      /only one of targetRefs or workloadSelector/,
    ],
    [{ tracing: [{ sampling: 1 }] }, 'spec.tracing[0].sampling', /unknown field/],
  ];
  for (const [spec, p, msg] of cases) {
    const errors = validateObject(telemetry(spec));
    const hit = errors.find((e) => e.path === p);
    assert.ok(hit, `${JSON.stringify(spec)}: want an error at ${p}, got ${JSON.stringify(errors)}`);
    assert.match(hit.message, msg);
  }
  for (const spec of [
    {},
    { tracing: [{ providers: [{ name: 'zipkin' }], randomSamplingPercentage: 0 }] },
    { metrics: [{ overrides: [{ match: { metric: 'ALL_METRICS' }, disabled: true }] }] },
  ]) {
    assert.deepEqual(validateObject(telemetry(spec)), [], JSON.stringify(spec));
  }
});
