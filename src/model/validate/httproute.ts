/** HTTPRoute checks (Istio's validateHTTPRoute) and route destination weights. */
import { Issues, arr, has, isRecord, num, pathIdx, pathKey, rec, recordItems, stringEntries, type JsonObject } from './common';
import { checkDestination, checkHeaderOperations } from './istio-common';
import { checkHttpMatches, type RouteContext } from './httpmatch';
import { checkCors, checkDirectResponse, checkDuration, checkFault, checkPercentage, checkRedirect, checkRetries, checkRewrite } from './httppolicies';

/**
 * Route destinations (HTTP, TCP and TLS): each needs a valid destination and a non-negative
 * weight. Weights are relative (Istio ≥ 1.15 no longer requires them to sum to 100), but with
 * more than one destination they cannot all be 0.
 */
export function checkRouteDestinations(issues: Issues, path: string, v: unknown, withHeaders: boolean): void {
  const list = arr(v);
  if (list === undefined) return;
  let total = 0;
  for (const [i, d] of recordItems(list)) {
    const p = pathIdx(path, i);
    if (!has(d, 'destination')) issues.add(pathKey(p, 'destination'), 'destination is required');
    checkDestination(issues, pathKey(p, 'destination'), d['destination']);
    if (withHeaders) checkHeaderOperations(issues, pathKey(p, 'headers'), d['headers']);
    const weight = num(d['weight']);
    if (weight !== undefined && weight < 0) issues.add(pathKey(p, 'weight'), `weight ${weight} must not be negative`);
    if (weight !== undefined && weight > 0) total += weight;
  }
  if (list.length > 1 && total === 0) {
    issues.add(path, 'total destination weight is 0: give at least one destination a positive weight');
  }
}

export function checkHttpRoute(issues: Issues, path: string, r: JsonObject, ctx: RouteContext): void {
  checkConflicts(issues, path, r);
  checkHttpMatches(issues, pathKey(path, 'match'), r['match'], ctx);
  checkHeaderOperations(issues, pathKey(path, 'headers'), r['headers']);
  checkCors(issues, pathKey(path, 'corsPolicy'), r['corsPolicy']);
  checkFault(issues, pathKey(path, 'fault'), r['fault']);
  for (const field of ['mirrorPercent', 'mirror_percent']) {
    const v = num(r[field]);
    if (v !== undefined && v > 100) issues.add(pathKey(path, field), `mirror percent must have a max value of 100 (it has ${v})`);
  }
  checkPercentage(issues, pathKey(path, 'mirrorPercentage'), r['mirrorPercentage']);
  checkDestination(issues, pathKey(path, 'mirror'), r['mirror']);
  for (const [i, m] of recordItems(r['mirrors'])) {
    const p = pathIdx(pathKey(path, 'mirrors'), i);
    if (!has(m, 'destination')) issues.add(pathKey(p, 'destination'), 'destination is required');
    checkDestination(issues, pathKey(p, 'destination'), m['destination']);
    checkPercentage(issues, pathKey(p, 'percentage'), m['percentage']);
  }
  checkRedirect(issues, pathKey(path, 'redirect'), r['redirect']);
  checkDirectResponse(issues, pathKey(path, 'directResponse'), r['directResponse']);
  checkRetries(issues, pathKey(path, 'retries'), r['retries']);
  checkRewrite(issues, pathKey(path, 'rewrite'), r['rewrite']);
  checkAuthorityRewrite(issues, path, r);
  checkRouteDestinations(issues, pathKey(path, 'route'), r['route'], true);
  checkDuration(issues, pathKey(path, 'timeout'), r['timeout']);
}

/** validateHTTPRouteConflict: one of route, redirect, directResponse or delegate, not several. */
function checkConflicts(issues: Issues, path: string, r: JsonObject): void {
  const routes = arr(r['route'])?.length ?? 0;
  const present = (k: string): boolean => has(r, k);
  if (present('delegate')) {
    // a root route only delegates
    if (present('redirect')) issues.add(pathKey(path, 'redirect'), 'a route with delegate must not specify redirect');
    if (present('route')) issues.add(pathKey(path, 'route'), 'a route with delegate must not specify route');
    if (present('directResponse')) issues.add(pathKey(path, 'directResponse'), 'a route with delegate must not specify directResponse');
  } else if (present('redirect') || present('directResponse')) {
    const kind = present('redirect') ? 'redirect' : 'directResponse';
    if (routes > 0) issues.add(path, `HTTP route cannot contain both route and ${kind}`);
    if (present('fault')) issues.add(path, `HTTP route cannot contain both fault and ${kind}`);
    if (present('rewrite')) issues.add(path, `HTTP route cannot contain both rewrite and ${kind}`);
    if (present('redirect') && present('directResponse')) issues.add(path, 'HTTP route cannot contain both redirect and directResponse');
  } else if (routes === 0) {
    issues.add(pathKey(path, 'route'), 'at least one route destination is required (or a redirect, directResponse or delegate)');
  }
  if (present('mirror') && (arr(r['mirrors'])?.length ?? 0) > 0) issues.add(path, 'HTTP route cannot contain both mirror and mirrors');
}

/** validateAuthorityRewrite: the authority can be rewritten in one place only. */
function checkAuthorityRewrite(issues: Issues, path: string, r: JsonObject): void {
  const sources: string[] = [];
  const rewrite = rec(r['rewrite']);
  if (rewrite !== undefined && typeof rewrite['authority'] === 'string' && rewrite['authority'] !== '') sources.push('rewrite.authority');
  const request = rec(rec(r['headers'])?.['request']);
  for (const op of ['set', 'add']) {
    if (!isRecord(request?.[op])) continue;
    for (const [name] of stringEntries(request?.[op])) {
      const l = name.toLowerCase();
      if (l === ':authority' || l === 'host') sources.push(`headers.request.${op}.${name}`);
    }
  }
  if (sources.length > 1) issues.add(path, `authority header cannot be set multiple times (${sources.join(', ')})`);
}
