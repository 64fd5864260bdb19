/**
 * RequestAuthentication → Envoy's `envoy.filters.http.jwt_authn`, as istiod's authn policy
 * applier builds it (convertToEnvoyJwtConfig, JWKS fetched by istiod and inlined):
 *
 * - which policies apply: those in the workload's namespace, then the root namespace, whose
 *   selector matches its labels; targetRef(s) only for Kubernetes Gateway API gateways (a
 *   workload labelled `gateway.networking.k8s.io/gateway-name`), by Gateway name in the same
 *   namespace; such gateways also take selector policies that have no targetRef;
 * - their rules sorted by issuer, one provider per rule named `origins-<i>`, payload in the
 *   metadata key `payload` (what AuthorizationPolicy's request.auth.* match), `scope` and
 *   `permission` (and the rule's spaceDelimitedClaims) split into lists;
 * - the requirement: a token, when present, must be valid for one of the providers; requests
 *   without one pass (allow_missing) and are left to AuthorizationPolicy; CORS preflights pass;
 * - keys inline: the rule's `jwks`, or the JWKS fetched from its source; one not fetched (yet)
 *   is istiod's fake JWKS, which no token verifies against.
 *
 * Gateways clear the route cache after verification (istiod does for every non-sidecar proxy),
 * so routes can match on claims. Pure: JWKS arrive through the snapshot.
 */
import type { RequestAuthenticationConfig } from '../../model/build-reqauthn';
import { fakeJwks, jwksSourceOf, ruleJwksUri } from '../../model/jwks';
import type { JWTRule, PolicyTargetReference } from '../../model/objects';
import type { MeshSnapshot } from '../../model/snapshot';
import { labelsMatch } from '../../model/snapshot';
import type { ProtoObject } from '../types';
import { labelsKey } from './authz';
import { JWT_AUTHN_FILTER, JWT_PAYLOAD_KEY } from './jwt-claims';

export { JWT_AUTHN_FILTER, JWT_PAYLOAD_KEY } from './jwt-claims';
export const JWT_AUTHN_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';
/** The label the Kubernetes Gateway API puts on a gateway's pods. */
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
/** Claims Envoy always splits on spaces for matching (istiod's buildSpaceDelimitedClaims). */
const DEFAULT_SPACE_DELIMITED = ['permission', 'scope'];

function targetRefs(spec: RequestAuthenticationConfig['spec']): readonly PolicyTargetReference[] {
  if (spec.targetRefs && spec.targetRefs.length > 0) return spec.targetRefs;
  return spec.targetRef ? [spec.targetRef] : [];
}

/** istiod's WorkloadPolicyMatcher.ShouldAttachPolicy, for sidecars and gateways (no waypoints). */
function attaches(p: RequestAuthenticationConfig, namespace: string, labels: Readonly<Record<string, string>>): boolean {
  const refs = targetRefs(p.spec);
  const gatewayName = labels[GATEWAY_NAME_LABEL];
  if (gatewayName === undefined || refs.length === 0) return refs.length === 0 && labelsMatch(p.spec.selector?.matchLabels, labels);
  if (p.meta.namespace !== namespace) return false;
  return refs.some((r) => (!r.namespace || r.namespace === namespace) && r.group === GATEWAY_API_GROUP && r.kind === 'Gateway' && r.name === gatewayName);
}

/** The policies that apply to a workload, its own namespace's first (memoised per namespace and label set). */
export function workloadJwtPolicies(snap: MeshSnapshot, namespace: string, labels: Readonly<Record<string, string>>): readonly RequestAuthenticationConfig[] {
  return snap.memo.get(`ra|${namespace}|${labelsKey(labels)}`, () => {
    const all = snap.requestAuthentications;
    const inNs = (ns: string): RequestAuthenticationConfig[] => all.filter((p) => p.meta.namespace === ns && attaches(p, namespace, labels));
    return namespace === snap.rootNamespace ? inNs(namespace) : [...inNs(namespace), ...inNs(snap.rootNamespace)];
  });
}

function spaceDelimited(claims: readonly string[] | undefined): string[] {
  return [...new Set([...(claims ?? []), ...DEFAULT_SPACE_DELIMITED])].sort();
}

/** The key set a rule's provider carries inline. */
function localJwks(snap: MeshSnapshot, rule: JWTRule): string {
  if (rule.jwks) return rule.jwks;
  const src = jwksSourceOf(rule);
  const keys = src ? snap.jwks.get(src.key)?.keys : undefined;
  return keys ?? fakeJwks(ruleJwksUri(rule));
}

function provider(snap: MeshSnapshot, rule: JWTRule, clearRouteCache: boolean): ProtoObject {
  const p: ProtoObject = {};
  if (rule.issuer) p.issuer = rule.issuer;
  if (rule.audiences && rule.audiences.length > 0) p.audiences = [...rule.audiences];
  if (rule.forwardOriginalToken) p.forward = true;
  if (rule.outputPayloadToHeader) p.forward_payload_header = rule.outputPayloadToHeader;
  p.payload_in_metadata = JWT_PAYLOAD_KEY;
  p.normalize_payload_in_metadata = { space_delimited_claims: spaceDelimited(rule.spaceDelimitedClaims) };
  if (clearRouteCache) p.clear_route_cache = true;
  if (rule.outputClaimToHeaders && rule.outputClaimToHeaders.length > 0) {
    p.claim_to_headers = rule.outputClaimToHeaders.map((c) => ({ header_name: c.header, claim_name: c.claim }));
  }
  if (rule.fromHeaders && rule.fromHeaders.length > 0) {
    p.from_headers = rule.fromHeaders.map((h) => (h.prefix ? { name: h.name, value_prefix: h.prefix } : { name: h.name }));
  }
  if (rule.fromParams && rule.fromParams.length > 0) p.from_params = [...rule.fromParams];
  if (rule.fromCookies && rule.fromCookies.length > 0) p.from_cookies = [...rule.fromCookies];
  p.local_jwks = { inline_string: localJwks(snap, rule) };
  return p;
}

const requiresAny = (requirements: ProtoObject[]): ProtoObject => ({ requires_any: { requirements } });

/**
 * The JwtAuthentication config for `policies`, or undefined when they hold no rule. One
 * provider: {provider OR allow_missing}. Several: OR of every provider and of the AND of each
 * {provider OR allow_missing}: a token present must be valid, and providers reading the same
 * location still pass through the outer OR.
 */
export function jwtAuthentication(snap: MeshSnapshot, policies: readonly RequestAuthenticationConfig[], clearRouteCache: boolean): ProtoObject | undefined {
  const rules = policies.flatMap((p) => p.spec.jwtRules ?? []);
  if (rules.length === 0) return undefined;
  // Stable: rules of one issuer keep policy order (istiod's sort leaves their order unspecified).
  rules.sort((a, b) => ((a.issuer ?? '') < (b.issuer ?? '') ? -1 : (a.issuer ?? '') > (b.issuer ?? '') ? 1 : 0));
  const providers: ProtoObject = {};
  const inner: ProtoObject[] = [];
  const outer: ProtoObject[] = [];
  rules.forEach((rule, i) => {
    const name = `origins-${i}`;
    providers[name] = provider(snap, rule, clearRouteCache);
    inner.push(requiresAny([{ provider_name: name }, { allow_missing: {} }]));
    outer.push({ provider_name: name });
  });
  const requires = inner.length === 1 ? inner[0] : requiresAny([...outer, { requires_all: { requirements: inner } }]);
  return { providers, rules: [{ match: { prefix: '/' }, requires }], bypass_cors_preflight: true };
}

/** The jwt_authn HTTP filter for a workload, or undefined when no policy with rules applies. */
export function jwtAuthnFilter(snap: MeshSnapshot, namespace: string, labels: Readonly<Record<string, string>>, clearRouteCache: boolean): ProtoObject | undefined {
  return snap.memo.get(`jwt|${namespace}|${labelsKey(labels)}|${clearRouteCache}`, () => {
    const config = jwtAuthentication(snap, workloadJwtPolicies(snap, namespace, labels), clearRouteCache);
    return config ? { name: JWT_AUTHN_FILTER, typed_config: { '@type': JWT_AUTHN_TYPE, ...config } } : undefined;
  });
}
