/**
 * The Envoy config of Istio's telemetry, shaped as istiod (1.22+) generates it:
 * - metadata exchange: pilot/pkg/xds/filters/filters.go (SidecarInboundMetadataFilter,
 *   SidecarOutboundMetadataFilter, TCPListenerMx), as udpa.type.v1.TypedStruct;
 * - stats: pilot/pkg/model/telemetry.go (buildHTTPTelemetryFilter, buildTCPTelemetryFilter,
 *   generateStatsConfig), a native `istio.stats` filter with stats.PluginConfig;
 * - access logs: pilot/pkg/networking/core/accesslog.go (buildAccessLogFromTelemetry, the CEL
 *   extension filter, the listener's NR filter) and pilot/pkg/model/telemetry_logging.go;
 * - tracing: pilot/pkg/networking/core/tracing.go (configureTracingFromTelemetry,
 *   configureFromProviderConfig, zipkinConfig, otelConfig, datadogConfig, skywalkingConfig,
 *   configureSampling, configureCustomTags) and pilot/pkg/xds/requestidextension.
 */
import type { Proxy } from '../../model/proxy';
import type { MeshSnapshot } from '../../model/snapshot';
import { ENVOY_JSON_LOG_FORMAT, ENVOY_TEXT_LOG_FORMAT } from '../../model/build-mesh';
import type { CustomTag } from '../../model/objects-telemetry';
import type { ExtensionProvider } from '../../model/telemetry-providers';
import { findProvider } from '../../model/telemetry-providers';
import { lookupCluster } from '../../model/lookup';
import { FILE_ACCESS_LOG } from '../access-log';
import type { JsonLike } from '../security/struct';
import { toStruct } from '../security/struct';
import type { ProtoObject } from '../types';
import { duration } from '../util';
import type { ListenerClass, ProviderMetrics, TracingSpec } from './merge';
import { mergeLogs, workloadMode } from './merge';
import type { ProxyTelemetry } from './merge';

export const MX_FILTER_NAME = 'istio.metadata_exchange';
export const STATS_FILTER_NAME = 'istio.stats';
export const STATS_CONFIG_TYPE = 'type.googleapis.com/stats.PluginConfig';
const TYPED_STRUCT = 'type.googleapis.com/udpa.type.v1.TypedStruct';
const PEER_METADATA_TYPE = 'type.googleapis.com/io.istio.http.peer_metadata.Config';
const TCP_MX_TYPE = 'type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange';
const CEL_FILTER = 'envoy.access_loggers.extension_filters.cel';
const CEL_TYPE = 'type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter';
const FILE_ACCESS_LOG_TYPE = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
const UUID_TYPE = 'type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig';

function typedStruct(typeUrl: string, value: { [k: string]: JsonLike }): ProtoObject {
  return { '@type': TYPED_STRUCT, type_url: typeUrl, value: toStruct(value) };
}

/** The HTTP metadata exchange filter (peer_metadata), first in every sidecar and gateway HCM. */
export function httpMxFilter(c: ListenerClass): ProtoObject {
  const config: { [k: string]: JsonLike } =
    c === 'inbound'
      ? { downstream_discovery: [{ istio_headers: {} }, { workload_discovery: {} }], downstream_propagation: [{ istio_headers: {} }] }
      : { upstream_discovery: [{ istio_headers: {} }, { workload_discovery: {} }], upstream_propagation: [{ istio_headers: {} }] };
  return { name: MX_FILTER_NAME, typed_config: typedStruct(PEER_METADATA_TYPE, config) };
}

/** The TCP metadata exchange network filter, first in inbound TCP chains (outbound is the cluster's job). */
export function tcpMxFilter(): ProtoObject {
  return { name: MX_FILTER_NAME, typed_config: typedStruct(TCP_MX_TYPE, { protocol: 'istio-peer-exchange', enable_discovery: true }) };
}

/** istiod's metricToPrometheusMetric. */
const PROMETHEUS_METRIC: Readonly<Record<string, string>> = {
  REQUEST_COUNT: 'requests_total',
  REQUEST_DURATION: 'request_duration_milliseconds',
  REQUEST_SIZE: 'request_bytes',
  RESPONSE_SIZE: 'response_bytes',
  TCP_OPENED_CONNECTIONS: 'tcp_connections_opened_total',
  TCP_CLOSED_CONNECTIONS: 'tcp_connections_closed_total',
  TCP_SENT_BYTES: 'tcp_sent_bytes_total',
  TCP_RECEIVED_BYTES: 'tcp_received_bytes_total',
  GRPC_REQUEST_MESSAGES: 'request_messages_total',
  GRPC_RESPONSE_MESSAGES: 'response_messages_total',
};

/** generateStatsConfig: the PluginConfig for one class, or undefined when its metrics are disabled. */
export function statsConfig(c: ListenerClass, m: ProviderMetrics): ProtoObject | undefined {
  const forClass = c === 'inbound' ? m.server : m.client;
  if (forClass.disabled) return undefined;
  const cfg: ProtoObject = { '@type': STATS_CONFIG_TYPE };
  if (c === 'inbound' || c === 'gateway') cfg['disable_host_header_fallback'] = true;
  if (m.reportingInterval !== undefined) cfg['tcp_reporting_duration'] = duration(m.reportingInterval);
  if (forClass.overrides.length > 0) {
    cfg['metrics'] = forClass.overrides.map((o) => {
      const dimensions: Record<string, string> = {};
      const remove: string[] = [];
      for (const t of o.tags) {
        if (t.remove) remove.push(t.name);
        else dimensions[t.name] = t.value;
      }
      const mc: ProtoObject = { name: PROMETHEUS_METRIC[o.name] ?? o.name };
      if (Object.keys(dimensions).length > 0) mc['dimensions'] = dimensions;
      if (remove.length > 0) mc['tags_to_remove'] = remove;
      if (o.disabled) mc['drop'] = true;
      return mc;
    });
  }
  return cfg;
}

/** The providers telemetryFilters visits, sorted: metrics providers and enabled logging providers. */
function filterProviders(t: ProxyTelemetry, snap: MeshSnapshot, c: ListenerClass): ExtensionProvider[] {
  const keys = new Set<string>(t.metrics.keys());
  for (const [k, v] of mergeLogs(t.logging, snap.telemetryMesh, workloadMode(c))) if (!v.disabled) keys.add(k);
  return [...keys]
    .sort()
    .map((k) => findProvider(snap.telemetryMesh, k))
    .filter((p): p is ExtensionProvider => p !== undefined);
}

/** The `istio.stats` filters (HTTP or network) for a class: one per Prometheus provider with metrics. */
export function statsFilters(t: ProxyTelemetry, snap: MeshSnapshot, c: ListenerClass): ProtoObject[] {
  const out: ProtoObject[] = [];
  for (const p of filterProviders(t, snap, c)) {
    if (p.kind !== 'prometheus') continue;
    const m = [...t.metrics].find(([k]) => k.toLowerCase() === p.name.toLowerCase())?.[1];
    if (!m) continue;
    const cfg = statsConfig(c, m);
    if (cfg) out.push({ name: STATS_FILTER_NAME, typed_config: cfg });
  }
  return out;
}

// ---- access logs ---------------------------------------------------------------------------

export interface LogConfig {
  disabled: boolean;
  log: ProtoObject;
  filter?: string;
  provider: string;
}

function fileLogFromProvider(p: Extract<ExtensionProvider, { kind: 'envoyFileAccessLog' }>): ProtoObject {
  let logFormat: ProtoObject;
  const labels = p.logFormat?.labels;
  if (labels !== undefined) {
    const json = Object.keys(labels).length > 0 ? labels : ENVOY_JSON_LOG_FORMAT;
    logFormat = { json_format: toStruct(json as { [k: string]: JsonLike }) };
  } else {
    const text = p.logFormat?.text ?? ENVOY_TEXT_LOG_FORMAT;
    logFormat = { text_format_source: { inline_string: text.endsWith('\n') ? text : `${text}\n` } };
  }
  return { name: FILE_ACCESS_LOG, typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path: p.path, log_format: logFormat } };
}

const HTTP_GRPC_ACCESS_LOG = 'envoy.access_loggers.http_grpc';
const HTTP_GRPC_ACCESS_LOG_TYPE = 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig';
const TCP_GRPC_ACCESS_LOG = 'envoy.tcp_grpc_access_log';
const TCP_GRPC_ACCESS_LOG_TYPE = 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.TcpGrpcAccessLogConfig';
const OTEL_ACCESS_LOG = 'envoy.access_loggers.open_telemetry';
const OTEL_ACCESS_LOG_TYPE = 'type.googleapis.com/envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig';
/** The metadata exchange's filter state, logged by the gRPC loggers unless the provider names others (istiod's envoyWasmStateToLog). */
const PEER_STATE_TO_LOG = ['wasm.upstream_peer', 'wasm.upstream_peer_id', 'wasm.downstream_peer', 'wasm.downstream_peer_id'];

/** CommonGrpcAccessLogConfig to a collector, through its outbound cluster. */
function grpcLogCommon(logName: string, cluster: string, filterState: readonly string[]): ProtoObject {
  return {
    log_name: logName,
    grpc_service: { envoy_grpc: { cluster_name: cluster } },
    transport_api_version: 'V3',
    filter_state_objects_to_log: filterState.length > 0 ? [...filterState] : PEER_STATE_TO_LOG,
  };
}

/**
 * istiod's gRPC and OpenTelemetry access log providers (envoyHttpAls, envoyTcpAls, envoyOtelAls):
 * the logger, or undefined when the provider's service is not in the registry (istiod logs and
 * skips it).
 */
function grpcLogFromProvider(snap: MeshSnapshot, p: ExtensionProvider): ProtoObject | undefined {
  if (p.kind !== 'envoyHttpAls' && p.kind !== 'envoyTcpAls' && p.kind !== 'envoyOtelAls') return undefined;
  const target = lookupCluster(snap.serviceByHost, p.service, p.port);
  if (!target) return undefined;
  if (p.kind === 'envoyHttpAls') {
    const cfg: ProtoObject = { '@type': HTTP_GRPC_ACCESS_LOG_TYPE, common_config: grpcLogCommon(p.logName || 'http_envoy_accesslog', target.cluster, p.filterStateObjectsToLog) };
    if (p.additionalRequestHeadersToLog.length > 0) cfg['additional_request_headers_to_log'] = [...p.additionalRequestHeadersToLog];
    if (p.additionalResponseHeadersToLog.length > 0) cfg['additional_response_headers_to_log'] = [...p.additionalResponseHeadersToLog];
    if (p.additionalResponseTrailersToLog.length > 0) cfg['additional_response_trailers_to_log'] = [...p.additionalResponseTrailersToLog];
    return { name: HTTP_GRPC_ACCESS_LOG, typed_config: cfg };
  }
  if (p.kind === 'envoyTcpAls') {
    return {
      name: TCP_GRPC_ACCESS_LOG,
      typed_config: { '@type': TCP_GRPC_ACCESS_LOG_TYPE, common_config: grpcLogCommon(p.logName || 'tcp_envoy_accesslog', target.cluster, p.filterStateObjectsToLog) },
    };
  }
  const cfg: ProtoObject = {
    '@type': OTEL_ACCESS_LOG_TYPE,
    common_config: grpcLogCommon(p.logName || 'otel_envoy_accesslog', target.cluster, []),
    body: { string_value: p.logFormat?.text || ENVOY_TEXT_LOG_FORMAT },
  };
  const labels = p.logFormat?.labels;
  if (labels && Object.keys(labels).length > 0) {
    // Attributes are string values, as istiod's convertStructToAttributeKeyValues (sorted here).
    cfg['attributes'] = {
      values: Object.keys(labels)
        .sort()
        .map((key) => ({ key, value: { string_value: typeof labels[key] === 'string' ? labels[key] : '' } })),
    };
  }
  return { name: OTEL_ACCESS_LOG, typed_config: cfg };
}

/**
 * Telemetries.AccessLogging: undefined when neither a Telemetry nor a default provider configures
 * logging (MeshConfig accessLogFile applies); otherwise the providers' loggers, by provider name.
 */
export function telemetryLogs(t: ProxyTelemetry, snap: MeshSnapshot, c: ListenerClass): LogConfig[] | undefined {
  if (t.logging.length === 0 && snap.telemetryMesh.defaultProviders.accessLogging.length === 0) return undefined;
  const out: LogConfig[] = [];
  for (const [name, spec] of mergeLogs(t.logging, snap.telemetryMesh, workloadMode(c))) {
    const p = findProvider(snap.telemetryMesh, name);
    if (!p) continue;
    const log = p.kind === 'envoyFileAccessLog' ? fileLogFromProvider(p) : grpcLogFromProvider(snap, p);
    if (!log) continue;
    out.push({ disabled: spec.disabled, log, ...(spec.filter !== undefined ? { filter: spec.filter } : {}), provider: p.name });
  }
  out.sort((a, b) => (a.provider < b.provider ? -1 : a.provider > b.provider ? 1 : 0));
  return out.length > 0 ? out : undefined;
}

const NR_FILTER: ProtoObject = { response_flag_filter: { flags: ['NR'] } };

/** buildAccessLogFromTelemetry: the enabled loggers, each with its CEL filter (and `extra`, ANDed first). */
export function accessLogsFromTelemetry(cfgs: readonly LogConfig[], extra?: ProtoObject): ProtoObject[] {
  const out: ProtoObject[] = [];
  for (const c of cfgs) {
    if (c.disabled) continue;
    const filters: ProtoObject[] = [];
    if (extra) filters.push(extra);
    if (c.filter !== undefined) filters.push({ extension_filter: { name: CEL_FILTER, typed_config: { '@type': CEL_TYPE, expression: c.filter } } });
    const al: ProtoObject = { ...c.log };
    if (filters.length === 1) al['filter'] = filters[0];
    else if (filters.length > 1) al['filter'] = { and_filter: { filters } };
    out.push(al);
  }
  return out;
}

export const LISTENER_LOG_FILTER = NR_FILTER;

// ---- tracing -------------------------------------------------------------------------------

const ZIPKIN = 'envoy.tracers.zipkin';
const DATADOG = 'envoy.tracers.datadog';
const SKYWALKING = 'envoy.tracers.skywalking';
const OPENTELEMETRY = 'envoy.tracers.opentelemetry';

/** The node's service cluster as the agent sets it (`<canonical name or app>.<namespace>`). */
function serviceCluster(proxy: Proxy): string {
  const name = proxy.labels['service.istio.io/canonical-name'] ?? proxy.labels['app'] ?? 'istio-proxy';
  return `${name}.${proxy.namespace}`;
}

/** url.JoinPath(hostname, path) for a bare host. */
function joinPath(host: string, p: string): string {
  const parts = [host, ...p.split('/').filter((s) => s !== '')];
  return parts.join('/');
}

/** configureFromProviderConfig: the HCM tracing provider block, or undefined (istiod logs and configures none). */
export function providerTracing(snap: MeshSnapshot, proxy: Proxy, p: ExtensionProvider): { tracing: ProtoObject; customSampler: boolean } | undefined {
  // features.SpawnUpstreamSpanForGateway (default true) for gateways; SkyWalking always.
  let spawn = proxy.type === 'router';
  let name: string;
  let maxTag = 0;
  let config: ProtoObject;
  switch (p.kind) {
    case 'zipkin': {
      const c = lookupCluster(snap.serviceByHost, p.service, p.port);
      if (!c) return undefined;
      name = ZIPKIN;
      maxTag = p.maxTagLength;
      config = {
        '@type': 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig',
        collector_cluster: c.cluster,
        collector_endpoint: p.path === '' ? '/api/v2/spans' : p.path,
        collector_endpoint_version: 'HTTP_JSON',
        collector_hostname: c.hostname,
        trace_id_128bit: !p.enable64bitTraceId,
        shared_span_context: { value: false },
      };
      break;
    }
    case 'datadog': {
      const c = lookupCluster(snap.serviceByHost, p.service, p.port);
      if (!c) return undefined;
      name = DATADOG;
      maxTag = p.maxTagLength;
      config = {
        '@type': 'type.googleapis.com/envoy.config.trace.v3.DatadogConfig',
        collector_cluster: c.cluster,
        service_name: serviceCluster(proxy),
        collector_hostname: c.hostname,
      };
      break;
    }
    case 'skywalking': {
      const c = lookupCluster(snap.serviceByHost, p.service, p.port);
      if (!c) return undefined;
      name = SKYWALKING;
      spawn = true;
      config = { '@type': 'type.googleapis.com/envoy.config.trace.v3.SkyWalkingConfig', grpc_service: { envoy_grpc: { cluster_name: c.cluster, authority: c.hostname } } };
      break;
    }
    case 'opentelemetry': {
      const c = lookupCluster(snap.serviceByHost, p.service, p.port);
      if (!c) return undefined;
      name = OPENTELEMETRY;
      maxTag = p.maxTagLength;
      config = { '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig' };
      if (p.http) {
        const uri: ProtoObject = { uri: joinPath(c.hostname, p.http.path), cluster: c.cluster };
        if (p.http.timeout !== undefined) uri['timeout'] = duration(p.http.timeout);
        const hs: ProtoObject = { http_uri: uri };
        if (p.http.headers.length > 0)
          hs['request_headers_to_add'] = p.http.headers.map((h) => ({ header: { key: h.name, value: h.value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }));
        config['http_service'] = hs;
      } else {
        const gs: ProtoObject = { envoy_grpc: { cluster_name: c.cluster, authority: c.hostname } };
        if (p.grpc?.timeout !== undefined) gs['timeout'] = duration(p.grpc.timeout);
        if (p.grpc && p.grpc.initialMetadata.length > 0) gs['initial_metadata'] = p.grpc.initialMetadata.map((h) => ({ key: h.name, value: h.value }));
        config['grpc_service'] = gs;
      }
      config['service_name'] = serviceCluster(proxy);
      break;
    }
    default:
      return undefined;
  }
  const tracing: ProtoObject = { provider: { name, typed_config: config } };
  if (spawn) tracing['spawn_upstream_span'] = { value: true };
  if (maxTag !== 0) tracing['max_path_tag_length'] = { value: maxTag };
  return { tracing, customSampler: false };
}

function dryRunTag(tag: string, key: string): ProtoObject {
  return { tag, metadata: { kind: { request: {} }, metadata_key: { key: 'envoy.filters.http.rbac', path: [{ key }] } } };
}

/** buildServiceTags + optionalPolicyTags. */
function istioTags(proxy: Proxy): ProtoObject[] {
  const md = proxy.metadata;
  const lit = (tag: string, value: string): ProtoObject => ({ tag, literal: { value } });
  const s = (v: unknown, d: string): string => (typeof v === 'string' && v !== '' ? v : d);
  return [
    lit('istio.canonical_revision', s(proxy.labels['service.istio.io/canonical-revision'], 'latest')),
    lit('istio.canonical_service', s(proxy.labels['service.istio.io/canonical-name'], 'unknown')),
    lit('istio.mesh_id', s(md['MESH_ID'], 'unknown')),
    lit('istio.namespace', s(md['NAMESPACE'], 'default')),
    lit('istio.cluster_id', s(md['CLUSTER_ID'], 'unknown')),
    dryRunTag('istio.authorization.dry_run.allow_policy.name', 'istio_dry_run_allow_shadow_effective_policy_id'),
    dryRunTag('istio.authorization.dry_run.allow_policy.result', 'istio_dry_run_allow_shadow_engine_result'),
    dryRunTag('istio.authorization.dry_run.deny_policy.name', 'istio_dry_run_deny_shadow_effective_policy_id'),
    dryRunTag('istio.authorization.dry_run.deny_policy.result', 'istio_dry_run_deny_shadow_engine_result'),
  ];
}

function customTags(tags: Readonly<Record<string, CustomTag>>): ProtoObject[] {
  const out: ProtoObject[] = [];
  for (const [tag, t] of Object.entries(tags)) {
    if (t.environment) out.push({ tag, environment: { name: t.environment.name, ...(t.environment.defaultValue ? { default_value: t.environment.defaultValue } : {}) } });
    else if (t.header) out.push({ tag, request_header: { name: t.header.name, ...(t.header.defaultValue ? { default_value: t.header.defaultValue } : {}) } });
    else if (t.literal) out.push({ tag, literal: { value: t.literal.value } });
  }
  return out;
}

const byTag = (a: ProtoObject, b: ProtoObject): number => (String(a['tag']) < String(b['tag']) ? -1 : String(a['tag']) > String(b['tag']) ? 1 : 0);

function sampling(t: ProtoObject, random: number): void {
  t['client_sampling'] = { value: 100 };
  t['random_sampling'] = { value: random };
  t['overall_sampling'] = { value: 100 };
}

function requestId(useForSampling: boolean): ProtoObject {
  return { typed_config: { '@type': UUID_TYPE, use_request_id_for_trace_sampling: { value: useForSampling } } };
}

/** configureTracing: the HCM's `tracing` (or none) and `request_id_extension`. */
export function hcmTracing(snap: MeshSnapshot, proxy: Proxy, t: ProxyTelemetry, c: ListenerClass): { tracing?: ProtoObject; requestId: ProtoObject } {
  const mesh = snap.telemetryMesh;
  if (!t.tracing) {
    // No Telemetry tracing and no default provider: istiod's legacy MeshConfig path.
    if (!mesh.enableTracing) return { requestId: requestId(true) };
    const tracing: ProtoObject = {};
    sampling(tracing, mesh.proxySampling);
    tracing['custom_tags'] = istioTags(proxy).sort(byTag);
    return { tracing, requestId: requestId(true) };
  }
  const spec: TracingSpec = c === 'inbound' ? t.tracing.server : t.tracing.client;
  if (spec.disabled || !spec.provider) return { requestId: requestId(true) };
  const built = providerTracing(snap, proxy, spec.provider);
  // istiod: "Not able to configure requested tracing provider": no tracing on this HCM.
  if (!built) return { requestId: requestId(true) };
  const tracing = built.tracing;
  sampling(tracing, built.customSampler ? 100 : (spec.randomSamplingPercentage ?? mesh.proxySampling));
  const tags = spec.enableIstioTags ? istioTags(proxy) : [];
  tags.push(...customTags(spec.customTags ?? {}));
  if (tags.length > 0) tracing['custom_tags'] = tags.sort(byTag);
  return { tracing, requestId: requestId(spec.useRequestIdForTraceSampling) };
}
