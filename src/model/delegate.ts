/**
 * VirtualService delegation (`http[].delegate`): a root VirtualService hands part of its routes
 * to a delegate VirtualService (one without hosts). Resolved at build time into the root's
 * effective routes, so generators never see a delegate. Semantics follow istiod's
 * mergeHTTPRoutes / mergeHTTPMatchRequests:
 *
 * - each delegate route's matches are combined with the root route's (a conjunction); a
 *   delegate match that conflicts with every root match drops that delegate route;
 * - fields the delegate route leaves unset are taken from the root route;
 * - short host names in a delegate resolve in the root's namespace, as in istiod (the merged
 *   routes belong to the root).
 *
 * A missing or invisible delegate, a delegate that has hosts, a delegate that delegates again,
 * and dropped conflicting routes are reported as ConfigErrors.
 */
import type { ConfigError, ConfigObject, FieldError, HTTPMatchRequest, HTTPRoute, StringMatch } from './objects';
import { objectError } from './objects';
import { type VirtualServiceConfig, exportedTo } from './snapshot';

/** The object a VirtualService came from, for error reports. */
export type OriginLookup = (vs: VirtualServiceConfig) => ConfigObject | undefined;

// ---- match merging (istiod's hasConflict / stringMatchConflict / mergeHTTPMatchRequest) ----

function stringMatchConflict(root: StringMatch | undefined, leaf: StringMatch | undefined): boolean {
  if (!root || !leaf) return false;
  // Regexes cannot be compared: a regex on either side conflicts with anything on the other.
  if (root.regex && (leaf.regex || leaf.prefix || leaf.exact)) return true;
  if (leaf.regex && (root.regex || root.prefix || root.exact)) return true;
  if (root.exact) return !!leaf.prefix || leaf.exact !== root.exact;
  if (root.prefix) {
    if (leaf.prefix) return !leaf.prefix.startsWith(root.prefix);
    if (leaf.exact) return !leaf.exact.startsWith(root.prefix);
  }
  return true;
}

function mapConflict(root: Readonly<Record<string, StringMatch>> | undefined, leaf: Readonly<Record<string, StringMatch>> | undefined): boolean {
  return Object.entries(leaf ?? {}).some(([k, v]) => stringMatchConflict(root?.[k], v));
}

function hasConflict(root: HTTPMatchRequest, leaf: HTTPMatchRequest): boolean {
  if (stringMatchConflict(root.uri, leaf.uri) || stringMatchConflict(root.scheme, leaf.scheme)) return true;
  if (stringMatchConflict(root.method, leaf.method) || stringMatchConflict(root.authority, leaf.authority)) return true;
  if (mapConflict(root.headers, leaf.headers) || mapConflict(root.withoutHeaders, leaf.withoutHeaders)) return true;
  if (mapConflict(root.queryParams, leaf.queryParams)) return true;
  if (!!root.ignoreUriCase !== !!leaf.ignoreUriCase) return true;
  if (root.port && leaf.port && root.port !== leaf.port) return true;
  if (root.sourceNamespace && leaf.sourceNamespace !== root.sourceNamespace) return true;
  for (const [k, v] of Object.entries(leaf.sourceLabels ?? {})) {
    const rv = root.sourceLabels?.[k];
    if (rv !== undefined && rv !== v) return true;
  }
  const rg = root.gateways ?? [];
  const lg = leaf.gateways ?? [];
  if (rg.length > 0 && lg.length > 0 && (rg.length < lg.length || lg.some((g) => !rg.includes(g)))) return true;
  return false;
}

function mergeMaps<T>(root: Readonly<Record<string, T>> | undefined, leaf: Readonly<Record<string, T>> | undefined): Record<string, T> | undefined {
  if (!root && !leaf) return undefined;
  return { ...(root ?? {}), ...(leaf ?? {}) };
}

function joinNames(root: string | undefined, leaf: string | undefined): string | undefined {
  if (!leaf) return root;
  return root ? `${root}-${leaf}` : leaf;
}

function mergeMatch(root: HTTPMatchRequest, leaf: HTTPMatchRequest): HTTPMatchRequest {
  const out: HTTPMatchRequest = { ...leaf };
  const name = joinNames(root.name, leaf.name);
  if (name !== undefined) out.name = name;
  out.uri ??= root.uri;
  out.scheme ??= root.scheme;
  out.method ??= root.method;
  out.authority ??= root.authority;
  const headers = mergeMaps(root.headers, leaf.headers);
  if (headers) out.headers = headers;
  const without = mergeMaps(root.withoutHeaders, leaf.withoutHeaders);
  if (without) out.withoutHeaders = without;
  const params = mergeMaps(root.queryParams, leaf.queryParams);
  if (params) out.queryParams = params;
  if (!out.port && root.port) out.port = root.port;
  const labels = mergeMaps(root.sourceLabels, leaf.sourceLabels);
  if (labels) out.sourceLabels = labels;
  if (!out.sourceNamespace && root.sourceNamespace) out.sourceNamespace = root.sourceNamespace;
  if ((!out.gateways || out.gateways.length === 0) && root.gateways) out.gateways = root.gateways;
  if (!out.statPrefix && root.statPrefix) out.statPrefix = root.statPrefix;
  // Keep undefined-valued keys out of the frozen snapshot.
  for (const k of Object.keys(out) as (keyof HTTPMatchRequest)[]) if (out[k] === undefined) delete out[k];
  return out;
}

/** The merged matches, or undefined when a delegate match fits none of the root's. */
function mergeMatches(root: readonly HTTPMatchRequest[] | undefined, leaf: readonly HTTPMatchRequest[] | undefined): HTTPMatchRequest[] | undefined {
  if (!root || root.length === 0) return leaf ? [...leaf] : undefined;
  if (!leaf || leaf.length === 0) return [...root];
  const out: HTTPMatchRequest[] = [];
  for (const sub of leaf) {
    const fits = root.filter((r) => !hasConflict(r, sub));
    if (fits.length === 0) return undefined;
    for (const r of fits) out.push(mergeMatch(r, sub));
  }
  return out;
}

const INHERITED = [
  'rewrite',
  'directResponse',
  'timeout',
  'retries',
  'fault',
  'mirror',
  'mirrorPercent',
  'mirror_percent',
  'mirrorPercentage',
  'corsPolicy',
  'mirrors',
  'headers',
] as const;

/** A delegate route merged under a root route; undefined on a match conflict. */
export function mergeRoute(root: HTTPRoute, leaf: HTTPRoute): HTTPRoute | undefined {
  const match = mergeMatches(root.match, leaf.match);
  if (root.match?.length && leaf.match?.length && !match) return undefined;
  const out: HTTPRoute = { ...leaf };
  if (match) out.match = match;
  else delete out.match;
  const name = joinNames(root.name, leaf.name);
  if (name !== undefined) out.name = name;
  const fill = out as Record<string, unknown>;
  for (const k of INHERITED) if (fill[k] === undefined && root[k] !== undefined) fill[k] = root[k];
  return out;
}

// ---- expansion ----

function key(ns: string, name: string): string {
  return `${ns}/${name}`;
}

/**
 * Returns the VirtualServices with delegates expanded (each root's delegating routes replaced by
 * the merged delegate routes); delegates themselves stay in the list unchanged. Problems are
 * reported into `errors`, against the object `originOf` names.
 */
export function expandDelegates(list: readonly VirtualServiceConfig[], errors: ConfigError[], originOf: OriginLookup): VirtualServiceConfig[] {
  const byKey = new Map(list.map((vs) => [key(vs.meta.namespace, vs.meta.name), vs]));
  const problems = new Map<VirtualServiceConfig, FieldError[]>();
  const report = (vs: VirtualServiceConfig, e: FieldError): void => {
    const l = problems.get(vs) ?? [];
    l.push(e);
    problems.set(vs, l);
  };
  const chainedReported = new Set<string>();
  const out = list.map((vs) => {
    const http = vs.spec.http ?? [];
    if (vs.hosts.length === 0 || !http.some((r) => r.delegate)) return vs;
    const merged: HTTPRoute[] = [];
    http.forEach((r, i) => {
      if (!r.delegate) {
        merged.push(r);
        return;
      }
      const path = `spec.http[${i}].delegate`;
      const ns = r.delegate.namespace || vs.meta.namespace;
      const ref = key(ns, r.delegate.name ?? '');
      const target = byKey.get(ref);
      if (!target) return report(vs, { path, message: `delegate VirtualService ${ref} not found; this route is ignored` });
      if (target.hosts.length > 0) return report(vs, { path, message: `VirtualService ${ref} has hosts, so it is not a delegate; this route is ignored` });
      if (!exportedTo(target.exportTo, vs.meta.namespace)) {
        return report(vs, { path, message: `delegate VirtualService ${ref} is not exported to namespace ${vs.meta.namespace}; this route is ignored` });
      }
      (target.spec.http ?? []).forEach((leaf, j) => {
        if (leaf.delegate) {
          // Only one level of delegation: the chained route is reported once, on the delegate.
          if (!chainedReported.has(`${ref}#${j}`)) {
            chainedReported.add(`${ref}#${j}`);
            report(target, { path: `spec.http[${j}].delegate`, message: 'a delegate VirtualService cannot delegate again; this route is ignored' });
          }
          return;
        }
        const m = mergeRoute(r, leaf);
        if (m) merged.push(m);
        else report(vs, { path, message: `route ${j}${leaf.name ? ` (${leaf.name})` : ''} of delegate ${ref} has matches that conflict with this route's; it is ignored` });
      });
    });
    return { ...vs, spec: { ...vs.spec, http: merged } };
  });
  for (const [vs, errs] of problems) {
    const o = originOf(vs);
    if (o) errors.push(objectError(o, errs));
  }
  return out;
}
