import type { ProtoObject } from './types';

export const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const TCP_PROXY_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
export const ROUTER_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
export const HTTP_PROTOCOL_OPTIONS_TYPE = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
export const ORIGINAL_DST_TYPE = 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst';
export const PREVIOUS_HOSTS_TYPE = 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate';

export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';
export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';
export const INBOUND_PASSTHROUGH_CLUSTER = 'InboundPassthroughClusterIpv4';

/** `outbound|<port>|<subset>|<fqdn>` as istiod names it. */
export function outboundClusterName(port: number, subset: string, host: string): string {
  return `outbound|${port}|${subset}|${host}`;
}

export function inboundClusterName(port: number): string {
  return `inbound|${port}||`;
}

export function parseOutboundClusterName(name: string): { port: number; subset: string; host: string } | undefined {
  const parts = name.split('|');
  if (parts.length !== 4 || parts[0] !== 'outbound') return undefined;
  const port = Number(parts[1]);
  if (!Number.isInteger(port)) return undefined;
  return { port, subset: parts[2] ?? '', host: parts[3] ?? '' };
}

/** Istio duration string (`1h`, `1.5s`, `100ms`, `10us`) → google.protobuf.Duration. */
export function duration(s: string): { seconds: number; nanos: number } {
  const m = /^(\d+(?:\.\d+)?)(h|m|s|ms|us|µs|ns)$/.exec(s.trim());
  if (!m) throw new Error(`invalid duration "${s}"`);
  const n = Number(m[1]);
  const unitNanos: Record<string, number> = { h: 3600e9, m: 60e9, s: 1e9, ms: 1e6, us: 1e3, µs: 1e3, ns: 1 };
  const total = Math.round(n * (unitNanos[m[2] as string] as number));
  return { seconds: Math.floor(total / 1e9), nanos: total % 1e9 };
}

export function seconds(n: number): { seconds: number; nanos: number } {
  return { seconds: Math.floor(n), nanos: Math.round((n - Math.floor(n)) * 1e9) };
}

export function adsConfigSource(): ProtoObject {
  return { ads: {}, initial_fetch_timeout: seconds(0), resource_api_version: 'V3' };
}

export function socketAddress(address: string, port: number): ProtoObject {
  return { socket_address: { address, port_value: port } };
}

export function routerFilter(): ProtoObject {
  return { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } };
}
