/**
 * A sidecar's outbound listeners per service port, as istiod's buildSidecarOutboundListeners,
 * buildSidecarOutboundListener and buildListenerFromEntry build them (istio/istio 1.2x,
 * pilot/pkg/networking/core/listener.go).
 *
 * Where a port's listener binds:
 * - HTTP ports: the wildcard `0.0.0.0_<port>`, shared by every HTTP service on the port (RDS `<port>`).
 * - TCP, TLS and undeclared ("auto", sniffed) ports: the service's VIP (`<vip>_<port>`); a
 *   ServiceEntry without an address binds the wildcard, one whose address is a CIDR binds the
 *   wildcard with a filter chain matched by that range.
 * - Headless services (Kubernetes clusterIP None, ServiceEntry resolution NONE without
 *   addresses), TCP and auto ports: one listener per endpoint address (`<podIP>_<port>`), the
 *   proxy's own address left out. A ServiceEntry without endpoints or workloadSelector binds the
 *   wildcard instead; a Kubernetes Service without endpoints gets none.
 *
 * Protocol sniffing: an auto port's listener has the port's TCP chains and an HTTP chain matched
 * by `application_protocols` [`http/1.1`, `h2c`] on `raw_buffer`, which Envoy's http_inspector
 * sets; the HTTP chain's RDS is `<fqdn>:<port>` (the service's own route configuration, one
 * virtual host for `*`), or `<port>` on the wildcard. HTTP listeners on the wildcard are sniffed
 * too, so other TCP traffic to the port falls through to the original destination. Conflicts on
 * one address and port resolve as istiod's (HTTP and TCP mixed: sniffed; TCP merged by chain
 * match, the first service keeping a contested match; MySQL and Mongo never share).
 *
 * Every listener: `continue_on_listener_filters_timeout`, `listener_filters_timeout` the mesh's
 * protocolDetectionTimeout when it sniffs (else 0s), the match-all chain as the default chain
 * when others exist, else the `PassthroughFilterChain` to `PassthroughCluster`.
 */
import { isIP } from 'node:net';
import { proxyServices, sidecarScopeOf } from '../model/lookup';
import type { SidecarEgressListener } from '../model/build-sidecar';
import { AUTO, type Protocol, isAuto, isHttp } from '../model/protocol';
import type { MeshService, ServicePort } from '../model/snapshot';
import { httpFilters } from './http-filters';
import { type Target, tcpTargetChains, tcpProxyFilter } from './outbound-tcp';
import { meshScope } from './route-scope';
import type { GenerateContext, ProtoObject, Resource } from './types';
import { outboundCatchAllCluster } from './outbound-policy';
import { HCM_TYPE, adsConfigSource, seconds, socketAddress } from './util';

const TLS_INSPECTOR_TYPE = 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector';
const HTTP_INSPECTOR_TYPE = 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector';
const WILDCARD = '0.0.0.0';

/** istiod's plaintextHTTPALPNs (HTTP/1.0 off, its default): what the HTTP inspector reports for HTTP. */
export const PLAINTEXT_HTTP_ALPNS: readonly string[] = ['http/1.1', 'h2c'];

/** istiod's IsTCP: protocols carried as opaque TCP. */
function isTcpFamily(p: Protocol): boolean {
  return p === 'TCP' || p === 'HTTPS' || p === 'TLS' || p === 'Mongo' || p === 'Redis' || p === 'MySQL';
}

type ListenerProtocol = 'HTTP' | 'TCP' | 'AUTO';

/** istiod's ModelProtocolToListenerProtocol; undefined: no listener (UDP). */
function listenerProtocol(p: Protocol): ListenerProtocol | undefined {
  if (isHttp(p)) return 'HTTP';
  if (isTcpFamily(p)) return 'TCP';
  return isAuto(p) ? 'AUTO' : undefined;
}

/** What one service port adds to a listener: its TCP chains, or an HTTP chain. */
type ChainSource = { kind: 'tcp'; target: Target } | { kind: 'http'; rds: string; sniffed: boolean };

interface Entry {
  name: string;
  address: string;
  port: number;
  /** The port's protocol; UnsupportedProtocol once HTTP and TCP share it (sniffed). */
  protocol: Protocol;
  sources: ChainSource[];
  /** Bound to its port (Sidecar egress captureMode NONE, an explicit unix bind, or a proxy without capture): no `bind_to_port: false`. */
  bindToPort?: true;
}

/** How an egress listener's ports bind (istiod's listenerBinding). */
interface Binding {
  /** The egress listener's bind, or the loopback address when it binds to its port without one. */
  bind?: string;
  bindToPort: boolean;
  /** Listener names an earlier egress listener made: the catch-all listener adds nothing to them. */
  locked?: ReadonlySet<string>;
}

type Conflict = 'none' | 'HTTPOverTCP' | 'TCPOverHTTP' | 'TCPOverTCP' | 'TCPOverAuto' | 'AutoOverHTTP' | 'AutoOverTCP';

/** istiod's buildSidecarOutboundListener for one service port and bind address. */
function addServicePort(entries: Map<string, Entry>, svc: MeshService, port: ServicePort, bind: string, cidr?: string, binding?: Binding): void {
  const lp = listenerProtocol(port.protocol);
  if (!lp) return;
  const name = `${bind}_${port.port}`;
  const existing = entries.get(name);
  if (existing && binding?.locked?.has(name)) return;
  const wildcard = bind === WILDCARD;
  let conflict: Conflict = 'none';
  let sources: ChainSource[];
  let protocol: Protocol = port.protocol;
  const tcp: ChainSource = { kind: 'tcp', target: { svc, port, ...(cidr ? { cidr } : {}) } };
  if (lp === 'HTTP') {
    if (existing) {
      if (!isTcpFamily(existing.protocol)) return;
      conflict = 'HTTPOverTCP';
    }
    // On the wildcard the HTTP chain is sniffed, leaving room for TCP to pass through.
    sources = [{ kind: 'http', rds: String(port.port), sniffed: wildcard }];
    if (wildcard) protocol = AUTO;
  } else if (lp === 'TCP') {
    sources = [tcp];
    if (existing) conflict = isHttp(existing.protocol) ? 'TCPOverHTTP' : isTcpFamily(existing.protocol) ? 'TCPOverTCP' : 'TCPOverAuto';
  } else {
    if (existing) {
      if (isHttp(existing.protocol)) conflict = 'AutoOverHTTP';
      else if (isTcpFamily(existing.protocol)) conflict = 'AutoOverTCP';
      else return;
    }
    // Sniffed services on an address of their own get a route configuration of their own.
    sources = [tcp, { kind: 'http', rds: wildcard ? String(port.port) : `${svc.hostname}:${port.port}`, sniffed: true }];
  }
  // Server-first protocols break under the inspectors: MySQL and Mongo never share a port.
  if (existing && conflict !== 'none') {
    const fixed = (p: Protocol): boolean => p === 'MySQL' || p === 'Mongo';
    if ((fixed(port.protocol) || fixed(existing.protocol)) && port.protocol !== existing.protocol) return;
  }
  switch (conflict) {
    case 'none':
    case 'AutoOverHTTP':
      entries.set(name, { name, address: bind, port: port.port, protocol, sources, ...(binding?.bindToPort ? { bindToPort: true as const } : {}) });
      break;
    case 'HTTPOverTCP':
    case 'TCPOverHTTP':
    case 'AutoOverTCP':
      existing?.sources.push(...sources);
      if (existing) existing.protocol = AUTO;
      break;
    default:
      existing?.sources.push(...sources);
  }
}

/** Endpoint addresses of a headless service port, the proxy's own left out (istiod's per-instance listeners). */
function instanceAddresses(ctx: GenerateContext, svc: MeshService, port: number): { any: boolean; addresses: string[] } {
  const endpoints = ctx.snap.endpoints.get(svc.hostname)?.get(port) ?? [];
  if (endpoints.length === 0) return { any: false, addresses: [] };
  const own = ctx.proxy.ips[0];
  const out = new Set<string>();
  for (const e of endpoints) if (isIP(e.address) !== 0 && e.address !== own) out.add(e.address);
  return { any: true, addresses: [...out] };
}

function isHeadless(svc: MeshService): boolean {
  return svc.resolution === 'PASSTHROUGH' && svc.addresses.length === 0;
}

/** The proxy captures no traffic (INTERCEPTION_MODE NONE): every egress listener binds its port. */
function noneMode(ctx: GenerateContext): boolean {
  return ctx.proxy.metadata['INTERCEPTION_MODE'] === 'NONE';
}

/** istiod's actualLocalHosts: 127.0.0.1, or ::1 for a proxy with IPv6 addresses only. */
function localhost(ctx: GenerateContext): string {
  return ctx.proxy.ips.length > 0 && ctx.proxy.ips.every((ip) => ip.includes(':')) ? '::1' : '127.0.0.1';
}

interface EgressPlan {
  listener: SidecarEgressListener;
  binding: Binding;
  services: MeshService[];
}

/**
 * The Sidecar egress listeners that bind (an explicit `bind`, captureMode NONE, or a proxy that
 * captures nothing), with their services; undefined when none does and the services are placed
 * as without a Sidecar.
 */
function egressPlans(ctx: GenerateContext): EgressPlan[] | undefined {
  const scope = sidecarScopeOf(ctx.snap, ctx.proxy);
  const none = noneMode(ctx);
  if (!none && !scope?.egress.some((l) => l.bind !== undefined || l.captureMode === 'NONE')) return undefined;
  const all = proxyServices(ctx.snap, ctx.proxy);
  const byHost = new Map(all.map((s) => [s.hostname, s] as const));
  const listeners: readonly SidecarEgressListener[] = scope?.egress ?? [{ captureMode: 'DEFAULT', hosts: [], services: all.map((s) => s.hostname) }];
  return listeners.map((l) => {
    const bindToPort = none || l.captureMode === 'NONE' || (l.bind?.startsWith('unix://') ?? false);
    const bind = l.bind ?? (bindToPort ? localhost(ctx) : undefined);
    const services = l.services.map((h) => byHost.get(h)).filter((s): s is MeshService => s !== undefined);
    return { listener: l, binding: { ...(bind !== undefined ? { bind } : {}), bindToPort }, services };
  });
}

/** istiod's CanBindToPort: an unprivileged proxy cannot bind ports below 1024 itself. */
function canBind(ctx: GenerateContext, binding: Binding, port: number): boolean {
  return !(binding.bindToPort && port < 1024 && ctx.proxy.metadata['UNPRIVILEGED_POD'] === 'true');
}

/**
 * The outbound listeners of a sidecar, by name, before their chains are built. With binding
 * Sidecar egress listeners, as istiod's buildSidecarOutboundListeners: each listener in order,
 * a listener with a port placing only that port of its services, the catch-all one (last)
 * adding nothing to listeners made before it; a bind (or, capturing nothing, the loopback
 * address) places every port of the listener's services there.
 */
function plan(ctx: GenerateContext): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  const plans = egressPlans(ctx);
  if (!plans) {
    for (const svc of proxyServices(ctx.snap, ctx.proxy)) for (const port of svc.ports) placeServicePort(ctx, entries, svc, port);
    return entries;
  }
  for (const { listener, binding, services } of plans) {
    const lp = listener.port;
    if (lp) {
      if (!canBind(ctx, binding, lp.number)) continue;
      for (const svc of services) {
        const sp = svc.ports.find((p) => p.port === lp.number);
        // The listener's protocol is the egress port's (istiod's listenPort).
        if (sp) placeServicePort(ctx, entries, svc, { ...sp, protocol: lp.protocol }, binding);
      }
      continue;
    }
    const locked: ReadonlySet<string> = new Set(entries.keys());
    for (const svc of services) for (const port of svc.ports) if (canBind(ctx, binding, port.port)) placeServicePort(ctx, entries, svc, port, { ...binding, locked });
  }
  return entries;
}

/** One service port's listener(s): at the egress listener's bind, else where its protocol and addresses put it. */
function placeServicePort(ctx: GenerateContext, entries: Map<string, Entry>, svc: MeshService, port: ServicePort, binding?: Binding): void {
  const lp = listenerProtocol(port.protocol);
  if (!lp) return;
  if (binding?.bind !== undefined) {
    addServicePort(entries, svc, port, binding.bind, undefined, binding);
    return;
  }
  if (lp === 'HTTP') {
    addServicePort(entries, svc, port, WILDCARD, undefined, binding);
    return;
  }
  if (isHeadless(svc)) {
    const inst = instanceAddresses(ctx, svc, port.port);
    if (svc.source.kind === 'ServiceEntry' && !inst.any && Object.keys(svc.selector).length === 0) {
      addServicePort(entries, svc, port, WILDCARD, undefined, binding);
    } else {
      for (const a of inst.addresses) addServicePort(entries, svc, port, a, undefined, binding);
    }
    return;
  }
  if (svc.clusterIP) {
    addServicePort(entries, svc, port, svc.clusterIP, undefined, binding);
    return;
  }
  const cidrs = svc.addresses.filter((a) => a.includes('/'));
  if (cidrs.length === 0) addServicePort(entries, svc, port, WILDCARD, undefined, binding);
  for (const cidr of cidrs) addServicePort(entries, svc, port, WILDCARD, cidr, binding);
}

/** The outbound HTTP connection manager of a chain on listener `name`. */
export function outboundHcm(listenerName: string, rds: string): ProtoObject {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': HCM_TYPE,
      stat_prefix: `outbound_${listenerName}`,
      rds: { config_source: adsConfigSource(), route_config_name: rds },
      http_filters: httpFilters('sidecar'),
      use_remote_address: { value: false },
      normalize_path: { value: true },
      path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
      stream_idle_timeout: seconds(0),
    },
  };
}

function matchOf(chain: ProtoObject): ProtoObject | undefined {
  return chain.filter_chain_match as ProtoObject | undefined;
}

function buildListener(e: Entry, ctx: GenerateContext): ProtoObject {
  const scope = meshScope(ctx.snap, ctx.proxy, 'envoy', e.port);
  const wildcard = e.address === WILDCARD;
  const chains: ProtoObject[] = [];
  const taken = new Set<string>();
  for (const s of e.sources) {
    const built =
      s.kind === 'tcp'
        ? tcpTargetChains(s.target, wildcard, ctx, scope)
        : [
            {
              ...(s.sniffed ? { filter_chain_match: { application_protocols: [...PLAINTEXT_HTTP_ALPNS], transport_protocol: 'raw_buffer' } } : {}),
              filters: [outboundHcm(e.name, s.rds)],
            },
          ];
    for (const c of built) {
      // A later chain with the same match loses (istiod's mergeTCPFilterChains; Envoy rejects duplicates).
      const key = JSON.stringify(matchOf(c) ?? {});
      if (taken.has(key)) continue;
      taken.add(key);
      chains.push(c);
    }
  }
  const sni = chains.some((c) => matchOf(c)?.server_names);
  const sniff = chains.some((c) => matchOf(c)?.application_protocols);
  const listenerFilters: ProtoObject[] = [];
  // istiod adds the TLS inspector along with the HTTP one: Envoy would otherwise add it itself.
  if (sni || sniff) listenerFilters.push({ name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': TLS_INSPECTOR_TYPE } });
  if (sniff) listenerFilters.push({ name: 'envoy.filters.listener.http_inspector', typed_config: { '@type': HTTP_INSPECTOR_TYPE } });
  // The chain that matches everything is the default one, so a connection that starts to match
  // a chain and then fails a later criterion still has somewhere to go (istio/istio#26079).
  const matchAll = chains.filter((c) => matchOf(c) === undefined);
  let filterChains = chains.filter((c) => matchOf(c) !== undefined);
  let defaultChain: ProtoObject | undefined = matchAll[matchAll.length - 1];
  if (defaultChain && filterChains.length === 0) {
    filterChains = [defaultChain];
    defaultChain = undefined;
  } else if (!defaultChain) {
    // istiod's buildOutboundCatchAllNetworkFiltersOnly: BlackHoleCluster under REGISTRY_ONLY.
    const catchAll = outboundCatchAllCluster(ctx.snap, ctx.proxy);
    defaultChain = { filter_chain_match: {}, name: 'PassthroughFilterChain', filters: [tcpProxyFilter(catchAll, { cluster: catchAll })] };
  }
  return {
    name: e.name,
    address: socketAddress(e.address, e.port),
    ...(e.bindToPort ? {} : { bind_to_port: { value: false } }),
    traffic_direction: 'OUTBOUND',
    continue_on_listener_filters_timeout: true,
    ...(listenerFilters.length > 0 ? { listener_filters: listenerFilters } : {}),
    listener_filters_timeout: sniff ? seconds(ctx.snap.protocolDetectionTimeoutMs / 1000) : seconds(0),
    filter_chains: filterChains,
    ...(defaultChain ? { default_filter_chain: defaultChain } : {}),
  };
}

/** The outbound listeners per service port (HTTP, TCP, TLS and sniffed) of a sidecar. */
export function outboundServiceListeners(ctx: GenerateContext): Resource[] {
  const out: Resource[] = [];
  // Listeners with HTTP chains by port, then the rest as planned (Envoy does not mind the order).
  const entries = [...plan(ctx).values()];
  const http = (e: Entry): boolean => e.sources.some((s) => s.kind === 'http');
  const ordered = [...entries.filter(http).sort((a, b) => a.port - b.port), ...entries.filter((e) => !http(e))];
  for (const e of ordered) {
    if (ctx.names && !ctx.names.has(e.name)) continue;
    out.push({ name: e.name, build: () => buildListener(e, ctx) });
  }
  return out;
}

/**
 * The route configuration names a sidecar's outbound listeners can point at: `<port>` for ports
 * with HTTP services or sniffed ServiceEntries without an address, `<fqdn>:<port>` for sniffed
 * ports bound to an address of their own (a VIP, or a headless service's endpoints). Read from the
 * services alone, never their endpoints, so an endpoint change leaves RDS alone.
 */
export function sidecarRouteNames(ctx: GenerateContext): string[] {
  const ports = new Set<number>();
  const sniffed = new Set<string>();
  const note = (svc: MeshService, port: number, protocol: Protocol, bind: string | undefined): void => {
    if (isHttp(protocol)) ports.add(port);
    if (!isAuto(protocol)) return;
    // A sniffed port bound to an address of its own (a VIP, a headless service's endpoints, an
    // egress listener's bind) has a route configuration of its own.
    const own = bind !== undefined ? bind !== WILDCARD : svc.clusterIP !== undefined || isHeadless(svc);
    if (own) sniffed.add(`${svc.hostname}:${port}`);
    // A sniffed ServiceEntry port without an address of its own binds the wildcard.
    if (bind === undefined ? !svc.clusterIP && svc.source.kind === 'ServiceEntry' : bind === WILDCARD) ports.add(port);
  };
  const plans = egressPlans(ctx);
  if (!plans) {
    for (const svc of proxyServices(ctx.snap, ctx.proxy)) for (const p of svc.ports) note(svc, p.port, p.protocol, undefined);
  } else {
    for (const { listener, binding, services } of plans) {
      const lp = listener.port;
      for (const svc of services) {
        for (const p of svc.ports) {
          if (lp && p.port !== lp.number) continue;
          note(svc, p.port, lp ? lp.protocol : p.protocol, binding.bind);
        }
      }
    }
  }
  return [...[...ports].sort((a, b) => a - b).map(String), ...[...sniffed].sort()];
}
