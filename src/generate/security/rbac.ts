/**
 * One AuthorizationPolicy rule → one Envoy RBAC policy, as istiod's authz model builds it:
 * `from` entries become principals, `to` entries permissions, `when` conditions are ANDed into
 * every principal or permission; values are ORed, notValues become `not`. An HTTP-only field on
 * a TCP filter chain makes an ALLOW rule disappear (it must never allow more) and is dropped
 * from a DENY or AUDIT rule (which then denies more).
 */
import type { AuthzCondition, AuthzRule } from '../../model/objects';
import type { ProtoObject } from '../types';
import { claimIds, nestedClaimNames, requestPrincipalIds } from './jwt-claims';
import { SPIFFE_PREFIX, cidrRange, headerMatcher, hostMatcher, metadataMatcher, quoteMeta, regexMatcher, stringMatcher } from './matchers';

export type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

/**
 * A generator turns one value into a permission or a principal; `httpOnly` ones fail on TCP.
 * `extended` ones (istiod's extendedGenerator) turn all values of a field into one matcher.
 */
interface Gen {
  kind: 'permission' | 'principal';
  httpOnly: boolean;
  make: (value: string) => ProtoObject;
  extended?: (values: readonly string[]) => ProtoObject;
}

interface RuleEntry {
  key: string;
  gen: Gen;
  values: readonly string[];
  notValues: readonly string[];
}

/** Thrown inside translation when an ALLOW rule uses an HTTP-only field on TCP. */
class HttpOnlyOnTcp extends Error {}

const authenticated = (m: ProtoObject): ProtoObject => ({ authenticated: { principal_name: m } });
const perm = (httpOnly: boolean, make: (v: string) => ProtoObject): Gen => ({ kind: 'permission', httpOnly, make });
const princ = (httpOnly: boolean, make: (v: string) => ProtoObject): Gen => ({ kind: 'principal', httpOnly, make });
/** An HTTP-only principal on the JWT payload, from all values at once (jwt-claims.ts). */
const jwtPrinc = (extended: (vs: readonly string[]) => ProtoObject): Gen => ({ kind: 'principal', httpOnly: true, make: (v) => extended([v]), extended });
const claimGen = (claims: readonly string[]): Gen => jwtPrinc((vs) => claimIds(claims, vs));

/**
 * A trust domain (exact, `x*`, `*x`, `*` = any) as a matcher on the peer's SPIFFE ID
 * `spiffe://<trust domain>/...`: the trust domain is what comes before the first slash.
 */
function trustDomainMatcher(v: string): ProtoObject {
  if (v === '*') return regexMatcher(`${quoteMeta(SPIFFE_PREFIX)}[^/]+/.*`);
  if (v.startsWith('*')) return regexMatcher(`${quoteMeta(SPIFFE_PREFIX)}[^/]*${quoteMeta(v.slice(1))}/.*`);
  if (v.endsWith('*')) return { prefix: `${SPIFFE_PREFIX}${v.slice(0, -1)}` };
  return { prefix: `${SPIFFE_PREFIX}${v}/` };
}

export const GEN = {
  hosts: perm(true, (v) => ({ header: hostMatcher(v) })),
  methods: perm(true, (v) => ({ header: headerMatcher(':method', v) })),
  paths: perm(true, (v) => ({ url_path: { path: stringMatcher(v) } })),
  ports: perm(false, (v) => ({ destination_port: Number(v) })),
  destIp: perm(false, (v) => ({ destination_ip: cidrRange(v) })),
  sni: perm(false, (v) => ({ requested_server_name: stringMatcher(v) })),
  principals: princ(false, (v) => authenticated(stringMatcher(v, SPIFFE_PREFIX))),
  namespaces: princ(false, (v) => authenticated(regexMatcher(`.*/ns/${v.replace(/\*/g, '.*')}/.*`))),
  trustDomains: princ(false, (v) => authenticated(trustDomainMatcher(v))),
  requestPrincipals: jwtPrinc(requestPrincipalIds),
  ipBlocks: princ(false, (v) => ({ direct_remote_ip: cidrRange(v) })),
  remoteIpBlocks: princ(false, (v) => ({ remote_ip: cidrRange(v) })),
} as const;

function serviceAccountGen(policyNs: string): Gen {
  return princ(false, (v) => {
    const slash = v.indexOf('/');
    const [ns, sa] = slash < 0 ? [policyNs, v] : [v.slice(0, slash), v.slice(slash + 1)];
    return authenticated(regexMatcher(`spiffe://.+/ns/${ns}/(.+/|)sa/${sa}(/.+)?`));
  });
}

function bracketed(key: string, prefix: string): string[] {
  // `request.auth.claims[a][b]` → ['a', 'b']
  return [...key.slice(prefix.length).matchAll(/\[([^\]]*)\]/g)].map((m) => m[1] ?? '');
}

/** The generator of a `when` key (istiod's model.New switch); unknown keys are caught by validation. */
function conditionGen(key: string, policyNs: string): Gen | undefined {
  switch (key) {
    case 'destination.ip':
      return GEN.destIp;
    case 'destination.port':
      return GEN.ports;
    case 'connection.sni':
      return GEN.sni;
    case 'source.ip':
      return GEN.ipBlocks;
    case 'remote.ip':
      return GEN.remoteIpBlocks;
    case 'source.namespace':
      return GEN.namespaces;
    case 'source.principal':
      return GEN.principals;
    case 'source.serviceAccount':
      return serviceAccountGen(policyNs);
    case 'source.trustDomain':
      return GEN.trustDomains;
    case 'request.auth.principal':
      return GEN.requestPrincipals;
    case 'request.auth.audiences':
      return claimGen(['aud']);
    case 'request.auth.presenter':
      return claimGen(['azp']);
  }
  if (key.startsWith('request.headers[')) {
    const name = bracketed(key, 'request.headers')[0] ?? '';
    return princ(true, (v) => ({ header: headerMatcher(name, v) }));
  }
  if (key.startsWith('request.auth.claims[')) return claimGen(nestedClaimNames(key.slice('request.auth.claims'.length)));
  if (key.startsWith('experimental.envoy.filters.')) {
    const inner = key.slice('experimental.'.length, -1);
    const open = inner.indexOf('[');
    const [filter, field] = [inner.slice(0, open), inner.slice(open + 1)];
    return perm(false, (v) => ({ metadata: metadataMatcher(filter, [field], { string_match: stringMatcher(v) }) }));
  }
  return undefined;
}

function entries(values: readonly string[] | undefined, notValues: readonly string[] | undefined): boolean {
  return (values?.length ?? 0) > 0 || (notValues?.length ?? 0) > 0;
}

/** The rule's principal lists (one per `from`, or one) and permission lists (one per `to`, or one). */
function model(rule: AuthzRule, policyNs: string): { principals: RuleEntry[][]; permissions: RuleEntry[][] } {
  const basePrincipal: RuleEntry[] = [];
  const basePermission: RuleEntry[] = [];
  for (const c of rule.when ?? ([] as AuthzCondition[])) {
    const gen = conditionGen(c.key, policyNs);
    if (!gen || !entries(c.values, c.notValues)) continue;
    (gen.kind === 'principal' ? basePrincipal : basePermission).push({ key: c.key, gen, values: c.values ?? [], notValues: c.notValues ?? [] });
  }
  const principals = (rule.from ?? []).map((f) => {
    const s = f.source ?? {};
    const front: RuleEntry[] = [];
    const add = (key: string, gen: Gen, v?: string[], n?: string[]): void => {
      if (entries(v, n)) front.push({ key, gen, values: v ?? [], notValues: n ?? [] });
    };
    // istiod's insertFront order leaves: principals, serviceAccounts, requestPrincipals, namespaces, remoteIpBlocks, ipBlocks.
    add('source.principal', GEN.principals, s.principals, s.notPrincipals);
    add('source.serviceAccount', serviceAccountGen(policyNs), s.serviceAccounts, s.notServiceAccounts);
    add('source.trustDomain', GEN.trustDomains, s.trustDomains, s.notTrustDomains);
    add('request.auth.principal', GEN.requestPrincipals, s.requestPrincipals, s.notRequestPrincipals);
    add('source.namespace', GEN.namespaces, s.namespaces, s.notNamespaces);
    add('remote.ip', GEN.remoteIpBlocks, s.remoteIpBlocks, s.notRemoteIpBlocks);
    add('source.ip', GEN.ipBlocks, s.ipBlocks, s.notIpBlocks);
    return [...front, ...basePrincipal];
  });
  const permissions = (rule.to ?? []).map((t) => {
    const o = t.operation ?? {};
    const front: RuleEntry[] = [];
    const add = (key: string, gen: Gen, v?: string[], n?: string[]): void => {
      if (entries(v, n)) front.push({ key, gen, values: v ?? [], notValues: n ?? [] });
    };
    add(':authority', GEN.hosts, o.hosts, o.notHosts);
    add(':method', GEN.methods, o.methods, o.notMethods);
    add('path', GEN.paths, o.paths, o.notPaths);
    add('destination.port', GEN.ports, o.ports, o.notPorts);
    return [...front, ...basePermission];
  });
  return { principals: principals.length > 0 ? principals : [basePrincipal], permissions: permissions.length > 0 ? permissions : [basePermission] };
}

function translate(list: RuleEntry[], forTCP: boolean, action: RbacAction, kind: 'permission' | 'principal'): ProtoObject {
  const [and, or, not, any] = kind === 'permission' ? ['and_rules', 'or_rules', 'not_rule', 'any'] : ['and_ids', 'or_ids', 'not_id', 'any'];
  const set = (items: ProtoObject[]): ProtoObject => (kind === 'permission' ? { rules: items } : { ids: items });
  const out: ProtoObject[] = [];
  for (const e of list) {
    if (forTCP && e.gen.httpOnly) {
      // ALLOW: the rule goes (never allow more); DENY/AUDIT: the field goes (deny more).
      if (action === 'ALLOW') throw new HttpOnlyOnTcp(`"${e.key}" is HTTP only`);
      continue;
    }
    if (e.gen.extended) {
      if (e.values.length > 0) out.push(e.gen.extended(e.values));
      if (e.notValues.length > 0) out.push({ [not]: e.gen.extended(e.notValues) });
      continue;
    }
    if (e.values.length > 0) out.push({ [or]: set(e.values.map(e.gen.make)) });
    if (e.notValues.length > 0) out.push({ [not]: { [or]: set(e.notValues.map(e.gen.make)) } });
  }
  if (out.length === 0) out.push({ [any]: true });
  return { [and]: set(out) };
}

/** The RBAC policy for one rule, or undefined when the rule is skipped (HTTP-only ALLOW on TCP). */
export function rulePolicy(rule: AuthzRule, policyNs: string, forTCP: boolean, action: RbacAction): ProtoObject | undefined {
  const m = model(rule, policyNs);
  try {
    return {
      permissions: m.permissions.map((l) => translate(l, forTCP, action, 'permission')),
      principals: m.principals.map((l) => translate(l, forTCP, action, 'principal')),
    };
  } catch (e) {
    if (e instanceof HttpOnlyOnTcp) return undefined;
    throw e;
  }
}

/** istiod's policy name: `ns[<ns>]-policy[<name>]-rule[<i>]`. */
export function policyName(namespace: string, name: string, index: number): string {
  return `ns[${namespace}]-policy[${name}]-rule[${index}]`;
}
