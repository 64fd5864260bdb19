/**
 * The ext_authz extension providers of AuthorizationPolicy `action: CUSTOM`, as istiod checks and
 * resolves them:
 * - `checkExtAuthzProviders`: the MeshConfig validation (ValidateMeshConfig's
 *   validateExtensionProvider: port, service, statusOnError, pathPrefix; the timeout's form as
 *   istiod's decoder checks it, and not negative as Envoy requires), errors with field paths;
 *   the builder's header list check (a lone `*`) as warnings, since istiod only fails the provider;
 * - `resolveExtAuthz`: istiod's processExtensionProvider / buildExtAuthz{HTTP,GRPC}: each ext_authz
 *   provider with the outbound cluster of its service and port (LookupCluster), or why it cannot
 *   be used (the workloads whose CUSTOM policies name it then deny every request).
 */
import { isRecord } from './validate/common';
import type { Issues } from './validate/common';
import type { ExtAuthzGrpcProvider, ExtAuthzHttpProvider, ExtensionProvider } from './telemetry-providers';

/** Envoy's type.v3.StatusCode values (istiod accepts only these for statusOnError). */
const ENVOY_STATUS_CODES: ReadonlySet<number> = new Set([
  100, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415,
  416, 417, 421, 422, 423, 424, 426, 428, 429, 431, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

function fqdnProblem(host: string, wildcard: boolean): string | undefined {
  if (host.length === 0 || host.length > 255) return `domain name ${JSON.stringify(host)} invalid (length)`;
  const labels = host.replace(/\.$/, '').split('.');
  const first = wildcard && labels[0] === '*' ? 1 : 0;
  if (labels.slice(first).some((l) => l.length > 63 || !DNS1123_LABEL.test(l))) return `domain name ${JSON.stringify(host)} invalid`;
  return undefined;
}

/** istiod's validateExtensionProviderService: a host (FQDN or IP), or `<namespace>/<host>`. */
export function serviceProblem(service: string): string | undefined {
  if (service === '') return 'service must not be empty';
  const parts = service.split('/');
  if (parts.length === 1) {
    if (fqdnProblem(service, false) === undefined || IPV4.test(service) || service.includes(':')) return undefined;
    return `invalid service fmt ${service}: ${JSON.stringify(service)} is neither a hostname nor an IP address`;
  }
  if (parts.length !== 2) return `${JSON.stringify(service)} must be <namespace>/<host>`;
  const [ns, host] = parts as [string, string];
  if (ns !== '*' && ns !== '.' && ns !== '~' && !DNS1123_LABEL.test(ns)) return `namespace ${JSON.stringify(ns)} of ${JSON.stringify(service)} is not a namespace name`;
  return fqdnProblem(host, true);
}

/** parseStatusOnError: empty, or one of Envoy's status codes. */
export function statusOnErrorProblem(status: string): string | undefined {
  if (status === '') return undefined;
  if (!/^-?\d+$/.test(status)) return `invalid statusOnError value ${status}: not an integer`;
  if (!ENVOY_STATUS_CODES.has(Number(status))) return `unsupported statusOnError value ${status}, supported values: ${[...ENVOY_STATUS_CODES].join(' ')}`;
  return undefined;
}

function portProblem(port: unknown): string | undefined {
  const n = typeof port === 'number' ? port : typeof port === 'string' && /^\d+$/.test(port) ? Number(port) : 0;
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? undefined : `port must be in the range [1, 65535], found: ${String(port ?? 0)}`;
}

/** A protobuf JSON duration, not negative (Envoy's HttpUri timeout must be >= 0). */
function timeoutProblem(t: unknown): string | undefined {
  if (t === undefined) return undefined;
  if (typeof t !== 'string' || !/^-?\d+(\.\d{1,9})?s$/.test(t)) return `invalid timeout ${JSON.stringify(t)}: protobuf JSON durations are seconds with an "s" suffix (e.g. "0.5s")`;
  return t.startsWith('-') ? `timeout ${t} must not be negative` : undefined;
}

function pathPrefixProblem(prefix: string): string | undefined {
  if (prefix === '') return undefined;
  return prefix.startsWith('/') ? undefined : `pathPrefix should begin with \`/\` but found ${JSON.stringify(prefix)}`;
}

/** The header lists of the HTTP provider, each of which rejects a lone `*` (istiod's checkWildcard). */
const HEADER_LISTS = ['includeRequestHeadersInCheck', 'includeHeadersInCheck', 'headersToUpstreamOnAllow', 'headersToDownstreamOnDeny', 'headersToDownstreamOnAllow'] as const;

const LONE_WILDCARD = 'a single wildcard ("*") is not supported, change it to either prefix or suffix match';

type FieldType = 'string' | 'port' | 'bool' | 'strings' | 'stringMap' | 'body';
const COMMON_FIELDS: Record<string, FieldType> = {
  service: 'string',
  port: 'port',
  timeout: 'string',
  failOpen: 'bool',
  clearRouteCache: 'bool',
  statusOnError: 'string',
  includeRequestBodyInCheck: 'body',
};
const FIELD_TYPES: Record<'envoyExtAuthzHttp' | 'envoyExtAuthzGrpc', Record<string, FieldType>> = {
  envoyExtAuthzHttp: {
    ...COMMON_FIELDS,
    pathPrefix: 'string',
    includeRequestHeadersInCheck: 'strings',
    includeHeadersInCheck: 'strings',
    includeAdditionalHeadersInCheck: 'stringMap',
    headersToUpstreamOnAllow: 'strings',
    headersToDownstreamOnDeny: 'strings',
    headersToDownstreamOnAllow: 'strings',
  },
  envoyExtAuthzGrpc: COMMON_FIELDS,
};
const TYPE_WORDS: Record<FieldType, string> = {
  string: 'a string',
  port: 'a number',
  bool: 'true or false',
  strings: 'a list of strings',
  stringMap: 'a map of strings',
  body: 'an object (maxRequestBytes, allowPartialMessage, packAsBytes)',
};

function typeOk(t: FieldType, v: unknown): boolean {
  switch (t) {
    case 'string':
      return typeof v === 'string';
    case 'port':
      // protobuf JSON takes an integer as a number or a decimal string.
      return typeof v === 'number' || (typeof v === 'string' && /^\d+$/.test(v));
    case 'bool':
      return typeof v === 'boolean';
    case 'strings':
      return Array.isArray(v) && v.every((x) => typeof x === 'string');
    case 'stringMap':
      return isRecord(v) && Object.values(v).every((x) => typeof x === 'string');
    case 'body':
      return isRecord(v) && (v['maxRequestBytes'] === undefined || (Number.isInteger(v['maxRequestBytes']) && (v['maxRequestBytes'] as number) <= 0xffffffff));
  }
}

/** MeshConfig validation of the ext_authz providers (raw JSON, before defaults are applied). */
export function checkExtAuthzProviders(m: Record<string, unknown>, issues: Issues): void {
  const list = m['extensionProviders'];
  if (!Array.isArray(list)) return;
  list.forEach((p: unknown, i) => {
    if (!isRecord(p)) return;
    for (const type of ['envoyExtAuthzHttp', 'envoyExtAuthzGrpc'] as const) {
      const c = p[type];
      if (!isRecord(c)) continue;
      const at = `extensionProviders[${i}].${type}`;
      const name = typeof p['name'] === 'string' ? p['name'] : '';
      const add = (field: string, problem: string | undefined): void => {
        if (problem) issues.add(`${at}.${field}`, `invalid extension provider ${name}: ${problem}`);
      };
      // The field types, as istiod's protobuf JSON decoder checks them.
      for (const [field, v] of Object.entries(c)) {
        const want = FIELD_TYPES[type][field];
        if (want === undefined) issues.warn(`${at}.${field}`, `unknown field ${JSON.stringify(field)} of ${type}`);
        else if (!typeOk(want, v)) issues.add(`${at}.${field}`, `invalid extension provider ${name}: ${field} must be ${TYPE_WORDS[want]}`);
      }
      add('port', portProblem(c['port']));
      add('service', serviceProblem(typeof c['service'] === 'string' ? c['service'] : ''));
      add('timeout', timeoutProblem(c['timeout']));
      if (typeof c['statusOnError'] === 'string') add('statusOnError', statusOnErrorProblem(c['statusOnError']));
      if (type === 'envoyExtAuthzHttp' && typeof c['pathPrefix'] === 'string') add('pathPrefix', pathPrefixProblem(c['pathPrefix']));
      const body = c['includeRequestBodyInCheck'];
      if (isRecord(body) && !(typeof body['maxRequestBytes'] === 'number' && body['maxRequestBytes'] >= 1))
        issues.warn(
          `${at}.includeRequestBodyInCheck.maxRequestBytes`,
          `must be greater than 0 (Envoy rejects a buffer of 0 bytes); AuthorizationPolicies with action CUSTOM naming ${name} deny every request`,
        );
      if (type !== 'envoyExtAuthzHttp') continue;
      for (const field of HEADER_LISTS) {
        const headers = c[field];
        if (!Array.isArray(headers)) continue;
        headers.forEach((h: unknown, j) => {
          if (h === '*') issues.warn(`${at}.${field}[${j}]`, `${LONE_WILDCARD}; AuthorizationPolicies with action CUSTOM naming ${name} deny every request`);
        });
      }
    }
  });
}

export interface ResolvedExtAuthz {
  readonly provider: Extract<ExtensionProvider, ExtAuthzHttpProvider | ExtAuthzGrpcProvider>;
  readonly hostname: string;
  readonly cluster: string;
}

/** A provider by name: usable, or why not. */
export type ExtAuthzResolution = { readonly ok: ResolvedExtAuthz } | { readonly error: string };

/**
 * Every ext_authz provider of the mesh, resolved. `lookup` is istiod's LookupCluster (the
 * outbound cluster of a service host and port, undefined when no such service exists).
 */
export function resolveExtAuthz(
  providers: readonly ExtensionProvider[],
  lookup: (service: string, port: number) => { hostname: string; cluster: string } | undefined,
): ReadonlyMap<string, ExtAuthzResolution> {
  const out = new Map<string, ExtAuthzResolution>();
  for (const p of providers) {
    if (p.kind !== 'envoyExtAuthzHttp' && p.kind !== 'envoyExtAuthzGrpc') continue;
    if (out.has(p.name)) {
      out.set(p.name, { error: `extension provider name must be unique, found duplicate: ${p.name}` });
      continue;
    }
    const problems: string[] = [];
    const port = portProblem(p.port);
    if (port) problems.push(port);
    const svc = serviceProblem(p.service);
    if (svc) problems.push(svc);
    const status = statusOnErrorProblem(p.statusOnError);
    if (status) problems.push(status);
    const timeout = timeoutProblem(p.timeout);
    if (timeout) problems.push(timeout);
    if (p.kind === 'envoyExtAuthzHttp') {
      const prefix = pathPrefixProblem(p.pathPrefix);
      if (prefix) problems.push(prefix);
      const lists: [string, readonly string[]][] = [
        ['IncludeRequestHeadersInCheck', p.includeRequestHeadersInCheck],
        ['HeadersToUpstreamOnAllow', p.headersToUpstreamOnAllow],
        ['HeadersToDownstreamOnDeny', p.headersToDownstreamOnDeny],
        ['HeadersToDownstreamOnAllow', p.headersToDownstreamOnAllow],
      ];
      for (const [field, values] of lists) if (values.includes('*')) problems.push(`${LONE_WILDCARD}: ${field}`);
    }
    const body = p.includeRequestBodyInCheck;
    if (body && !(body.maxRequestBytes >= 1)) problems.push('includeRequestBodyInCheck.maxRequestBytes must be greater than 0 (Envoy rejects a buffer of 0 bytes)');
    const target = svc || port ? undefined : lookup(p.service, p.port);
    if (!svc && !port && !target) problems.push(`could not find service ${p.service} in the mesh (its outbound cluster outbound|${p.port}||…)`);
    if (problems.length > 0 || !target) out.set(p.name, { error: `found errors in provider ${p.name}: ${problems.join('; ')}` });
    else out.set(p.name, { ok: { provider: p, hostname: target.hostname, cluster: target.cluster } });
  }
  return out;
}
