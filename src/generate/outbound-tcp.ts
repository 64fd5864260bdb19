/**
 * The filter chains of a non-HTTP service port on a sidecar's outbound listener (istiod's
 * buildSidecarOutboundTCPTLSFilterChainOpts): VirtualService `tcp` routes become the tcp_proxy of
 * the port's filter chain (weighted clusters for several destinations; matches on port,
 * destinationSubnets, sourceLabels, sourceNamespace, gateways), `tls` routes become filter
 * chains matched by SNI (`server_names`, read by the tls_inspector listener filter). A
 * ServiceEntry whose address is a CIDR is matched by that range. Which listener the chains go
 * on is outbound-listeners.ts's business.
 */
import type { L4MatchAttributes, RouteDestination, TLSMatchAttributes } from '../model/objects';
import { proxyLabels } from '../model/proxy';
import { proxyVirtualService } from '../model/lookup';
import { type MeshService, type ServicePort, type VirtualServiceConfig, labelsMatch } from '../model/snapshot';
import { type RouteScope, destinationCluster, gatewayRef } from './route-scope';
import type { GenerateContext, ProtoObject } from './types';
import { TCP_PROXY_TYPE, outboundClusterName } from './util';

export function isTls(p: ServicePort): boolean {
  return p.protocol === 'TLS' || p.protocol === 'HTTPS';
}

export interface Target {
  svc: MeshService;
  port: ServicePort;
  /** A CIDR the filter chain must match (ServiceEntry addresses given as a range). */
  cidr?: string;
}

export function tcpProxyFilter(statPrefix: string, spec: { cluster: string } | { weighted: ProtoObject[] }): ProtoObject {
  const cfg: ProtoObject = { '@type': TCP_PROXY_TYPE, stat_prefix: statPrefix };
  if ('cluster' in spec) cfg.cluster = spec.cluster;
  else cfg.weighted_clusters = { clusters: spec.weighted };
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: cfg };
}

/** istiod's buildOutboundNetworkFilters: one destination → cluster, several → weighted clusters. */
function routeFilter(route: readonly RouteDestination[], vs: VirtualServiceConfig, scope: RouteScope): ProtoObject | undefined {
  const ns = vs.meta.namespace;
  if (route.length === 1 && route[0]) {
    const cluster = destinationCluster(route[0].destination, ns, scope);
    return tcpProxyFilter(cluster, { cluster });
  }
  const weighted = route.filter((d) => (d.weight ?? 0) > 0).map((d) => ({ name: destinationCluster(d.destination, ns, scope), weight: d.weight ?? 0 }));
  if (weighted.length === 0) return undefined;
  return tcpProxyFilter(`${vs.meta.name}.${ns}`, { weighted });
}

/** istiod's matchTCP / matchTLS: the static parts of an L4 match, evaluated for this proxy. */
function l4MatchApplies(m: L4MatchAttributes | TLSMatchAttributes, vsNamespace: string, scope: RouteScope): boolean {
  const gatewayOk = !m.gateways?.length || m.gateways.some((g) => scope.gateways.has(gatewayRef(g, vsNamespace)));
  const portOk = !m.port || m.port === scope.port;
  const nsOk = !m.sourceNamespace || m.sourceNamespace === scope.proxy.namespace;
  return gatewayOk && portOk && nsOk && labelsMatch(m.sourceLabels, proxyLabels(scope.proxy, scope.snap));
}

function cidrRange(cidr: string): ProtoObject {
  const [address = cidr, len] = cidr.split('/');
  const max = address.includes(':') ? 128 : 32;
  return { address_prefix: address, prefix_len: { value: len !== undefined ? Number(len) : max } };
}

function chain(filter: ProtoObject, cidrs: readonly string[], serverNames: readonly string[]): ProtoObject {
  const fcm: ProtoObject = {};
  if (cidrs.length > 0) fcm.prefix_ranges = cidrs.map(cidrRange);
  if (serverNames.length > 0) fcm.server_names = [...serverNames];
  return { ...(Object.keys(fcm).length > 0 ? { filter_chain_match: fcm } : {}), filters: [filter] };
}

function defaultFilter(t: Target, scope: RouteScope): ProtoObject {
  // Same port choice as a route without a port: the service's only port, else this one.
  const port = t.svc.ports.length === 1 ? (t.svc.ports[0]?.port ?? scope.port) : scope.port;
  const cluster = outboundClusterName(port, '', t.svc.hostname);
  return tcpProxyFilter(cluster, { cluster });
}

/** TLS filter chains for one service port: one per distinct (SNI, subnets) of applicable tls routes, else the default. */
function tlsChains(t: Target, wildcard: boolean, vs: VirtualServiceConfig | undefined, scope: RouteScope): ProtoObject[] {
  const out: ProtoObject[] = [];
  const seen = new Set<string>();
  const base = t.cidr ? [t.cidr] : [];
  for (const r of vs?.spec.tls ?? []) {
    for (const m of r.match) {
      if (!vs || !l4MatchApplies(m, vs.meta.namespace, scope)) continue;
      const cidrs = m.destinationSubnets?.length ? m.destinationSubnets : base;
      const key = JSON.stringify([[...m.sniHosts].sort(), [...cidrs].sort()]);
      if (seen.has(key)) continue;
      seen.add(key);
      const filter = routeFilter(r.route ?? [], vs, scope);
      if (filter) out.push(chain(filter, cidrs, m.sniHosts));
    }
  }
  if (out.length > 0) return out;
  // No tls route: opaque TLS to the service; without an address of its own, told apart by SNI.
  return [chain(defaultFilter(t, scope), base, wildcard || t.cidr ? [t.svc.hostname] : [])];
}

/** TCP filter chains for one service port: the first applicable tcp route without subnets ends the list. */
function tcpChains(t: Target, vs: VirtualServiceConfig | undefined, scope: RouteScope): ProtoObject[] {
  const out: ProtoObject[] = [];
  const base = t.cidr ? [t.cidr] : [];
  for (const r of vs?.spec.tcp ?? []) {
    if (!vs) break;
    const filter = routeFilter(r.route ?? [], vs, scope);
    if (!r.match || r.match.length === 0) {
      if (filter) return [...out, chain(filter, base, [])];
      continue;
    }
    const subnets: string[] = [];
    for (const m of r.match) {
      if (!l4MatchApplies(m, vs.meta.namespace, scope)) continue;
      if (!m.destinationSubnets?.length) {
        if (filter) return [...out, chain(filter, base, [])];
        break;
      }
      subnets.push(...m.destinationSubnets);
    }
    if (subnets.length > 0 && filter) out.push(chain(filter, subnets, []));
  }
  const sameAsDefault = (c: ProtoObject): boolean => JSON.stringify((c.filter_chain_match as ProtoObject | undefined)?.prefix_ranges ?? []) === JSON.stringify(base.map(cidrRange));
  // Envoy rejects two chains with one match: the default is left out when a route already took it.
  if (!out.some(sameAsDefault)) out.push(chain(defaultFilter(t, scope), base, []));
  return out;
}

/** The filter chains of one TCP/TLS service port on a listener (`wildcard`: the listener is 0.0.0.0). */
export function tcpTargetChains(t: Target, wildcard: boolean, ctx: GenerateContext, scope: RouteScope): ProtoObject[] {
  const vs = proxyVirtualService(ctx.snap, ctx.proxy, t.svc.hostname);
  return isTls(t.port) ? tlsChains(t, wildcard, vs, scope) : tcpChains(t, vs, scope);
}
