/**
 * The Kubernetes Gateway API (gateway.networking.k8s.io) as typed records, after the Gateway
 * API's Go types (apis/v1, v1alpha2, v1alpha3, v1beta1). Specs reach the model only after validation.
 */

export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';

/** Versions meshd reads per kind, preferred first: v1 where it exists, else the newest served. */
export const GATEWAY_API_VERSIONS = {
  GatewayClass: ['v1', 'v1beta1'],
  KubernetesGateway: ['v1', 'v1beta1'],
  HTTPRoute: ['v1', 'v1beta1'],
  GRPCRoute: ['v1', 'v1alpha2'],
  TCPRoute: ['v1alpha2'],
  TLSRoute: ['v1alpha3', 'v1alpha2'],
  ReferenceGrant: ['v1beta1', 'v1alpha2'],
  BackendTLSPolicy: ['v1', 'v1alpha3'],
} as const satisfies Record<string, readonly string[]>;

/** The controller name of GatewayClass `istio` (istiod's). */
export const ISTIO_GATEWAY_CONTROLLER = 'istio.io/gateway-controller';

export interface GatewayClassSpec {
  controllerName: string;
  description?: string;
}

export interface GatewayTlsConfig {
  mode?: 'Terminate' | 'Passthrough';
  certificateRefs?: SecretObjectReference[];
  options?: Record<string, string>;
}

export interface SecretObjectReference {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
}

export interface RouteGroupKind {
  group?: string;
  kind: string;
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }>;
}

export interface AllowedRoutes {
  namespaces?: { from?: 'All' | 'Same' | 'Selector'; selector?: LabelSelector };
  kinds?: RouteGroupKind[];
}

export interface GatewayListener {
  name: string;
  hostname?: string;
  port: number;
  protocol: string;
  tls?: GatewayTlsConfig;
  allowedRoutes?: AllowedRoutes;
}

export interface GatewayAddress {
  type?: string;
  value: string;
}

export interface KubernetesGatewaySpec {
  gatewayClassName: string;
  listeners: GatewayListener[];
  addresses?: GatewayAddress[];
  infrastructure?: { labels?: Record<string, string>; annotations?: Record<string, string> };
}

export interface ParentReference {
  group?: string;
  kind?: string;
  namespace?: string;
  name: string;
  sectionName?: string;
  port?: number;
}

export interface HTTPHeaderMatch {
  type?: 'Exact' | 'RegularExpression';
  name: string;
  value: string;
}

export interface HTTPRouteMatch {
  path?: { type?: 'Exact' | 'PathPrefix' | 'RegularExpression'; value?: string };
  headers?: HTTPHeaderMatch[];
  queryParams?: HTTPHeaderMatch[];
  method?: string;
}

export interface HTTPHeader {
  name: string;
  value: string;
}

export interface HeaderModifier {
  set?: HTTPHeader[];
  add?: HTTPHeader[];
  remove?: string[];
}

export interface HTTPPathModifier {
  type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  replaceFullPath?: string;
  replacePrefixMatch?: string;
}

export interface HTTPRouteFilter {
  type: 'RequestHeaderModifier' | 'ResponseHeaderModifier' | 'RequestRedirect' | 'URLRewrite' | 'RequestMirror' | 'ExtensionRef' | 'CORS';
  requestHeaderModifier?: HeaderModifier;
  responseHeaderModifier?: HeaderModifier;
  requestRedirect?: { scheme?: string; hostname?: string; path?: HTTPPathModifier; port?: number; statusCode?: number };
  urlRewrite?: { hostname?: string; path?: HTTPPathModifier };
  requestMirror?: { backendRef: BackendObjectReference; percent?: number; fraction?: { numerator: number; denominator?: number } };
  extensionRef?: { group: string; kind: string; name: string };
  /** Experimental channel (Gateway API v1.3+). */
  cors?: { allowOrigins?: string[]; allowCredentials?: boolean; allowMethods?: string[]; allowHeaders?: string[]; exposeHeaders?: string[]; maxAge?: number };
}

export interface BackendObjectReference {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
}

export interface BackendRef extends BackendObjectReference {
  weight?: number;
  filters?: HTTPRouteFilter[];
}

export interface HTTPRouteRule {
  name?: string;
  matches?: HTTPRouteMatch[];
  filters?: HTTPRouteFilter[];
  backendRefs?: BackendRef[];
  timeouts?: { request?: string; backendRequest?: string };
  /** Experimental channel (Gateway API v1.2+). */
  retry?: { codes?: number[]; attempts?: number; backoff?: string };
}

export interface HTTPRouteSpec {
  parentRefs?: ParentReference[];
  hostnames?: string[];
  rules?: HTTPRouteRule[];
}

export interface GRPCMethodMatch {
  type?: 'Exact' | 'RegularExpression';
  service?: string;
  method?: string;
}

export interface GRPCRouteMatch {
  method?: GRPCMethodMatch;
  headers?: HTTPHeaderMatch[];
}

export interface GRPCRouteRule {
  name?: string;
  matches?: GRPCRouteMatch[];
  filters?: HTTPRouteFilter[];
  backendRefs?: BackendRef[];
}

export interface GRPCRouteSpec {
  parentRefs?: ParentReference[];
  hostnames?: string[];
  rules?: GRPCRouteRule[];
}

export interface L4RouteSpec {
  parentRefs?: ParentReference[];
  /** TLSRoute only: SNI hostnames. */
  hostnames?: string[];
  rules?: Array<{ name?: string; backendRefs?: BackendRef[] }>;
}

export interface ReferenceGrantSpec {
  from: Array<{ group: string; kind: string; namespace: string }>;
  to: Array<{ group: string; kind: string; name?: string }>;
}

export interface BackendTLSPolicySpec {
  targetRefs: Array<{ group: string; kind: string; name: string; sectionName?: string }>;
  validation: {
    caCertificateRefs?: Array<{ group: string; kind: string; name: string }>;
    wellKnownCACertificates?: 'System';
    hostname: string;
    subjectAltNames?: Array<{ type: 'Hostname' | 'URI'; hostname?: string; uri?: string }>;
  };
}
