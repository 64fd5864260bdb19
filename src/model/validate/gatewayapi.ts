/**
 * The Kubernetes Gateway API kinds (gateway.networking.k8s.io), after the rules the API server
 * enforces for them: the CRDs' OpenAPI schema (types, enums, lengths, patterns, list sizes) and
 * the CEL rules that matter to the data plane (TLS only where the protocol has it, unique
 * listeners, path syntax, one filter field per filter type, ReplacePrefixMatch only with a
 * PathPrefix match, backendRequest ≤ request timeout, …). Objects read through the Kubernetes
 * API passed these already; files did not, and get the same answer here.
 */
import type { ConfigObject } from '../objects';
import { type Issues, arr, num, pathIdx, rec, recordItems, str } from './common';
import { parseDuration } from './duration';
import { labelKeyError, labelValueError } from './names';
import { re2Error } from './re2';
import { type Schema, arrayOf, bool, checkSchema, closed, mapOf, oneOf, str as strSchema } from './schema';

const int = (min: number, max: number): Schema => ({ t: 'int', min, max });
const port = int(1, 65535);

const SECTION_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const HOSTNAME = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const PROTOCOL = /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9]+$/;
const GROUP = /^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const KIND = /^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
const CONTROLLER_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$/;
const GW_DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
const GRPC_SERVICE = /^\.?[a-zA-Z_][a-zA-Z_0-9]*(\.[a-zA-Z_][a-zA-Z_0-9]*)*$/;
const GRPC_METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];

const keyValue = closed({ name: strSchema, value: strSchema });
const headerModifier = closed({ set: arrayOf(keyValue), add: arrayOf(keyValue), remove: arrayOf(strSchema) });
const pathModifier = closed({ type: oneOf('ReplaceFullPath', 'ReplacePrefixMatch'), replaceFullPath: strSchema, replacePrefixMatch: strSchema });
const backendObjectRef = closed({ group: strSchema, kind: strSchema, name: strSchema, namespace: strSchema, port });
const filter = closed({
  type: oneOf('RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite', 'RequestMirror', 'ExtensionRef', 'CORS'),
  requestHeaderModifier: headerModifier,
  responseHeaderModifier: headerModifier,
  requestRedirect: closed({ scheme: oneOf('http', 'https'), hostname: strSchema, path: pathModifier, port, statusCode: { t: 'int', min: 301, max: 308 } }),
  urlRewrite: closed({ hostname: strSchema, path: pathModifier }),
  requestMirror: closed({ backendRef: backendObjectRef, percent: int(0, 100), fraction: closed({ numerator: int(0, 2147483647), denominator: int(1, 2147483647) }) }),
  extensionRef: closed({ group: strSchema, kind: strSchema, name: strSchema }),
  cors: closed({
    allowOrigins: arrayOf(strSchema),
    allowCredentials: bool,
    allowMethods: arrayOf(strSchema),
    allowHeaders: arrayOf(strSchema),
    exposeHeaders: arrayOf(strSchema),
    maxAge: int(1, 2147483647),
  }),
});
const backendRef = closed({ group: strSchema, kind: strSchema, name: strSchema, namespace: strSchema, port, weight: int(0, 1000000), filters: arrayOf(filter) });
const parentRef = closed({ group: strSchema, kind: strSchema, namespace: strSchema, name: strSchema, sectionName: strSchema, port });
const headerMatch = closed({ type: oneOf('Exact', 'RegularExpression'), name: strSchema, value: strSchema });

const gatewayClassSchema = closed({ controllerName: strSchema, description: strSchema, parametersRef: { t: 'any' } });
const labelSelector = closed({
  matchLabels: mapOf(strSchema),
  matchExpressions: arrayOf(closed({ key: strSchema, operator: oneOf('In', 'NotIn', 'Exists', 'DoesNotExist'), values: arrayOf(strSchema) })),
});
const gatewaySchema = closed({
  gatewayClassName: strSchema,
  listeners: arrayOf(
    closed({
      name: strSchema,
      hostname: strSchema,
      port,
      protocol: strSchema,
      tls: closed({
        mode: oneOf('Terminate', 'Passthrough'),
        certificateRefs: arrayOf(closed({ group: strSchema, kind: strSchema, name: strSchema, namespace: strSchema })),
        frontendValidation: { t: 'any' },
        options: mapOf(strSchema),
      }),
      allowedRoutes: closed({
        namespaces: closed({ from: oneOf('All', 'Same', 'Selector'), selector: labelSelector }),
        kinds: arrayOf(closed({ group: strSchema, kind: strSchema })),
      }),
    }),
  ),
  addresses: arrayOf(closed({ type: strSchema, value: strSchema })),
  infrastructure: closed({ labels: mapOf(strSchema), annotations: mapOf(strSchema), parametersRef: { t: 'any' } }),
  backendTLS: { t: 'any' },
  allowedListeners: { t: 'any' },
});
const httpRouteSchema = closed({
  parentRefs: arrayOf(parentRef),
  hostnames: arrayOf(strSchema),
  rules: arrayOf(
    closed({
      name: strSchema,
      matches: arrayOf(
        closed({
          path: closed({ type: oneOf('Exact', 'PathPrefix', 'RegularExpression'), value: strSchema }),
          headers: arrayOf(headerMatch),
          queryParams: arrayOf(headerMatch),
          method: oneOf(...METHODS),
        }),
      ),
      filters: arrayOf(filter),
      backendRefs: arrayOf(backendRef),
      timeouts: closed({ request: strSchema, backendRequest: strSchema }),
      retry: closed({ codes: arrayOf(int(400, 599)), attempts: int(0, 2147483647), backoff: strSchema }),
      sessionPersistence: { t: 'any' },
    }),
  ),
});
const grpcRouteSchema = closed({
  parentRefs: arrayOf(parentRef),
  hostnames: arrayOf(strSchema),
  rules: arrayOf(
    closed({
      name: strSchema,
      matches: arrayOf(closed({ method: closed({ type: oneOf('Exact', 'RegularExpression'), service: strSchema, method: strSchema }), headers: arrayOf(headerMatch) })),
      filters: arrayOf(filter),
      backendRefs: arrayOf(backendRef),
      sessionPersistence: { t: 'any' },
    }),
  ),
});
const l4RouteSchema = (tls: boolean): Schema =>
  closed({
    parentRefs: arrayOf(parentRef),
    ...(tls ? { hostnames: arrayOf(strSchema) } : {}),
    rules: arrayOf(closed({ name: strSchema, backendRefs: arrayOf(backendRef) })),
  });
const referenceGrantSchema = closed({
  from: arrayOf(closed({ group: strSchema, kind: strSchema, namespace: strSchema })),
  to: arrayOf(closed({ group: strSchema, kind: strSchema, name: strSchema })),
});
const backendTlsPolicySchema = closed({
  targetRefs: arrayOf(closed({ group: strSchema, kind: strSchema, name: strSchema, sectionName: strSchema })),
  validation: closed({
    caCertificateRefs: arrayOf(closed({ group: strSchema, kind: strSchema, name: strSchema })),
    wellKnownCACertificates: oneOf('System'),
    hostname: strSchema,
    subjectAltNames: arrayOf(closed({ type: oneOf('Hostname', 'URI'), hostname: strSchema, uri: strSchema })),
  }),
  options: mapOf(strSchema),
});

function maxItems(issues: Issues, path: string, v: unknown, max: number, min = 0): void {
  const a = arr(v);
  if (a === undefined) {
    if (min > 0) issues.add(path, 'is required');
    return;
  }
  if (a.length > max) issues.add(path, `must have at most ${max} items (got ${a.length})`);
  if (a.length < min) issues.add(path, `must have at least ${min} item${min === 1 ? '' : 's'}`);
}

function required(issues: Issues, o: Readonly<Record<string, unknown>>, path: string, field: string): string | undefined {
  const v = str(o[field]);
  if (v === undefined || v === '') {
    if (o[field] === undefined || v === '') issues.add(`${path}.${field}`, `${field} is required`);
    return undefined;
  }
  return v;
}

function pattern(issues: Issues, path: string, v: unknown, re: RegExp, what: string, maxLen: number): void {
  const s = str(v);
  if (s === undefined) return;
  if (s.length > maxLen) issues.add(path, `must be at most ${maxLen} characters`);
  else if (!re.test(s)) issues.add(path, `${JSON.stringify(s)} is not a valid ${what}`);
}

function hostname(issues: Issues, path: string, v: unknown): void {
  pattern(issues, path, v, HOSTNAME, 'hostname (lower-case RFC 1123 name, optionally starting with "*.")', 253);
}

function durationField(issues: Issues, path: string, v: unknown): bigint | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  if (!GW_DURATION.test(s)) {
    issues.add(path, `${JSON.stringify(s)} is not a Gateway API duration (e.g. 1h, 10s, 500ms; units h, m, s, ms)`);
    return undefined;
  }
  return parseDuration(s);
}

function checkParentRefs(issues: Issues, spec: Readonly<Record<string, unknown>>): void {
  maxItems(issues, 'spec.parentRefs', spec['parentRefs'], 32);
  const seen = new Set<string>();
  for (const [i, p] of recordItems(spec['parentRefs'])) {
    const path = pathIdx('spec.parentRefs', i);
    required(issues, p, path, 'name');
    pattern(issues, `${path}.group`, p['group'], GROUP, 'API group', 253);
    pattern(issues, `${path}.kind`, p['kind'], KIND, 'kind', 63);
    pattern(issues, `${path}.sectionName`, p['sectionName'], SECTION_NAME, 'section name', 253);
    // CEL: sectionName must be unique when parentRefs includes 2 or more references to the same parent.
    const key = JSON.stringify([p['group'] ?? 'gateway.networking.k8s.io', p['kind'] ?? 'Gateway', p['namespace'] ?? '', p['name'], p['sectionName'] ?? '', p['port'] ?? 0]);
    if (seen.has(key)) issues.add(path, 'duplicates an earlier parentRef: references to one parent must differ in sectionName or port');
    seen.add(key);
  }
}

function checkBackendRef(issues: Issues, path: string, b: Readonly<Record<string, unknown>>): void {
  required(issues, b, path, 'name');
  const group = str(b['group']) ?? '';
  const kind = str(b['kind']) ?? 'Service';
  // CEL: Must have port for Service reference.
  if (group === '' && kind === 'Service' && b['port'] === undefined) issues.add(`${path}.port`, 'port is required for a Service reference');
}

function checkHeaderMatches(issues: Issues, path: string, v: unknown, what: string): void {
  maxItems(issues, path, v, 16);
  const seen = new Set<string>();
  for (const [i, h] of recordItems(v)) {
    const p = pathIdx(path, i);
    const name = required(issues, h, p, 'name');
    if (name !== undefined) {
      pattern(issues, `${p}.name`, name, HEADER_NAME, `${what} name`, 256);
      const key = what === 'header' ? name.toLowerCase() : name;
      if (seen.has(key)) issues.add(`${p}.name`, `${what} ${JSON.stringify(name)} is matched twice (names must be unique within a match)`);
      seen.add(key);
    }
    if (str(h['value']) === undefined && h['value'] === undefined) issues.add(`${p}.value`, 'value is required');
    if (h['type'] === 'RegularExpression') issues.addIf(`${p}.value`, re2Error(str(h['value']) ?? ''));
  }
}

function checkHeaderModifier(issues: Issues, path: string, m: Readonly<Record<string, unknown>>): void {
  const names = new Set<string>();
  for (const field of ['set', 'add'] as const) {
    maxItems(issues, `${path}.${field}`, m[field], 16);
    for (const [i, h] of recordItems(m[field])) {
      const p = pathIdx(`${path}.${field}`, i);
      const name = required(issues, h, p, 'name');
      if (name === undefined) continue;
      pattern(issues, `${p}.name`, name, HEADER_NAME, 'header name', 256);
      const key = `${field}/${name.toLowerCase()}`;
      if (names.has(key)) issues.add(`${p}.name`, `header ${JSON.stringify(name)} appears twice in ${field}`);
      names.add(key);
    }
  }
  maxItems(issues, `${path}.remove`, m['remove'], 16);
}

/** One route filter: exactly the field named by its type, and what each filter requires. */
function checkFilter(issues: Issues, path: string, f: Readonly<Record<string, unknown>>, prefixMatchOnly: boolean | undefined): void {
  const type = str(f['type']);
  if (type === undefined) {
    if (f['type'] === undefined) issues.add(`${path}.type`, 'type is required');
    return;
  }
  const fields: Record<string, string> = {
    RequestHeaderModifier: 'requestHeaderModifier',
    ResponseHeaderModifier: 'responseHeaderModifier',
    RequestRedirect: 'requestRedirect',
    URLRewrite: 'urlRewrite',
    RequestMirror: 'requestMirror',
    ExtensionRef: 'extensionRef',
    CORS: 'cors',
  };
  for (const [t, field] of Object.entries(fields)) {
    const set = f[field] !== undefined;
    if (t === type && !set) issues.add(`${path}.${field}`, `${field} must be specified for ${t} filter.type`);
    if (t !== type && set) issues.add(`${path}.${field}`, `${field} must be nil if the filter.type is not ${t}`);
  }
  const body = rec(f[fields[type] ?? '']);
  if (!body) return;
  if (type === 'RequestHeaderModifier' || type === 'ResponseHeaderModifier') checkHeaderModifier(issues, `${path}.${fields[type]}`, body);
  if (type === 'RequestRedirect' || type === 'URLRewrite') {
    const p = `${path}.${fields[type]}`;
    if (body['hostname'] !== undefined) pattern(issues, `${p}.hostname`, body['hostname'], /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'hostname', 253);
    const pm = rec(body['path']);
    if (pm) {
      const t = str(pm['type']);
      if (t === 'ReplaceFullPath' && pm['replaceFullPath'] === undefined)
        issues.add(`${p}.path.replaceFullPath`, 'replaceFullPath must be specified when type is set to ReplaceFullPath');
      if (t !== 'ReplaceFullPath' && pm['replaceFullPath'] !== undefined) issues.add(`${p}.path.replaceFullPath`, 'type must be ReplaceFullPath when replaceFullPath is set');
      if (t === 'ReplacePrefixMatch' && pm['replacePrefixMatch'] === undefined)
        issues.add(`${p}.path.replacePrefixMatch`, 'replacePrefixMatch must be specified when type is set to ReplacePrefixMatch');
      if (t !== 'ReplacePrefixMatch' && pm['replacePrefixMatch'] !== undefined)
        issues.add(`${p}.path.replacePrefixMatch`, 'type must be ReplacePrefixMatch when replacePrefixMatch is set');
      if (t === 'ReplacePrefixMatch' && prefixMatchOnly === false) {
        issues.add(`${p}.path.type`, 'ReplacePrefixMatch must be used with a single path match of type PathPrefix');
      }
    }
  }
  if (type === 'RequestMirror') {
    const p = `${path}.requestMirror`;
    const b = rec(body['backendRef']);
    if (!b) issues.add(`${p}.backendRef`, 'backendRef is required');
    else checkBackendRef(issues, `${p}.backendRef`, b);
    if (body['percent'] !== undefined && body['fraction'] !== undefined) issues.add(p, 'only one of percent or fraction may be specified');
    const fr = rec(body['fraction']);
    if (fr && (num(fr['numerator']) ?? 0) > (num(fr['denominator']) ?? 100)) issues.add(`${p}.fraction`, 'numerator must be less than or equal to denominator');
  }
}

function checkFilters(issues: Issues, path: string, v: unknown, prefixMatchOnly: boolean | undefined, http: boolean): void {
  maxItems(issues, path, v, 16);
  const counts = new Map<string, number>();
  for (const [i, f] of recordItems(v)) {
    checkFilter(issues, pathIdx(path, i), f, prefixMatchOnly);
    const t = str(f['type']) ?? '';
    counts.set(t, (counts.get(t) ?? 0) + 1);
    if (!http && (t === 'RequestRedirect' || t === 'URLRewrite')) issues.add(`${pathIdx(path, i)}.type`, `${t} is not supported for GRPCRoute`);
  }
  for (const t of ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite', 'CORS']) {
    if ((counts.get(t) ?? 0) > 1) issues.add(path, `${t} filter cannot be repeated`);
  }
  if ((counts.get('RequestRedirect') ?? 0) > 0 && (counts.get('URLRewrite') ?? 0) > 0)
    issues.add(path, 'may specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both');
}

function checkPath(issues: Issues, path: string, p: Readonly<Record<string, unknown>>): void {
  const type = str(p['type']) ?? 'PathPrefix';
  const value = str(p['value']) ?? '/';
  if (type === 'RegularExpression') {
    issues.addIf(`${path}.value`, re2Error(value));
    return;
  }
  if (!value.startsWith('/')) issues.add(`${path}.value`, "value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']");
  if (/\/\/|\/\.\/|\/\.\.\/|%2f|%2F|#/.test(value))
    issues.add(`${path}.value`, "must not contain '//', '/./', '/../', '%2f', '%2F' or '#' when type one of ['Exact', 'PathPrefix']");
  if (value.endsWith('/..') || value.endsWith('/.')) issues.add(`${path}.value`, "must not end with '/..' or '/.' when type one of ['Exact', 'PathPrefix']");
  if (value.length > 1024) issues.add(`${path}.value`, 'must be at most 1024 characters');
}

function checkRoute(obj: ConfigObject, issues: Issues, schema: Schema, kind: 'HTTPRoute' | 'GRPCRoute'): void {
  const spec = rec(obj.body['spec']);
  if (!spec) {
    issues.add('spec', obj.body['spec'] === undefined ? 'spec is required' : 'must be an object');
    return;
  }
  checkSchema(spec, schema, 'spec', issues);
  checkParentRefs(issues, spec);
  maxItems(issues, 'spec.hostnames', spec['hostnames'], 16);
  for (const [i, h] of arr(spec['hostnames'])?.entries() ?? []) hostname(issues, pathIdx('spec.hostnames', i), h);
  maxItems(issues, 'spec.rules', spec['rules'], 16);
  for (const [r, rule] of recordItems(spec['rules'])) {
    const rp = pathIdx('spec.rules', r);
    maxItems(issues, `${rp}.matches`, rule['matches'], kind === 'HTTPRoute' ? 64 : 64);
    const matches = recordItems(rule['matches']);
    for (const [m, match] of matches) {
      const mp = pathIdx(`${rp}.matches`, m);
      if (kind === 'HTTPRoute') {
        const p = rec(match['path']);
        if (p) checkPath(issues, `${mp}.path`, p);
        checkHeaderMatches(issues, `${mp}.headers`, match['headers'], 'header');
        checkHeaderMatches(issues, `${mp}.queryParams`, match['queryParams'], 'query parameter');
      } else {
        const method = rec(match['method']);
        if (method) {
          const type = str(method['type']) ?? 'Exact';
          if (method['service'] === undefined && method['method'] === undefined) issues.add(`${mp}.method`, 'one or both of service or method must be specified');
          if (type === 'Exact') {
            pattern(issues, `${mp}.method.service`, method['service'], GRPC_SERVICE, 'gRPC service name', 1024);
            pattern(issues, `${mp}.method.method`, method['method'], GRPC_METHOD, 'gRPC method name', 1024);
          } else {
            for (const f of ['service', 'method']) {
              const s = str(method[f]);
              if (s !== undefined) issues.addIf(`${mp}.method.${f}`, re2Error(s));
            }
          }
        }
        checkHeaderMatches(issues, `${mp}.headers`, match['headers'], 'header');
      }
    }
    // ReplacePrefixMatch needs exactly one match, a PathPrefix one (CEL on HTTPRouteRule).
    const prefixOnly = matches.length === 1 && (str(rec(matches[0]?.[1]['path'])?.['type']) ?? 'PathPrefix') === 'PathPrefix';
    checkFilters(issues, `${rp}.filters`, rule['filters'], kind === 'HTTPRoute' ? prefixOnly : undefined, kind === 'HTTPRoute');
    maxItems(issues, `${rp}.backendRefs`, rule['backendRefs'], 16);
    for (const [b, ref] of recordItems(rule['backendRefs'])) {
      const bp = pathIdx(`${rp}.backendRefs`, b);
      checkBackendRef(issues, bp, ref);
      checkFilters(issues, `${bp}.filters`, ref['filters'], kind === 'HTTPRoute' ? prefixOnly : undefined, kind === 'HTTPRoute');
    }
    const retry = rec(rule['retry']);
    if (retry) durationField(issues, `${rp}.retry.backoff`, retry['backoff']);
    const t = rec(rule['timeouts']);
    if (t) {
      const request = durationField(issues, `${rp}.timeouts.request`, t['request']);
      const backend = durationField(issues, `${rp}.timeouts.backendRequest`, t['backendRequest']);
      if (request !== undefined && backend !== undefined && request !== 0n && backend > request) {
        issues.add(`${rp}.timeouts.backendRequest`, 'backendRequest timeout cannot be longer than request timeout');
      }
    }
  }
}

function checkL4Route(obj: ConfigObject, issues: Issues, tls: boolean): void {
  const spec = rec(obj.body['spec']);
  if (!spec) {
    issues.add('spec', obj.body['spec'] === undefined ? 'spec is required' : 'must be an object');
    return;
  }
  checkSchema(spec, l4RouteSchema(tls), 'spec', issues);
  checkParentRefs(issues, spec);
  if (tls) {
    maxItems(issues, 'spec.hostnames', spec['hostnames'], 16);
    for (const [i, h] of arr(spec['hostnames'])?.entries() ?? []) hostname(issues, pathIdx('spec.hostnames', i), h);
  }
  maxItems(issues, 'spec.rules', spec['rules'], 16, 1);
  for (const [r, rule] of recordItems(spec['rules'])) {
    maxItems(issues, `${pathIdx('spec.rules', r)}.backendRefs`, rule['backendRefs'], 16, 1);
    for (const [b, ref] of recordItems(rule['backendRefs'])) checkBackendRef(issues, pathIdx(`${pathIdx('spec.rules', r)}.backendRefs`, b), ref);
  }
}

const NO_TLS = new Set(['HTTP', 'TCP', 'UDP']);
const NO_HOSTNAME = new Set(['TCP', 'UDP']);

function checkGateway(obj: ConfigObject, issues: Issues): void {
  const spec = rec(obj.body['spec']);
  if (!spec) {
    issues.add('spec', obj.body['spec'] === undefined ? 'spec is required' : 'must be an object');
    return;
  }
  checkSchema(spec, gatewaySchema, 'spec', issues);
  const cls = required(issues, spec, 'spec', 'gatewayClassName');
  if (cls !== undefined && cls.length > 253) issues.add('spec.gatewayClassName', 'must be at most 253 characters');
  maxItems(issues, 'spec.listeners', spec['listeners'], 64, 1);
  const names = new Set<string>();
  const combos = new Set<string>();
  for (const [i, l] of recordItems(spec['listeners'])) {
    const path = pathIdx('spec.listeners', i);
    const name = required(issues, l, path, 'name');
    if (name !== undefined) {
      pattern(issues, `${path}.name`, name, SECTION_NAME, 'listener name', 253);
      if (names.has(name)) issues.add(`${path}.name`, `listener name ${JSON.stringify(name)} must be unique within the Gateway`);
      names.add(name);
    }
    if (l['port'] === undefined) issues.add(`${path}.port`, 'port is required');
    const protocol = required(issues, l, path, 'protocol');
    if (protocol !== undefined) pattern(issues, `${path}.protocol`, protocol, PROTOCOL, 'protocol', 255);
    if (l['hostname'] !== undefined) hostname(issues, `${path}.hostname`, l['hostname']);
    if (protocol !== undefined && NO_TLS.has(protocol) && l['tls'] !== undefined) issues.add(`${path}.tls`, "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']");
    if ((protocol === 'HTTPS' || protocol === 'TLS') && l['tls'] === undefined && protocol === 'HTTPS') issues.add(`${path}.tls`, "tls must be specified for protocols ['HTTPS']");
    if (protocol !== undefined && NO_HOSTNAME.has(protocol) && l['hostname'] !== undefined)
      issues.add(`${path}.hostname`, "hostname must not be specified for protocols ['TCP', 'UDP']");
    const tls = rec(l['tls']);
    if (tls) {
      const mode = str(tls['mode']) ?? 'Terminate';
      maxItems(issues, `${path}.tls.certificateRefs`, tls['certificateRefs'], 64);
      if (mode === 'Terminate' && (arr(tls['certificateRefs'])?.length ?? 0) === 0 && Object.keys(rec(tls['options']) ?? {}).length === 0) {
        issues.add(`${path}.tls.certificateRefs`, 'certificateRefs or options must be specified when mode is Terminate');
      }
      for (const [c, ref] of recordItems(tls['certificateRefs'])) required(issues, ref, pathIdx(`${path}.tls.certificateRefs`, c), 'name');
    }
    const ar = rec(l['allowedRoutes']);
    const ns = rec(ar?.['namespaces']);
    if (ns && ns['from'] === 'Selector' && ns['selector'] === undefined) issues.add(`${path}.allowedRoutes.namespaces.selector`, 'selector is required when from is Selector');
    for (const [k, v] of Object.entries(rec(rec(ns?.['selector'])?.['matchLabels']) ?? {})) {
      issues.addIf(`${path}.allowedRoutes.namespaces.selector.matchLabels`, labelKeyError(k));
      if (typeof v === 'string') issues.addIf(`${path}.allowedRoutes.namespaces.selector.matchLabels`, labelValueError(v));
    }
    for (const [k, rk] of recordItems(ar?.['kinds'])) required(issues, rk, pathIdx(`${path}.allowedRoutes.kinds`, k), 'kind');
    // CEL: combination of port, protocol and hostname must be unique for each listener.
    const combo = JSON.stringify([l['port'], protocol, l['hostname'] ?? '']);
    if (combos.has(combo)) issues.add(path, 'combination of port, protocol and hostname must be unique for each listener');
    combos.add(combo);
  }
  maxItems(issues, 'spec.addresses', spec['addresses'], 16);
  for (const [i, a] of recordItems(spec['addresses'])) required(issues, a, pathIdx('spec.addresses', i), 'value');
}

function checkGatewayClass(obj: ConfigObject, issues: Issues): void {
  const spec = rec(obj.body['spec']);
  if (!spec) {
    issues.add('spec', obj.body['spec'] === undefined ? 'spec is required' : 'must be an object');
    return;
  }
  checkSchema(spec, gatewayClassSchema, 'spec', issues);
  const c = required(issues, spec, 'spec', 'controllerName');
  if (c !== undefined) pattern(issues, 'spec.controllerName', c, CONTROLLER_NAME, 'controller name (a domain-prefixed path, e.g. istio.io/gateway-controller)', 253);
}

function checkReferenceGrant(obj: ConfigObject, issues: Issues): void {
  const spec = rec(obj.body['spec']);
  if (!spec) {
    issues.add('spec', obj.body['spec'] === undefined ? 'spec is required' : 'must be an object');
    return;
  }
  checkSchema(spec, referenceGrantSchema, 'spec', issues);
  maxItems(issues, 'spec.from', spec['from'], 16, 1);
  maxItems(issues, 'spec.to', spec['to'], 16, 1);
  for (const [i, f] of recordItems(spec['from'])) {
    const p = pathIdx('spec.from', i);
    if (f['group'] === undefined) issues.add(`${p}.group`, 'group is required');
    required(issues, f, p, 'kind');
    required(issues, f, p, 'namespace');
  }
  for (const [i, t] of recordItems(spec['to'])) {
    const p = pathIdx('spec.to', i);
    if (t['group'] === undefined) issues.add(`${p}.group`, 'group is required');
    required(issues, t, p, 'kind');
  }
}

function checkBackendTlsPolicy(obj: ConfigObject, issues: Issues): void {
  const spec = rec(obj.body['spec']);
  if (!spec) {
    issues.add('spec', obj.body['spec'] === undefined ? 'spec is required' : 'must be an object');
    return;
  }
  checkSchema(spec, backendTlsPolicySchema, 'spec', issues);
  maxItems(issues, 'spec.targetRefs', spec['targetRefs'], 16, 1);
  for (const [i, t] of recordItems(spec['targetRefs'])) {
    const p = pathIdx('spec.targetRefs', i);
    if (t['group'] === undefined) issues.add(`${p}.group`, 'group is required');
    required(issues, t, p, 'kind');
    required(issues, t, p, 'name');
  }
  const v = rec(spec['validation']);
  if (!v) {
    issues.add('spec.validation', 'validation is required');
    return;
  }
  const host = required(issues, v, 'spec.validation', 'hostname');
  if (host !== undefined) pattern(issues, 'spec.validation.hostname', host, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'hostname', 253);
  const refs = arr(v['caCertificateRefs'])?.length ?? 0;
  const wellKnown = v['wellKnownCACertificates'] !== undefined;
  if (refs > 0 === wellKnown) issues.add('spec.validation', 'must specify either caCertificateRefs or wellKnownCACertificates, not both');
}

/** Validates one Gateway API object (the kinds of gateway.networking.k8s.io meshd reads). */
export function validateGatewayApi(obj: ConfigObject, issues: Issues): void {
  switch (obj.kind) {
    case 'GatewayClass':
      return checkGatewayClass(obj, issues);
    case 'KubernetesGateway':
      return checkGateway(obj, issues);
    case 'HTTPRoute':
      return checkRoute(obj, issues, httpRouteSchema, 'HTTPRoute');
    case 'GRPCRoute':
      return checkRoute(obj, issues, grpcRouteSchema, 'GRPCRoute');
    case 'TCPRoute':
      return checkL4Route(obj, issues, false);
    case 'TLSRoute':
      return checkL4Route(obj, issues, true);
    case 'ReferenceGrant':
      return checkReferenceGrant(obj, issues);
    case 'BackendTLSPolicy':
      return checkBackendTlsPolicy(obj, issues);
    default:
      return;
  }
}
