/**
 * Which AuthorizationPolicies apply to a workload, and the RBAC filters they become: policies in
 * the root namespace and in the workload's namespace whose selector matches its labels (no
 * selector: every workload there); targetRef policies are for waypoints and gateways, not here.
 * Filter order as istiod: CUSTOM (the shadow RBAC and ext_authz pair of its provider, see
 * ext-authz.ts; deny all when the workload cannot use it, and on proxyless gRPC servers, which
 * istiod does not give CUSTOM), AUDIT (LOG), DENY, ALLOW.
 * No ALLOW policy means no ALLOW filter (allow all); ALLOW policies present deny all unmatched
 * requests, even when none of their rules survive translation.
 */
import type { AuthorizationPolicyConfig } from '../../model/build-security';
import { CUSTOM_DENY_POLICY } from '../../model/build-security';
import type { ResolvedExtAuthz } from '../../model/ext-authz';
import type { MeshSnapshot } from '../../model/snapshot';
import { labelsMatch } from '../../model/snapshot';
import type { ProtoObject } from '../types';
import { EXT_AUTHZ_HTTP_FILTER, EXT_AUTHZ_MATCH_PREFIX, EXT_AUTHZ_NETWORK_FILTER, EXT_AUTHZ_SHADOW_STAT_PREFIX, extAuthzHttpConfig, extAuthzNetworkConfig } from './ext-authz';
import { type RbacAction, policyName, rulePolicy } from './rbac';

export const RBAC_HTTP_FILTER = 'envoy.filters.http.rbac';
export const RBAC_NETWORK_FILTER = 'envoy.filters.network.rbac';
export const RBAC_HTTP_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
export const RBAC_NETWORK_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';
/** istiod's stat prefix of the network RBAC filter. */
const TCP_STAT_PREFIX = 'tcp.';

export interface WorkloadPolicies {
  custom: readonly AuthorizationPolicyConfig[];
  audit: readonly AuthorizationPolicyConfig[];
  deny: readonly AuthorizationPolicyConfig[];
  allow: readonly AuthorizationPolicyConfig[];
  /** The ext_authz provider of the CUSTOM policies, when they name one usable provider. */
  provider?: ResolvedExtAuthz;
}

export function labelsKey(labels: Readonly<Record<string, string>>): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The policies that apply to a workload (memoised per namespace and label set). */
export function workloadPolicies(snap: MeshSnapshot, namespace: string, labels: Readonly<Record<string, string>>): WorkloadPolicies {
  return snap.memo.get(`authz|${namespace}|${labelsKey(labels)}`, () => {
    const out = {
      custom: [] as AuthorizationPolicyConfig[],
      audit: [] as AuthorizationPolicyConfig[],
      deny: [] as AuthorizationPolicyConfig[],
      allow: [] as AuthorizationPolicyConfig[],
    };
    for (const p of snap.security.authorizationPolicies) {
      const ns = p.meta.namespace;
      if (ns !== namespace && ns !== snap.rootNamespace) continue;
      if (p.spec.targetRef || (p.spec.targetRefs?.length ?? 0) > 0) continue;
      if (!labelsMatch(p.spec.selector?.matchLabels, labels)) continue;
      const action = p.spec.action ?? 'ALLOW';
      (action === 'CUSTOM' ? out.custom : action === 'AUDIT' ? out.audit : action === 'DENY' ? out.deny : out.allow).push(p);
    }
    // getExtAuthz: one provider for all CUSTOM policies of the workload, defined and valid.
    const names = new Set(out.custom.map((p) => p.spec.provider?.name ?? ''));
    const only = names.size === 1 ? snap.security.extAuthz.get([...names][0] ?? '') : undefined;
    return only && 'ok' in only ? { ...out, provider: only.ok } : out;
  });
}

/**
 * `rules` of one RBAC filter: every rule of every policy, named as istiod names them
 * (`ns[<ns>]-policy[<name>]-rule[<i>]`; for gRPC servers grpcgen's `<ns>-<name>-<i>`).
 */
export function rbacRules(policies: readonly AuthorizationPolicyConfig[], action: RbacAction, forTCP: boolean, grpc = false, prefix = ''): ProtoObject {
  const named: ProtoObject = {};
  for (const p of policies) {
    (p.spec.rules ?? []).forEach((rule, i) => {
      const policy = rulePolicy(rule, p.meta.namespace, forTCP, action);
      if (policy) named[grpc ? `${p.meta.namespace}-${p.meta.name}-${i}` : `${prefix}${policyName(p.meta.namespace, p.meta.name, i)}`] = policy;
    });
  }
  return Object.keys(named).length > 0 ? { action, policies: named } : { action };
}

function denyAllRules(): ProtoObject {
  return { action: 'DENY', policies: { [CUSTOM_DENY_POLICY]: { permissions: [{ any: true }], principals: [{ any: true }] } } };
}

interface RuleSet {
  /** The filter name for gRPC, which refuses two HTTP filters of one name (grpcgen's names). */
  grpcName: string;
  rules: ProtoObject;
}

/**
 * The RBAC rule sets in filter order; `grpc` leaves out AUDIT (gRPC rejects LOG). CUSTOM is a
 * deny-all set only when the workload has no usable provider (or is a proxyless gRPC server).
 */
export function rbacRuleSets(p: WorkloadPolicies, forTCP: boolean, grpc = false): RuleSet[] {
  const out: RuleSet[] = [];
  if (p.custom.length > 0 && (grpc || !p.provider)) out.push({ grpcName: `${RBAC_HTTP_FILTER}.CUSTOM`, rules: denyAllRules() });
  if (p.audit.length > 0 && !grpc) out.push({ grpcName: `${RBAC_HTTP_FILTER}.AUDIT`, rules: rbacRules(p.audit, 'LOG', forTCP) });
  if (p.deny.length > 0) out.push({ grpcName: `${RBAC_HTTP_FILTER}.DENY`, rules: rbacRules(p.deny, 'DENY', forTCP, grpc) });
  if (p.allow.length > 0) out.push({ grpcName: RBAC_HTTP_FILTER, rules: rbacRules(p.allow, 'ALLOW', forTCP, grpc) });
  return out;
}

/** The CUSTOM policies' rules as shadow rules, named for the ext_authz filter (action DENY, as istiod). */
function customShadowRules(p: WorkloadPolicies, forTCP: boolean): ProtoObject {
  return rbacRules(p.custom, 'DENY', forTCP, false, `${EXT_AUTHZ_MATCH_PREFIX}-`);
}

/** The HTTP filters of the CUSTOM policies: the shadow RBAC and ext_authz pair, or none (then rbacRuleSets denies). */
export function customHttpFilters(p: WorkloadPolicies, grpc = false): ProtoObject[] {
  if (grpc || !p.provider || p.custom.length === 0) return [];
  return [
    { name: RBAC_HTTP_FILTER, typed_config: { '@type': RBAC_HTTP_TYPE, shadow_rules: customShadowRules(p, false), shadow_rules_stat_prefix: EXT_AUTHZ_SHADOW_STAT_PREFIX } },
    { name: EXT_AUTHZ_HTTP_FILTER, typed_config: extAuthzHttpConfig(p.provider) },
  ];
}

/** The network filters of the CUSTOM policies: the pair for a gRPC provider; an HTTP provider adds nothing to TCP chains. */
function customNetworkFilters(p: WorkloadPolicies): ProtoObject[] {
  const cfg = p.provider && p.custom.length > 0 ? extAuthzNetworkConfig(p.provider) : undefined;
  if (!cfg) return [];
  return [
    {
      name: RBAC_NETWORK_FILTER,
      typed_config: { '@type': RBAC_NETWORK_TYPE, shadow_rules: customShadowRules(p, true), stat_prefix: TCP_STAT_PREFIX, shadow_rules_stat_prefix: EXT_AUTHZ_SHADOW_STAT_PREFIX },
    },
    { name: EXT_AUTHZ_NETWORK_FILTER, typed_config: cfg },
  ];
}

/** The number of filters CUSTOM contributes in front of rbacHttpFilters' list (authentication goes after them). */
export function customHttpFilterCount(p: WorkloadPolicies): number {
  if (p.custom.length === 0) return 0;
  return p.provider ? 2 : 1;
}

export function rbacHttpFilters(p: WorkloadPolicies, grpc = false): ProtoObject[] {
  const rbac = rbacRuleSets(p, false, grpc).map((s) => ({ name: grpc ? s.grpcName : RBAC_HTTP_FILTER, typed_config: { '@type': RBAC_HTTP_TYPE, rules: s.rules } }));
  return [...customHttpFilters(p, grpc), ...rbac];
}

export function rbacNetworkFilters(p: WorkloadPolicies): ProtoObject[] {
  const rbac = rbacRuleSets(p, true).map((s) => ({ name: RBAC_NETWORK_FILTER, typed_config: { '@type': RBAC_NETWORK_TYPE, rules: s.rules, stat_prefix: TCP_STAT_PREFIX } }));
  return [...customNetworkFilters(p), ...rbac];
}
