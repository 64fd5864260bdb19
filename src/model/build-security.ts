/**
 * The security part of a snapshot: PeerAuthentications and AuthorizationPolicies, sorted by
 * namespace/name (istiod orders by creation time, which meshd's sources do not keep; name order
 * is the stable stand-in). Selection per workload happens in generate/security.
 */
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
}

export const CUSTOM_DENY_POLICY = 'default-deny-all-due-to-bad-CUSTOM-action';

/** `trustDomains`: the mesh's trust domain and its aliases; policies' principals are spelled for all of them. */
export function buildSecurity(kind: (k: string) => readonly ConfigObject[], errors: ConfigError[], trustDomains: readonly string[] = [DEFAULT_TRUST_DOMAIN]): SecurityPolicies {
  const peerAuthentications = kind('PeerAuthentication').map((o) => ({ meta: o.metadata, spec: (o.body.spec ?? {}) as PeerAuthenticationSpec }));
  const authorizationPolicies = kind('AuthorizationPolicy').map((o) => {
    const spec = withTrustDomains((o.body.spec ?? {}) as AuthorizationPolicySpec, trustDomains);
    if (spec.action === 'CUSTOM') {
      // Kept (it still applies), but reported: meshd has no extension providers.
      errors.push(
        objectError(o, [
          {
            path: 'spec.action',
            message: `CUSTOM needs an extension provider, which meshd does not have; as istiod does for an unknown provider, the selected workloads deny every request (${CUSTOM_DENY_POLICY})`,
          },
        ]),
      );
    }
    return { meta: o.metadata, spec };
  });
  return { peerAuthentications, authorizationPolicies };
}
