/**
 * What a matched HTTP route does (istiod's applyHTTPRouteDestination, ApplyRedirect,
 * ApplyDirectResponse): forward to weighted destinations with rewrite, timeout, retries,
 * mirrors and hash policies; or redirect; or answer directly.
 */
import type { Destination, HTTPDirectResponse, HTTPRedirect, HTTPRoute, HTTPRouteDestination } from '../model/objects';
import { addHashPolicy, destinationConsistentHash, destinationRuleOf, hashPolicy } from './hash-policy';
import { type HeaderOps, NO_TIMEOUT, appendHeaderOps, headerOperations, integerToFraction, percentToFraction, retryPolicy } from './route-policies';
import { type RouteScope, destinationCluster } from './route-scope';
import type { ProtoObject } from './types';
import { duration } from './util';

const REDIRECT_CODES: Readonly<Record<number, string>> = {
  301: 'MOVED_PERMANENTLY',
  302: 'FOUND',
  303: 'SEE_OTHER',
  307: 'TEMPORARY_REDIRECT',
  308: 'PERMANENT_REDIRECT',
};

/** RedirectAction; undefined for a redirect code Envoy has no enum for (istiod drops the action). */
export function redirectAction(r: HTTPRedirect, scope: RouteScope): ProtoObject | undefined {
  const code = REDIRECT_CODES[r.redirectCode || 301];
  if (!code) return undefined;
  const out: ProtoObject = { response_code: code };
  if (r.authority) out.host_redirect = r.authority;
  if (r.uri) out.path_redirect = r.uri;
  if (r.scheme) out.scheme_redirect = r.scheme;
  if (r.port !== undefined || r.derivePort !== undefined) {
    // Routes are built per listener port, so "the request's port" is that port.
    let port = r.port ?? (r.derivePort === 'FROM_REQUEST_PORT' ? scope.port : 0);
    const scheme = r.scheme || (scope.tls ? 'https' : 'http');
    if ((port === 80 && scheme === 'http') || (port === 443 && scheme === 'https')) port = 0;
    if (port) out.port_redirect = port;
  }
  return out;
}

export function directResponseAction(d: HTTPDirectResponse): ProtoObject {
  const out: ProtoObject = { status: d.status };
  if (d.body?.string !== undefined) out.body = { inline_string: d.body.string };
  else if (d.body?.bytes !== undefined) out.body = { inline_bytes: d.body.bytes };
  return out;
}

/** RouteAction.timeout and friends: sidecars 0 = disabled; gRPC reads max_stream_duration only. */
function applyTimeout(action: ProtoObject, timeout: string | undefined, scope: RouteScope): void {
  const t = timeout ? duration(timeout) : NO_TIMEOUT;
  if (scope.flavor === 'grpc') {
    if (timeout) action.max_stream_duration = { max_stream_duration: t };
    return;
  }
  action.timeout = t;
  action.max_grpc_timeout = t;
}

/** A mirror policy per istiod's TranslateRequestMirrorPolicy (Envoy only: gRPC does not mirror). */
function mirrorPolicy(d: Destination, fraction: ProtoObject, vsNamespace: string, scope: RouteScope): ProtoObject {
  return { cluster: destinationCluster(d, vsNamespace, scope), runtime_fraction: { default_value: fraction }, trace_sampled: { value: false } };
}

function mirrorPolicies(r: HTTPRoute, vsNamespace: string, scope: RouteScope): ProtoObject[] {
  const out: ProtoObject[] = [];
  if (r.mirror) {
    // mirrorPercentage wins, then the deprecated integer mirrorPercent; none = 100 %; 0 = off.
    const legacy = r.mirrorPercent ?? r.mirror_percent;
    const fraction = r.mirrorPercentage
      ? (r.mirrorPercentage.value ?? 0) > 0
        ? percentToFraction(r.mirrorPercentage)
        : undefined
      : legacy !== undefined
        ? legacy > 0
          ? integerToFraction(legacy)
          : undefined
        : integerToFraction(100);
    if (fraction) out.push(mirrorPolicy(r.mirror, fraction, vsNamespace, scope));
  }
  for (const m of r.mirrors ?? []) {
    const fraction = m.percentage ? ((m.percentage.value ?? 0) > 0 ? percentToFraction(m.percentage) : undefined) : integerToFraction(100);
    if (fraction) out.push(mirrorPolicy(m.destination, fraction, vsNamespace, scope));
  }
  return out;
}

function weightedCluster(d: HTTPRouteDestination, vsNamespace: string, scope: RouteScope): ProtoObject {
  const cw: ProtoObject = { name: destinationCluster(d.destination, vsNamespace, scope), weight: { value: d.weight ?? 0 } };
  if (d.headers && scope.flavor === 'envoy') {
    const ops = headerOperations(d.headers);
    appendHeaderOps(cw, ops);
    if (ops.authority) cw.host_rewrite_literal = ops.authority;
  }
  return cw;
}

/**
 * The RouteAction for forwarding, or undefined when no destination is left. `route` receives
 * per-destination header operations of a single destination (istiod puts them on the route).
 */
export function forwardAction(r: HTTPRoute, vsNamespace: string, scope: RouteScope, route: ProtoObject, routeAuthority: string | undefined): ProtoObject | undefined {
  const dests = r.route ?? [];
  // With several destinations, weight 0 ones get no traffic and are left out (Istio ≥ 1.15);
  // Envoy shares by the weights as given, whatever their total.
  const weighted = dests.length === 1 ? dests : dests.filter((d) => (d.weight ?? 0) > 0);
  if (weighted.length === 0) return undefined;
  const envoy = scope.flavor === 'envoy';
  const action: ProtoObject = {};
  let authority = routeAuthority;
  if (r.rewrite && envoy) {
    const rr = r.rewrite.uriRegexRewrite;
    if (rr?.match && rr.rewrite !== undefined) action.regex_rewrite = { pattern: { regex: rr.match }, substitution: rr.rewrite };
    // Also for an exact-path match: the matched "prefix" is then the whole path, which is replaced.
    else if (r.rewrite.uri) action.prefix_rewrite = r.rewrite.uri;
    if (r.rewrite.authority) authority = r.rewrite.authority;
  }
  let consistentHash = false;
  const single = dests.length === 1 ? dests[0] : undefined;
  if (single) {
    action.cluster = destinationCluster(single.destination, vsNamespace, scope);
    if (single.headers && envoy) {
      const ops: HeaderOps = headerOperations(single.headers);
      appendHeaderOps(route, ops);
      // The route-level rewrite wins, so one destination and several behave alike.
      if (!authority && ops.authority) authority = ops.authority;
    }
    const p = hashPolicy(destinationConsistentHash(destinationRuleOf(single.destination, vsNamespace, scope), single.destination), scope.flavor);
    addHashPolicy(action, p);
    consistentHash = p !== undefined;
  } else {
    action.weighted_clusters = { clusters: weighted.map((d) => weightedCluster(d, vsNamespace, scope)) };
    for (const d of weighted) {
      addHashPolicy(action, hashPolicy(destinationConsistentHash(destinationRuleOf(d.destination, vsNamespace, scope), d.destination), scope.flavor));
    }
  }
  if (authority && envoy) action.host_rewrite_literal = authority;
  applyTimeout(action, r.timeout, scope);
  const retry = retryPolicy(r.retries, consistentHash, scope.flavor);
  if (retry) action.retry_policy = retry;
  if (envoy) {
    const mirrors = mirrorPolicies(r, vsNamespace, scope);
    if (mirrors.length > 0) action.request_mirror_policies = mirrors;
  }
  return action;
}

/** The default route's action for a service without a VirtualService (istiod's BuildDefaultHTTPOutboundRoute). */
export function defaultForwardAction(cluster: string, hash: ProtoObject | undefined, scope: RouteScope): ProtoObject {
  const action: ProtoObject = { cluster };
  addHashPolicy(action, hash);
  applyTimeout(action, undefined, scope);
  // Sidecars get the mesh default retry policy (with previous_hosts even when hashing, as istiod does).
  const retry = scope.flavor === 'envoy' ? retryPolicy(undefined, false, 'envoy') : undefined;
  if (retry) action.retry_policy = retry;
  return action;
}
