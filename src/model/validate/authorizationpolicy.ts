/**
 * AuthorizationPolicy (security.istio.io), after Istio's ValidateAuthorizationPolicy and
 * security.ValidateAttribute: action and provider, one of selector / targetRef(s), non-empty
 * from/to/source/operation, IPs, ports, empty values, and `when` keys. Warns, as Istio does, of a
 * DENY rule made only of HTTP attributes (it denies every TCP connection in its scope).
 */
import type { ConfigObject } from '../objects';
import { Issues, arr, isRecord, pathIdx, pathKey, rec, recordItems, str, stringItems } from './common';
import { subnetError } from './ip';
import { checkSelectorLabels } from './istio-common';
import { arrayOf, checkSchema, closed, mapOf, oneOf, str as strSchema } from './schema';

const strings = arrayOf(strSchema);
const SOURCE_FIELDS = [
  'principals',
  'notPrincipals',
  'requestPrincipals',
  'notRequestPrincipals',
  'namespaces',
  'notNamespaces',
  'serviceAccounts',
  'notServiceAccounts',
  'ipBlocks',
  'notIpBlocks',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
  'trustDomains',
  'notTrustDomains',
] as const;
/** Source fields a TCP filter chain can evaluate (Istio's tcpRulesInFrom); requestPrincipals need HTTP. */
const TCP_SOURCE_FIELDS = SOURCE_FIELDS.filter((f) => f !== 'requestPrincipals' && f !== 'notRequestPrincipals');
const OPERATION_FIELDS = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;
const IP_FIELDS = new Set(['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks']);
export const targetRefSchema = closed({ group: strSchema, kind: strSchema, name: strSchema, namespace: strSchema });

export const authorizationPolicySchema = closed({
  selector: closed({ matchLabels: mapOf(strSchema) }),
  targetRef: targetRefSchema,
  targetRefs: arrayOf(targetRefSchema),
  action: oneOf('ALLOW', 'DENY', 'AUDIT', 'CUSTOM'),
  provider: closed({ name: strSchema }),
  rules: arrayOf(
    closed({
      from: arrayOf(closed({ source: closed(Object.fromEntries(SOURCE_FIELDS.map((f) => [f, strings]))) })),
      to: arrayOf(closed({ operation: closed(Object.fromEntries(OPERATION_FIELDS.map((f) => [f, strings]))) })),
      when: arrayOf(closed({ key: strSchema, values: strings, notValues: strings })),
    }),
  ),
});

/** Kinds a targetRef may name (istiod's allowedTargetRefs), as `group/Kind` with core as ''. */
const TARGET_KINDS = new Set(['/Service', 'networking.istio.io/ServiceEntry', 'gateway.networking.k8s.io/Gateway', 'gateway.networking.k8s.io/GatewayClass']);

function portError(v: string): string | undefined {
  return /^[0-9]+$/.test(v) && Number(v) <= 65535 ? undefined : `bad port (${v})`;
}

function ipBlockError(v: string): string | undefined {
  if (subnetError(v) === undefined) return undefined;
  return v.includes('/') ? `bad CIDR range (${v})` : `bad IP address (${v})`;
}

/** A `name[key]` attribute (request.headers[...], request.auth.claims[...], experimental...). */
function mapKeyError(key: string): string | undefined {
  const open = key.indexOf('[');
  return key.endsWith(']') && open > 0 && open < key.length - 2 ? undefined : `bad key (${key}): should have format a[b]`;
}

/** security.ValidateAttribute for one `when` key: undefined when valid, else Istio's message. */
function conditionError(key: string, values: readonly string[]): string | undefined {
  if (values.some((v) => v === '')) return `empty value not allowed, found in ${key}`;
  const each = (f: (v: string) => string | undefined): string | undefined => values.map(f).find((e) => e !== undefined);
  if (key.startsWith('request.headers') || key.startsWith('request.auth.claims') || key.startsWith('experimental.envoy.filters.')) return mapKeyError(key);
  switch (key) {
    case 'source.ip':
    case 'remote.ip':
    case 'destination.ip':
      return each(ipBlockError);
    case 'destination.port':
      return each(portError);
    case 'source.namespace':
    case 'source.principal':
    case 'source.serviceAccount':
    case 'source.trustDomain':
    case 'request.auth.principal':
    case 'request.auth.audiences':
    case 'request.auth.presenter':
    case 'connection.sni':
      return undefined;
    case 'destination.namespace':
      return `attribute ${key} is replaced by the metadata.namespace`;
    case 'destination.name':
    case 'destination.user':
      return `deprecated attribute ${key}: only supported in v1alpha1`;
    default:
      if (key.startsWith('destination.labels')) return `attribute ${key} is replaced by the workload selector`;
      return `unknown attribute: ${key}`;
  }
}

function checkValues(issues: Issues, path: string, field: string, v: unknown): void {
  for (const [i, s] of stringItems(v)) {
    const p = pathIdx(path, i);
    if (s === '') issues.add(p, `empty value not allowed, found in ${field[0]?.toUpperCase()}${field.slice(1)}`);
    else if (IP_FIELDS.has(field)) issues.addIf(p, ipBlockError(s));
    else if (field === 'ports' || field === 'notPorts') issues.addIf(p, portError(s));
  }
}

function prefixed(prefix: string, e: string | undefined): string | undefined {
  return e === undefined ? undefined : `${prefix}: ${e}`;
}

function nonEmpty(o: Readonly<Record<string, unknown>>, fields: readonly string[]): boolean {
  return fields.some((f) => (arr(o[f])?.length ?? 0) > 0);
}

/**
 * A policy's workload selection (validateOneOfSelectorType, validateWorkloadSelector,
 * validatePolicyTargetReference(s)), shared by the security.istio.io kinds that take it.
 */
export function checkPolicyTargets(issues: Issues, spec: Readonly<Record<string, unknown>>): void {
  const selector = rec(spec['selector']);
  const refs = arr(spec['targetRefs']) ?? [];
  if ([selector !== undefined, spec['targetRef'] !== undefined, refs.length > 0].filter(Boolean).length > 1) {
    issues.add('spec', 'only one of targetRefs or workloadSelector can be set');
  }
  if (selector !== undefined) checkSelectorLabels(issues, 'spec.selector.matchLabels', selector['matchLabels']);
  const refItems: Array<[string, unknown]> = [['spec.targetRef', spec['targetRef']], ...refs.map((r, i): [string, unknown] => [pathIdx('spec.targetRefs', i), r])];
  for (const [p, r] of refItems) {
    const ref = rec(r);
    if (ref === undefined) continue;
    if (!str(ref['name'])) issues.add(pathKey(p, 'name'), 'targetRef name must be set');
    if (str(ref['namespace'])) issues.add(pathKey(p, 'namespace'), 'targetRef namespace must not be set; cross namespace referencing is not supported');
    const gk = `${str(ref['group']) ?? ''}/${str(ref['kind']) ?? ''}`;
    if (!TARGET_KINDS.has(gk)) issues.add(p, `targetRef must be to a Service, ServiceEntry, Gateway or GatewayClass but was ${gk}`);
  }
}

export function validateAuthorizationPolicy(obj: ConfigObject, issues: Issues): void {
  const raw = obj.body['spec'];
  // An empty spec is valid: ALLOW with no rules, which denies everything it selects.
  if (raw === undefined || raw === null) return;
  checkSchema(raw, authorizationPolicySchema, 'spec', issues);
  const spec = rec(raw);
  if (spec === undefined) return;
  const action = str(spec['action']) ?? 'ALLOW';
  checkPolicyTargets(issues, spec);
  const rules = spec['rules'];
  const provider = rec(spec['provider']);
  if (action === 'CUSTOM') {
    if (rules === undefined)
      issues.add('spec.rules', 'CUSTOM action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request');
    else if (!str(provider?.['name'])) issues.add('spec.provider.name', '`provider.name` must not be empty');
  } else if (provider !== undefined) {
    issues.add('spec.provider', `\`provider\` must not be with non CUSTOM action, found ${action}`);
  }
  if (action === 'DENY' && rules === undefined) {
    issues.add('spec.rules', 'DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request');
  }
  (arr(rules) ?? []).forEach((rule, i) => {
    const rp = pathIdx('spec.rules', i);
    if (!isRecord(rule)) {
      if (rule === null) issues.add(rp, `\`rule\` must not be nil, found at rule ${i}`);
      return;
    }
    if (Array.isArray(rule['from']) && rule['from'].length === 0) issues.add(pathKey(rp, 'from'), `\`from\` must not be empty, found at rule ${i}`);
    // Istio's warning: a DENY rule of HTTP-only attributes denies all traffic to TCP ports.
    let fromExists = false;
    let toExists = false;
    let tcpInFrom = false;
    let tcpInTo = false;
    for (const [j, from] of recordItems(rule['from'])) {
      const fp = pathIdx(pathKey(rp, 'from'), j);
      const src = rec(from['source']);
      if (src === undefined) {
        issues.add(pathKey(fp, 'source'), `\`from.source\` must not be nil, found at rule ${i}`);
        continue;
      }
      const sp = pathKey(fp, 'source');
      fromExists = true;
      if (TCP_SOURCE_FIELDS.some((f) => Array.isArray(src[f]))) tcpInFrom = true;
      if (!nonEmpty(src, SOURCE_FIELDS)) issues.add(sp, `\`from.source\` must not be empty, found at rule ${i}`);
      if (nonEmpty(src, ['principals', 'notPrincipals', 'namespaces', 'notNamespaces']) && nonEmpty(src, ['serviceAccounts', 'notServiceAccounts'])) {
        issues.add(sp, `cannot set serviceAccounts with namespaces or principals, found at rule ${i}`);
      }
      for (const f of SOURCE_FIELDS) checkValues(issues, pathKey(sp, f), f, src[f]);
    }
    if (Array.isArray(rule['to']) && rule['to'].length === 0) issues.add(pathKey(rp, 'to'), `\`to\` must not be empty, found at rule ${i}`);
    for (const [j, to] of recordItems(rule['to'])) {
      const tp = pathIdx(pathKey(rp, 'to'), j);
      const op = rec(to['operation']);
      if (op === undefined) {
        issues.add(pathKey(tp, 'operation'), `\`to.operation\` must not be nil, found at rule ${i}`);
        continue;
      }
      const opp = pathKey(tp, 'operation');
      toExists = true;
      if (Array.isArray(op['ports']) || Array.isArray(op['notPorts'])) tcpInTo = true;
      if (!nonEmpty(op, OPERATION_FIELDS)) issues.add(opp, `\`to.operation\` must not be empty, found at rule ${i}`);
      for (const f of OPERATION_FIELDS) checkValues(issues, pathKey(opp, f), f, op[f]);
    }
    for (const [j, cond] of recordItems(rule['when'])) {
      const cp = pathIdx(pathKey(rp, 'when'), j);
      const key = str(cond['key']) ?? '';
      if (key === '') {
        issues.add(pathKey(cp, 'key'), '`key` must not be empty');
        continue;
      }
      const values = stringItems(cond['values']).map(([, v]) => v);
      const notValues = stringItems(cond['notValues']).map(([, v]) => v);
      if (values.length === 0 && notValues.length === 0) {
        issues.add(cp, `at least one of \`values\` or \`notValues\` must be set for key ${key}`);
        continue;
      }
      if (values.length > 0) issues.addIf(pathKey(cp, 'values'), prefixed(`invalid \`value\` for \`key\` ${key}`, conditionError(key, values)));
      if (notValues.length > 0) issues.addIf(pathKey(cp, 'notValues'), prefixed(`invalid \`notValue\` for \`key\` ${key}`, conditionError(key, notValues)));
    }
    if (action === 'DENY' && ((fromExists && !toExists && !tcpInFrom) || (toExists && !tcpInTo))) {
      issues.warn(
        rp,
        'configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port',
      );
    }
  });
}
