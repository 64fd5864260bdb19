/**
 * Per-route policies of a VirtualService HTTP route, as istiod translates them
 * (pilot/pkg/networking/core/route and route/retry): retries, fault injection, CORS, header
 * operations and percentages. Sidecars get the full Envoy form; proxyless gRPC only what gRPC
 * implements (gRFC A44 retries, A33 fault injection).
 */
import type { CorsPolicy, HTTPFaultInjection, HTTPRetry, Headers, Percent, StringMatch } from '../model/objects';
import { HTTP_FAULT_FILTER_TYPE } from './http-filters';
import type { Flavor } from './route-scope';
import type { ProtoObject } from './types';
import { PREVIOUS_HOSTS_TYPE, duration, seconds } from './util';

/** The per-route HTTPFault has the filter's own type. */
export const HTTP_FAULT_TYPE = HTTP_FAULT_FILTER_TYPE;
export const CORS_POLICY_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy';
export const PREVIOUS_PRIORITIES_TYPE = 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig';

// ---- percentages ----

/** Istio `Percent` (a double) → FractionalPercent per million, as istiod does (rounded, not truncated). */
export function percentToFraction(p: Percent): ProtoObject {
  return { numerator: Math.round((p.value ?? 0) * 10000), denominator: 'MILLION' };
}

/** The deprecated integer percent fields → FractionalPercent per hundred. */
export function integerToFraction(n: number): ProtoObject {
  return { numerator: Math.max(0, Math.floor(n)), denominator: 'HUNDRED' };
}

// ---- retries ----

const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';
/** The retry_on values gRPC clients act on (gRFC A44); the rest are Envoy-only. */
const GRPC_RETRY_ON: ReadonlySet<string> = new Set(['cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable']);
/** HTTP status codes Go's http.StatusText knows: istiod treats those in retryOn as retriable status codes. */
const KNOWN_STATUS = /^(10[0-3]|20[0-8]|226|30[0-5]|30[78]|4(0[0-9]|1[0-8])|42[1-689]|431|451|50[0-8]|51[01])$/;

function previousHostsPredicate(): ProtoObject[] {
  return [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: { '@type': PREVIOUS_HOSTS_TYPE } }];
}

/** istiod's default policy; with consistent hashing, retries stay on the hashed host (no previous_hosts). */
function defaultEnvoyRetry(consistentHash: boolean): ProtoObject {
  return {
    retry_on: DEFAULT_RETRY_ON,
    num_retries: { value: 2 },
    ...(consistentHash ? {} : { retry_host_predicate: previousHostsPredicate() }),
    host_selection_retry_max_attempts: 5,
    retriable_status_codes: [503],
  };
}

/** `retryOn` split into Envoy retry_on names and numeric HTTP status codes. */
function parseRetryOn(retryOn: string): { on: string[]; codes: number[] } {
  const on: string[] = [];
  const codes: number[] = [];
  for (const raw of retryOn.split(',')) {
    const part = raw.trim();
    if (!part) continue;
    if (KNOWN_STATUS.test(part)) codes.push(Number(part));
    else on.push(part);
  }
  return { on, codes };
}

/**
 * Envoy RetryPolicy for a sidecar route (istiod's retry.ConvertPolicy): unset → the default
 * policy, attempts 0 → none, otherwise the default overridden by what is set.
 */
export function envoyRetryPolicy(r: HTTPRetry | undefined, consistentHash: boolean): ProtoObject | undefined {
  const out = defaultEnvoyRetry(consistentHash);
  if (!r) return out;
  if ((r.attempts ?? 0) <= 0) return undefined;
  out.num_retries = { value: r.attempts ?? 0 };
  if (r.retryOn) {
    const { on, codes } = parseRetryOn(r.retryOn);
    // Status codes only retry with `retriable-status-codes`; add it when the user listed codes.
    if (codes.length > 0 && !on.includes('retriable-status-codes')) on.push('retriable-status-codes');
    out.retry_on = on.join(',');
    if (codes.length > 0) out.retriable_status_codes = codes;
    else delete out.retriable_status_codes;
  }
  if (r.perTryTimeout) out.per_try_timeout = duration(r.perTryTimeout);
  if (r.retryIgnorePreviousHosts !== undefined) {
    if (r.retryIgnorePreviousHosts) out.retry_host_predicate = previousHostsPredicate();
    else delete out.retry_host_predicate;
  }
  if (r.retryRemoteLocalities) {
    out.retry_priority = {
      name: 'envoy.retry_priorities.previous_priorities',
      typed_config: { '@type': PREVIOUS_PRIORITIES_TYPE, update_frequency: 2 },
    };
  }
  if (r.backoff) out.retry_back_off = { base_interval: duration(r.backoff) };
  return out;
}

/**
 * RetryPolicy for proxyless gRPC: only when the VirtualService sets one (gRPC has no mesh default),
 * with the retry_on codes gRPC implements and the backoff. gRPC ignores per_try_timeout and host
 * predicates, so they are left out. A policy that retries nothing gRPC understands is dropped.
 */
export function grpcRetryPolicy(r: HTTPRetry | undefined): ProtoObject | undefined {
  if (!r || (r.attempts ?? 0) <= 0) return undefined;
  const on = parseRetryOn(r.retryOn ?? DEFAULT_RETRY_ON).on.filter((p) => GRPC_RETRY_ON.has(p));
  if (on.length === 0) return undefined;
  const out: ProtoObject = { retry_on: on.join(','), num_retries: { value: r.attempts ?? 0 } };
  if (r.backoff) out.retry_back_off = { base_interval: duration(r.backoff) };
  return out;
}

export function retryPolicy(r: HTTPRetry | undefined, consistentHash: boolean, flavor: Flavor): ProtoObject | undefined {
  return flavor === 'grpc' ? grpcRetryPolicy(r) : envoyRetryPolicy(r, consistentHash);
}

// ---- fault injection ----

/** gRPC status names (as Istio's grpcStatus takes them) → codes. */
export const GRPC_STATUS_CODES: Readonly<Record<string, number>> = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

/**
 * Istio fault → HTTPFault for the route's `typed_per_filter_config['envoy.filters.http.fault']`;
 * undefined when nothing translatable is left (exponential delays, HTTP/2 errors).
 * Unset percentages mean 0 %; gRPC clients reject a fault without one, so it is always written.
 */
export function httpFault(f: HTTPFaultInjection): ProtoObject | undefined {
  const out: ProtoObject = { '@type': HTTP_FAULT_TYPE };
  const d = f.delay;
  if (d?.fixedDelay) {
    out.delay = {
      fixed_delay: duration(d.fixedDelay),
      percentage: d.percentage ? percentToFraction(d.percentage) : integerToFraction(d.percent ?? 0),
    };
  }
  const a = f.abort;
  if (a && (a.httpStatus !== undefined || a.grpcStatus !== undefined)) {
    const abort: ProtoObject = { percentage: a.percentage ? percentToFraction(a.percentage) : integerToFraction(0) };
    if (a.httpStatus !== undefined) abort.http_status = a.httpStatus;
    else {
      const code = GRPC_STATUS_CODES[a.grpcStatus ?? ''];
      if (code === undefined) return out.delay ? out : undefined;
      abort.grpc_status = code;
    }
    out.abort = abort;
  }
  return out.delay || out.abort ? out : undefined;
}

// ---- CORS ----

/** Istio StringMatch → envoy.type.matcher.v3.StringMatcher (istiod's ConvertToEnvoyMatch). */
export function envoyStringMatcher(m: StringMatch): ProtoObject | undefined {
  if (m.exact !== undefined) return { exact: m.exact };
  if (m.prefix !== undefined) return { prefix: m.prefix };
  if (m.regex !== undefined) return { safe_regex: { regex: m.regex } };
  return undefined;
}

/** Istio CorsPolicy → Envoy CorsPolicy (istiod's TranslateCORSPolicy). */
export function corsPolicy(c: CorsPolicy): ProtoObject {
  const out: ProtoObject = {
    '@type': CORS_POLICY_TYPE,
    filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
    // Envoy ≥ 1.30 stopped forwarding unmatched preflights by default; Istio keeps the old behaviour.
    forward_not_matching_preflights: { value: c.unmatchedPreflights !== 'IGNORE' },
  };
  const origins = c.allowOrigins ? c.allowOrigins.map(envoyStringMatcher).filter((m): m is ProtoObject => m !== undefined) : (c.allowOrigin ?? []).map((o) => ({ exact: o }));
  if (origins.length > 0) out.allow_origin_string_match = origins;
  if (c.allowMethods?.length) out.allow_methods = c.allowMethods.join(',');
  if (c.allowHeaders?.length) out.allow_headers = c.allowHeaders.join(',');
  if (c.exposeHeaders?.length) out.expose_headers = c.exposeHeaders.join(',');
  if (c.maxAge) out.max_age = String(duration(c.maxAge).seconds);
  if (c.allowCredentials !== undefined) out.allow_credentials = { value: c.allowCredentials };
  return out;
}

// ---- header operations ----

export interface HeaderOps {
  request_headers_to_add?: ProtoObject[];
  request_headers_to_remove?: string[];
  response_headers_to_add?: ProtoObject[];
  response_headers_to_remove?: string[];
  /** A `:authority`/`host` set or add: becomes host_rewrite_literal, not a header operation. */
  authority?: string;
}

/** Pseudo-headers and Host cannot be set as headers by Envoy. */
function isInternalHeader(key: string): boolean {
  return key.startsWith(':') || key.toLowerCase() === 'host';
}

function isAuthorityHeader(key: string): boolean {
  const k = key.toLowerCase();
  return k === ':authority' || k === 'host';
}

function headerValues(ops: Readonly<Record<string, string>> | undefined, append: boolean): { values: ProtoObject[]; authority?: string } {
  let authority: string | undefined;
  const values: ProtoObject[] = [];
  // istiod sorts by key so the output does not depend on map order.
  for (const key of Object.keys(ops ?? {}).sort()) {
    const value = ops?.[key] ?? '';
    if (isAuthorityHeader(key)) authority = value;
    if (isInternalHeader(key)) continue;
    values.push({ header: { key, value }, append_action: append ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD' });
  }
  return { values, authority };
}

/** Istio Headers → Envoy header operations (istiod's TranslateHeadersOperations). */
export function headerOperations(h: Headers | undefined): HeaderOps {
  const out: HeaderOps = {};
  if (!h) return out;
  const reqSet = headerValues(h.request?.set, false);
  const reqAdd = headerValues(h.request?.add, true);
  const resSet = headerValues(h.response?.set, false);
  const resAdd = headerValues(h.response?.add, true);
  const reqAddAll = [...reqSet.values, ...reqAdd.values];
  const resAddAll = [...resSet.values, ...resAdd.values];
  const reqRemove = (h.request?.remove ?? []).filter((k) => !isInternalHeader(k));
  const resRemove = (h.response?.remove ?? []).filter((k) => !isInternalHeader(k));
  if (reqAddAll.length) out.request_headers_to_add = reqAddAll;
  if (reqRemove.length) out.request_headers_to_remove = reqRemove;
  if (resAddAll.length) out.response_headers_to_add = resAddAll;
  if (resRemove.length) out.response_headers_to_remove = resRemove;
  const authority = reqSet.authority ?? reqAdd.authority;
  if (authority) out.authority = authority;
  return out;
}

/** Appends `more`'s header operations to `target`'s (a route, or a weighted cluster). */
export function appendHeaderOps(target: ProtoObject, more: HeaderOps): void {
  for (const k of ['request_headers_to_add', 'request_headers_to_remove', 'response_headers_to_add', 'response_headers_to_remove'] as const) {
    const add = more[k];
    if (!add?.length) continue;
    const cur = target[k];
    target[k] = [...(Array.isArray(cur) ? cur : []), ...add];
  }
}

/** `0s` as istiod writes "no timeout". */
export const NO_TIMEOUT = seconds(0);
