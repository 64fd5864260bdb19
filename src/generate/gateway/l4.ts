/**
 * TCP and TLS-passthrough filter chains for gateway servers, from the `tcp` and `tls` blocks of
 * the VirtualServices bound to the server's Gateway (istiod's createGatewayTCPFilterChainOpts),
 * and AUTO_PASSTHROUGH chains that route on SNI-encoded cluster names.
 */
import { proxyDestinationRule, visibleServices } from '../../model/lookup';
import type { Proxy } from '../../model/proxy';
import { type MeshSnapshot, type VirtualServiceConfig, exportedTo } from '../../model/snapshot';
import type { L4MatchAttributes, RouteDestination } from '../../model/objects';
import { type RouteScope, destinationCluster, gatewayRef } from '../route-scope';
import type { ProtoObject } from '../types';
import { TCP_PROXY_TYPE, outboundClusterName } from '../util';
import { hostSubsetOf, matchingGatewayHosts, tlsMode } from './hosts';
import type { MergedServer } from './merge';

/** One filter chain before it is turned into Envoy's shape. */
export interface ChainPlan {
  server: MergedServer;
  /** SNI names to match (unsorted); empty = any. */
  sniHosts: readonly string[];
  applicationProtocols?: readonly string[];
  /** Whether this chain terminates TLS with the server's settings. */
  terminate: boolean;
  /** An HCM with RDS to this route name, or network filters. */
  routeName?: string;
  network?: ProtoObject[];
}

/** Istio's ALPNs of its own mTLS: AUTO_PASSTHROUGH forwards only those. */
const ISTIO_MTLS_ALPNS: readonly string[] = ['istio', 'istio-peer-exchange', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2'];

function l4Matches(m: L4MatchAttributes, serverPort: number, gateway: string, vsNamespace: string): boolean {
  if (m.port !== undefined && m.port !== 0 && m.port !== serverPort) return false;
  return !m.gateways?.length || m.gateways.some((g) => gatewayRef(g, vsNamespace) === gateway);
}

/** VirtualServices bound to a Gateway and visible to the gateway proxy's namespace, in order. */
export function virtualServicesForGateway(snap: MeshSnapshot, proxyNamespace: string, gateway: string): VirtualServiceConfig[] {
  return snap.virtualServices.filter((vs) => vs.gateways.includes(gateway) && (vs.meta.namespace === proxyNamespace || exportedTo(vs.exportTo, proxyNamespace)));
}

function tcpProxy(statPrefix: string, spec: ProtoObject): ProtoObject {
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: statPrefix, ...spec } };
}

/** tcp_proxy to one cluster, or weighted clusters named after the VirtualService (buildOutboundNetworkFilters). */
function networkFilters(routes: readonly RouteDestination[], vs: VirtualServiceConfig, snap: MeshSnapshot, proxy: Proxy, port: number): ProtoObject[] | undefined {
  const scope: RouteScope = { snap, proxy, flavor: 'envoy', port, gateways: new Set() };
  if (routes.length === 1 && routes[0]) {
    const cluster = destinationCluster(routes[0].destination, vs.meta.namespace, scope);
    return [tcpProxy(cluster, { cluster })];
  }
  const clusters = routes.filter((r) => (r.weight ?? 0) > 0).map((r) => ({ name: destinationCluster(r.destination, vs.meta.namespace, scope), weight: r.weight ?? 0 }));
  if (clusters.length === 0) return undefined;
  return [tcpProxy(`${vs.meta.name}.${vs.meta.namespace}`, { weighted_clusters: { clusters } })];
}

/** The first `tcp` route of a bound VirtualService whose match fits the server (one chain per server). */
function tcpRouteFilters(snap: MeshSnapshot, proxy: Proxy, ms: MergedServer): ProtoObject[] | undefined {
  const gw = ms.gateway.key;
  const port = ms.server.port.number;
  for (const vs of virtualServicesForGateway(snap, proxy.namespace, gw)) {
    if (matchingGatewayHosts(ms.hosts, vs.hosts, vs.meta.namespace).length === 0) continue;
    for (const tcp of vs.spec.tcp ?? []) {
      const matches = tcp.match ?? [];
      if (matches.length > 0 && !matches.some((m) => l4Matches(m, port, gw, vs.meta.namespace))) continue;
      if (!tcp.route?.length) continue;
      const filters = networkFilters(tcp.route, vs, snap, proxy, port);
      if (filters) return filters;
    }
  }
  return undefined;
}

/** One chain per `tls` match (by its SNI hosts) of the bound VirtualServices; duplicate SNI names are skipped. */
function passthroughChains(snap: MeshSnapshot, proxy: Proxy, ms: MergedServer, seenSni: Map<string, string>): ChainPlan[] {
  const gw = ms.gateway.key;
  const port = ms.server.port.number;
  const bind = ms.server.bind ?? '';
  const out: ChainPlan[] = [];
  for (const vs of virtualServicesForGateway(snap, proxy.namespace, gw)) {
    if (matchingGatewayHosts(ms.hosts, vs.hosts, vs.meta.namespace).length === 0) continue;
    for (const tls of vs.spec.tls ?? []) {
      if (!tls.route?.length) continue;
      for (const m of tls.match ?? []) {
        if (!l4Matches(m, port, gw, vs.meta.namespace)) continue;
        if (m.sniHosts.some((h) => seenSni.get(h) === bind)) continue;
        for (const h of m.sniHosts) seenSni.set(h, bind);
        const network = networkFilters(tls.route, vs, snap, proxy, port);
        if (network) out.push({ server: ms, sniHosts: m.sniHosts, terminate: false, network });
      }
    }
  }
  return out;
}

/** `outbound_.<port>_.<subset>_.<host>`: the SNI (and cluster) name of AUTO_PASSTHROUGH. */
function sniDnatClusterName(port: number, subset: string, host: string): string {
  return `outbound_.${port}_.${subset}_.${host}`;
}

/** Every (service, port, subset) whose host falls under one of `hosts`: the targets of AUTO_PASSTHROUGH. */
export function autoPassthroughTargets(snap: MeshSnapshot, proxy: Proxy, hosts: readonly string[]): { name: string; outbound: string }[] {
  const out: { name: string; outbound: string }[] = [];
  for (const svc of visibleServices(snap, proxy.namespace)) {
    if (svc.meshExternal || !hosts.some((h) => hostSubsetOf(svc.hostname, h.includes('/') ? h.slice(h.indexOf('/') + 1) : h))) continue;
    const subsets = ['', ...(proxyDestinationRule(snap, proxy, svc.hostname)?.spec.subsets ?? []).map((s) => s.name)];
    for (const p of svc.ports) {
      if (p.protocol === 'UDP') continue;
      for (const s of subsets) out.push({ name: sniDnatClusterName(p.port, s, svc.hostname), outbound: outboundClusterName(p.port, s, svc.hostname) });
    }
  }
  return out;
}

/** Filter chains of a TCP/TLS server (not HTTPS termination), as istiod builds them. */
export function tcpServerChains(snap: MeshSnapshot, proxy: Proxy, ms: MergedServer, seenSni: Map<string, string>): ChainPlan[] {
  const tls = ms.server.tls;
  if (!tls) {
    const network = tcpRouteFilters(snap, proxy, ms);
    return network ? [{ server: ms, sniHosts: [], terminate: false, network }] : [];
  }
  const mode = tlsMode(tls);
  if (mode === 'AUTO_PASSTHROUGH') {
    return autoPassthroughTargets(snap, proxy, ms.sniHosts).map((t) => ({
      server: ms,
      sniHosts: [t.name],
      applicationProtocols: ISTIO_MTLS_ALPNS,
      terminate: false,
      network: [tcpProxy(t.name, { cluster: t.name })],
    }));
  }
  if (mode === 'PASSTHROUGH') return passthroughChains(snap, proxy, ms, seenSni);
  // TLS terminated here, then forwarded as TCP by the `tcp` routes.
  const network = tcpRouteFilters(snap, proxy, ms);
  return network ? [{ server: ms, sniHosts: ms.sniHosts, terminate: true, network }] : [];
}
