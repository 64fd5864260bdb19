/**
 * LDS for gateway proxies (istiod's buildGatewayListeners): one listener `<bind>_<port>` per
 * port the merged servers listen on. HTTP servers share one HCM with RDS `http.<port>`; each
 * HTTPS server that terminates TLS gets a filter chain matched by SNI, its own TLS context and
 * RDS `https.<port>.<portName>.<gateway>.<namespace>`; TCP, TLS and passthrough servers get
 * tcp_proxy chains. A port whose servers yield no filter chain gets no listener. The gateway's
 * RequestAuthentications become a jwt_authn filter in front of every HTTP chain.
 */
import type { MeshSnapshot } from '../../model/snapshot';
import type { Proxy } from '../../model/proxy';
import { proxyLabels } from '../../model/proxy';
import { jwtAuthnFilter } from '../security/jwt';
import { httpFilters } from '../http-filters';
import type { GenerateContext, ProtoObject, Resource } from '../types';
import { HCM_TYPE, adsConfigSource, seconds, socketAddress } from '../util';
import { isHttpProtocol, isHttpsTerminating } from './hosts';
import { type ChainPlan, tcpServerChains } from './l4';
import { type MergedGateway, type ServerPortGroup, mergeGateways } from './merge';
import { downstreamTlsContext, transportSocket } from './tls';

function tlsInspector(): ProtoObject {
  return { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } };
}

const UNIX_PREFIX = 'unix://';

/** Slow TLS handshakes must not hold connections forever (istiod's gateway default). */
const TRANSPORT_SOCKET_CONNECT_TIMEOUT = 15;

interface ListenerPlan {
  name: string;
  bind: string;
  port: number;
  chains: ChainPlan[];
}

/**
 * The HCM of a gateway server: the client's address is the one that counts, and client certs
 * are sanitised. `authn`: the gateway's jwt_authn filter, first in the chain as istiod puts it.
 */
function gatewayHcm(statPrefix: string, routeName: string, authn: readonly ProtoObject[]): ProtoObject {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': HCM_TYPE,
      stat_prefix: statPrefix,
      rds: { config_source: adsConfigSource(), route_config_name: routeName },
      http_filters: [...authn, ...httpFilters('gateway')],
      use_remote_address: { value: true },
      xff_num_trusted_hops: 0,
      forward_client_cert_details: 'SANITIZE_SET',
      set_current_client_cert_details: { subject: { value: true }, cert: true, dns: true, uri: true },
      http_protocol_options: {},
      upgrade_configs: [{ upgrade_type: 'websocket' }],
      normalize_path: { value: true },
      path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
      stream_idle_timeout: seconds(0),
    },
  };
}

/** The filter chains of one (port, protocol, bind) group of servers. */
function groupChains(snap: MeshSnapshot, proxy: Proxy, g: ServerPortGroup, seenSni: Map<string, string>): ChainPlan[] {
  const first = g.servers[0];
  if (!first) return [];
  if (isHttpProtocol(g.protocol)) return [{ server: first, sniHosts: [], terminate: false, routeName: first.routeName }];
  const out: ChainPlan[] = [];
  for (const ms of g.servers) {
    if (isHttpsTerminating(ms.server)) out.push({ server: ms, sniHosts: ms.sniHosts, terminate: true, routeName: ms.routeName });
    else out.push(...tcpServerChains(snap, proxy, ms, seenSni));
  }
  return out;
}

/** Listener names and their chains, in the order the merged ports appear. */
function planListeners(snap: MeshSnapshot, proxy: Proxy, merged: MergedGateway): ListenerPlan[] {
  const plans: ListenerPlan[] = [];
  const seenSniByPort = new Map<number, Map<string, string>>();
  for (const g of merged.groups) {
    const bind = g.bind || '0.0.0.0';
    const name = `${bind}_${g.port}`;
    const seen = seenSniByPort.get(g.port) ?? new Map<string, string>();
    seenSniByPort.set(g.port, seen);
    const chains = groupChains(snap, proxy, g, seen);
    const plan = plans.find((p) => p.name === name);
    if (plan) plan.chains.push(...chains);
    else plans.push({ name, bind, port: g.port, chains });
  }
  return plans.filter((p) => p.chains.length > 0);
}

function filterChain(plan: ListenerPlan, c: ChainPlan, authn: readonly ProtoObject[]): ProtoObject {
  const out: ProtoObject = {};
  // `*` among the SNI names means "any name": no server_names match at all.
  const sni = c.sniHosts.includes('*') ? [] : [...c.sniHosts].sort();
  const match: ProtoObject = {};
  if (sni.length > 0) match.server_names = sni;
  if (c.applicationProtocols?.length) match.application_protocols = [...c.applicationProtocols];
  if (Object.keys(match).length > 0) out.filter_chain_match = match;
  const tls = c.terminate ? downstreamTlsContext(c.server.server) : undefined;
  if (tls) out.transport_socket = transportSocket(tls);
  out.transport_socket_connect_timeout = seconds(TRANSPORT_SOCKET_CONNECT_TIMEOUT);
  if (c.routeName !== undefined) {
    // HTTPS chains use the server's name as stat prefix when it has one; istiod ends the
    // computed prefix with `;`, the delimiter its stats tag extraction expects.
    const statPrefix = c.terminate && c.server.server.name ? c.server.server.name : `outbound_${plan.name};`;
    out.filters = [gatewayHcm(statPrefix, c.routeName, authn)];
  } else out.filters = c.network ?? [];
  return out;
}

/** `unix://<path>` binds a Unix domain socket (istiod's BuildAddress); anything else an IP and port. */
function listenerAddress(bind: string, port: number): ProtoObject {
  return bind.startsWith(UNIX_PREFIX) ? { pipe: { path: bind.slice(UNIX_PREFIX.length) } } : socketAddress(bind, port);
}

function buildListener(plan: ListenerPlan, authn: readonly ProtoObject[]): ProtoObject {
  const listener: ProtoObject = { name: plan.name, address: listenerAddress(plan.bind, plan.port), traffic_direction: 'OUTBOUND' };
  // SNI or ALPN matching needs the TLS inspector to read the ClientHello first.
  const inspect = plan.chains.some((c) => c.sniHosts.length > 0 || c.terminate);
  if (inspect) listener.listener_filters = [tlsInspector()];
  listener.filter_chains = plan.chains.map((c) => filterChain(plan, c, authn));
  return listener;
}

/** RequestAuthentications of the gateway's workload; the route cache is cleared so routes can match claims. */
function gatewayAuthn(ctx: GenerateContext): ProtoObject[] {
  const jwt = jwtAuthnFilter(ctx.snap, ctx.proxy.namespace, proxyLabels(ctx.proxy, ctx.snap), true);
  return jwt ? [jwt] : [];
}

export function gatewayListeners(ctx: GenerateContext): Resource[] {
  const merged = mergeGateways(ctx.snap, ctx.proxy);
  return planListeners(ctx.snap, ctx.proxy, merged)
    .filter((p) => !ctx.names || ctx.names.has(p.name))
    .map((p) => ({ name: p.name, build: () => buildListener(p, gatewayAuthn(ctx)) }));
}
