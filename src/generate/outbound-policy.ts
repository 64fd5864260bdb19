/**
 * outboundTrafficPolicy for sidecars (the proxy's Sidecar's, else MeshConfig's), as istiod: ALLOW_ANY sends traffic to unknown
 * destinations to PassthroughCluster (the `allow_any` virtual host, the virtualOutbound catch-all),
 * REGISTRY_ONLY to BlackHoleCluster (the `block_all` virtual host answers 502).
 */
import type { MeshSnapshot } from '../model/snapshot';
import type { Proxy } from '../model/proxy';
import { proxyOutboundTrafficPolicy } from '../model/lookup';
import type { ProtoObject } from './types';
import { BLACKHOLE_CLUSTER, PASSTHROUGH_CLUSTER, seconds } from './util';

/** The cluster a sidecar's virtualOutbound catch-all chain proxies unknown TCP traffic to. */
export function outboundCatchAllCluster(snap: MeshSnapshot, proxy: Proxy): string {
  return proxyOutboundTrafficPolicy(snap, proxy) === 'REGISTRY_ONLY' ? BLACKHOLE_CLUSTER : PASSTHROUGH_CLUSTER;
}

/** istiod's buildCatchAllVirtualHost: the last virtual host of every sidecar outbound route table. */
export function catchAllVirtualHost(snap: MeshSnapshot, proxy: Proxy): ProtoObject {
  if (proxyOutboundTrafficPolicy(snap, proxy) === 'REGISTRY_ONLY') {
    return {
      name: 'block_all',
      domains: ['*'],
      routes: [{ name: 'block_all', match: { prefix: '/' }, direct_response: { status: 502 } }],
      include_request_attempt_count: true,
    };
  }
  return {
    name: 'allow_any',
    domains: ['*'],
    routes: [{ name: 'allow_any', match: { prefix: '/' }, route: { cluster: PASSTHROUGH_CLUSTER, timeout: seconds(0), max_grpc_timeout: seconds(0) } }],
    include_request_attempt_count: true,
  };
}
