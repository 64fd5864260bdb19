/**
 * AuthorizationPolicy's end-user attributes as istiod's authz model matches them today: on the
 * payload Envoy's jwt_authn filter leaves in dynamic metadata (`envoy.filters.http.jwt_authn`,
 * key `payload`, filled by RequestAuthentication). These generators take all values of a field
 * at once (istiod's extended generators): a `notValues` list becomes one `not_id` of the whole.
 *
 * - `requestPrincipals`, `request.auth.principal`: `<iss>/<sub>` split at the last `/`; each
 *   value is the AND of a match on `iss` and one on `sub` (`*` anywhere becomes "present");
 * - `request.auth.audiences` (`aud`), `request.auth.presenter` (`azp`),
 *   `request.auth.claims[a][b]` (the nested claim `a.b`): the claim's value, or any element of
 *   it when it is a list, matches one of the values.
 */
import type { ProtoObject } from '../types';
import { regexMatcher, stringMatcher } from './matchers';

export const JWT_AUTHN_FILTER = 'envoy.filters.http.jwt_authn';
/** The dynamic metadata key of the verified payload (istiod's EnvoyJwtFilterPayload). */
export const JWT_PAYLOAD_KEY = 'payload';

const MATCH_ANY = regexMatcher('.+');

function payloadPath(claims: readonly string[]): ProtoObject[] {
  return [JWT_PAYLOAD_KEY, ...claims].map((key) => ({ key }));
}

function claimIs(claim: string, m: ProtoObject): ProtoObject {
  return { metadata: { filter: JWT_AUTHN_FILTER, path: payloadPath([claim]), value: { string_match: m } } };
}

/** One `<iss>/<sub>` value → the issuer and subject matchers (istiod's requestPrincipalGenerator). */
function principalParts(value: string): [ProtoObject, ProtoObject] {
  const idx = value.lastIndexOf('/');
  const found = idx >= 0;
  const iss = found ? value.slice(0, idx) : value;
  const sub = found ? value.slice(idx + 1) : '';
  if (value === '*') return [MATCH_ANY, MATCH_ANY];
  if (value.startsWith('*')) {
    if (!found) return [MATCH_ANY, { suffix: value.slice(1) }];
    return [iss === '*' ? MATCH_ANY : { suffix: iss.slice(1) }, { exact: sub }];
  }
  if (value.endsWith('*')) {
    if (!found) return [{ prefix: value.slice(0, -1) }, MATCH_ANY];
    return [{ exact: iss }, sub === '*' ? MATCH_ANY : { prefix: sub.slice(0, -1) }];
  }
  return [{ exact: iss }, { exact: sub }];
}

/** The principal for a list of request principals: one AND of iss and sub per value, ORed. */
export function requestPrincipalIds(values: readonly string[]): ProtoObject {
  const each = values.map((v) => {
    const [iss, sub] = principalParts(v);
    return { and_ids: { ids: [claimIs('iss', iss), claimIs('sub', sub)] } };
  });
  return each.length === 1 ? (each[0] as ProtoObject) : { or_ids: { ids: each } };
}

/** istiod's StringOrMatcher: one value matcher, or an OR of them. */
function valueOr(values: readonly string[]): ProtoObject {
  const ms = values.map((v) => ({ string_match: stringMatcher(v) }));
  return ms.length === 1 ? (ms[0] as ProtoObject) : { or_match: { value_matchers: ms } };
}

/**
 * A claim (path below the payload) matching one of `values`, whether it is a string or a list
 * (istiod's MetadataListValueMatcherForJWTClaims: the OR of a list match and a plain match).
 */
export function claimIds(claims: readonly string[], values: readonly string[]): ProtoObject {
  const v = valueOr(values);
  return { metadata: { filter: JWT_AUTHN_FILTER, path: payloadPath(claims), value: { or_match: { value_matchers: [{ list_match: { one_of: v } }, v] } } } };
}

/**
 * istiod's extractNameInNestedBrackets: `[a][b]` → [a, b]; anything else that is one bracketed
 * name (`[a.b]`, `[a[b]]`) → that name whole.
 */
export function nestedClaimNames(s: string): string[] {
  const claims: string[] = [];
  const endOf = (begin: number): number => {
    if (begin >= s.length || s[begin] !== '[') return -1;
    for (let i = begin + 1; i < s.length; i++) {
      if (s[i] === '[') return -1;
      if (s[i] === ']') return i;
    }
    return -1;
  };
  for (let begin = 0; begin < s.length;) {
    const end = endOf(begin);
    if (end < 0) return [s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s];
    claims.push(s.slice(begin + 1, end));
    begin = end + 1;
  }
  return claims;
}
