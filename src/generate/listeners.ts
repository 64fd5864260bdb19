/**
 * LDS for Envoy sidecars: `virtualOutbound` (15001), `virtualInbound` (15006), and outbound
 * listeners per service port: `0.0.0.0_<port>` for HTTP (RDS route `<port>`); TCP and TLS ports
 * in outbound-tcp.ts (`<vip>_<port>`, or `0.0.0.0_<port>` for ServiceEntries without a VIP).
 */
import { isHttp } from '../model/protocol';
import { securedInboundChains } from './security/inbound';
import { needsTlsInspector, tlsInspector } from './security/inbound-tls';
import { httpFilters } from './http-filters';
import { inboundPorts } from './inbound';
import { outboundCatchAllCluster } from './outbound-policy';
import { outboundTcpListeners } from './outbound-tcp';
import { sidecarRouteNames } from './routes';
import type { GenerateContext, ProtoObject, Resource } from './types';
import { HCM_TYPE, INBOUND_PASSTHROUGH_CLUSTER, ORIGINAL_DST_TYPE, TCP_PROXY_TYPE, adsConfigSource, inboundClusterName, routerFilter, seconds, socketAddress } from './util';

export const VIRTUAL_OUTBOUND_PORT = 15001;
export const VIRTUAL_INBOUND_PORT = 15006;

function tcpProxy(cluster: string, statPrefix = cluster): ProtoObject {
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: statPrefix, cluster } };
}

function outboundHttpListener(port: number): ProtoObject {
  const name = `0.0.0.0_${port}`;
  return {
    name,
    address: socketAddress('0.0.0.0', port),
    bind_to_port: { value: false },
    traffic_direction: 'OUTBOUND',
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM_TYPE,
              stat_prefix: `outbound_${name}`,
              rds: { config_source: adsConfigSource(), route_config_name: String(port) },
              http_filters: httpFilters('sidecar'),
              use_remote_address: { value: false },
              normalize_path: { value: true },
              path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
              stream_idle_timeout: seconds(0),
            },
          },
        ],
      },
    ],
  };
}

function virtualOutbound(ctx: GenerateContext): ProtoObject {
  return {
    name: 'virtualOutbound',
    address: socketAddress('0.0.0.0', VIRTUAL_OUTBOUND_PORT),
    use_original_dst: { value: true },
    traffic_direction: 'OUTBOUND',
    // PassthroughCluster, or BlackHoleCluster under MeshConfig REGISTRY_ONLY.
    filter_chains: [{ name: 'virtualOutbound-catchall-tcp', filters: [tcpProxy(outboundCatchAllCluster(ctx.snap))] }],
  };
}

function virtualInbound(ctx: GenerateContext): ProtoObject {
  const chains: ProtoObject[] = inboundPorts(ctx).flatMap((p) => {
    const cluster = inboundClusterName(p.targetPort);
    const filter = isHttp(p.protocol)
      ? {
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: {
            '@type': HCM_TYPE,
            stat_prefix: cluster,
            route_config: {
              name: cluster,
              virtual_hosts: [
                {
                  name: `inbound|http|${p.targetPort}`,
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
        }
      : tcpProxy(cluster);
    // PeerAuthentication picks the chains (mTLS / plaintext), AuthorizationPolicy adds RBAC.
    return securedInboundChains(ctx, p, filter, isHttp(p.protocol));
  });
  const listenerFilters: ProtoObject[] = [{ name: 'envoy.filters.listener.original_dst', typed_config: { '@type': ORIGINAL_DST_TYPE } }];
  if (needsTlsInspector(chains)) listenerFilters.push(tlsInspector());
  return {
    name: 'virtualInbound',
    address: socketAddress('0.0.0.0', VIRTUAL_INBOUND_PORT),
    traffic_direction: 'INBOUND',
    listener_filters: listenerFilters,
    filter_chains: chains,
    default_filter_chain: { name: 'InboundPassthroughFilterChain', filters: [tcpProxy(INBOUND_PASSTHROUGH_CLUSTER)] },
    listener_filters_timeout: seconds(0),
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
  const httpPorts = sidecarRouteNames(ctx.snap, ctx.proxy.namespace);
  for (const port of httpPorts) {
    const name = `0.0.0.0_${port}`;
    if (want(name)) out.push({ name, build: () => outboundHttpListener(port) });
  }
  out.push(...outboundTcpListeners(ctx, new Set(httpPorts)));
  return out;
}

/** `virtualInbound`: the proxy's own workload's ports, with its security policies. */
export function sidecarInboundListeners(ctx: GenerateContext): Resource[] {
  if (ctx.names && !ctx.names.has('virtualInbound')) return [];
  return [{ name: 'virtualInbound', build: () => virtualInbound(ctx) }];
}
