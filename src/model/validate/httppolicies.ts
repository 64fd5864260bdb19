/** HTTPRoute sub-policies: redirect, directResponse, retries, rewrite, fault, corsPolicy, percentages. */
import { Issues, has, num, pathIdx, pathKey, rec, recordItems, str, stringItems, subPath } from './common';
import { durationError } from './duration';
import { portError } from './istio-common';
import { checkStringMatch, regexError } from './stringmatch';

const RETRY_ON: ReadonlySet<string> = new Set([
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'envoy-ratelimited',
  'http3-post-connect-failure',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
]);
// HTTP status codes Go's http.StatusText knows (Istio accepts these in retryOn)
const KNOWN_STATUS = /^(10[0-3]|20[0-8]|226|30[0-5]|30[78]|4(0[0-9]|1[0-8])|42[1-689]|431|451|50[0-8]|51[01])$/;
const GRPC_STATUS: ReadonlySet<string> = new Set([
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
]);
const METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE']);
const CORS_HEADER = /^[-_A-Za-z0-9]+$/;
const MAX_DIRECT_RESPONSE_BYTES = 1024 * 1024;

export function checkDuration(issues: Issues, path: string, v: unknown): void {
  const s = str(v);
  if (s !== undefined) issues.addIf(path, durationError(s));
}

/** A `Percent` message: 0, or 0.0001..100. */
export function checkPercentage(issues: Issues, path: string, v: unknown): void {
  const value = num(rec(v)?.['value']);
  if (value === undefined) return;
  if (value < 0 || value > 100 || (value > 0 && value < 0.0001)) {
    issues.add(pathKey(path, 'value'), `percentage ${value} is neither 0 nor in the range 0.0001..100`);
  }
}

function httpStatusError(n: number): string | undefined {
  return n >= 200 && n <= 599 ? undefined : `HTTP status ${n} is not in range 200-599`;
}

export function checkRedirect(issues: Issues, path: string, v: unknown): void {
  const r = rec(v);
  if (r === undefined) return;
  if (!str(r['uri']) && !str(r['authority']) && !has(r, 'port') && !has(r, 'derivePort') && !str(r['scheme'])) {
    issues.add(path, 'redirect must specify uri, authority, scheme, port or derivePort');
  }
  const code = num(r['redirectCode']);
  if (code !== undefined && code !== 0 && (code < 300 || code > 399)) {
    issues.add(pathKey(path, 'redirectCode'), `${code} is not a valid redirect code, must be 3xx`);
  }
  const scheme = str(r['scheme']);
  if (scheme !== undefined && scheme !== '' && scheme !== 'http' && scheme !== 'https') {
    issues.add(pathKey(path, 'scheme'), 'invalid redirect scheme, must be "http" or "https"');
  }
  const port = num(r['port']);
  if (port !== undefined && port > 0) issues.addIf(pathKey(path, 'port'), portError(port));
  if (has(r, 'port') && has(r, 'derivePort')) issues.add(path, 'set only one of port and derivePort');
}

export function checkDirectResponse(issues: Issues, path: string, v: unknown): void {
  const d = rec(v);
  if (d === undefined) return;
  const status = num(d['status']);
  if (status === undefined) {
    if (d['status'] === undefined) issues.add(pathKey(path, 'status'), 'status is required');
  } else {
    issues.addIf(pathKey(path, 'status'), httpStatusError(status));
  }
  const body = rec(d['body']);
  if (body === undefined) return;
  if (has(body, 'string') && has(body, 'bytes')) issues.add(pathKey(path, 'body'), 'set only one of string and bytes');
  const size = Math.max(str(body['string'])?.length ?? 0, Math.floor(((str(body['bytes'])?.length ?? 0) * 3) / 4));
  if (size > MAX_DIRECT_RESPONSE_BYTES) {
    issues.add(pathKey(path, 'body'), 'large direct responses may impact control plane performance, must be less than 1MB');
  }
}

export function checkRetries(issues: Issues, path: string, v: unknown): void {
  const r = rec(v);
  if (r === undefined) return;
  const attempts = num(r['attempts']) ?? 0;
  if (attempts < 0) issues.add(pathKey(path, 'attempts'), 'attempts cannot be negative');
  if (attempts === 0 && (has(r, 'perTryTimeout') || str(r['retryOn']) || has(r, 'retryRemoteLocalities'))) {
    issues.add(path, 'http retry policy configured when attempts are set to 0 (disabled)');
  }
  checkDuration(issues, pathKey(path, 'perTryTimeout'), r['perTryTimeout']);
  checkDuration(issues, pathKey(path, 'backoff'), r['backoff']);
  const retryOn = str(r['retryOn']);
  if (retryOn) {
    for (const policy of retryOn.split(',')) {
      if (!RETRY_ON.has(policy) && !KNOWN_STATUS.test(policy)) {
        issues.add(pathKey(path, 'retryOn'), `${JSON.stringify(policy)} is not a valid retryOn policy`);
      }
    }
  }
}

export function checkRewrite(issues: Issues, path: string, v: unknown): void {
  const r = rec(v);
  if (r === undefined) return;
  const regexRewrite = rec(r['uriRegexRewrite']);
  if (str(r['uri']) && regexRewrite !== undefined) issues.add(path, 'rewrite may only contain one of uri and uriRegexRewrite');
  if (!str(r['uri']) && regexRewrite === undefined && !str(r['authority'])) {
    issues.add(path, 'rewrite must specify at least one of uri, uriRegexRewrite or authority');
  }
  if (regexRewrite !== undefined) {
    const match = str(regexRewrite['match']);
    if (!match || !str(regexRewrite['rewrite'])) {
      issues.add(pathKey(path, 'uriRegexRewrite'), 'uriRegexRewrite requires both match and rewrite');
    }
    if (match) issues.addIf(subPath(path, 'uriRegexRewrite.match'), regexError(match));
  }
}

export function checkFault(issues: Issues, path: string, v: unknown): void {
  const f = rec(v);
  if (f === undefined) return;
  const abort = rec(f['abort']);
  const delay = rec(f['delay']);
  if (abort === undefined && delay === undefined) issues.add(path, 'HTTP fault injection must have an abort and/or a delay');
  if (abort !== undefined) {
    const p = pathKey(path, 'abort');
    checkPercentage(issues, pathKey(p, 'percentage'), abort['percentage']);
    const kinds = ['httpStatus', 'grpcStatus', 'http2Error'].filter((k) => has(abort, k));
    if (kinds.length > 1) issues.add(p, 'set only one of httpStatus, grpcStatus and http2Error');
    const status = num(abort['httpStatus']);
    if (status !== undefined) issues.addIf(pathKey(p, 'httpStatus'), httpStatusError(status));
    const grpc = str(abort['grpcStatus']);
    if (grpc !== undefined && !GRPC_STATUS.has(grpc)) {
      issues.add(pathKey(p, 'grpcStatus'), `gRPC status ${JSON.stringify(grpc)} is not supported; use a code name such as NOT_FOUND or UNAVAILABLE`);
    }
    if (has(abort, 'http2Error')) issues.add(pathKey(p, 'http2Error'), 'HTTP/2 abort fault injection not supported yet');
  }
  if (delay !== undefined) {
    const p = pathKey(path, 'delay');
    checkPercentage(issues, pathKey(p, 'percentage'), delay['percentage']);
    const percent = num(delay['percent']);
    if (percent !== undefined && (percent < 0 || percent > 100)) issues.add(pathKey(p, 'percent'), `percent ${percent} is not in range 0..100`);
    checkDuration(issues, pathKey(p, 'fixedDelay'), delay['fixedDelay']);
    if (has(delay, 'exponentialDelay')) issues.add(pathKey(p, 'exponentialDelay'), 'exponentialDelay not supported yet');
  }
}

export function checkCors(issues: Issues, path: string, v: unknown): void {
  const c = rec(v);
  if (c === undefined) return;
  for (const [i, origin] of recordItems(c['allowOrigins'])) {
    const p = pathIdx(pathKey(path, 'allowOrigins'), i);
    const value = str(origin['exact']) ?? str(origin['prefix']) ?? str(origin['regex']) ?? '';
    if (value === '') issues.add(p, 'an allowed origin needs a non-empty exact, prefix or regex');
    else checkStringMatch(issues, p, origin, { allowEmptyPrefix: false });
  }
  for (const [i, m] of stringItems(c['allowMethods'])) {
    if (!METHODS.has(m)) issues.add(pathIdx(pathKey(path, 'allowMethods'), i), `${JSON.stringify(m)} is not a supported HTTP method`);
  }
  for (const field of ['allowHeaders', 'exposeHeaders']) {
    for (const [i, h] of stringItems(c[field])) {
      if (h !== '*' && !CORS_HEADER.test(h)) issues.add(pathIdx(pathKey(path, field), i), `header name ${JSON.stringify(h)} is not a valid header name`);
    }
  }
  const maxAge = str(c['maxAge']);
  if (maxAge !== undefined) {
    issues.addIf(pathKey(path, 'maxAge'), durationError(maxAge, { precision: 1_000_000_000n, min: 1_000_000_000n }));
  }
}
