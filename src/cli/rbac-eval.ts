/**
 * The RBAC decision of a destination proxy for one simulated request, as Envoy makes it: the
 * `envoy.filters.http.rbac` filters of the inbound chain (or `envoy.filters.network.rbac` on a
 * TCP chain) in filter order, each with `config.rbac.v3` semantics — a policy matches when any
 * permission AND any principal match; a DENY filter denies on a matching policy, an ALLOW filter
 * denies when none matches, LOG filters decide nothing; shadow rules are ignored.
 *
 * What the request does not carry (a JWT's claims, other dynamic metadata, filter state, SNI)
 * makes a rule *undecidable*: evaluation is three-valued, and a decision that hangs on an
 * undecidable rule is reported as such, naming the policy, never guessed.
 *
 * Everything here reads proto3 JSON (a config dump, as meshd serves it) and does no I/O.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { type Json, arr, listeners, obj, s } from './proxy-config';
import { headerMatches, stringMatches } from './route-sim';

export const RBAC_HTTP_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
export const RBAC_NETWORK_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const GRPC_INBOUND_PREFIX = 'xds.istio.io/grpc/lds/inbound/';

/** What the destination's RBAC filters see of one request. */
export interface RbacRequest {
  /**
   * The peer's identity over mTLS (its certificate's URI SAN); `''` for TLS without one;
   * undefined for plaintext (no `authenticated` principal can match).
   */
  principal?: string;
  /** The caller's address (direct_remote_ip, remote_ip, source_ip). */
  sourceIp?: string;
  /** The endpoint's address and port the connection reached. */
  destinationIp?: string;
  destinationPort: number;
  /** HTTP requests only (undefined on a TCP chain): path with query, method, lower-case headers. */
  http?: { path: string; method: string; authority: string; headers: Readonly<Record<string, string>> };
}

/** One RBAC filter as configured: its name and the typed config's `rules` (absent: the filter enforces nothing). */
export interface RbacFilter {
  name: string;
  rules?: Json;
}

export type RbacDecision =
  | { decision: 'ALLOW'; policy: string; filter: string }
  | { decision: 'DENY'; policy?: string; filter: string; reason: string }
  | { decision: 'NO_POLICY' }
  | { decision: 'UNDECIDABLE'; policy: string; filter: string; reason: string }
  | { decision: 'NOT_CONNECTED' }
  /** The destination's config could not be read (e.g. the asker may not see its namespace). */
  | { decision: 'UNKNOWN'; reason: string };

/** Three-valued: true, false, or a reason it cannot be known from the request. */
type Tri = boolean | { unknown: string };

const isUnknown = (t: Tri): t is { unknown: string } => typeof t === 'object';

function all(items: readonly Json[], f: (x: Json) => Tri): Tri {
  let unknown: Tri | undefined;
  for (const x of items) {
    const r = f(x);
    if (r === false) return false;
    if (isUnknown(r)) unknown ??= r;
  }
  return unknown ?? true;
}

function some(items: readonly Json[], f: (x: Json) => Tri): Tri {
  let unknown: Tri | undefined;
  for (const x of items) {
    const r = f(x);
    if (r === true) return true;
    if (isUnknown(r)) unknown ??= r;
  }
  return unknown ?? false;
}

const not = (t: Tri): Tri => (isUnknown(t) ? t : !t);

/** Envoy's CidrRange (prefixLen a wrapper: a bare number in proto3 JSON). */
export function inCidr(range: Json, ip: string | undefined): Tri {
  if (ip === undefined) return { unknown: 'the caller\u2019s address is not known' };
  const prefix = s(range['addressPrefix']);
  const family = isIPv4(prefix) ? 'ipv4' : isIPv6(prefix) ? 'ipv6' : undefined;
  const ipFamily = isIPv4(ip) ? 'ipv4' : isIPv6(ip) ? 'ipv6' : undefined;
  if (!family || !ipFamily) return false;
  if (family !== ipFamily) return false;
  const raw = range['prefixLen'];
  const len = raw === undefined ? 0 : Number(typeof raw === 'object' && raw !== null ? obj(raw)['value'] : raw);
  const list = new BlockList();
  list.addSubnet(prefix, len, family);
  return list.check(ip, ipFamily);
}

/** A metadata matcher: only the JWT payload and other dynamic metadata could answer it. */
function metadataUnknown(m: Json): Tri {
  const filter = s(m['filter']);
  const path = arr(m['path'])
    .map((p) => s(p['key']))
    .join('.');
  if (filter === 'envoy.filters.http.jwt_authn') return { unknown: `needs the request's JWT claims (${path.replace(/^payload\.?/, '') || 'payload'})` };
  return { unknown: `needs dynamic metadata ${filter}${path ? ` ${path}` : ''}` };
}

function headerMap(req: RbacRequest): Map<string, string> | undefined {
  if (!req.http) return undefined;
  const m = new Map<string, string>(Object.entries(req.http.headers).map(([k, v]) => [k.toLowerCase(), v]));
  m.set(':path', req.http.path);
  m.set(':method', req.http.method);
  m.set(':authority', req.http.authority);
  return m;
}

/** url_path: Envoy's PathMatcher on the path without its query (HTTP only). */
function urlPath(p: Json, req: RbacRequest): Tri {
  if (!req.http) return false;
  const path = req.http.path.split('?', 1)[0] ?? '';
  return stringMatches(obj(p['path']), path);
}

function header(h: Json, req: RbacRequest): Tri {
  const headers = headerMap(req);
  // On a TCP chain there are no headers: Envoy's header matchers see none.
  return headerMatches(h, headers ?? new Map());
}

/** config.rbac.v3.Permission. */
export function permissionMatches(p: Json, req: RbacRequest): Tri {
  if (p['any'] === true) return true;
  if (p['andRules'] !== undefined) return all(arr(obj(p['andRules'])['rules']), (x) => permissionMatches(x, req));
  if (p['orRules'] !== undefined) return some(arr(obj(p['orRules'])['rules']), (x) => permissionMatches(x, req));
  if (p['notRule'] !== undefined) return not(permissionMatches(obj(p['notRule']), req));
  if (p['header'] !== undefined) return header(obj(p['header']), req);
  if (p['urlPath'] !== undefined) return urlPath(obj(p['urlPath']), req);
  if (p['destinationPort'] !== undefined) return Number(p['destinationPort']) === req.destinationPort;
  if (p['destinationPortRange'] !== undefined) {
    const r = obj(p['destinationPortRange']);
    return req.destinationPort >= Number(r['start'] ?? 0) && req.destinationPort < Number(r['end'] ?? 0);
  }
  if (p['destinationIp'] !== undefined) return inCidr(obj(p['destinationIp']), req.destinationIp);
  if (p['metadata'] !== undefined) return metadataUnknown(obj(p['metadata']));
  if (p['requestedServerName'] !== undefined) return { unknown: 'needs the connection\u2019s SNI' };
  return { unknown: `permission ${Object.keys(p).join(',') || '(empty)'} is not simulated` };
}

/** config.rbac.v3.Principal. */
export function principalMatches(p: Json, req: RbacRequest): Tri {
  if (p['any'] === true) return true;
  if (p['andIds'] !== undefined) return all(arr(obj(p['andIds'])['ids']), (x) => principalMatches(x, req));
  if (p['orIds'] !== undefined) return some(arr(obj(p['orIds'])['ids']), (x) => principalMatches(x, req));
  if (p['notId'] !== undefined) return not(principalMatches(obj(p['notId']), req));
  if (p['authenticated'] !== undefined) {
    // Envoy: no TLS peer, no match; no principal_name, any TLS peer matches.
    if (req.principal === undefined) return false;
    const m = obj(obj(p['authenticated'])['principalName']);
    if (Object.keys(m).length === 0) return true;
    return stringMatches(m, req.principal);
  }
  if (p['header'] !== undefined) return header(obj(p['header']), req);
  if (p['urlPath'] !== undefined) return urlPath(obj(p['urlPath']), req);
  if (p['directRemoteIp'] !== undefined) return inCidr(obj(p['directRemoteIp']), req.sourceIp);
  // No X-Forwarded-For in a simulated request: the remote address is the caller's.
  if (p['remoteIp'] !== undefined) return inCidr(obj(p['remoteIp']), req.sourceIp);
  if (p['sourceIp'] !== undefined) return inCidr(obj(p['sourceIp']), req.sourceIp);
  if (p['metadata'] !== undefined) return metadataUnknown(obj(p['metadata']));
  if (p['filterState'] !== undefined) return { unknown: 'needs filter state' };
  return { unknown: `principal ${Object.keys(p).join(',') || '(empty)'} is not simulated` };
}

function policyMatches(policy: Json, req: RbacRequest): Tri {
  if (policy['condition'] !== undefined || policy['checkedCondition'] !== undefined) return { unknown: 'has a CEL condition' };
  const perm = some(arr(policy['permissions']), (x) => permissionMatches(x, req));
  if (perm === false) return false;
  const princ = some(arr(policy['principals']), (x) => principalMatches(x, req));
  if (princ === false) return false;
  if (isUnknown(perm)) return perm;
  return princ;
}

/** The first matching policy (Envoy's map order is the config's), or the first undecidable one. */
function matchPolicies(policies: Json, req: RbacRequest): { matched?: string; unknown?: { policy: string; reason: string } } {
  let unknown: { policy: string; reason: string } | undefined;
  for (const [name, policy] of Object.entries(policies)) {
    const r = policyMatches(obj(policy), req);
    if (r === true) return { matched: name };
    if (isUnknown(r)) unknown ??= { policy: name, reason: r.unknown };
  }
  return unknown ? { unknown } : {};
}

/** The filters in order, as Envoy runs them: the first DENY decides; with no denial, the ALLOW that let it pass. */
export function evaluateRbac(filters: readonly RbacFilter[], req: RbacRequest): RbacDecision {
  let allowedBy: { policy: string; filter: string } | undefined;
  for (const f of filters) {
    if (!f.rules) continue;
    const action = s(f.rules['action']) || 'ALLOW';
    if (action === 'LOG') continue;
    const { matched, unknown } = matchPolicies(obj(f.rules['policies']), req);
    if (action === 'DENY') {
      if (matched) return { decision: 'DENY', policy: matched, filter: f.name, reason: 'a DENY policy matched' };
      if (unknown) return { decision: 'UNDECIDABLE', policy: unknown.policy, filter: f.name, reason: unknown.reason };
      continue;
    }
    if (matched) {
      allowedBy ??= { policy: matched, filter: f.name };
      continue;
    }
    if (unknown) return { decision: 'UNDECIDABLE', policy: unknown.policy, filter: f.name, reason: unknown.reason };
    return { decision: 'DENY', filter: f.name, reason: 'no ALLOW policy matched' };
  }
  return allowedBy ? { decision: 'ALLOW', ...allowedBy } : { decision: 'NO_POLICY' };
}

/** The RBAC filters among a chain's network filters, or in its HTTP connection manager's http_filters. */
export function rbacFiltersOfChain(chain: Json, http: boolean): RbacFilter[] {
  const out: RbacFilter[] = [];
  for (const f of arr(chain['filters'])) {
    const tc = obj(f['typedConfig']);
    const type = s(tc['@type']);
    if (type === RBAC_NETWORK_TYPE && !http) out.push({ name: s(f['name']), ...(tc['rules'] ? { rules: obj(tc['rules']) } : {}) });
    if (type === HCM && http) {
      for (const hf of arr(tc['httpFilters'])) {
        const htc = obj(hf['typedConfig']);
        if (s(htc['@type']) === RBAC_HTTP_TYPE) out.push({ name: s(hf['name']), ...(htc['rules'] ? { rules: obj(htc['rules']) } : {}) });
      }
    }
  }
  return out;
}

export interface InboundRbac {
  /** The listener and filter chain the request lands on at the destination. */
  listener: string;
  filterChain?: string;
  filters: RbacFilter[];
  /** False when the port has no chain of its own and the request takes the listener's default (passthrough) chain. */
  portMatched: boolean;
  /** Why the connection is refused before any RBAC filter (the port accepts only the other transport). */
  refused?: string;
}

const hasHcm = (chain: Json): boolean => arr(chain['filters']).some((f) => s(obj(f['typedConfig'])['@type']) === HCM);

/**
 * The destination's inbound chain for a port: a sidecar's virtualInbound chain matching the port
 * and transport (TLS for an mTLS caller, else plaintext; an HTTP chain for an HTTP request) — or,
 * for a port without chains, the default (passthrough) chain —, or a proxyless gRPC server's
 * listener for the port; undefined when the proxy has neither.
 */
export function inboundRbac(dump: Json, port: number, mtls: boolean, http: boolean): InboundRbac | undefined {
  const all = listeners(dump, {});
  const grpc = all.find((l) => s(l['name']).startsWith(GRPC_INBOUND_PREFIX) && s(l['name']).endsWith(`:${port}`));
  if (grpc) {
    const chain = arr(grpc['filterChains'])[0] ?? obj(grpc['defaultFilterChain']);
    return { listener: s(grpc['name']), ...(chain['name'] ? { filterChain: s(chain['name']) } : {}), filters: rbacFiltersOfChain(chain, true), portMatched: true };
  }
  const vi = all.find((l) => s(l['name']) === 'virtualInbound');
  if (!vi) return undefined;
  const chains = arr(vi['filterChains']).filter((c) => Number(obj(c['filterChainMatch'])['destinationPort'] ?? -1) === port);
  const named = (chain: Json): { filterChain?: string } => (chain['name'] ? { filterChain: s(chain['name']) } : {});
  if (chains.length === 0) {
    const d = obj(vi['defaultFilterChain']);
    return { listener: 'virtualInbound', ...named(d), filters: rbacFiltersOfChain(d, hasHcm(d)), portMatched: false };
  }
  const transport = (c: Json): string => s(obj(c['filterChainMatch'])['transportProtocol']);
  const wanted = mtls ? 'tls' : 'raw_buffer';
  const byTransport = chains.filter((c) => transport(c) === wanted || transport(c) === '');
  const chain = byTransport.find((c) => hasHcm(c) === http) ?? byTransport[0];
  if (!chain) {
    const refused = mtls
      ? `port ${port} accepts only plaintext (PeerAuthentication DISABLE); an mTLS connection fails`
      : `port ${port} accepts only mTLS (PeerAuthentication STRICT); a plaintext caller is refused`;
    return { listener: 'virtualInbound', filters: [], portMatched: true, refused };
  }
  return { listener: 'virtualInbound', ...named(chain), filters: rbacFiltersOfChain(chain, hasHcm(chain)), portMatched: true };
}

/** The decision in one line, as `meshctl x route` prints it. */
export function describeRbac(d: RbacDecision): string {
  switch (d.decision) {
    case 'ALLOW':
      return `ALLOW by ${d.policy} (${d.filter})`;
    case 'DENY':
      return d.policy ? `DENY by ${d.policy} (${d.filter})` : `DENY: ${d.reason} (${d.filter})`;
    case 'NO_POLICY':
      return 'no policy (allowed)';
    case 'UNDECIDABLE':
      return `undecidable: ${d.policy} ${d.reason} (${d.filter})`;
    case 'NOT_CONNECTED':
      return 'destination proxy not connected';
    case 'UNKNOWN':
      return `unknown: ${d.reason}`;
  }
}
