/**
 * DestinationRule traffic policy → cluster fields, as istiod's cluster_traffic_policy.go:
 * policy merging (port level, subset), connection pool and circuit breakers, outlier
 * detection, load balancer. Sidecars and gateways get Envoy's fields; proxyless gRPC only
 * what gRPC clients implement.
 */
import type { ConnectionPoolSettings, LoadBalancerSettings, OutlierDetection, PortTrafficPolicy, TrafficPolicy } from '../model/objects';
import type { DestinationRuleConfig } from '../model/snapshot';
import type { ProtoObject } from './types';
import { duration, seconds } from './util';

export type ClusterFlavor = 'envoy' | 'grpc';

const MAX_U32 = 4294967295;
/** istiod's mesh default connect timeout. */
const DEFAULT_CONNECT_TIMEOUT = seconds(10);

/**
 * A cluster under construction. HTTP protocol options are collected apart and turned into
 * `typed_extension_protocol_options` at the end, as istiod's clusterWrapper does.
 */
export interface ClusterDraft {
  cluster: ProtoObject;
  http?: HttpOptionsDraft;
}

export interface HttpOptionsDraft {
  common?: ProtoObject;
  upstream?: ProtoObject;
  /** Upstream protocol; unset means HTTP/1.1 (istiod's default when options exist). */
  protocol?: 'http2' | 'downstream';
  maxConcurrentStreams?: number;
}

function httpDraft(d: ClusterDraft): HttpOptionsDraft {
  d.http ??= {};
  return d.http;
}

export function isHttp2Draft(d: ClusterDraft): boolean {
  return d.http?.protocol === 'http2';
}

export function setHttp2(d: ClusterDraft): void {
  httpDraft(d).protocol = 'http2';
}

/** Upstream in the protocol the downstream connection used (istiod's setUseDownstreamProtocol). */
export function setDownstreamProtocol(d: ClusterDraft): void {
  httpDraft(d).protocol = 'downstream';
}

// ---- merging ----

const GROUPS = ['connectionPool', 'outlierDetection', 'loadBalancer', 'tls'] as const;

/**
 * The policy for one port: a matching portLevelSettings entry replaces the four groups
 * wholesale (unset groups fall back to defaults, not to the top level), as istiod's
 * GetPortLevelTrafficPolicy.
 */
export function portLevelPolicy(policy: TrafficPolicy | undefined, port: number): { policy: TrafficPolicy | undefined; portLevel: boolean } {
  if (!policy) return { policy: undefined, portLevel: false };
  const p: PortTrafficPolicy | undefined = policy.portLevelSettings?.find((s) => s.port?.number === port);
  if (!p) {
    const { portLevelSettings: _ignored, ...rest } = policy;
    return { policy: rest, portLevel: false };
  }
  const out: TrafficPolicy = {};
  for (const g of GROUPS) if (p[g] !== undefined) (out as Record<string, unknown>)[g] = p[g];
  return { policy: out, portLevel: true };
}

/**
 * istiod's MergeSubsetTrafficPolicy: port level inside each of (rule, subset), then the subset's
 * groups over the rule's. A subset port-level match replaces all four groups.
 */
export function mergeTrafficPolicy(top: TrafficPolicy | undefined, subset: TrafficPolicy | undefined, port: number): TrafficPolicy | undefined {
  const original = portLevelPolicy(top, port).policy;
  if (!subset) return original;
  const { policy: sub, portLevel } = portLevelPolicy(subset, port);
  if (!original) return sub;
  const merged: TrafficPolicy = { ...original };
  const target = merged as Record<string, unknown>;
  for (const g of GROUPS) {
    if (sub?.[g] !== undefined || portLevel) {
      if (sub?.[g] === undefined) delete target[g];
      else target[g] = sub[g];
    }
  }
  if (sub?.tunnel) merged.tunnel = sub.tunnel;
  if (sub?.proxyProtocol) merged.proxyProtocol = sub.proxyProtocol;
  return merged;
}

/** The merged policy for a cluster of `dr`'s host: subset `''` is the default cluster. */
export function clusterPolicy(dr: DestinationRuleConfig | undefined, subset: string, port: number): TrafficPolicy | undefined {
  if (!dr) return undefined;
  const sub = subset ? dr.spec.subsets?.find((s) => s.name === subset)?.trafficPolicy : undefined;
  return mergeTrafficPolicy(dr.spec.trafficPolicy, sub, port);
}

// ---- connection pool ----

/** istiod's default thresholds: effectively unlimited. */
export function defaultThresholds(): ProtoObject {
  return {
    max_connections: { value: MAX_U32 },
    max_pending_requests: { value: MAX_U32 },
    max_requests: { value: MAX_U32 },
    max_retries: { value: MAX_U32 },
    track_remaining: true,
  };
}

function positive(n: number | undefined): n is number {
  return typeof n === 'number' && n > 0;
}

function tcpKeepalive(k: NonNullable<NonNullable<ConnectionPoolSettings['tcp']>['tcpKeepalive']>): ProtoObject {
  // An empty tcp_keepalive sets SO_KEEPALIVE with the OS defaults; set fields override them.
  const out: ProtoObject = {};
  if (positive(k.probes)) out.keepalive_probes = { value: k.probes };
  if (k.time) out.keepalive_time = { value: duration(k.time).seconds };
  if (k.interval) out.keepalive_interval = { value: duration(k.interval).seconds };
  return out;
}

/**
 * connectionPool → connect_timeout (else `meshConnectTimeout`, MeshConfig connectTimeout), circuit
 * breakers, keepalive, HTTP protocol options (Envoy).
 */
export function applyConnectionPool(d: ClusterDraft, cp: ConnectionPoolSettings | undefined, meshConnectTimeout: ProtoObject = DEFAULT_CONNECT_TIMEOUT): void {
  const c = d.cluster;
  const threshold = defaultThresholds();
  const http = cp?.http;
  const tcp = cp?.tcp;
  if (positive(http?.http2MaxRequests)) threshold.max_requests = { value: http.http2MaxRequests };
  if (positive(http?.http1MaxPendingRequests)) threshold.max_pending_requests = { value: http.http1MaxPendingRequests };
  if (positive(http?.maxRetries)) threshold.max_retries = { value: http.maxRetries };
  if (positive(tcp?.maxConnections)) threshold.max_connections = { value: tcp.maxConnections };
  c.connect_timeout = tcp?.connectTimeout ? duration(tcp.connectTimeout) : meshConnectTimeout;
  if (tcp?.tcpKeepalive) c.upstream_connection_options = { tcp_keepalive: tcpKeepalive(tcp.tcpKeepalive) };
  c.circuit_breakers = { thresholds: [threshold] };

  const idleTimeout = http?.idleTimeout ?? tcp?.idleTimeout;
  const common: ProtoObject = {};
  if (idleTimeout) common.idle_timeout = duration(idleTimeout);
  if (positive(http?.maxRequestsPerConnection)) common.max_requests_per_connection = { value: http.maxRequestsPerConnection };
  if (tcp?.maxConnectionDuration) common.max_connection_duration = duration(tcp.maxConnectionDuration);
  if (Object.keys(common).length > 0) httpDraft(d).common = common;
  if (positive(http?.maxConcurrentStreams)) httpDraft(d).maxConcurrentStreams = http.maxConcurrentStreams;
  // The client's protocol is used upstream (HTTP/1.1 or HTTP/2, whichever came in).
  if (http?.useClientProtocol) httpDraft(d).protocol = 'downstream';
}

/** h2UpgradePolicy UPGRADE makes the cluster HTTP/2 whatever the port's protocol (istiod's shouldH2Upgrade). */
export function applyH2Upgrade(d: ClusterDraft, cp: ConnectionPoolSettings | undefined): void {
  if (cp?.http?.h2UpgradePolicy === 'UPGRADE') setHttp2(d);
}

/** gRPC clients honour only max_requests (their default is 1024 when unset). */
export function grpcCircuitBreakers(cp: ConnectionPoolSettings | undefined): ProtoObject | undefined {
  const max = cp?.http?.http2MaxRequests;
  return positive(max) ? { thresholds: [{ max_requests: { value: max } }] } : undefined;
}

/** The HTTP protocol options extension, or undefined when nothing set any. */
export function httpProtocolOptions(d: ClusterDraft, typeUrl: string): ProtoObject | undefined {
  const h = d.http;
  if (!h) return undefined;
  const out: ProtoObject = { '@type': typeUrl };
  if (h.common) out.common_http_protocol_options = h.common;
  if (h.upstream) out.upstream_http_protocol_options = h.upstream;
  // maxConcurrentStreams applies whenever the cluster ends up HTTP/2. istiod drops it when
  // h2UpgradePolicy makes the cluster HTTP/2 after the pool was applied; meshd keeps it.
  const h2: ProtoObject = positive(h.maxConcurrentStreams) ? { max_concurrent_streams: { value: h.maxConcurrentStreams } } : {};
  if (h.protocol === 'downstream') out.use_downstream_protocol_config = { http_protocol_options: {}, http2_protocol_options: h2 };
  else if (h.protocol === 'http2') out.explicit_http_config = { http2_protocol_options: h2 };
  else out.explicit_http_config = { http_protocol_options: {} };
  return out;
}

// ---- outlier detection ----

/** istiod's applyOutlierDetection (Envoy): consecutive errors, success rate off, panic threshold. */
export function applyOutlierDetection(d: ClusterDraft, o: OutlierDetection | undefined): void {
  if (!o) return;
  const out: ProtoObject = { enforcing_success_rate: { value: 0 } };
  if (o.consecutive5xxErrors !== undefined) {
    out.consecutive_5xx = { value: o.consecutive5xxErrors };
    out.enforcing_consecutive_5xx = { value: o.consecutive5xxErrors > 0 ? 100 : 0 };
  }
  if (o.consecutiveGatewayErrors !== undefined) {
    out.consecutive_gateway_failure = { value: o.consecutiveGatewayErrors };
    out.enforcing_consecutive_gateway_failure = { value: o.consecutiveGatewayErrors > 0 ? 100 : 0 };
  }
  if (o.interval) out.interval = duration(o.interval);
  if (o.baseEjectionTime) out.base_ejection_time = duration(o.baseEjectionTime);
  if (positive(o.maxEjectionPercent)) out.max_ejection_percent = { value: o.maxEjectionPercent };
  if (o.splitExternalLocalOriginErrors) {
    out.split_external_local_origin_errors = true;
    if (positive(o.consecutiveLocalOriginFailures)) {
      out.consecutive_local_origin_failure = { value: o.consecutiveLocalOriginFailures };
      out.enforcing_consecutive_local_origin_failure = { value: 100 };
    }
    out.enforcing_local_origin_success_rate = { value: 0 };
  }
  d.cluster.outlier_detection = out;
  // Panic mode off by default (few pods per service); minHealthPercent turns it back on.
  const minHealth = o.minHealthPercent ?? 0;
  if (minHealth >= 0) commonLbConfig(d).healthy_panic_threshold = { value: minHealth };
}

/** Envoy's default when consecutive5xxErrors is unset. */
const ENVOY_DEFAULT_CONSECUTIVE_5XX = 5;
/** gRPC's own default failure-percentage threshold (gRFC A50). */
const GRPC_FAILURE_PERCENTAGE_THRESHOLD = 85;

/**
 * Outlier detection for proxyless gRPC. gRPC (gRFC A50) implements only success-rate and
 * failure-percentage ejection, not Envoy's consecutive-error counters, so the consecutive
 * error count N becomes failure-percentage ejection: an endpoint that received at least N
 * calls in an interval and failed more than 85 % of them (gRPC's default threshold) is
 * ejected, from one endpoint up (Envoy's consecutive counters need no minimum either).
 * N is consecutive5xxErrors (unset → Envoy's default 5; 0 turns it off), else
 * consecutiveGatewayErrors: gRPC cannot tell the two kinds of failure apart. Success-rate
 * ejection stays off as istiod sets it for Envoy.
 */
export function grpcOutlierDetection(o: OutlierDetection | undefined): ProtoObject | undefined {
  if (!o) return undefined;
  const out: ProtoObject = { enforcing_success_rate: { value: 0 } };
  if (o.interval) out.interval = duration(o.interval);
  if (o.baseEjectionTime) out.base_ejection_time = duration(o.baseEjectionTime);
  if (positive(o.maxEjectionPercent)) out.max_ejection_percent = { value: o.maxEjectionPercent };
  const n5xx = o.consecutive5xxErrors ?? ENVOY_DEFAULT_CONSECUTIVE_5XX;
  const n = n5xx > 0 ? n5xx : (o.consecutiveGatewayErrors ?? 0);
  if (n > 0) {
    out.failure_percentage_threshold = { value: GRPC_FAILURE_PERCENTAGE_THRESHOLD };
    out.enforcing_failure_percentage = { value: 100 };
    out.failure_percentage_minimum_hosts = { value: 1 };
    out.failure_percentage_request_volume = { value: n };
  }
  return out;
}

// ---- load balancer ----

export function commonLbConfig(d: ClusterDraft): ProtoObject {
  const existing = d.cluster.common_lb_config;
  if (existing && typeof existing === 'object' && !Array.isArray(existing)) return existing as ProtoObject;
  const created: ProtoObject = {};
  d.cluster.common_lb_config = created;
  return created;
}

/** warmup (or the deprecated warmupDurationSecs) → slow_start_config, as istiod's setWarmup. */
function slowStart(lb: LoadBalancerSettings | undefined): ProtoObject | undefined {
  if (lb?.warmup?.duration) {
    return {
      slow_start_window: duration(lb.warmup.duration),
      // istiod exposes no runtime key; it writes a fixed placeholder that never resolves.
      aggression: { default_value: lb.warmup.aggression ?? 1, runtime_key: '(' },
      min_weight_percent: { value: lb.warmup.minimumPercent ?? 10 },
    };
  }
  if (lb?.warmupDurationSecs) return { slow_start_window: duration(lb.warmupDurationSecs) };
  return undefined;
}

function ringHash(c: ProtoObject, lb: LoadBalancerSettings | undefined, flavor: ClusterFlavor): void {
  const ch = lb?.consistentHash;
  if (!ch) return;
  // lb_config is a oneof: slow start belongs to round robin / least request only.
  delete c.least_request_lb_config;
  delete c.round_robin_lb_config;
  if (ch.maglev) {
    // gRPC has no Maglev; its ring hash gives the same per-key stickiness.
    c.lb_policy = flavor === 'grpc' ? 'RING_HASH' : 'MAGLEV';
    if (flavor === 'envoy' && positive(ch.maglev.tableSize)) c.maglev_lb_config = { table_size: { value: ch.maglev.tableSize } };
    return;
  }
  c.lb_policy = 'RING_HASH';
  if (ch.ringHash) {
    if (positive(ch.ringHash.minimumRingSize)) c.ring_hash_lb_config = { minimum_ring_size: { value: ch.ringHash.minimumRingSize } };
    return;
  }
  // The deprecated top-level minimumRingSize; 1024 is Envoy's default, written out as istiod does.
  c.ring_hash_lb_config = { minimum_ring_size: { value: positive(ch.minimumRingSize) ? ch.minimumRingSize : 1024 } };
}

/**
 * loadBalancer → lb_policy and its config (istiod's applyLoadBalancer, minus locality, which
 * applyLocalityConfig handles). Returns true when the policy is PASSTHROUGH (original destination).
 */
export function applyLoadBalancer(d: ClusterDraft, lb: LoadBalancerSettings | undefined, flavor: ClusterFlavor): boolean {
  const c = d.cluster;
  if (flavor === 'grpc') {
    // gRPC clients implement round robin and ring hash only.
    c.lb_policy = 'ROUND_ROBIN';
    ringHash(c, lb, flavor);
    return false;
  }
  if (c.type === 'ORIGINAL_DST') {
    c.lb_policy = 'CLUSTER_PROVIDED';
    return true;
  }
  const warm = slowStart(lb);
  switch (lb?.simple) {
    case 'RANDOM':
      c.lb_policy = 'RANDOM';
      break;
    case 'ROUND_ROBIN':
      c.lb_policy = 'ROUND_ROBIN';
      if (warm) c.round_robin_lb_config = { slow_start_config: warm };
      break;
    case 'PASSTHROUGH':
      c.type = 'ORIGINAL_DST';
      c.lb_policy = 'CLUSTER_PROVIDED';
      delete c.load_assignment;
      return true;
    default:
      // LEAST_CONN, LEAST_REQUEST and unset: istiod's default algorithm is LEAST_REQUEST.
      c.lb_policy = 'LEAST_REQUEST';
      if (warm) c.least_request_lb_config = { slow_start_config: warm };
  }
  ringHash(c, lb, flavor);
  return false;
}

/** Whether the merged policy makes the cluster an original-destination one. */
export function isPassthrough(policy: TrafficPolicy | undefined): boolean {
  return policy?.loadBalancer?.simple === 'PASSTHROUGH';
}
