/**
 * The route simulator behind `meshctl x route`: one request followed through a proxy's config
 * dump (proto3 JSON, as meshd serves it) in Envoy's matching order — listener (a proxyless
 * client's API listener by target name, a sidecar's by port and filter chain), route
 * configuration, virtual host by domain (exact, then `*suffix`, then `prefix*`, longest first,
 * then `*`), the first route whose match holds (path, headers, query parameters), its action
 * (clusters with weights, redirect, direct response), the policies on the way (fault, timeout,
 * retries, mirrors), and each cluster's TLS mode and endpoints.
 */
import { type Json, arr, clusters, endpointAddress, endpoints, listeners, management, obj, routes, s } from './proxy-config';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const FAULT_FILTER = 'envoy.filters.http.fault';

export interface SimRequest {
  /** The destination as the caller names it: a hostname (`reviews`, `reviews.default.svc.cluster.local`) or an IP. */
  host: string;
  port: number;
  /** Path with an optional query string; gRPC: `/<package.Service>/<Method>`. */
  path: string;
  method: string;
  /** Request headers (names are matched lower-cased, as Envoy and gRPC see them). */
  headers: Readonly<Record<string, string>>;
}

export interface SimEndpoint {
  address: string;
  health: string;
  locality: string;
  weight?: number;
  /** The endpoint's `tlsMode` label (auto mTLS picks mTLS for `istio`). */
  tlsMode?: string;
}

export interface SimCluster {
  name: string;
  /** Share of requests, in percent. */
  weight: number;
  type: string;
  /** `ISTIO_MUTUAL`, `ISTIO_MUTUAL (auto: endpoints with tlsMode istio)`, `TLS`, `none`, or `unknown (not in the proxy's config)`. */
  tls: string;
  lbPolicy: string;
  endpoints: SimEndpoint[];
}

export interface SimFault {
  delay?: { fixedDelay: string; percent: number };
  abort?: { httpStatus?: number; grpcStatus?: number; percent: number };
}

export type SimAction =
  | { type: 'forward'; clusters: SimCluster[] }
  | { type: 'redirect'; location: string; code: number }
  | { type: 'direct_response'; status: number; body?: string }
  | { type: 'no_route'; reason: string };

export interface SimResult {
  request: SimRequest;
  listener?: { name: string; filterChain?: string };
  routeConfig?: string;
  virtualHost?: { name: string; domain: string };
  route?: { index: number; name?: string; match: string; virtualService?: string };
  action: SimAction;
  timeout?: string;
  retries?: string;
  fault?: SimFault;
  mirrors?: string[];
}

function percentOf(p: unknown): number {
  const o = obj(p);
  const n = Number(o['numerator'] ?? 0);
  const d = s(o['denominator']) || 'HUNDRED';
  return d === 'MILLION' ? n / 10_000 : d === 'TEN_THOUSAND' ? n / 100 : n;
}

/** RE2 full match, approximated with JavaScript's engine (`(?i)` at the start becomes the `i` flag). */
function re2FullMatch(pattern: string, value: string): boolean {
  let flags = 'u';
  let p = pattern;
  if (p.startsWith('(?i)')) {
    flags += 'i';
    p = p.slice(4);
  }
  try {
    return new RegExp(`^(?:${p})$`, flags).test(value);
  } catch {
    return false;
  }
}

/** Envoy's StringMatcher. */
export function stringMatches(m: Json, value: string): boolean {
  const ic = m['ignoreCase'] === true;
  const v = ic ? value.toLowerCase() : value;
  const c = (x: unknown): string => (ic ? s(x).toLowerCase() : s(x));
  if (m['exact'] !== undefined) return v === c(m['exact']);
  if (m['prefix'] !== undefined) return v.startsWith(c(m['prefix']));
  if (m['suffix'] !== undefined) return v.endsWith(c(m['suffix']));
  if (m['contains'] !== undefined) return v.includes(c(m['contains']));
  if (m['safeRegex'] !== undefined) return re2FullMatch(s(obj(m['safeRegex'])['regex']), value);
  return false;
}

/** Envoy's HeaderMatcher against the request's headers (pseudo-headers included). */
export function headerMatches(h: Json, headers: ReadonlyMap<string, string>): boolean {
  const name = s(h['name']).toLowerCase();
  let value = headers.get(name);
  if (value === undefined && h['treatMissingHeaderAsEmpty'] === true) value = '';
  let ok: boolean;
  if (h['presentMatch'] !== undefined) ok = (value !== undefined) === (h['presentMatch'] === true);
  else if (value === undefined) ok = false;
  else if (h['exactMatch'] !== undefined) ok = value === s(h['exactMatch']);
  else if (h['prefixMatch'] !== undefined) ok = value.startsWith(s(h['prefixMatch']));
  else if (h['suffixMatch'] !== undefined) ok = value.endsWith(s(h['suffixMatch']));
  else if (h['containsMatch'] !== undefined) ok = value.includes(s(h['containsMatch']));
  else if (h['safeRegexMatch'] !== undefined) ok = re2FullMatch(s(obj(h['safeRegexMatch'])['regex']), value);
  else if (h['stringMatch'] !== undefined) ok = stringMatches(obj(h['stringMatch']), value);
  else ok = true;
  // A missing header never matches, inverted or not (Envoy's rule).
  if (value === undefined && h['presentMatch'] === undefined) return false;
  return h['invertMatch'] === true ? !ok : ok;
}

function queryMatches(q: Json, params: URLSearchParams): boolean {
  const name = s(q['name']);
  const value = params.get(name);
  if (q['presentMatch'] !== undefined) return (value !== null) === (q['presentMatch'] === true);
  if (value === null) return false;
  if (q['stringMatch'] !== undefined) return stringMatches(obj(q['stringMatch']), value);
  return true;
}

function pathMatches(m: Json, path: string): boolean {
  const cs = m['caseSensitive'] !== false;
  const p = cs ? path : path.toLowerCase();
  const c = (x: unknown): string => (cs ? s(x) : s(x).toLowerCase());
  if (m['prefix'] !== undefined) return p.startsWith(c(m['prefix']));
  if (m['path'] !== undefined) return p === c(m['path']);
  if (m['safeRegex'] !== undefined) return re2FullMatch(s(obj(m['safeRegex'])['regex']), path);
  if (m['pathSeparatedPrefix'] !== undefined) {
    const pre = c(m['pathSeparatedPrefix']);
    return p === pre || p.startsWith(`${pre}/`);
  }
  return false;
}

/** A route's match in a few words, for the output. */
function describeMatch(m: Json): string {
  const parts: string[] = [];
  if (m['prefix'] !== undefined) parts.push(`prefix ${s(m['prefix'])}`);
  if (m['path'] !== undefined) parts.push(`path ${s(m['path'])}`);
  if (m['safeRegex'] !== undefined) parts.push(`regex ${s(obj(m['safeRegex'])['regex'])}`);
  if (m['pathSeparatedPrefix'] !== undefined) parts.push(`path prefix ${s(m['pathSeparatedPrefix'])}`);
  for (const h of arr(m['headers'])) {
    let kind = Object.keys(h).find((k) => k !== 'name' && k !== 'invertMatch' && k !== 'treatMissingHeaderAsEmpty') ?? 'present';
    let v = h[kind];
    if (kind === 'stringMatch') {
      const sm = obj(v);
      kind = Object.keys(sm).find((k) => k !== 'ignoreCase') ?? 'exact';
      v = kind === 'safeRegex' ? obj(sm[kind])['regex'] : sm[kind];
      if (sm['ignoreCase'] === true) kind += ' (ignoring case)';
    } else if (kind === 'safeRegexMatch') v = obj(v)['regex'];
    const shown = typeof v === 'object' && v !== null ? JSON.stringify(v) : s(v);
    parts.push(`header ${s(h['name'])} ${h['invertMatch'] === true ? 'not ' : ''}${kind.replace(/Match$/, '')} ${shown}`.trim());
  }
  for (const q of arr(m['queryParameters'])) parts.push(`query ${s(q['name'])} ${JSON.stringify(q['stringMatch'] ?? q['presentMatch'] ?? true)}`);
  return parts.join(', ');
}

/** Envoy's virtual host selection for an authority. */
export function selectVirtualHost(vhosts: readonly Json[], authority: string): { vhost: Json; domain: string } | undefined {
  const host = authority.toLowerCase();
  const domains = vhosts.flatMap((v) => (Array.isArray(v['domains']) ? (v['domains'] as unknown[]) : []).map((d) => ({ v, d: s(d).toLowerCase() })));
  const exact = domains.find((x) => x.d === host);
  if (exact) return { vhost: exact.v, domain: exact.d };
  const bestBy = (pred: (d: string) => boolean): { v: Json; d: string } | undefined => domains.filter((x) => x.d !== '*' && pred(x.d)).sort((a, b) => b.d.length - a.d.length)[0];
  const suffix = bestBy((d) => d.startsWith('*') && host.endsWith(d.slice(1)) && host.length > d.length - 1);
  if (suffix) return { vhost: suffix.v, domain: suffix.d };
  const prefix = bestBy((d) => d.endsWith('*') && host.startsWith(d.slice(0, -1)) && host.length > d.length - 1);
  if (prefix) return { vhost: prefix.v, domain: prefix.d };
  const any = domains.find((x) => x.d === '*');
  return any ? { vhost: any.v, domain: '*' } : undefined;
}

function faultOf(perFilter: unknown): SimFault | undefined {
  const f = obj(obj(perFilter)[FAULT_FILTER]);
  if (Object.keys(f).length === 0) return undefined;
  const out: SimFault = {};
  const d = obj(f['delay']);
  if (Object.keys(d).length > 0) out.delay = { fixedDelay: s(d['fixedDelay']), percent: percentOf(d['percentage']) };
  const a = obj(f['abort']);
  if (Object.keys(a).length > 0) {
    out.abort = { percent: percentOf(a['percentage']) };
    if (a['httpStatus'] !== undefined) out.abort.httpStatus = Number(a['httpStatus']);
    if (a['grpcStatus'] !== undefined) out.abort.grpcStatus = Number(a['grpcStatus']);
  }
  return out;
}

function tlsMode(c: Json): string {
  const matches = arr(c['transportSocketMatches']);
  if (matches.some((m) => s(obj(m['match'])['tlsMode']) === 'istio')) return 'ISTIO_MUTUAL (auto: endpoints with tlsMode istio), plaintext to others';
  const ts = obj(c['transportSocket']);
  if (Object.keys(ts).length === 0) return 'none';
  const ctx = obj(ts['typedConfig']);
  // Proxyless gRPC (grpcgen): ISTIO_MUTUAL is the only TLS it is given, from the bootstrap's `default` provider.
  if (s(obj(obj(ctx['commonTlsContext'])['tlsCertificateProviderInstance'])['instanceName']) === 'default') return 'ISTIO_MUTUAL';
  const alpn = (obj(ctx['commonTlsContext'])['alpnProtocols'] as unknown[] | undefined) ?? [];
  return alpn.map(s).some((p) => p.startsWith('istio')) ? 'ISTIO_MUTUAL' : 'TLS';
}

function clusterInfo(dump: Json, name: string, weight: number): SimCluster {
  const c = clusters(dump, {}).find((x) => s(x['name']) === name);
  const cla = endpoints(dump, {}).find((e) => s(e['clusterName']) === name) ?? obj(c?.['loadAssignment']);
  const eps: SimEndpoint[] = [];
  for (const llb of arr(cla['endpoints'])) {
    const loc = obj(llb['locality']);
    const locality = [s(loc['region']), s(loc['zone']), s(loc['subZone'])].filter(Boolean).join('/');
    for (const ep of arr(llb['lbEndpoints'])) {
      const mode = s(obj(obj(obj(ep['metadata'])['filterMetadata'])['envoy.transport_socket_match'])['tlsMode']);
      eps.push({
        address: endpointAddress(ep),
        health: s(ep['healthStatus']) || 'UNKNOWN',
        locality,
        ...(ep['loadBalancingWeight'] !== undefined ? { weight: Number(ep['loadBalancingWeight']) } : {}),
        ...(mode ? { tlsMode: mode } : {}),
      });
    }
  }
  if (!c) return { name, weight, type: 'unknown', tls: 'unknown (not in the proxy\u2019s config)', lbPolicy: '', endpoints: eps };
  return { name, weight, type: s(c['type']) || 'EDS', tls: tlsMode(c), lbPolicy: s(c['lbPolicy']) || 'ROUND_ROBIN', endpoints: eps };
}

/** The listener a request to host:port enters, and the HTTP connection manager or TCP proxy there. */
function enter(dump: Json, req: SimRequest): { name: string; filterChain?: string; hcm?: Json; tcp?: Json } | undefined {
  const all = listeners(dump, {});
  // Proxyless gRPC: the API listener named after the target.
  const target = `${req.host}:${req.port}`;
  const api =
    all.find((l) => s(l['name']) === target && l['apiListener']) ??
    all.find((l) => l['apiListener'] && s(l['name']).startsWith(`${req.host}.`) && s(l['name']).endsWith(`:${req.port}`));
  if (api) return { name: s(api['name']), hcm: obj(obj(api['apiListener'])['apiListener']) };
  // Sidecar: the listener for the port (a VIP-specific one first), then its HTTP chain.
  const byPort = all.filter((l) => Number(obj(obj(l['address'])['socketAddress'])['portValue'] ?? -1) === req.port && !l['apiListener']);
  const listener =
    byPort.find((l) => s(obj(obj(l['address'])['socketAddress'])['address']) === req.host) ??
    byPort.find((l) => s(obj(obj(l['address'])['socketAddress'])['address']) === '0.0.0.0');
  if (!listener) return undefined;
  const chains = arr(listener['filterChains']);
  const httpChain = chains.find((fc) => arr(fc['filters']).some((f) => s(obj(f['typedConfig'])['@type']) === HCM) && s(obj(fc['filterChainMatch'])['transportProtocol']) !== 'tls');
  if (httpChain) {
    const f = arr(httpChain['filters']).find((x) => s(obj(x['typedConfig'])['@type']) === HCM);
    return { name: s(listener['name']), filterChain: s(httpChain['name']) || undefined, hcm: obj(f?.['typedConfig']) };
  }
  const tcpChain = chains.find((fc) => arr(fc['filters']).some((f) => s(obj(f['typedConfig'])['@type']) === TCP_PROXY));
  if (!tcpChain) return { name: s(listener['name']) };
  const f = arr(tcpChain['filters']).find((x) => s(obj(x['typedConfig'])['@type']) === TCP_PROXY);
  return { name: s(listener['name']), filterChain: s(tcpChain['name']) || undefined, tcp: obj(f?.['typedConfig']) };
}

/** Follows one request through the proxy's config. */
export function simulateRoute(dump: Json, req: SimRequest): SimResult {
  const out: SimResult = { request: req, action: { type: 'no_route', reason: '' } };
  const entry = enter(dump, req);
  if (!entry) return { ...out, action: { type: 'no_route', reason: `the proxy has no listener for ${req.host}:${req.port}` } };
  out.listener = { name: entry.name, ...(entry.filterChain ? { filterChain: entry.filterChain } : {}) };
  if (entry.tcp) {
    const t = entry.tcp;
    const weighted = arr(obj(t['weightedClusters'])['clusters']);
    const total = weighted.reduce((a, c) => a + Number(c['weight'] ?? 0), 0);
    const list =
      weighted.length > 0 ? weighted.map((c) => clusterInfo(dump, s(c['name']), total ? (100 * Number(c['weight'] ?? 0)) / total : 0)) : [clusterInfo(dump, s(t['cluster']), 100)];
    return { ...out, action: { type: 'forward', clusters: list } };
  }
  if (!entry.hcm) return { ...out, action: { type: 'no_route', reason: `listener ${entry.name} has no HTTP or TCP chain for this request` } };
  const rdsName = s(obj(entry.hcm['rds'])['routeConfigName']);
  const rc = rdsName ? routes(dump, rdsName)[0] : obj(entry.hcm['routeConfig']);
  if (!rc || Object.keys(rc).length === 0) return { ...out, action: { type: 'no_route', reason: `route configuration ${rdsName} is not in the proxy's config` } };
  out.routeConfig = s(rc['name']) || rdsName;
  const authority = req.headers[':authority'] ?? `${req.host}:${req.port}`;
  const vh = selectVirtualHost(arr(rc['virtualHosts']), authority) ?? (authority.includes(':') ? selectVirtualHost(arr(rc['virtualHosts']), req.host) : undefined);
  if (!vh) return { ...out, action: { type: 'no_route', reason: `no virtual host of ${out.routeConfig} has a domain matching ${authority} (404)` } };
  out.virtualHost = { name: s(vh.vhost['name']), domain: vh.domain };

  const [pathOnly = '/', query = ''] = req.path.split('?', 2);
  const params = new URLSearchParams(query);
  const headers = new Map<string, string>(Object.entries(req.headers).map(([k, v]) => [k.toLowerCase(), v]));
  headers.set(':path', req.path);
  headers.set(':method', req.method);
  if (!headers.has(':authority')) headers.set(':authority', authority);
  const list = arr(vh.vhost['routes']);
  const index = list.findIndex((r) => {
    const m = obj(r['match']);
    return pathMatches(m, pathOnly) && arr(m['headers']).every((h) => headerMatches(h, headers)) && arr(m['queryParameters']).every((q) => queryMatches(q, params));
  });
  if (index < 0) return { ...out, action: { type: 'no_route', reason: `no route of virtual host ${out.virtualHost.name} matches (404; gRPC: UNAVAILABLE)` } };
  const route = list[index] as Json;
  const vsName = management(route['metadata']);
  out.route = { index, ...(route['name'] ? { name: s(route['name']) } : {}), match: describeMatch(obj(route['match'])), ...(vsName ? { virtualService: vsName } : {}) };
  const fault = faultOf(route['typedPerFilterConfig']) ?? faultOf(vh.vhost['typedPerFilterConfig']);
  if (fault) out.fault = fault;

  if (route['redirect']) {
    const r = obj(route['redirect']);
    const code = { MOVED_PERMANENTLY: 301, FOUND: 302, SEE_OTHER: 303, TEMPORARY_REDIRECT: 307, PERMANENT_REDIRECT: 308 }[s(r['responseCode']) || 'MOVED_PERMANENTLY'] ?? 301;
    const location = `${s(r['schemeRedirect']) || 'http'}://${s(r['hostRedirect']) || authority}${r['portRedirect'] ? `:${s(r['portRedirect'])}` : ''}${s(r['pathRedirect']) || s(r['prefixRewrite']) || pathOnly}`;
    return { ...out, action: { type: 'redirect', location, code } };
  }
  if (route['directResponse']) {
    const d = obj(route['directResponse']);
    const body = s(obj(d['body'])['inlineString']);
    return { ...out, action: { type: 'direct_response', status: Number(d['status'] ?? 0), ...(body ? { body } : {}) } };
  }
  const action = obj(route['route']);
  if (action['timeout'] !== undefined) out.timeout = s(action['timeout']);
  const retry = obj(action['retryPolicy'] ?? vh.vhost['retryPolicy']);
  if (Object.keys(retry).length > 0)
    out.retries = `${s(retry['numRetries']) || '1'} on ${s(retry['retryOn'])}${retry['perTryTimeout'] ? `, ${s(retry['perTryTimeout'])} per try` : ''}`;
  const mirrors = arr(action['requestMirrorPolicies']).map((m) => `${s(m['cluster'])}${m['runtimeFraction'] ? ` (${percentOf(obj(m['runtimeFraction'])['defaultValue'])}%)` : ''}`);
  if (mirrors.length > 0) out.mirrors = mirrors;
  const weighted = arr(obj(action['weightedClusters'])['clusters']);
  if (weighted.length > 0) {
    const total = Number(obj(action['weightedClusters'])['totalWeight'] ?? 0) || weighted.reduce((a, c) => a + Number(c['weight'] ?? 0), 0);
    return {
      ...out,
      action: { type: 'forward', clusters: weighted.map((c) => clusterInfo(dump, s(c['name']), total ? Math.round((10_000 * Number(c['weight'] ?? 0)) / total) / 100 : 0)) },
    };
  }
  if (action['cluster'] !== undefined) return { ...out, action: { type: 'forward', clusters: [clusterInfo(dump, s(action['cluster']), 100)] } };
  if (action['clusterHeader'] !== undefined) {
    const name = headers.get(s(action['clusterHeader']).toLowerCase());
    return name
      ? { ...out, action: { type: 'forward', clusters: [clusterInfo(dump, name, 100)] } }
      : { ...out, action: { type: 'no_route', reason: `header ${s(action['clusterHeader'])} names no cluster (503)` } };
  }
  return { ...out, action: { type: 'no_route', reason: 'the route has no action meshd understands' } };
}

/** gRPC's mapping of an HTTP status to a status code (for a fault abort or a direct response seen by a gRPC client). */
export function grpcStatusForHttp(status: number): number {
  if (status === 400) return 13;
  if (status === 401) return 16;
  if (status === 403) return 7;
  if (status === 404) return 12;
  if (status === 429 || status === 502 || status === 503 || status === 504) return 14;
  return 2;
}

/** The result as text, step by step. */
export function describeSimulation(r: SimResult): string {
  const lines: string[] = [];
  const hdrs = Object.entries(r.request.headers).map(([k, v]) => `${k}: ${v}`);
  lines.push(`Request:        ${r.request.method} ${r.request.host}:${r.request.port}${r.request.path}${hdrs.length ? ` (${hdrs.join(', ')})` : ''}`);
  if (r.listener) lines.push(`Listener:       ${r.listener.name}${r.listener.filterChain ? ` (filter chain ${r.listener.filterChain})` : ''}`);
  if (r.routeConfig) lines.push(`Route config:   ${r.routeConfig}`);
  if (r.virtualHost) lines.push(`Virtual host:   ${r.virtualHost.name} (domain ${r.virtualHost.domain})`);
  if (r.route)
    lines.push(
      `Route:          #${r.route.index}${r.route.name ? ` "${r.route.name}"` : ''}${r.route.match ? ` matching ${r.route.match}` : ''}${r.route.virtualService ? `, from VirtualService ${r.route.virtualService}` : ''}`,
    );
  if (r.fault?.delay) lines.push(`Fault delay:    ${r.fault.delay.fixedDelay} for ${r.fault.delay.percent}% of requests`);
  if (r.fault?.abort) {
    const what =
      r.fault.abort.grpcStatus !== undefined
        ? `gRPC status ${r.fault.abort.grpcStatus}`
        : `HTTP ${r.fault.abort.httpStatus} (gRPC status ${grpcStatusForHttp(r.fault.abort.httpStatus ?? 0)})`;
    lines.push(`Fault abort:    ${what} for ${r.fault.abort.percent}% of requests`);
  }
  if (r.timeout) lines.push(`Timeout:        ${r.timeout === '0s' ? 'none (0s)' : r.timeout}`);
  if (r.retries) lines.push(`Retries:        ${r.retries}`);
  for (const m of r.mirrors ?? []) lines.push(`Mirror:         ${m}`);
  const a = r.action;
  if (a.type === 'no_route') lines.push(`Result:         no route: ${a.reason}`);
  else if (a.type === 'redirect') lines.push(`Result:         redirect ${a.code} to ${a.location}`);
  else if (a.type === 'direct_response') lines.push(`Result:         direct response ${a.status}${a.body ? `: ${a.body}` : ''}`);
  else {
    for (const c of a.clusters) {
      lines.push(`Cluster:        ${c.name} (${c.weight}%), ${c.type}, ${c.lbPolicy || 'lb unknown'}, TLS ${c.tls}`);
      for (const e of c.endpoints) lines.push(`  endpoint      ${e.address} ${e.health}${e.locality ? ` ${e.locality}` : ''}${e.tlsMode ? ` tlsMode=${e.tlsMode}` : ''}`);
      if (c.endpoints.length === 0) lines.push('  endpoint      (none in the proxy\u2019s config)');
    }
  }
  return `${lines.join('\n')}\n`;
}
