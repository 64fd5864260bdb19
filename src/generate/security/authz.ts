/**
 * Which AuthorizationPolicies apply to a workload, and the RBAC filters they become: policies in
 * the root namespace and in the workload's namespace whose selector matches its labels (no
 * selector: every workload there); targetRef policies are for waypoints and gateways, not here.
 * Filter order as istiod: CUSTOM (meshd has no providers: deny all), AUDIT (LOG), DENY, ALLOW.
 * No ALLOW policy means no ALLOW filter (allow all); ALLOW policies present deny all unmatched
 * requests, even when none of their rules survive translation.
 */
import type { AuthorizationPolicyConfig } from '../../model/build-security';
import { CUSTOM_DENY_POLICY } from '../../model/build-security';
import type { MeshSnapshot } from '../../model/snapshot';
import { labelsMatch } from '../../model/snapshot';
import type { ProtoObject } from '../types';
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
    return out;
  });
}

/**
 * `rules` of one RBAC filter: every rule of every policy, named as istiod names them
 * (`ns[<ns>]-policy[<name>]-rule[<i>]`; for gRPC servers grpcgen's `<ns>-<name>-<i>`).
 */
export function rbacRules(policies: readonly AuthorizationPolicyConfig[], action: RbacAction, forTCP: boolean, grpc = false): ProtoObject {
  const named: ProtoObject = {};
  for (const p of policies) {
    (p.spec.rules ?? []).forEach((rule, i) => {
      const policy = rulePolicy(rule, p.meta.namespace, forTCP, action);
      if (policy) named[grpc ? `${p.meta.namespace}-${p.meta.name}-${i}` : policyName(p.meta.namespace, p.meta.name, i)] = policy;
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

/** The RBAC rule sets in filter order; `grpc` leaves out AUDIT (gRPC rejects LOG). */
export function rbacRuleSets(p: WorkloadPolicies, forTCP: boolean, grpc = false): RuleSet[] {
  const out: RuleSet[] = [];
  if (p.custom.length > 0) out.push({ grpcName: `${RBAC_HTTP_FILTER}.CUSTOM`, rules: denyAllRules() });
  if (p.audit.length > 0 && !grpc) out.push({ grpcName: `${RBAC_HTTP_FILTER}.AUDIT`, rules: rbacRules(p.audit, 'LOG', forTCP) });
  if (p.deny.length > 0) out.push({ grpcName: `${RBAC_HTTP_FILTER}.DENY`, rules: rbacRules(p.deny, 'DENY', forTCP, grpc) });
  if (p.allow.length > 0) out.push({ grpcName: RBAC_HTTP_FILTER, rules: rbacRules(p.allow, 'ALLOW', forTCP, grpc) });
  return out;
}

export function rbacHttpFilters(p: WorkloadPolicies, grpc = false): ProtoObject[] {
  return rbacRuleSets(p, false, grpc).map((s) => ({ name: grpc ? s.grpcName : RBAC_HTTP_FILTER, typed_config: { '@type': RBAC_HTTP_TYPE, rules: s.rules } }));
}

export function rbacNetworkFilters(p: WorkloadPolicies): ProtoObject[] {
  return rbacRuleSets(p, true).map((s) => ({ name: RBAC_NETWORK_FILTER, typed_config: { '@type': RBAC_NETWORK_TYPE, rules: s.rules, stat_prefix: TCP_STAT_PREFIX } }));
}
