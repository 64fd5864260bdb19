/**
 * HTTPMatchRequest → Envoy RouteMatch (istiod's TranslateRouteMatch), and whether a match
 * applies to this proxy and port at all (port, sourceLabels, sourceNamespace, gateways).
 */
import type { HTTPMatchRequest, StringMatch } from '../model/objects';
import { proxyLabels } from '../model/proxy';
import { labelsMatch } from '../model/snapshot';
import { envoyStringMatcher } from './route-policies';
import { type Flavor, type RouteScope, gatewayRef } from './route-scope';
import type { ProtoObject } from './types';

/** No value to compare (`{}`), or Istio's `regex: "*"`: the header (or parameter) only has to be present. */
function isPresentMatch(m: StringMatch): boolean {
  return (m.exact === undefined && m.prefix === undefined && m.regex === undefined) || m.regex === '*';
}

function headerMatcher(name: string, m: StringMatch, invert: boolean, flavor: Flavor): ProtoObject {
  const h: ProtoObject = { name };
  if (isPresentMatch(m)) h.present_match = true;
  else if (flavor === 'grpc') {
    // gRPC C-core before string_match support (e.g. 1.51) only reads the older matcher fields,
    // which every gRPC xDS client and Envoy still accept.
    if (m.exact !== undefined) h.exact_match = m.exact;
    else if (m.prefix !== undefined) h.prefix_match = m.prefix;
    else if (m.regex !== undefined) h.safe_regex_match = { regex: m.regex };
  } else h.string_match = envoyStringMatcher(m);
  if (invert) {
    h.invert_match = true;
    // A missing header must count as "not matching the value", so withoutHeaders lets it through.
    if (!isPresentMatch(m) && flavor === 'envoy') h.treat_missing_header_as_empty = true;
  }
  return h;
}

const JWT_CLAIM_HEADER = '@request.auth.claims';

/** istiod's ToRoutingClaim: `@request.auth.claims.a.b` or `@request.auth.claims[a][b]` → [a, b]. */
function routingClaim(header: string): string[] | undefined {
  if (!header.toLowerCase().startsWith(JWT_CLAIM_HEADER)) return undefined;
  const rest = header.slice(JWT_CLAIM_HEADER.length);
  if (rest.startsWith('.') && rest.length > 1) return rest.slice(1).split('.');
  if (rest.startsWith('[') && rest.endsWith(']') && rest.length > 2) return rest.slice(1, -1).split('][');
  return undefined;
}

/** A JWT claim condition on the payload Envoy's jwt_authn filter leaves in dynamic metadata (a claim may be a list). */
function claimMatcher(claims: readonly string[], m: StringMatch, invert: boolean): ProtoObject {
  const value: ProtoObject = isPresentMatch(m) ? { present_match: true } : { string_match: envoyStringMatcher(m) };
  return {
    filter: 'envoy.filters.http.jwt_authn',
    path: ['payload', ...claims].map((key) => ({ key })),
    value: { or_match: { value_matchers: [{ list_match: { one_of: value } }, value] } },
    ...(invert ? { invert: true } : {}),
  };
}

/**
 * Whether a match can apply to this proxy on this port (istiod's sourceMatchHTTP): a match
 * naming gateways applies where one of them is in scope (its sourceLabels and sourceNamespace
 * are then not consulted); otherwise sourceLabels and sourceNamespace must fit the proxy.
 */
export function matchApplies(m: HTTPMatchRequest | undefined, vsNamespace: string, scope: RouteScope): boolean {
  if (!m) return true;
  if (m.port !== undefined && m.port !== 0 && m.port !== scope.port) return false;
  if (m.gateways && m.gateways.length > 0) return m.gateways.some((g) => scope.gateways.has(gatewayRef(g, vsNamespace)));
  if (m.sourceLabels && !labelsMatch(m.sourceLabels, proxyLabels(scope.proxy, scope.snap))) return false;
  return !m.sourceNamespace || m.sourceNamespace === scope.proxy.namespace;
}

/** Istio match → Envoy RouteMatch; undefined when the route can never match for this flavour. */
export function routeMatch(m: HTTPMatchRequest | undefined, flavor: Flavor): ProtoObject | undefined {
  if (!m) return { prefix: '/' };
  const out: ProtoObject = {};
  const uri = m.uri;
  if (uri?.exact !== undefined) out.path = uri.exact;
  else if (uri?.prefix !== undefined) out.prefix = uri.prefix;
  else if (uri?.regex !== undefined) out.safe_regex = { regex: uri.regex };
  else out.prefix = '/';
  out.case_sensitive = { value: !m.ignoreUriCase };
  // Headers and withoutHeaders sorted by name together, then the pseudo-headers, as istiod orders
  // them. JWT claims are matched on dynamic metadata; gRPC requests carry none.
  const named: ProtoObject[] = [];
  const metadata: ProtoObject[] = [];
  const conditions: Array<[string, StringMatch, boolean]> = [
    ...Object.entries(m.headers ?? {}).map(([n, sm]): [string, StringMatch, boolean] => [n, sm, false]),
    ...Object.entries(m.withoutHeaders ?? {}).map(([n, sm]): [string, StringMatch, boolean] => [n, sm, true]),
  ];
  for (const [name, sm, invert] of conditions) {
    const claims = routingClaim(name);
    if (!claims) named.push(headerMatcher(name, sm, invert, flavor));
    else if (flavor === 'envoy') metadata.push(claimMatcher(claims, sm, invert));
    else if (!invert) return undefined;
  }
  named.sort((a, b) => (String(a.name) < String(b.name) ? -1 : String(a.name) > String(b.name) ? 1 : 0));
  const headers = [...named];
  if (m.method) headers.push(headerMatcher(':method', m.method, false, flavor));
  if (m.authority) headers.push(headerMatcher(':authority', m.authority, false, flavor));
  if (m.scheme) headers.push(headerMatcher(':scheme', m.scheme, false, flavor));
  if (headers.length > 0) out.headers = headers;
  if (metadata.length > 0) out.dynamic_metadata = metadata;
  const params = Object.entries(m.queryParams ?? {});
  if (params.length > 0) {
    // A gRPC request has no query string: such a route can never match a gRPC call.
    if (flavor === 'grpc') return undefined;
    out.query_parameters = params.map(([name, sm]) => (isPresentMatch(sm) ? { name, present_match: true } : { name, string_match: envoyStringMatcher(sm) }));
  }
  return out;
}

/**
 * The most inverted value matchers one gRPC match is expanded for (2^n routes); past that the
 * match keeps the single-route form, which grpc-js evaluates as Istio does and Go and C-core do not.
 */
export const MAX_GRPC_WITHOUT_HEADERS = 6;

const isInvertedValue = (h: ProtoObject): boolean => h.invert_match === true && h.present_match !== true;

/**
 * Istio match → the Envoy RouteMatches that together express it; [] when it can never match.
 *
 * One, except for gRPC clients and `withoutHeaders` with a value: Istio matches a request whose
 * header is absent or present with another value, but gRPC-Go and C-core never match an absent
 * header with an inverted value matcher (they ignore treat_missing_header_as_empty; only grpc-js
 * lets it through). So each such condition is split into "absent" (`present_match` inverted) and
 * "present and not matching" (`present_match`, then the inverted value matcher), and the match
 * into one route per combination. The combinations exclude each other, so their order does not
 * matter, and all three gRPC implementations evaluate every one of them alike.
 */
export function routeMatches(m: HTTPMatchRequest | undefined, flavor: Flavor): ProtoObject[] {
  const base = routeMatch(m, flavor);
  if (!base) return [];
  const headers = (base.headers as ProtoObject[] | undefined) ?? [];
  const inverted = headers.filter(isInvertedValue);
  if (flavor !== 'grpc' || inverted.length === 0 || inverted.length > MAX_GRPC_WITHOUT_HEADERS) return [base];
  const out: ProtoObject[] = [];
  for (let combo = 0; combo < 1 << inverted.length; combo++) {
    const expanded = headers.flatMap((h): ProtoObject[] => {
      const i = inverted.indexOf(h);
      if (i < 0) return [h];
      const absent = (combo >> i) & 1;
      return absent ? [{ name: h.name, present_match: true, invert_match: true }] : [{ name: h.name, present_match: true }, h];
    });
    out.push({ ...base, headers: expanded });
  }
  return out;
}

/** istiod's IsCatchAllRoute: `/` (or `.*`) with no header or query conditions; later routes are unreachable. */
export function isCatchAll(match: ProtoObject): boolean {
  const pathAll = match.prefix === '/' || (match.safe_regex as ProtoObject | undefined)?.regex === '.*';
  return pathAll && !match.headers && !match.query_parameters && !match.dynamic_metadata;
}
