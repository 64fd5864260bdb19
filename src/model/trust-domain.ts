/**
 * The mesh's trust domain and its aliases (MeshConfig `trustDomain`, `trustDomainAliases`), as
 * istiod's trustdomain.Bundle applies them:
 *
 * - identities of a service (SAN matchers of outbound clusters) are spelled in every trust domain
 *   of the bundle, so a peer whose certificate still carries an old trust domain is accepted;
 * - an AuthorizationPolicy principal (`<td>/ns/<ns>/sa/<sa>`) whose trust domain is one of the
 *   bundle's, or `cluster.local` (which always means "this mesh"), is expanded to one principal per
 *   trust domain of the bundle; a principal of another trust domain, or one that does not pin a
 *   trust domain (a lone star, a star in place of the trust domain, a suffix match), is kept as
 *   written.
 */
import type { AuthorizationPolicySpec, AuthzRule } from './objects-security';

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

/** The trust domain first, then its aliases, without repeats. */
export function trustDomainBundle(trustDomain: string, aliases: readonly string[] = []): string[] {
  return [...new Set([trustDomain, ...aliases].filter((d) => d.length > 0))];
}

/** `spiffe://<td>/ns/<ns>/sa/<sa>` for `<ns>/sa/<sa>` in each trust domain of the bundle. */
export function spiffeIdentities(bundle: readonly string[], nsSa: string): string[] {
  return bundle.map((td) => `spiffe://${td}/ns/${nsSa}`);
}

/** istiod's ReplaceTrustDomainAliases for one principal. */
export function expandPrincipal(principal: string, bundle: readonly string[]): string[] {
  // Not pinned to a trust domain: a leading star (any, any trust domain, a suffix), or no path.
  if (principal.startsWith('*') || !principal.includes('/')) return [principal];
  const slash = principal.indexOf('/');
  const td = principal.slice(0, slash);
  const rest = principal.slice(slash);
  if (td !== DEFAULT_TRUST_DOMAIN && !bundle.includes(td)) return [principal];
  return bundle.map((d) => `${d}${rest}`);
}

function expandAll(values: readonly string[] | undefined, bundle: readonly string[]): string[] | undefined {
  if (!values) return undefined;
  return [...new Set(values.flatMap((v) => expandPrincipal(v, bundle)))];
}

function expandRule(rule: AuthzRule, bundle: readonly string[]): AuthzRule {
  return {
    ...rule,
    ...(rule.from
      ? {
          from: rule.from.map((f) =>
            f.source && (f.source.principals || f.source.notPrincipals)
              ? {
                  ...f,
                  source: {
                    ...f.source,
                    ...(f.source.principals ? { principals: expandAll(f.source.principals, bundle) } : {}),
                    ...(f.source.notPrincipals ? { notPrincipals: expandAll(f.source.notPrincipals, bundle) } : {}),
                  },
                }
              : f,
          ),
        }
      : {}),
    ...(rule.when
      ? {
          when: rule.when.map((c) =>
            c.key === 'source.principal'
              ? { ...c, ...(c.values ? { values: expandAll(c.values, bundle) } : {}), ...(c.notValues ? { notValues: expandAll(c.notValues, bundle) } : {}) }
              : c,
          ),
        }
      : {}),
  };
}

/**
 * The policy with its principals spelled for the bundle. The bundle `[cluster.local]` changes
 * nothing, so the default mesh keeps the spec object as written.
 */
export function withTrustDomains(spec: AuthorizationPolicySpec, bundle: readonly string[]): AuthorizationPolicySpec {
  if (!spec.rules || (bundle.length === 1 && bundle[0] === DEFAULT_TRUST_DOMAIN)) return spec;
  return { ...spec, rules: spec.rules.map((r) => expandRule(r, bundle)) };
}
