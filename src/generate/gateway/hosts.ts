/**
 * Istio's host-name algebra for gateways (pkg/config/host): wildcard subset and match tests,
 * server hosts restricted by namespace (`ns/host`), and the intersection of server and
 * VirtualService hosts that becomes a virtual host's domains.
 */
import type { GatewayServer, ServerTLSSettings } from '../../model/objects';

function isWild(h: string): boolean {
  return h.startsWith('*');
}

/** Istio's `Name.SubsetOf`: every name `a` matches is also matched by `b`. */
export function hostSubsetOf(a: string, b: string): boolean {
  if (isWild(b)) return isWild(a) ? a.slice(1).endsWith(b.slice(1)) : a.endsWith(b.slice(1));
  return !isWild(a) && a === b;
}

/** Istio's `Name.Matches`: the two names have at least one concrete name in common. */
export function hostsMatch(a: string, b: string): boolean {
  if (isWild(a) && isWild(b)) return a.length < b.length ? b.slice(1).endsWith(a.slice(1)) : a.slice(1).endsWith(b.slice(1));
  if (isWild(a)) return b.endsWith(a.slice(1));
  if (isWild(b)) return a.endsWith(b.slice(1));
  return a === b;
}

/** `./h` → `<gateway ns>/h`, `*\/h` → `h`, `*\/*` → only `*` (istiod's sanitizeServerHostNamespace). */
export function sanitizeServerHosts(hosts: readonly string[], gatewayNamespace: string): string[] {
  const out: string[] = [];
  for (const h of hosts) {
    const slash = h.indexOf('/');
    if (slash < 0) {
      out.push(h);
      continue;
    }
    const ns = h.slice(0, slash);
    const name = h.slice(slash + 1);
    if (ns === '.') out.push(`${gatewayNamespace}/${name}`);
    else if (ns === '*') {
      if (name === '*') return ['*'];
      out.push(name);
    } else out.push(h);
  }
  return out;
}

/** The host part of a server host, without its `ns/` restriction. */
export function stripNamespace(h: string): string {
  const slash = h.indexOf('/');
  return slash < 0 ? h : h.slice(slash + 1);
}

/** Server hosts a VirtualService in `namespace` may bind to (istiod's NamesForNamespace). */
export function serverHostsForNamespace(hosts: readonly string[], namespace: string): string[] {
  const out: string[] = [];
  for (const h of hosts) {
    const slash = h.indexOf('/');
    if (slash < 0) out.push(h);
    else if (h.slice(0, slash) === namespace || h.slice(0, slash) === '*') out.push(h.slice(slash + 1));
  }
  return out;
}

/** For each pair that overlaps, the more specific name (istiod's Names.Intersection). */
export function intersectHosts(serverHosts: readonly string[], vsHosts: readonly string[]): string[] {
  const out: string[] = [];
  const add = (h: string): void => {
    if (!out.includes(h)) out.push(h);
  };
  for (const s of serverHosts) {
    for (const v of vsHosts) {
      if (hostSubsetOf(s, v)) add(s);
      else if (hostSubsetOf(v, s)) add(v);
    }
  }
  return out;
}

/** VirtualService hosts that match one of a server's hosts, honouring `ns/` (pickMatchingGatewayHosts). */
export function matchingGatewayHosts(serverHosts: readonly string[], vsHosts: readonly string[], vsNamespace: string): string[] {
  const out: string[] = [];
  for (const v of vsHosts) {
    for (const h of serverHosts) {
      const slash = h.indexOf('/');
      if (slash >= 0 && h.slice(0, slash) !== vsNamespace) continue;
      if (hostsMatch(stripNamespace(h), v) && !out.includes(v)) out.push(v);
    }
  }
  return out;
}

/** SNI names for a TLS server: hosts without namespace, deduplicated, sorted (GetSNIHostsForServer). */
export function sniHostsForServer(hosts: readonly string[]): string[] {
  return [...new Set(hosts.map(stripNamespace))].sort();
}

// ---- server kinds (istiod's pkg/config/gateway predicates) ----

const HTTP_PROTOCOLS: ReadonlySet<string> = new Set(['HTTP', 'HTTP2', 'HTTP_PROXY', 'GRPC', 'GRPC-WEB']);

export function serverProtocol(s: GatewayServer): string {
  return (s.port?.protocol ?? '').toUpperCase();
}

export function isHttpProtocol(p: string): boolean {
  return HTTP_PROTOCOLS.has(p);
}

/** The TLS mode; Istio's enum default is PASSTHROUGH. */
export function tlsMode(tls: ServerTLSSettings): NonNullable<ServerTLSSettings['mode']> {
  return tls.mode ?? 'PASSTHROUGH';
}

export function isPassthroughServer(s: GatewayServer): boolean {
  return s.tls !== undefined && (tlsMode(s.tls) === 'PASSTHROUGH' || tlsMode(s.tls) === 'AUTO_PASSTHROUGH');
}

/** Non-HTTP with TLS settings (termination or passthrough). */
export function isTlsServer(s: GatewayServer): boolean {
  return s.tls !== undefined && !isHttpProtocol(serverProtocol(s));
}

/** Plain HTTP, or HTTPS that terminates TLS: served through an HTTP connection manager. */
export function isHttpServer(s: GatewayServer): boolean {
  const p = serverProtocol(s);
  return isHttpProtocol(p) || (p === 'HTTPS' && s.tls !== undefined && !isPassthroughServer(s));
}

export function isHttpsTerminating(s: GatewayServer): boolean {
  return serverProtocol(s) === 'HTTPS' && s.tls !== undefined && !isPassthroughServer(s);
}

export function isTcpServerWithTlsTermination(s: GatewayServer): boolean {
  return isTlsServer(s) && !isHttpServer(s) && !isPassthroughServer(s);
}
