/**
 * Istio security objects (security.istio.io v1 / v1beta1) as typed records: PeerAuthentication,
 * AuthorizationPolicy and RequestAuthentication, with the fields meshd reads. Validation
 * guarantees these shapes.
 */

export const ISTIO_SECURITY_VERSIONS: readonly string[] = ['v1', 'v1beta1'];

export interface WorkloadSelectorSpec {
  matchLabels?: Record<string, string>;
}

export type MtlsMode = 'UNSET' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';

export interface PeerAuthenticationSpec {
  selector?: WorkloadSelectorSpec;
  mtls?: { mode?: MtlsMode };
  /** Keys are workload (container) port numbers, as strings in YAML. */
  portLevelMtls?: Record<string, { mode?: MtlsMode }>;
}

export interface AuthzSource {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
  /** Trust domains of the peer's certificate (`source.trustDomain`): exact, `x*`, `*x` or `*`. */
  trustDomains?: string[];
  notTrustDomains?: string[];
}

export interface AuthzOperation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

export interface AuthzCondition {
  key: string;
  values?: string[];
  notValues?: string[];
}

export interface AuthzRule {
  from?: Array<{ source?: AuthzSource }>;
  to?: Array<{ operation?: AuthzOperation }>;
  when?: AuthzCondition[];
}

export type AuthzAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

export interface PolicyTargetReference {
  group?: string;
  kind?: string;
  name?: string;
  namespace?: string;
}

export interface AuthorizationPolicySpec {
  selector?: WorkloadSelectorSpec;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  action?: AuthzAction;
  provider?: { name?: string };
  rules?: AuthzRule[];
}

/** Where a JWT is looked for in a request: a header, with the prefix stripped from its value. */
export interface JWTHeader {
  name: string;
  prefix?: string;
}

export interface ClaimToHeader {
  header: string;
  claim: string;
}

/** One issuer a RequestAuthentication accepts tokens from (Istio's JWTRule). */
export interface JWTRule {
  issuer?: string;
  audiences?: string[];
  jwksUri?: string;
  /** The CRD's other spelling of jwksUri (the proto field name); the model reads jwksUri. */
  jwks_uri?: string;
  /** An inline JWKS document (JSON). */
  jwks?: string;
  fromHeaders?: JWTHeader[];
  fromParams?: string[];
  fromCookies?: string[];
  outputPayloadToHeader?: string;
  outputClaimToHeaders?: ClaimToHeader[];
  forwardOriginalToken?: boolean;
  /** How long fetching the JWKS may take (Go duration, default 5s). */
  timeout?: string;
  /** Claims whose space-separated string values are split into lists for matching. */
  spaceDelimitedClaims?: string[];
}

export interface RequestAuthenticationSpec {
  selector?: WorkloadSelectorSpec;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  jwtRules?: JWTRule[];
}
