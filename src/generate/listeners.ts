/**
 * LDS for Envoy sidecars: `virtualOutbound` (15001), `virtualInbound` (15006), and the outbound
 * listeners per service port (outbound-listeners.ts).
 */
import { isAuto, isHttp } from '../model/protocol';
import { securedInboundChains } from './security/inbound';
import { httpInspector, needsTlsInspector, tlsInspector } from './security/inbound-tls';
import { type InboundPort, inboundPorts } from './inbound';
import { outboundServiceListeners } from './outbound-listeners';
import { outboundCatchAllCluster } from './outbound-policy';
import type { GenerateContext, ProtoObject, Resource } from './types';
import { HCM_TYPE, INBOUND_PASSTHROUGH_CLUSTER, ORIGINAL_DST_TYPE, TCP_PROXY_TYPE, inboundClusterName, routerFilter, seconds, socketAddress } from './util';

export const VIRTUAL_OUTBOUND_PORT = 15001;
export const VIRTUAL_INBOUND_PORT = 15006;

function tcpProxy(cluster: string, statPrefix = cluster): ProtoObject {
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: statPrefix, cluster } };
}

function virtualOutbound(ctx: GenerateContext): ProtoObject {
  return {
    name: 'virtualOutbound',
    address: socketAddress('0.0.0.0', VIRTUAL_OUTBOUND_PORT),
    use_original_dst: { value: true },
    traffic_direction: 'OUTBOUND',
    // PassthroughCluster, or BlackHoleCluster under MeshConfig REGISTRY_ONLY.
    filter_chains: [{ name: 'virtualOutbound-catchall-tcp', filters: [tcpProxy(outboundCatchAllCluster(ctx.snap, ctx.proxy))] }],
  };
}

function inboundHcm(targetPort: number): ProtoObject {
  const cluster = inboundClusterName(targetPort);
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': HCM_TYPE,
      stat_prefix: cluster,
      route_config: {
        name: cluster,
        virtual_hosts: [
          {
            name: `inbound|http|${targetPort}`,
            domains: ['*'],
            routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster, timeout: seconds(0), max_grpc_timeout: seconds(0) } }],
          },
        ],
        validate_clusters: { value: false },
      },
      http_filters: [routerFilter()],
      use_remote_address: { value: false },
      forward_client_cert_details: 'APPEND_FORWARD',
      normalize_path: { value: true },
    },
  };
}

function inboundChains(ctx: GenerateContext, p: InboundPort): ProtoObject[] {
  const cluster = inboundClusterName(p.targetPort);
  // PeerAuthentication picks the chains (mTLS / plaintext), AuthorizationPolicy adds RBAC; a
  // port without a declared protocol gets both kinds, told apart by ALPN.
  if (isAuto(p.protocol)) return securedInboundChains(ctx, p, 'auto', { http: inboundHcm(p.targetPort), tcp: tcpProxy(cluster) });
  if (isHttp(p.protocol)) return securedInboundChains(ctx, p, 'http', { http: inboundHcm(p.targetPort) });
  return securedInboundChains(ctx, p, 'tcp', { tcp: tcpProxy(cluster) });
}

function inboundListenerFilters(chains: ProtoObject[], originalDst: boolean): ProtoObject[] {
  const listenerFilters: ProtoObject[] = originalDst ? [{ name: 'envoy.filters.listener.original_dst', typed_config: { '@type': ORIGINAL_DST_TYPE } }] : [];
  const http = httpInspector(chains);
  // The TLS inspector goes first: the HTTP inspector leaves connections it marked TLS alone.
  if (needsTlsInspector(chains)) listenerFilters.push(tlsInspector());
  if (http) listenerFilters.push(http);
  return listenerFilters;
}

/**
 * A Sidecar ingress listener with captureMode NONE: traffic is not redirected to virtualInbound,
 * so it gets a listener of its own, bound to `<bind>:<port>` (istiod's bind-to-port inbound listener).
 */
function boundInbound(ctx: GenerateContext, p: InboundPort, bind: string): ProtoObject {
  const chains = inboundChains(ctx, p);
  return {
    name: `${bind}_${p.targetPort}`,
    address: socketAddress(bind, p.targetPort),
    traffic_direction: 'INBOUND',
    listener_filters: inboundListenerFilters(chains, false),
    filter_chains: chains,
    listener_filters_timeout: seconds(ctx.snap.protocolDetectionTimeoutMs / 1000),
    continue_on_listener_filters_timeout: true,
  };
}

function virtualInbound(ctx: GenerateContext): ProtoObject {
  const chains: ProtoObject[] = inboundPorts(ctx)
    .filter((p) => p.bindTo === undefined)
    .flatMap((p) => inboundChains(ctx, p));
  const listenerFilters = inboundListenerFilters(chains, true);
  return {
    name: 'virtualInbound',
    address: socketAddress('0.0.0.0', VIRTUAL_INBOUND_PORT),
    traffic_direction: 'INBOUND',
    listener_filters: listenerFilters,
    filter_chains: chains,
    default_filter_chain: { name: 'InboundPassthroughFilterChain', filters: [tcpProxy(INBOUND_PASSTHROUGH_CLUSTER)] },
    // The mesh's protocolDetectionTimeout, as istiod sets on every inbound listener.
    listener_filters_timeout: seconds(ctx.snap.protocolDetectionTimeoutMs / 1000),
    continue_on_listener_filters_timeout: true,
  };
}

export function sidecarListeners(ctx: GenerateContext): Resource[] {
  return [...sidecarOutboundListeners(ctx), ...sidecarInboundListeners(ctx)];
}

/** `virtualOutbound` and the outbound listeners per service port: the same for a whole namespace. */
export function sidecarOutboundListeners(ctx: GenerateContext): Resource[] {
  const out: Resource[] = [];
  const want = (n: string): boolean => !ctx.names || ctx.names.has(n);
  if (want('virtualOutbound')) out.push({ name: 'virtualOutbound', build: () => virtualOutbound(ctx) });
  out.push(...outboundServiceListeners(ctx));
  return out;
}

/**
 * `virtualInbound`: the proxy's own workload's ports, with its security policies; and a listener
 * of its own for each Sidecar ingress listener that captures nothing (captureMode NONE).
 */
export function sidecarInboundListeners(ctx: GenerateContext): Resource[] {
  const out: Resource[] = [];
  if (!ctx.names || ctx.names.has('virtualInbound')) out.push({ name: 'virtualInbound', build: () => virtualInbound(ctx) });
  for (const p of inboundPorts(ctx)) {
    const bind = p.bindTo;
    if (bind === undefined) continue;
    const name = `${bind}_${p.targetPort}`;
    if (!ctx.names || ctx.names.has(name)) out.push({ name, build: () => boundInbound(ctx, p, bind) });
  }
  return out;
}
