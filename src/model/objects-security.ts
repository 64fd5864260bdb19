/**
 * Istio security objects (security.istio.io v1 / v1beta1) as typed records: PeerAuthentication
 * and AuthorizationPolicy, with the fields meshd reads. Validation guarantees these shapes.
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
