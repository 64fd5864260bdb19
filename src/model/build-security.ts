/**
 * The security part of a snapshot: PeerAuthentications and AuthorizationPolicies, sorted by
 * namespace/name (istiod orders by creation time, which meshd's sources do not keep; name order
 * is the stable stand-in). Selection per workload happens in generate/security.
 */
import type { ExtAuthzResolution } from './ext-authz';
import type { AuthorizationPolicySpec, ConfigError, ConfigObject, ObjectMeta, PeerAuthenticationSpec } from './objects';
import { objectError } from './objects';
import { DEFAULT_TRUST_DOMAIN, withTrustDomains } from './trust-domain';

export interface PeerAuthenticationConfig {
  meta: ObjectMeta;
  spec: PeerAuthenticationSpec;
}

export interface AuthorizationPolicyConfig {
  meta: ObjectMeta;
  spec: AuthorizationPolicySpec;
}

export interface SecurityPolicies {
  peerAuthentications: readonly PeerAuthenticationConfig[];
  authorizationPolicies: readonly AuthorizationPolicyConfig[];
  /** The mesh's ext_authz providers by name (CUSTOM policies name them), resolved or why not. */
  extAuthz: ReadonlyMap<string, ExtAuthzResolution>;
  /** The root namespace, whose policies apply to every workload. */
  rootNamespace: string;
}

export const CUSTOM_DENY_POLICY = 'default-deny-all-due-to-bad-CUSTOM-action';

/** Whether two selectors (absent: every workload) can select one workload: no label with two values. */
function selectorsOverlap(a: Readonly<Record<string, string>> | undefined, b: Readonly<Record<string, string>> | undefined): boolean {
  if (!a || !b) return true;
  return Object.entries(a).every(([k, v]) => b[k] === undefined || b[k] === v);
}

/**
 * `trustDomains`: the mesh's trust domain and its aliases; policies' principals are spelled for all of them.
 * CUSTOM policies are reported when the selected workloads will deny every request instead (as
 * istiod's getExtAuthz refuses them): no provider named, one that is not a usable ext_authz
 * provider, or another CUSTOM policy that may select the same workload naming another provider.
 */
export function buildSecurity(
  kind: (k: string) => readonly ConfigObject[],
  errors: ConfigError[],
  trustDomains: readonly string[] = [DEFAULT_TRUST_DOMAIN],
  extAuthz: ReadonlyMap<string, ExtAuthzResolution> = new Map(),
  rootNamespace = 'istio-system',
): SecurityPolicies {
  const peerAuthentications = kind('PeerAuthentication').map((o) => ({ meta: o.metadata, spec: (o.body.spec ?? {}) as PeerAuthenticationSpec }));
  const denies = `the selected workloads deny every request (${CUSTOM_DENY_POLICY})`;
  const custom: { o: ConfigObject; spec: AuthorizationPolicySpec }[] = [];
  const authorizationPolicies = kind('AuthorizationPolicy').map((o) => {
    const spec = withTrustDomains((o.body.spec ?? {}) as AuthorizationPolicySpec, trustDomains);
    if (spec.action === 'CUSTOM' && !spec.targetRef && (spec.targetRefs?.length ?? 0) === 0) {
      const name = spec.provider?.name ?? '';
      const r = extAuthz.get(name);
      let problem: string | undefined;
      if (name === '') problem = 'no provider specified in authorization policy';
      else if (!r)
        problem = `available providers are [${[...extAuthz.keys()].join(' ')}] but found ${JSON.stringify(name)} (an envoyExtAuthzHttp or envoyExtAuthzGrpc extension provider of the MeshConfig)`;
      else if ('error' in r) problem = r.error;
      if (problem) errors.push(objectError(o, [{ path: 'spec.provider.name', message: `${problem}; ${denies}` }]));
      else custom.push({ o, spec });
    }
    return { meta: o.metadata, spec };
  });
  // istiod allows one provider per workload: report each later policy that may meet an earlier one.
  custom.forEach(({ o, spec }, i) => {
    const clash = custom.slice(0, i).find((e) => {
      const sameScope = e.o.metadata.namespace === o.metadata.namespace || e.o.metadata.namespace === rootNamespace || o.metadata.namespace === rootNamespace;
      return sameScope && e.spec.provider?.name !== spec.provider?.name && selectorsOverlap(e.spec.selector?.matchLabels, spec.selector?.matchLabels);
    });
    if (clash) {
      const message = `only 1 provider can be used per workload: workloads selected by this policy and by ${clash.o.metadata.namespace}/${clash.o.metadata.name} (provider ${clash.spec.provider?.name ?? ''}) would use two; ${denies.replace('the selected', 'those')}`;
      errors.push(objectError(o, [{ path: 'spec.provider.name', message }]));
    }
  });
  return { peerAuthentications, authorizationPolicies, extAuthz, rootNamespace };
}
