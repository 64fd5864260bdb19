/**
 * One Gateway API route rule → Istio VirtualService HTTP routes, as istiod's conversion.go does
 * (convertHTTPRoute / convertGRPCRoute): matches, filters, weighted backends, timeouts. Each
 * match becomes its own VirtualService route, so that the routes of every HTTPRoute attached to
 * one host can be ordered by the Gateway API's precedence rules rather than by object order.
 * Pure: problems are returned, never thrown.
 */
import type {
  BackendRef,
  CorsPolicy,
  GRPCRouteMatch,
  GRPCRouteRule,
  HTTPMatchRequest,
  HTTPRetry,
  HTTPRoute,
  HTTPRouteDestination,
  HTTPRouteFilter,
  HTTPRouteMatch,
  HTTPRouteRule,
  HeaderModifier,
  HeaderOperations,
  StringMatch,
} from '../model/objects';

/** How a backend reference resolved (for ResolvedRefs and configz). */
export interface RefProblem {
  path: string;
  reason: 'BackendNotFound' | 'RefNotPermitted' | 'InvalidKind' | 'UnsupportedValue';
  message: string;
}

export interface BackendResolver {
  /** The FQDN of a Service backend, or a problem. */
  resolve(ref: BackendRef, path: string): { host: string } | RefProblem;
}

/** A converted VirtualService route, with what orders it among its host's routes. */
export interface RankedRoute {
  route: HTTPRoute;
  rank: MatchRank;
}

/** The Gateway API's precedence key of one match (HTTPRoute spec, "Precedence"). */
export interface MatchRank {
  /** 2 exact, 1 prefix, 0 regex / none. */
  pathType: number;
  pathLength: number;
  method: number;
  headers: number;
  queryParams: number;
  /** The route's creationTimestamp in ms (absent for objects from a folder: they sort after those with one). */
  created?: number;
  /** namespace/name of the route (equal matches go to the oldest route, then by this). */
  route: string;
  rule: number;
  match: number;
}

function olderFirst(a: number | undefined, b: number | undefined): number {
  const x = a ?? Number.POSITIVE_INFINITY;
  const y = b ?? Number.POSITIVE_INFINITY;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Higher precedence first. */
export function compareRank(a: MatchRank, b: MatchRank): number {
  return (
    b.pathType - a.pathType ||
    b.pathLength - a.pathLength ||
    b.method - a.method ||
    b.headers - a.headers ||
    b.queryParams - a.queryParams ||
    olderFirst(a.created, b.created) ||
    (a.route < b.route ? -1 : a.route > b.route ? 1 : 0) ||
    a.rule - b.rule ||
    a.match - b.match
  );
}

function headerMap(list: readonly { type?: string; name: string; value: string }[] | undefined, lower: boolean): Record<string, StringMatch> | undefined {
  if (!list?.length) return undefined;
  const out: Record<string, StringMatch> = {};
  for (const h of list) {
    const name = lower ? h.name.toLowerCase() : h.name;
    // The first match of a name wins (the spec's rule for repeated names).
    if (out[name] !== undefined) continue;
    out[name] = h.type === 'RegularExpression' ? { regex: h.value } : { exact: h.value };
  }
  return out;
}

function modifier(m: HeaderModifier | undefined): HeaderOperations | undefined {
  if (!m) return undefined;
  const out: HeaderOperations = {};
  if (m.set?.length) out.set = Object.fromEntries(m.set.map((h) => [h.name.toLowerCase(), h.value]));
  if (m.add?.length) out.add = Object.fromEntries(m.add.map((h) => [h.name.toLowerCase(), h.value]));
  if (m.remove?.length) out.remove = m.remove.map((h) => h.toLowerCase());
  return Object.keys(out).length > 0 ? out : undefined;
}

/** PathPrefix `/foo` matches `/foo` and `/foo/…`, never `/foobar`: an exact and a `/foo/` prefix match. */
function pathMatches(m: HTTPRouteMatch): Array<{ uri?: StringMatch; prefixBranch: boolean; rank: Pick<MatchRank, 'pathType' | 'pathLength'> }> {
  const type = m.path?.type ?? 'PathPrefix';
  const value = m.path?.value ?? '/';
  if (type === 'Exact') return [{ uri: { exact: value }, prefixBranch: false, rank: { pathType: 2, pathLength: value.length } }];
  if (type === 'RegularExpression') return [{ uri: { regex: value }, prefixBranch: false, rank: { pathType: 0, pathLength: value.length } }];
  const trimmed = value.length > 1 && value.endsWith('/') ? value.slice(0, -1) : value;
  const rank = { pathType: 1, pathLength: trimmed.length };
  if (trimmed === '/') return [{ uri: { prefix: '/' }, prefixBranch: true, rank }];
  return [
    { uri: { exact: trimmed }, prefixBranch: false, rank },
    { uri: { prefix: `${trimmed}/` }, prefixBranch: true, rank },
  ];
}

export interface ConvertedRule {
  routes: RankedRoute[];
  problems: RefProblem[];
}

interface RuleInput {
  /** `<ns>.<name>.<rule index>`: istiod's route name. */
  name: string;
  routeKey: string;
  ruleIndex: number;
  filters: readonly HTTPRouteFilter[];
  backendRefs: readonly BackendRef[];
  timeouts?: HTTPRouteRule['timeouts'];
  retry?: HTTPRouteRule['retry'];
  /** Each match as VirtualService matches (several when one Gateway API match needs more), with its rank. */
  matches: Array<Array<{ match: HTTPMatchRequest; prefixBranch: boolean; rank: Omit<MatchRank, 'route' | 'rule' | 'match'> }>>;
  /** The parent's port (mesh parentRef port, or none). */
  port?: number;
  path: string;
  /** The rank of a rule without matches: HTTPRoute's implied `/` prefix, or GRPCRoute's match-all. */
  matchAll: Pick<MatchRank, 'pathType' | 'pathLength'>;
}

function replacePrefix(replacement: string, prefixBranch: boolean): string {
  if (!prefixBranch) return replacement;
  return replacement.endsWith('/') ? replacement : `${replacement}/`;
}

function convertRule(input: RuleInput, resolver: BackendResolver): ConvertedRule {
  const problems: RefProblem[] = [];
  const base: HTTPRoute = { name: input.name };
  let redirect: HTTPRoute['redirect'];
  let rewrite: { hostname?: string; path?: { type: string; replaceFullPath?: string; replacePrefixMatch?: string } } | undefined;
  let refused = false;
  input.filters.forEach((f, i) => {
    const fp = `${input.path}.filters[${i}]`;
    switch (f.type) {
      case 'RequestHeaderModifier': {
        const request = modifier(f.requestHeaderModifier);
        if (request) base.headers = { ...base.headers, request };
        break;
      }
      case 'ResponseHeaderModifier': {
        const response = modifier(f.responseHeaderModifier);
        if (response) base.headers = { ...base.headers, response };
        break;
      }
      case 'RequestRedirect': {
        const r = f.requestRedirect ?? {};
        redirect = { redirectCode: r.statusCode ?? 302 };
        if (r.scheme) redirect.scheme = r.scheme;
        if (r.hostname) redirect.authority = r.hostname;
        if (r.port) redirect.port = r.port;
        else if (r.scheme) redirect.derivePort = 'FROM_PROTOCOL_DEFAULT';
        if (r.path?.type === 'ReplaceFullPath') redirect.uri = r.path.replaceFullPath ?? '/';
        if (r.path?.type === 'ReplacePrefixMatch') {
          problems.push({ path: `${fp}.requestRedirect.path`, reason: 'UnsupportedValue', message: 'ReplacePrefixMatch in a redirect is not supported by meshd' });
          refused = true;
        }
        break;
      }
      case 'URLRewrite':
        rewrite = f.urlRewrite ?? {};
        break;
      case 'RequestMirror': {
        const m = f.requestMirror;
        if (!m) break;
        const r = resolver.resolve(m.backendRef, `${fp}.requestMirror.backendRef`);
        if ('reason' in r) {
          problems.push(r);
          break;
        }
        const percent = m.percent ?? (m.fraction ? (100 * m.fraction.numerator) / (m.fraction.denominator ?? 100) : 100);
        base.mirrors = [
          ...(base.mirrors ?? []),
          { destination: { host: r.host, ...(m.backendRef.port ? { port: { number: m.backendRef.port } } : {}) }, percentage: { value: percent } },
        ];
        break;
      }
      case 'CORS': {
        // istiod's createCorsFilter: origins exact (wildcards are not translated), maxAge in seconds.
        const c = f.cors ?? {};
        const cors: CorsPolicy = {};
        const origins = (c.allowOrigins ?? []).filter((o) => o !== '');
        if (origins.length > 0) cors.allowOrigins = origins.map((o) => ({ exact: o }));
        if (c.allowCredentials) cors.allowCredentials = true;
        if (c.allowMethods?.length) cors.allowMethods = [...c.allowMethods];
        if (c.allowHeaders?.length) cors.allowHeaders = [...c.allowHeaders];
        if (c.exposeHeaders?.length) cors.exposeHeaders = [...c.exposeHeaders];
        if ((c.maxAge ?? 0) > 0) cors.maxAge = `${c.maxAge}s`;
        base.corsPolicy = cors;
        break;
      }
      default:
        // ExtensionRef: requests this rule would serve get a 500.
        problems.push({ path: `${fp}.type`, reason: 'UnsupportedValue', message: `filter type ${f.type} is not supported by meshd; the rule answers 500` });
        refused = true;
    }
  });

  // Backends: weights as given; unresolved ones keep their share and answer 500 (the spec's rule).
  const destinations: HTTPRouteDestination[] = [];
  let invalidWeight = 0;
  input.backendRefs.forEach((b, i) => {
    const bp = `${input.path}.backendRefs[${i}]`;
    const weight = b.weight ?? 1;
    const r = resolver.resolve(b, bp);
    if ('reason' in r) {
      problems.push(r);
      invalidWeight += weight;
      return;
    }
    if (weight === 0) return;
    const d: HTTPRouteDestination = { destination: { host: r.host, ...(b.port ? { port: { number: b.port } } : {}) }, weight };
    const extra = (b.filters ?? []).filter((f) => f.type === 'RequestHeaderModifier' || f.type === 'ResponseHeaderModifier');
    for (const f of extra) {
      const ops = modifier(f.type === 'RequestHeaderModifier' ? f.requestHeaderModifier : f.responseHeaderModifier);
      if (ops) d.headers = { ...d.headers, [f.type === 'RequestHeaderModifier' ? 'request' : 'response']: ops };
    }
    destinations.push(d);
  });

  if (input.timeouts?.request && input.timeouts.request !== '0s') base.timeout = input.timeouts.request;
  if (input.timeouts?.backendRequest && input.timeouts.backendRequest !== '0s') base.timeout = input.timeouts.backendRequest;
  if (input.retry) {
    // istiod: connection errors always, plus the codes given; 2 attempts unless set; no retryOn with 0 attempts.
    const attempts = input.retry.attempts ?? 2;
    const retries: HTTPRetry = {
      attempts,
      retryOn: attempts === 0 ? '' : ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', ...(input.retry.codes ?? []).map(String)].join(','),
    };
    if (input.retry.backoff) retries.backoff = input.retry.backoff;
    base.retries = retries;
  }

  const routes: RankedRoute[] = [];
  const matchSets = input.matches.length > 0 ? input.matches : [[{ match: {}, prefixBranch: true, rank: { ...input.matchAll, method: 0, headers: 0, queryParams: 0 } }]];
  matchSets.forEach((set, m) => {
    for (const { match, prefixBranch, rank } of set) {
      const route: HTTPRoute = { ...base };
      const withPort = input.port !== undefined ? { ...match, port: input.port } : match;
      if (Object.keys(withPort).length > 0) route.match = [withPort];
      if (refused) {
        route.directResponse = { status: 500 };
      } else if (redirect) {
        route.redirect = redirect;
        delete route.mirrors;
      } else if (destinations.length === 0) {
        // No backend to send to (none given, none resolved, or all weight 0): 500.
        route.directResponse = { status: 500 };
        delete route.mirrors;
      } else {
        const percents = toPercent(destinations.map((d) => d.weight ?? 0));
        route.route =
          destinations.length === 1
            ? [{ ...destinations[0], weight: undefined } as HTTPRouteDestination]
            : destinations.map((d, i) => ({ ...d, weight: percents[i] ?? 0 })).filter((d) => (d.weight ?? 0) > 0);
        if (invalidWeight > 0) {
          // Calls that would go to an unresolved backend get a 500: their share of the weight.
          const total = destinations.reduce((s, d) => s + (d.weight ?? 0), 0) + invalidWeight;
          route.fault = { abort: { httpStatus: 500, percentage: { value: (100 * invalidWeight) / total } } };
        }
        if (rewrite) {
          const rw: NonNullable<HTTPRoute['rewrite']> = {};
          if (rewrite.hostname) rw.authority = rewrite.hostname;
          if (rewrite.path?.type === 'ReplacePrefixMatch') rw.uri = replacePrefix(rewrite.path.replacePrefixMatch ?? '/', prefixBranch);
          if (rewrite.path?.type === 'ReplaceFullPath') rw.uriRegexRewrite = { match: '/.*', rewrite: rewrite.path.replaceFullPath ?? '/' };
          if (Object.keys(rw).length > 0) route.rewrite = rw;
        }
      }
      for (const d of route.route ?? []) if (d.weight === undefined) delete (d as { weight?: number }).weight;
      routes.push({ route, rank: { ...rank, route: input.routeKey, rule: input.ruleIndex, match: m } });
    }
  });
  return { routes, problems };
}

/**
 * Relative weights → percentages summing to 100 (largest remainder). The Gateway API's weights
 * are relative; older gRPC C-core clients take a missing total_weight as 100 and refuse a route
 * whose weights sum to anything else.
 */
export function toPercent(weights: readonly number[]): number[] {
  const total = weights.reduce((s, w) => s + w, 0);
  if (total <= 0) return weights.map(() => 0);
  const exact = weights.map((w) => (100 * w) / total);
  const out = exact.map(Math.floor);
  let left = 100 - out.reduce((s, w) => s + w, 0);
  const order = exact.map((e, i) => [e - Math.floor(e), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (left <= 0) break;
    out[i] = (out[i] ?? 0) + 1;
    left--;
  }
  return out;
}

/** An HTTPRoute rule → ranked VirtualService routes. */
export function convertHttpRule(rule: HTTPRouteRule, ns: string, name: string, index: number, port: number | undefined, resolver: BackendResolver): ConvertedRule {
  const matches = (rule.matches ?? []).map((m) =>
    pathMatches(m).map((p) => {
      const match: HTTPMatchRequest = {};
      if (p.uri && !(p.uri.prefix === '/' && p.prefixBranch)) match.uri = p.uri;
      const headers = headerMap(m.headers, true);
      if (headers) match.headers = headers;
      const query = headerMap(m.queryParams, false);
      if (query) match.queryParams = query;
      if (m.method) match.method = { exact: m.method };
      return {
        match,
        prefixBranch: p.prefixBranch,
        rank: { ...p.rank, method: m.method ? 1 : 0, headers: m.headers?.length ?? 0, queryParams: m.queryParams?.length ?? 0 },
      };
    }),
  );
  return convertRule(
    {
      name: `${ns}.${name}.${index}`,
      routeKey: `${ns}/${name}`,
      ruleIndex: index,
      filters: rule.filters ?? [],
      backendRefs: rule.backendRefs ?? [],
      timeouts: rule.timeouts,
      ...(rule.retry ? { retry: rule.retry } : {}),
      matches,
      port,
      path: `spec.rules[${index}]`,
      matchAll: { pathType: 1, pathLength: 1 },
    },
    resolver,
  );
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** istiod's createGRPCURIMatch: service and method → the request path. */
function grpcPath(m: GRPCRouteMatch): StringMatch | undefined {
  const method = m.method;
  if (!method) return undefined;
  if ((method.type ?? 'Exact') === 'Exact') {
    if (method.service && method.method) return { exact: `/${method.service}/${method.method}` };
    if (method.service) return { prefix: `/${method.service}/` };
    if (method.method) return { regex: `/[^/]+/${escapeRegex(method.method)}` };
    return undefined;
  }
  return { regex: `/${method.service ?? '[^/]+'}/${method.method ?? '[^/]+'}` };
}

/** A GRPCRoute rule → ranked VirtualService routes. */
export function convertGrpcRule(rule: GRPCRouteRule, ns: string, name: string, index: number, port: number | undefined, resolver: BackendResolver): ConvertedRule {
  const matches = (rule.matches ?? []).map((m) => {
    const match: HTTPMatchRequest = {};
    const uri = grpcPath(m);
    if (uri) match.uri = uri;
    const headers = headerMap(m.headers, true);
    if (headers) match.headers = headers;
    const pathType = uri?.exact !== undefined ? 2 : uri?.prefix !== undefined ? 1 : 0;
    const pathLength = (uri?.exact ?? uri?.prefix ?? uri?.regex ?? '').length;
    return [{ match, prefixBranch: false, rank: { pathType, pathLength, method: 0, headers: m.headers?.length ?? 0, queryParams: 0 } }];
  });
  return convertRule(
    {
      name: `${ns}.${name}.${index}`,
      routeKey: `${ns}/${name}`,
      ruleIndex: index,
      filters: rule.filters ?? [],
      backendRefs: rule.backendRefs ?? [],
      matches,
      port,
      path: `spec.rules[${index}]`,
      matchAll: { pathType: 0, pathLength: 0 },
    },
    resolver,
  );
}
