/**
 * The RequestAuthentication part of a snapshot: the policies (sorted by namespace/name, as the
 * other security kinds), and the JWKS of every remote key source they name, as the JWKS
 * resolver last fetched them. The two are separate snapshot fields, and `jwks` is a Map, so a
 * refreshed key set invalidates only what was generated from that one source, and nothing that
 * reads PeerAuthentications or AuthorizationPolicies. A source that could not be fetched is
 * reported here, on every policy that names it (the policy itself stays in force).
 */
import { type JwksEntry, jwksSourceOf } from './jwks';
import type { ConfigError, ConfigObject, FieldError, ObjectMeta, RequestAuthenticationSpec } from './objects';
import { objectError } from './objects';
import { parseDuration } from './validate/duration';

export interface RequestAuthenticationConfig {
  meta: ObjectMeta;
  spec: RequestAuthenticationSpec;
}

export interface RequestAuthn {
  requestAuthentications: readonly RequestAuthenticationConfig[];
  /** Source key (jwksSourceOf) → what is known of it; only sources some policy names. */
  jwks: ReadonlyMap<string, JwksEntry>;
}

const NOT_FETCHED: JwksEntry = { error: 'not fetched yet' };

function problem(url: string, e: JwksEntry): string {
  if (e.keys !== undefined) return `JWKS ${url} could not be refreshed (${e.error}); the keys fetched before are still served`;
  return `JWKS ${url} could not be fetched (${e.error}); until it can, a JWKS that rejects every token is served (requests without a token are left to AuthorizationPolicy)`;
}

/**
 * `fetched`: the JWKS resolver's entries. Undefined when nothing fetches (offline validation,
 * tests): remote sources then get no entry and no error, and are served the reject-all JWKS.
 */
export function buildRequestAuthn(kind: (k: string) => readonly ConfigObject[], fetched: ReadonlyMap<string, JwksEntry> | undefined, errors: ConfigError[]): RequestAuthn {
  const jwks = new Map<string, JwksEntry>();
  const requestAuthentications = kind('RequestAuthentication').map((o) => {
    const spec = (o.body.spec ?? {}) as RequestAuthenticationSpec;
    const problems: FieldError[] = [];
    (spec.jwtRules ?? []).forEach((rule, i) => {
      const src = jwksSourceOf(rule);
      if (!src || !fetched) return;
      const entry = fetched.get(src.key) ?? NOT_FETCHED;
      jwks.set(src.key, entry);
      if (entry.error !== undefined)
        problems.push({ path: `spec.jwtRules[${i}].${src.discovery ? 'issuer' : rule.jwksUri ? 'jwksUri' : 'jwks_uri'}`, message: problem(src.url, entry) });
    });
    if (problems.length > 0) errors.push(objectError(o, problems));
    return { meta: o.metadata, spec };
  });
  const sorted = new Map([...jwks].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { requestAuthentications, jwks: sorted };
}

/** A remote key source to fetch, with the longest fetch timeout the rules naming it ask for. */
export interface JwksFetchRequest {
  key: string;
  url: string;
  discovery: boolean;
  timeoutMs?: number;
}

/** The remote key sources the policies name, each once (what the resolver must fetch). */
export function jwksSources(policies: readonly RequestAuthenticationConfig[]): JwksFetchRequest[] {
  const out = new Map<string, JwksFetchRequest>();
  for (const p of policies) {
    for (const rule of p.spec.jwtRules ?? []) {
      const src = jwksSourceOf(rule);
      if (!src) continue;
      const nanos = rule.timeout !== undefined ? parseDuration(rule.timeout) : undefined;
      const ms = nanos !== undefined ? Number(nanos / 1_000_000n) : undefined;
      const prev = out.get(src.key)?.timeoutMs;
      const timeoutMs = ms === undefined ? prev : prev === undefined ? ms : Math.max(prev, ms);
      out.set(src.key, { ...src, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
    }
  }
  return [...out.values()];
}
