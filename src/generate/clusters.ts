/** CDS: outbound clusters per service port and DestinationRule subset; sidecar specials and inbound. */
import { isHttp2 } from '../model/protocol';
import { proxyDestinationRule, visibleServices } from '../model/lookup';
import { workloadOf } from '../model/proxy';
import type { DestinationRuleConfig, MeshService, ServicePort } from '../model/snapshot';
import type { TrafficPolicy } from '../model/objects';
import { inboundPorts } from './inbound';
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

const MAX_U32 = 4294967295;

/** Istio's default circuit breaker thresholds: effectively unlimited. */
function defaultCircuitBreakers(): ProtoObject {
  return {
    thresholds: [
      {
        max_connections: { value: MAX_U32 },
        max_pending_requests: { value: MAX_U32 },
        max_requests: { value: MAX_U32 },
        max_retries: { value: MAX_U32 },
        track_remaining: true,
      },
    ],
  };
}

/** Upstream HTTP/2 (gRPC and http2 ports). */
function http2Options(): ProtoObject {
  return {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': HTTP_PROTOCOL_OPTIONS_TYPE,
      explicit_http_config: { http2_protocol_options: {} },
    },
  };
}

function lbPolicy(policy: TrafficPolicy | undefined): { lb_policy?: string; passthrough: boolean } {
  switch (policy?.loadBalancer?.simple) {
    case 'LEAST_CONN':
    case 'LEAST_REQUEST':
      return { lb_policy: 'LEAST_REQUEST', passthrough: false };
    case 'RANDOM':
      return { lb_policy: 'RANDOM', passthrough: false };
    case 'PASSTHROUGH':
      return { lb_policy: 'CLUSTER_PROVIDED', passthrough: true };
    default:
      return { lb_policy: 'ROUND_ROBIN', passthrough: false };
  }
}

/** The effective policy for a subset: the subset's own settings win over the rule's. */
function mergedPolicy(dr: DestinationRuleConfig | undefined, subset: string): TrafficPolicy | undefined {
  if (!dr) return undefined;
  const top = dr.spec.trafficPolicy;
  const sub = subset ? dr.spec.subsets?.find((s) => s.name === subset)?.trafficPolicy : undefined;
  if (!sub) return top;
  return { ...top, ...sub };
}

function outboundCluster(svc: MeshService, port: ServicePort, subset: string, dr: DestinationRuleConfig | undefined, flavor: 'envoy' | 'grpc'): ProtoObject {
  const name = outboundClusterName(port.port, subset, svc.hostname);
  const lb = lbPolicy(mergedPolicy(dr, subset));
  if (flavor === 'grpc') {
    return {
      name,
      type: 'EDS',
      eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name },
      lb_policy: lb.passthrough ? 'ROUND_ROBIN' : (lb.lb_policy ?? 'ROUND_ROBIN'),
    };
  }
  const cluster: ProtoObject = lb.passthrough
    ? { name, type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED' }
    : {
        name,
        type: 'EDS',
        eds_cluster_config: { eds_config: adsConfigSource(), service_name: name },
        lb_policy: lb.lb_policy,
      };
  cluster.connect_timeout = seconds(10);
  cluster.circuit_breakers = defaultCircuitBreakers();
  cluster.common_lb_config = {};
  if (isHttp2(port.protocol)) cluster.typed_extension_protocol_options = http2Options();
  return cluster;
}

/** Every outbound cluster of the snapshot, as (name, builder) pairs keyed for the cache. */
export function outboundClusters(ctx: GenerateContext, flavor: 'envoy' | 'grpc'): Resource[] {
  const { snap, names } = ctx;
  const out: Resource[] = [];
  for (const svc of visibleServices(snap, ctx.proxy.namespace)) {
    const dr = proxyDestinationRule(snap, ctx.proxy, svc.hostname);
    const subsets = ['', ...(dr?.spec.subsets ?? []).map((s) => s.name)];
    // Clusters depend on the rule in effect, which depends on the proxy's namespace and labels.
    const key = `${flavor}|${dr ? dr.sources.join(',') : ''}`;
    for (const port of svc.ports) {
      if (port.protocol === 'UDP') continue;
      for (const subset of subsets) {
        const name = outboundClusterName(port.port, subset, svc.hostname);
        if (names && !names.has(name)) continue;
        out.push({ name, key, build: () => outboundCluster(svc, port, subset, dr, flavor) });
      }
    }
  }
  return out;
}

function originalDstCluster(name: string, bindInbound: boolean): ProtoObject {
  return {
    name,
    type: 'ORIGINAL_DST',
    lb_policy: 'CLUSTER_PROVIDED',
    connect_timeout: seconds(10),
    circuit_breakers: defaultCircuitBreakers(),
    ...(bindInbound ? { upstream_bind_config: { source_address: { address: '127.0.0.6', port_value: 0 } } } : {}),
  };
}

export function sidecarClusters(ctx: GenerateContext): Resource[] {
  const out = outboundClusters(ctx, 'envoy');
  const want = (n: string): boolean => !ctx.names || ctx.names.has(n);
  if (want(BLACKHOLE_CLUSTER)) {
    out.push({
      name: BLACKHOLE_CLUSTER,
      key: '',
      build: () => ({ name: BLACKHOLE_CLUSTER, type: 'STATIC', connect_timeout: seconds(10), load_assignment: { cluster_name: BLACKHOLE_CLUSTER } }),
    });
  }
  if (want(PASSTHROUGH_CLUSTER)) out.push({ name: PASSTHROUGH_CLUSTER, key: '', build: () => originalDstCluster(PASSTHROUGH_CLUSTER, false) });
  if (want(INBOUND_PASSTHROUGH_CLUSTER)) out.push({ name: INBOUND_PASSTHROUGH_CLUSTER, key: '', build: () => originalDstCluster(INBOUND_PASSTHROUGH_CLUSTER, true) });
  const w = workloadOf(ctx.proxy, ctx.snap);
  for (const ip of inboundPorts(ctx)) {
    const name = inboundClusterName(ip.targetPort);
    if (!want(name)) continue;
    out.push({
      name,
      key: `${ctx.proxy.namespace}/${w?.name ?? ctx.proxy.podName}`,
      build: () => ({
        ...originalDstCluster(name, true),
        ...(isHttp2(ip.protocol) ? { typed_extension_protocol_options: http2Options() } : {}),
      }),
    });
  }
  return out;
}
