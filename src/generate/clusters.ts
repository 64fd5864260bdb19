/**
 * CDS: outbound clusters per service port and DestinationRule subset, with the rule's traffic
 * policy (cluster-policy.ts, cluster-tls.ts, locality.ts); sidecar specials and inbound.
 */
import { toStruct } from './security/struct';
import { type Protocol, isAuto, isHttp2 } from '../model/protocol';
import { proxyDestinationRule, proxyServices } from '../model/lookup';
import {
  type ClusterDraft,
  type ClusterFlavor,
  applyConnectionPool,
  applyH2Upgrade,
  applyLoadBalancer,
  applyOutlierDetection,
  commonLbConfig,
  defaultThresholds,
  grpcCircuitBreakers,
  grpcOutlierDetection,
  httpProtocolOptions,
  setDownstreamProtocol,
  setHttp2,
} from './cluster-policy';
import {
  type ClusterTarget,
  type ProxyPlacement,
  clusterTarget,
  flavorOfProxy,
  outboundNamed,
  groupsToProto,
  placedGroups,
  placementPlan,
  proxyPlacement,
  serviceAccounts,
  subsetEndpoints,
} from './cluster-shape';
import { applyUpstreamTls, grpcUpstreamTls } from './cluster-tls';
import { type InboundEndpoint, inboundPorts } from './inbound';
import { applyAutoMtls } from './security/auto-mtls';
import { wantsLocalityWeightedConfig } from './locality';
import type { GenerateContext, ProtoObject, Resource } from './types';
import {
  BLACKHOLE_CLUSTER,
  HTTP_PROTOCOL_OPTIONS_TYPE,
  INBOUND_PASSTHROUGH_CLUSTER,
  PASSTHROUGH_CLUSTER,
  adsConfigSource,
  inboundClusterName,
  outboundClusterName,
  seconds,
} from './util';
import type { DestinationRuleConfig, MeshService, ServicePort } from '../model/snapshot';

/** istiod's mesh default DNS refresh rate (the TTL wins when the answer has one). */
const DNS_REFRESH_RATE = seconds(60);

/** Upstream HTTP/2 (gRPC and http2 ports), or the downstream's protocol (sniffed ports). */
function inboundHttpOptions(protocol: Protocol): ProtoObject | undefined {
  let upstream: ProtoObject;
  if (isHttp2(protocol)) upstream = { explicit_http_config: { http2_protocol_options: {} } };
  else if (isAuto(protocol)) upstream = { use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} } };
  else return undefined;
  return { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': HTTP_PROTOCOL_OPTIONS_TYPE, ...upstream } };
}

function defaultCircuitBreakers(): ProtoObject {
  return { thresholds: [defaultThresholds()] };
}

/** The inline load assignment of a DNS cluster, or undefined when it has no endpoints (no cluster then, as istiod). */
function dnsLoadAssignment(ctx: GenerateContext, name: string, t: ClusterTarget, placement: ProxyPlacement | undefined): ProtoObject | undefined {
  const endpoints = subsetEndpoints(ctx.snap, t.svc, t.port.port, t.dr, t.subset) ?? [];
  let groups = placedGroups(endpoints, placementPlan(t, ctx.snap), placement, { ipOnly: false, withLabels: false });
  if (t.type === 'LOGICAL_DNS') {
    // One logical host (validation allows one endpoint for DNS_ROUND_ROBIN; gRPC's only DNS
    // type gets the first address of the most preferred locality of a DNS entry).
    const candidates = groups.filter((g) => g.lbEndpoints.length > 0);
    const first = candidates.reduce<(typeof candidates)[number] | undefined>((best, g) => (!best || g.priority < best.priority ? g : best), undefined);
    groups = first ? [{ ...first, endpoints: first.endpoints.slice(0, 1), lbEndpoints: first.lbEndpoints.slice(0, 1), priority: 0 }] : [];
  }
  if (!groups.some((g) => g.lbEndpoints.length > 0)) return undefined;
  return { cluster_name: name, endpoints: groupsToProto(groups) };
}

function envoyCluster(ctx: GenerateContext, name: string, t: ClusterTarget, loadAssignment: ProtoObject | undefined): ProtoObject {
  const d: ClusterDraft = { cluster: { name, type: t.type, common_lb_config: {} } };
  const c = d.cluster;
  if (t.type === 'STRICT_DNS' || t.type === 'LOGICAL_DNS') {
    c.dns_lookup_family = 'V4_ONLY';
    c.dns_refresh_rate = DNS_REFRESH_RATE;
    c.respect_dns_ttl = true;
    if (loadAssignment) c.load_assignment = loadAssignment;
  }
  if (isHttp2(t.port.protocol)) setHttp2(d);
  // A sniffed port: upstream speaks whatever came in (HTTP/1.1 or HTTP/2), sidecars only (istiod's setUpstreamProtocol).
  else if (isAuto(t.port.protocol) && ctx.proxy.type === 'sidecar') setDownstreamProtocol(d);
  // Same order as istiod's applyTrafficPolicy: failover depends on outlier detection being set.
  const p = t.policy;
  applyConnectionPool(d, p?.connectionPool, { ...ctx.snap.connectTimeout });
  applyH2Upgrade(d, p?.connectionPool);
  applyOutlierDetection(d, p?.outlierDetection);
  if (wantsLocalityWeightedConfig(placementPlan(t, ctx.snap))) commonLbConfig(d).locality_weighted_lb_config = {};
  applyLoadBalancer(d, p?.loadBalancer, 'envoy');
  const tlsTarget = {
    sni: `outbound_.${t.port.port}_.${t.subset}_.${t.svc.hostname}`,
    serviceAccounts: serviceAccounts(ctx.snap, t.svc),
    fromServiceEntry: t.svc.source.kind === 'ServiceEntry',
    sidecar: ctx.proxy.type === 'sidecar',
    ruleHasSelector: t.dr?.spec.workloadSelector !== undefined,
  };
  applyUpstreamTls(d, p?.tls, tlsTarget);
  // No TLS in the rule: istiod's automatic mTLS (ISTIO_MUTUAL to endpoints with sidecars).
  applyAutoMtls(ctx.snap, d, t.svc, t.port.port, p?.tls, tlsTarget);
  if (c.type === 'EDS') c.eds_cluster_config = { eds_config: adsConfigSource(), service_name: name };
  const http = httpProtocolOptions(d, HTTP_PROTOCOL_OPTIONS_TYPE);
  if (http) c.typed_extension_protocol_options = { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': http };
  const md = configMetadata(t);
  if (md) c.metadata = md;
  return c;
}

/**
 * istiod's BuildConfigInfoMetadata and AddSubsetToMetadata on a cluster shaped by a
 * DestinationRule: the rule it came from and the subset, as istioctl reads them back.
 */
function configMetadata(t: ClusterTarget): ProtoObject | undefined {
  if (!t.dr) return undefined;
  const config = `/apis/networking.istio.io/v1/namespaces/${t.dr.meta.namespace}/destination-rule/${t.dr.meta.name}`;
  return { filter_metadata: { istio: toStruct(t.subset ? { config, subset: t.subset } : { config }) } };
}

/** Proxyless gRPC: only what gRPC clients implement (lb policy, max_requests, outlier detection, mTLS). */
function grpcCluster(ctx: GenerateContext, name: string, t: ClusterTarget, loadAssignment: ProtoObject | undefined): ProtoObject {
  const d: ClusterDraft = { cluster: { name, type: t.type } };
  const c = d.cluster;
  if (t.type === 'LOGICAL_DNS') c.load_assignment = loadAssignment;
  else c.eds_cluster_config = { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name };
  applyLoadBalancer(d, t.policy?.loadBalancer, 'grpc');
  const cb = grpcCircuitBreakers(t.policy?.connectionPool);
  if (cb) c.circuit_breakers = cb;
  const od = grpcOutlierDetection(t.policy?.outlierDetection);
  if (od) c.outlier_detection = od;
  const ts = grpcUpstreamTls(t.policy?.tls, t.policy?.tls?.mode === 'ISTIO_MUTUAL' ? serviceAccounts(ctx.snap, t.svc) : []);
  if (ts) c.transport_socket = ts;
  const md = configMetadata(t);
  if (md) c.metadata = md;
  return c;
}

/**
 * One outbound cluster as a resource for this proxy, or undefined when there is none (a DNS
 * cluster without endpoints is left out, as istiod does).
 */
function outboundCluster(
  ctx: GenerateContext,
  flavor: ClusterFlavor,
  svc: MeshService,
  port: ServicePort,
  subset: string,
  dr: DestinationRuleConfig | undefined,
  placement: () => ProxyPlacement,
): Resource | undefined {
  const { snap, proxy } = ctx;
  const name = outboundClusterName(port.port, subset, svc.hostname);
  const t = clusterTarget(snap, svc, port, subset, dr, proxy, flavor);
  let loadAssignment: ProtoObject | undefined;
  if (t.type === 'STRICT_DNS' || t.type === 'LOGICAL_DNS') {
    // Inline endpoints: locality load balancing makes them proxy-relative.
    const placed = placementPlan(t, ctx.snap) ? placement() : undefined;
    loadAssignment = dnsLoadAssignment(ctx, name, t, placed);
    if (!loadAssignment) return undefined;
  }
  const build = flavor === 'grpc' ? () => grpcCluster(ctx, name, t, loadAssignment) : () => envoyCluster(ctx, name, t, loadAssignment);
  // t is a function of (svc, port, subset, dr, flavor, type); loadAssignment is new per computation.
  return { name, build, inputs: [flavor, t.svc, t.port, t.subset, t.dr, t.type, loadAssignment] };
}

/** Every outbound cluster of the snapshot the proxy sees, as (name, builder) pairs. */
export function outboundClusters(ctx: GenerateContext, flavor: ClusterFlavor): Resource[] {
  const { snap, names, proxy } = ctx;
  const out: Resource[] = [];
  let placement: ProxyPlacement | undefined;
  const placed = (): ProxyPlacement => (placement ??= proxyPlacement(snap, proxy));
  for (const svc of proxyServices(snap, proxy)) {
    const dr = proxyDestinationRule(snap, proxy, svc.hostname);
    const subsets = ['', ...(dr?.spec.subsets ?? []).map((s) => s.name)];
    for (const port of svc.ports) {
      if (port.protocol === 'UDP') continue;
      for (const subset of subsets) {
        if (names && !names.has(outboundClusterName(port.port, subset, svc.hostname))) continue;
        const r = outboundCluster(ctx, flavor, svc, port, subset, dr, placed);
        if (r) out.push(r);
      }
    }
  }
  return out;
}

/** The outbound cluster `name` (one of `outboundClusters`' names), built directly from its name. */
export function outboundClusterNamed(ctx: GenerateContext, flavor: ClusterFlavor, name: string): Resource | undefined {
  const o = outboundNamed(ctx, name);
  return o && outboundCluster(ctx, flavor, o.svc, o.port, o.subset, o.dr, () => proxyPlacement(ctx.snap, ctx.proxy));
}

function staticInboundCluster(name: string, endpoint: InboundEndpoint, connectTimeout: ProtoObject): ProtoObject {
  const address = 'pipe' in endpoint ? { pipe: { path: endpoint.pipe } } : { socket_address: { address: endpoint.address, port_value: endpoint.port } };
  return {
    name,
    type: 'STATIC',
    connect_timeout: connectTimeout,
    circuit_breakers: defaultCircuitBreakers(),
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] },
  };
}

function originalDstCluster(name: string, bindInbound: boolean, connectTimeout: ProtoObject): ProtoObject {
  return {
    name,
    type: 'ORIGINAL_DST',
    lb_policy: 'CLUSTER_PROVIDED',
    connect_timeout: connectTimeout,
    circuit_breakers: defaultCircuitBreakers(),
    ...(bindInbound ? { upstream_bind_config: { source_address: { address: '127.0.0.6', port_value: 0 } } } : {}),
  };
}

export function sidecarClusters(ctx: GenerateContext): Resource[] {
  return [...outboundClusters(ctx, flavorOfProxy(ctx.proxy)), ...sidecarLocalClusters(ctx)];
}

/** A sidecar's clusters besides the outbound ones: BlackHole, Passthrough and its inbound clusters. */
export function sidecarLocalClusters(ctx: GenerateContext): Resource[] {
  const out: Resource[] = [];
  const want = (n: string): boolean => !ctx.names || ctx.names.has(n);
  if (want(BLACKHOLE_CLUSTER)) {
    out.push({
      name: BLACKHOLE_CLUSTER,
      build: () => ({ name: BLACKHOLE_CLUSTER, type: 'STATIC', connect_timeout: { ...ctx.snap.connectTimeout }, load_assignment: { cluster_name: BLACKHOLE_CLUSTER } }),
    });
  }
  // istiod gives these clusters the MeshConfig connectTimeout too.
  const timeout = (): ProtoObject => ({ ...ctx.snap.connectTimeout });
  if (want(PASSTHROUGH_CLUSTER)) out.push({ name: PASSTHROUGH_CLUSTER, build: () => originalDstCluster(PASSTHROUGH_CLUSTER, false, timeout()) });
  if (want(INBOUND_PASSTHROUGH_CLUSTER)) out.push({ name: INBOUND_PASSTHROUGH_CLUSTER, build: () => originalDstCluster(INBOUND_PASSTHROUGH_CLUSTER, true, timeout()) });
  for (const ip of inboundPorts(ctx)) {
    const name = inboundClusterName(ip.targetPort);
    if (!want(name)) continue;
    const options = inboundHttpOptions(ip.protocol);
    const endpoint = ip.endpoint;
    // A Sidecar ingress listener's defaultEndpoint: a STATIC cluster to it, as istiod.
    const base = (): ProtoObject => (endpoint ? staticInboundCluster(name, endpoint, timeout()) : originalDstCluster(name, true, timeout()));
    out.push({ name, build: () => ({ ...base(), ...(options ? { typed_extension_protocol_options: options } : {}) }) });
  }
  return out;
}
