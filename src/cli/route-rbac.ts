/**
 * The RBAC step of the route simulator: for each cluster the request may reach, the endpoint it
 * would be sent to, the connected proxy that owns that endpoint's address and serves its port
 * (found among the proxies the control plane lists, by the IP in the node ID or INSTANCE_IPS), the
 * inbound chain the request lands on there, and the decision of that chain's RBAC filters
 * (rbac-eval.ts). The caller is authenticated as `spiffe://<trust domain>/ns/<ns>/sa/<sa>` only
 * when the simulator found mTLS (ISTIO_MUTUAL, or auto mTLS to an endpoint labelled tlsMode=istio).
 *
 * How the proxies and their dumps are found is the caller's business (`ProxyDirectory`): over xDS
 * debug types for meshctl, from the server's own connections for /debug/route.
 */
import { type InboundRbac, type RbacDecision, type RbacRequest, describeRbac, evaluateRbac, inboundRbac } from './rbac-eval';
import type { Json } from './proxy-config';
import type { SimCluster, SimResult } from './route-sim';

/** A connected proxy as the control plane lists it. */
export interface ProxyInfo {
  /** Node ID (`sidecar~<ip>~<pod>.<ns>~<domain>`). */
  id: string;
  namespace: string;
  serviceAccount?: string;
  ips: readonly string[];
}

export interface ProxyDirectory {
  proxies: readonly ProxyInfo[];
  /** The proxy's config dump in proto3 JSON; undefined when it is gone. */
  dump(id: string): Promise<Json | undefined>;
}

export interface RbacOptions {
  trustDomain: string;
  /** Overrides the caller's identity (a SPIFFE ID); otherwise from its SERVICE_ACCOUNT. */
  principal?: string;
}

/** The RBAC step for one cluster. */
export interface SimRbac {
  cluster: string;
  endpoint?: string;
  /** The destination proxy's node ID. */
  proxy?: string;
  listener?: string;
  filterChain?: string;
  /** The identity the destination sees, when the connection is mTLS. */
  principal?: string;
  /** Why the decision is what it is when no RBAC filter was reached. */
  note?: string;
  decision: RbacDecision;
}

/** A node ID's IP and INSTANCE_IPS. */
export function proxyIps(id: string, instanceIps: string | undefined): string[] {
  const fromId = id.split('~')[1];
  const list = [...(fromId ? [fromId] : []), ...(instanceIps ?? '').split(',')].map((x) => x.trim()).filter(Boolean);
  return [...new Set(list)];
}

/** `pod.namespace`, or a node ID, against a proxy. */
export function proxyIs(p: ProxyInfo, name: string): boolean {
  if (p.id === name) return true;
  const parts = p.id.split('~');
  return parts.length === 4 && parts[2] === name;
}

function splitAddress(a: string): { ip: string; port: number } | undefined {
  const i = a.lastIndexOf(':');
  if (i <= 0) return undefined;
  const port = Number(a.slice(i + 1));
  return Number.isInteger(port) ? { ip: a.slice(0, i).replace(/^\[|\]$/g, ''), port } : undefined;
}

function isMtls(c: SimCluster, tlsMode: string | undefined): boolean {
  if (!c.tls.startsWith('ISTIO_MUTUAL')) return false;
  return c.tls.includes('(auto') ? tlsMode === 'istio' : true;
}

/** The caller's SPIFFE ID: the override, or from its service account (Kubernetes' `default` when it names none). */
export function callerPrincipal(caller: ProxyInfo | undefined, opts: RbacOptions): string | undefined {
  if (opts.principal) return opts.principal;
  if (!caller) return undefined;
  return `spiffe://${opts.trustDomain}/ns/${caller.namespace}/sa/${caller.serviceAccount || 'default'}`;
}

async function forCluster(sim: SimResult, c: SimCluster, callerName: string, dir: ProxyDirectory, opts: RbacOptions): Promise<SimRbac> {
  const ep = c.endpoints.find((e) => e.health === 'HEALTHY') ?? c.endpoints.find((e) => e.health !== 'UNHEALTHY');
  if (!ep) return { cluster: c.name, note: 'no endpoint to send to', decision: { decision: 'NOT_CONNECTED' } };
  const addr = splitAddress(ep.address);
  if (!addr) return { cluster: c.name, endpoint: ep.address, note: 'the endpoint is not an IP address', decision: { decision: 'NOT_CONNECTED' } };
  const mtls = isMtls(c, ep.tlsMode);
  const http = sim.routeConfig !== undefined;
  const caller = dir.proxies.find((p) => proxyIs(p, callerName));
  const principal = mtls ? callerPrincipal(caller, opts) : undefined;
  const req = sim.request;
  const rbacReq: RbacRequest = {
    ...(principal !== undefined ? { principal } : {}),
    ...(caller?.ips[0] ? { sourceIp: caller.ips[0] } : {}),
    destinationIp: addr.ip,
    destinationPort: addr.port,
    ...(http ? { http: { path: req.path, method: req.method, authority: req.headers[':authority'] ?? `${req.host}:${req.port}`, headers: req.headers } } : {}),
  };
  const base = { cluster: c.name, endpoint: ep.address, ...(principal ? { principal } : {}) };
  // Several proxies may share an address (loopback, host network): the one that serves the port.
  const candidates = dir.proxies.filter((p) => p.ips.includes(addr.ip) && !proxyIs(p, callerName));
  // The proxy with a chain for the port first; else one whose passthrough chain takes it.
  let found: { proxy: ProxyInfo; inbound: InboundRbac } | undefined;
  let unreadable: string | undefined;
  for (const p of candidates) {
    let dump: Json | undefined;
    try {
      dump = await dir.dump(p.id);
    } catch (e) {
      unreadable ??= `could not read the config of ${p.id}: ${e instanceof Error ? e.message : String(e)}`;
      continue;
    }
    const inbound = dump ? inboundRbac(dump, addr.port, mtls, http) : undefined;
    if (inbound && (inbound.portMatched || !found)) found = { proxy: p, inbound };
    if (inbound?.portMatched) break;
  }
  if (!found && unreadable) return { ...base, decision: { decision: 'UNKNOWN', reason: unreadable } };
  if (!found) {
    const note = candidates.length > 0 ? `no connected proxy at ${addr.ip} has an inbound listener for port ${addr.port}` : `no connected proxy has the address ${addr.ip}`;
    return { ...base, note, decision: { decision: 'NOT_CONNECTED' } };
  }
  const { proxy, inbound } = found;
  const where = { ...base, proxy: proxy.id, listener: inbound.listener, ...(inbound.filterChain ? { filterChain: inbound.filterChain } : {}) };
  if (inbound.refused) return { ...where, note: 'the connection fails before any RBAC filter', decision: { decision: 'DENY', filter: inbound.listener, reason: inbound.refused } };
  const note = inbound.portMatched ? {} : { note: `port ${addr.port} has no chain of its own: the request takes the passthrough chain` };
  return { ...where, ...note, decision: evaluateRbac(inbound.filters, rbacReq) };
}

/** The RBAC step for every cluster the request may reach (a share above 0). */
export async function simulateRbac(sim: SimResult, callerName: string, dir: ProxyDirectory, opts: RbacOptions): Promise<SimRbac[]> {
  if (sim.action.type !== 'forward') return [];
  const out: SimRbac[] = [];
  for (const c of sim.action.clusters) if (c.weight > 0) out.push(await forCluster(sim, c, callerName, dir, opts));
  return out;
}

/** The RBAC lines of the text output. */
export function describeRbacSteps(list: readonly SimRbac[]): string {
  const lines: string[] = [];
  for (const r of list) {
    lines.push(`RBAC:           ${describeRbac(r.decision)}${list.length > 1 ? ` [${r.cluster}]` : ''}`);
    const where = [
      r.endpoint ? `endpoint ${r.endpoint}` : '',
      r.proxy ? `proxy ${r.proxy}` : '',
      r.listener ? `${r.listener}${r.filterChain ? ` chain ${r.filterChain}` : ''}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    if (where) lines.push(`  at            ${where}`);
    lines.push(`  caller        ${r.principal ?? 'no authenticated principal (plaintext)'}`);
    if (r.note) lines.push(`  note          ${r.note}`);
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}
