/**
 * The Kubernetes-shaped objects meshd reads, as typed records. Sources (files, Kubernetes)
 * produce `ConfigObject`s; validation and the model builder read only these types.
 */

export interface ObjectMeta {
  name: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
  resourceVersion?: string;
  generation?: number;
  /** RFC 3339; kept for the Gateway API kinds, whose conflicts the older object wins. */
  creationTimestamp?: string;
}

/** Where an object came from, for error messages: a file (and document index) or an API. */
export interface Origin {
  source: string;
  document?: number;
  /** Index in `items` when the document was a `kind: List` (or `*List`). */
  item?: number;
}

/** The kinds meshd understands, keyed by their kind (KubernetesGateway: the Gateway API's Gateway). */
export const KNOWN_KINDS = {
  Namespace: { group: '', kind: 'Namespace', namespaced: false },
  Service: { group: '', kind: 'Service', namespaced: true },
  Endpoints: { group: '', kind: 'Endpoints', namespaced: true },
  Pod: { group: '', kind: 'Pod', namespaced: true },
  EndpointSlice: { group: 'discovery.k8s.io', kind: 'EndpointSlice', namespaced: true },
  VirtualService: { group: 'networking.istio.io', kind: 'VirtualService', namespaced: true },
  DestinationRule: { group: 'networking.istio.io', kind: 'DestinationRule', namespaced: true },
  ServiceEntry: { group: 'networking.istio.io', kind: 'ServiceEntry', namespaced: true },
  WorkloadEntry: { group: 'networking.istio.io', kind: 'WorkloadEntry', namespaced: true },
  Gateway: { group: 'networking.istio.io', kind: 'Gateway', namespaced: true },
  Sidecar: { group: 'networking.istio.io', kind: 'Sidecar', namespaced: true },
  Secret: { group: '', kind: 'Secret', namespaced: true },
  // Read for the CA bundles (`ca.crt`) BackendTLSPolicies name.
  ConfigMap: { group: '', kind: 'ConfigMap', namespaced: true },
  PeerAuthentication: { group: 'security.istio.io', kind: 'PeerAuthentication', namespaced: true },
  AuthorizationPolicy: { group: 'security.istio.io', kind: 'AuthorizationPolicy', namespaced: true },
  RequestAuthentication: { group: 'security.istio.io', kind: 'RequestAuthentication', namespaced: true },
  Telemetry: { group: 'telemetry.istio.io', kind: 'Telemetry', namespaced: true },
  EnvoyFilter: { group: 'networking.istio.io', kind: 'EnvoyFilter', namespaced: true },
  // The Kubernetes Gateway API. `Gateway` there is keyed KubernetesGateway (istiod's name), since Gateway is Istio's.
  GatewayClass: { group: 'gateway.networking.k8s.io', kind: 'GatewayClass', namespaced: false },
  KubernetesGateway: { group: 'gateway.networking.k8s.io', kind: 'Gateway', namespaced: true },
  HTTPRoute: { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespaced: true },
  GRPCRoute: { group: 'gateway.networking.k8s.io', kind: 'GRPCRoute', namespaced: true },
  TCPRoute: { group: 'gateway.networking.k8s.io', kind: 'TCPRoute', namespaced: true },
  TLSRoute: { group: 'gateway.networking.k8s.io', kind: 'TLSRoute', namespaced: true },
  ReferenceGrant: { group: 'gateway.networking.k8s.io', kind: 'ReferenceGrant', namespaced: true },
  BackendTLSPolicy: { group: 'gateway.networking.k8s.io', kind: 'BackendTLSPolicy', namespaced: true },
  ProxyConfig: { group: 'networking.istio.io', kind: 'ProxyConfig', namespaced: true },
  WorkloadGroup: { group: 'networking.istio.io', kind: 'WorkloadGroup', namespaced: true },
  WasmPlugin: { group: 'extensions.istio.io', kind: 'WasmPlugin', namespaced: true },
} as const;
export type Kind = keyof typeof KNOWN_KINDS;

import { GATEWAY_API_VERSIONS } from './objects-gatewayapi';

export const ISTIO_NETWORKING_VERSIONS: readonly string[] = ['v1', 'v1beta1', 'v1alpha3'];

// Istio security (security.istio.io): spec types live beside this file.
export * from './objects-security';
// The Telemetry API (telemetry.istio.io).
export * from './objects-telemetry';
// WasmPlugin (extensions.istio.io/v1alpha1).
export * from './objects-wasm';
// EnvoyFilter (networking.istio.io/v1alpha3).
export * from './objects-envoyfilter';
// The Kubernetes Gateway API (gateway.networking.k8s.io).
export * from './objects-gatewayapi';

/** Kinds served at fewer versions than their group: EnvoyFilter exists only as v1alpha3, ProxyConfig only as v1beta1; each Gateway API kind at its own. */
export const KIND_VERSIONS: Readonly<Partial<Record<string, readonly string[]>>> = {
  EnvoyFilter: ['v1alpha3'],
  ProxyConfig: ['v1beta1'],
  WasmPlugin: ['v1alpha1'],
  ...GATEWAY_API_VERSIONS,
};

/** One object as read from a source, before validation: spec is still untrusted JSON. */
export interface ConfigObject {
  kind: Kind;
  apiVersion: string;
  metadata: ObjectMeta;
  /** The whole object body as parsed (spec, status, subsets, endpoints, ports …). */
  body: Readonly<Record<string, unknown>>;
  origin: Origin;
}

/** `Kind/namespace/name`, unique within a store. */
export function objectKey(kind: string, namespace: string, name: string): string {
  return namespace ? `${kind}/${namespace}/${name}` : `${kind}/${name}`;
}

/** A validation problem: which object, which field, and why. */
export interface FieldError {
  /** Dotted path with indexes, e.g. `spec.http[0].route[1].weight`. */
  path: string;
  message: string;
}

/** An object (or a file) that was left out, and why. */
export interface ConfigError {
  source: string;
  document?: number;
  /** Index in `items` when the document was a `kind: List` (or `*List`). */
  item?: number;
  kind?: string;
  /** The apiVersion the object gave, when it was left out for its kind or apiVersion. */
  apiVersion?: string;
  namespace?: string;
  name?: string;
  errors: readonly FieldError[];
}

// ---- Kubernetes core / discovery (the fields meshd reads) ----

export interface ServicePortSpec {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  appProtocol?: string;
}

export interface ServiceSpec {
  ports?: ServicePortSpec[];
  selector?: Record<string, string>;
  clusterIP?: string;
  type?: string;
  externalName?: string;
}

export interface EndpointSliceSpec {
  addressType: 'IPv4' | 'IPv6' | 'FQDN';
  endpoints?: Array<{
    addresses: string[];
    conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
    hostname?: string;
    nodeName?: string;
    zone?: string;
    targetRef?: { kind?: string; name?: string; namespace?: string; uid?: string };
  }>;
  ports?: Array<{ name?: string; port?: number; protocol?: string; appProtocol?: string }>;
}

export interface EndpointsSpec {
  subsets?: Array<{
    addresses?: Array<{ ip: string; hostname?: string; nodeName?: string; targetRef?: { kind?: string; name?: string; namespace?: string } }>;
    notReadyAddresses?: Array<{ ip: string; targetRef?: { kind?: string; name?: string; namespace?: string } }>;
    ports?: Array<{ name?: string; port: number; protocol?: string; appProtocol?: string }>;
  }>;
}

export interface PodSpecLite {
  serviceAccountName?: string;
  nodeName?: string;
  containers?: Array<{ name: string; ports?: Array<{ name?: string; containerPort: number; protocol?: string }> }>;
}

export interface PodStatusLite {
  podIP?: string;
  podIPs?: Array<{ ip: string }>;
  phase?: string;
}

// ---- Istio networking (networking.istio.io) ----

export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface PortSelector {
  number?: number;
}

export interface Destination {
  host: string;
  subset?: string;
  port?: PortSelector;
}

export interface HeaderOperations {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface Headers {
  request?: HeaderOperations;
  response?: HeaderOperations;
}

export interface HTTPRouteDestination {
  destination: Destination;
  weight?: number;
  headers?: Headers;
}

export interface HTTPMatchRequest {
  name?: string;
  uri?: StringMatch;
  scheme?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  headers?: Record<string, StringMatch>;
  withoutHeaders?: Record<string, StringMatch>;
  queryParams?: Record<string, StringMatch>;
  port?: number;
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
  gateways?: string[];
  ignoreUriCase?: boolean;
  statPrefix?: string;
}

export interface Percent {
  value?: number;
}

export interface HTTPRedirect {
  uri?: string;
  authority?: string;
  port?: number;
  derivePort?: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT';
  scheme?: string;
  redirectCode?: number;
}

export interface HTTPDirectResponse {
  status: number;
  body?: { string?: string; bytes?: string };
}

export interface HTTPRewrite {
  uri?: string;
  authority?: string;
  uriRegexRewrite?: { match?: string; rewrite?: string };
}

export interface HTTPRetry {
  attempts?: number;
  perTryTimeout?: string;
  retryOn?: string;
  retryRemoteLocalities?: boolean;
  retryIgnorePreviousHosts?: boolean;
  backoff?: string;
}

export interface HTTPFaultInjection {
  delay?: { fixedDelay?: string; exponentialDelay?: string; percent?: number; percentage?: Percent };
  abort?: { httpStatus?: number; grpcStatus?: string; http2Error?: string; percentage?: Percent };
}

export interface HTTPMirrorPolicy {
  destination: Destination;
  percentage?: Percent;
}

export interface CorsPolicy {
  allowOrigin?: string[];
  allowOrigins?: StringMatch[];
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  maxAge?: string;
  allowCredentials?: boolean;
  unmatchedPreflights?: 'UNSPECIFIED' | 'FORWARD' | 'IGNORE';
}

export interface Delegate {
  name?: string;
  namespace?: string;
}

export interface HTTPRoute {
  name?: string;
  match?: HTTPMatchRequest[];
  route?: HTTPRouteDestination[];
  redirect?: HTTPRedirect;
  directResponse?: HTTPDirectResponse;
  delegate?: Delegate;
  rewrite?: HTTPRewrite;
  timeout?: string;
  retries?: HTTPRetry;
  fault?: HTTPFaultInjection;
  mirror?: Destination;
  mirrors?: HTTPMirrorPolicy[];
  mirrorPercent?: number;
  mirror_percent?: number;
  mirrorPercentage?: Percent;
  corsPolicy?: CorsPolicy;
  headers?: Headers;
}

export interface L4MatchAttributes {
  destinationSubnets?: string[];
  port?: number;
  sourceLabels?: Record<string, string>;
  gateways?: string[];
  sourceNamespace?: string;
}

export interface TLSMatchAttributes {
  sniHosts: string[];
  destinationSubnets?: string[];
  port?: number;
  sourceLabels?: Record<string, string>;
  gateways?: string[];
  sourceNamespace?: string;
}

export interface RouteDestination {
  destination: Destination;
  weight?: number;
}

export interface TCPRoute {
  match?: L4MatchAttributes[];
  route?: RouteDestination[];
}

export interface TLSRoute {
  match: TLSMatchAttributes[];
  route?: RouteDestination[];
}

export interface VirtualServiceSpec {
  hosts?: string[];
  gateways?: string[];
  http?: HTTPRoute[];
  tls?: TLSRoute[];
  tcp?: TCPRoute[];
  exportTo?: string[];
}

export interface Subset {
  name: string;
  labels?: Record<string, string>;
  trafficPolicy?: TrafficPolicy;
}

export interface ConsistentHashLB {
  httpHeaderName?: string;
  httpCookie?: { name: string; path?: string; ttl?: string; attributes?: Array<{ name: string; value?: string }> };
  useSourceIp?: boolean;
  httpQueryParameterName?: string;
  ringHash?: { minimumRingSize?: number };
  maglev?: { tableSize?: number };
  minimumRingSize?: number;
}

export interface LocalityLbSetting {
  distribute?: Array<{ from?: string; to?: Record<string, number> }>;
  failover?: Array<{ from?: string; to?: string }>;
  failoverPriority?: string[];
  enabled?: boolean;
}

export interface LoadBalancerSettings {
  simple?: 'UNSPECIFIED' | 'LEAST_CONN' | 'RANDOM' | 'PASSTHROUGH' | 'ROUND_ROBIN' | 'LEAST_REQUEST';
  consistentHash?: ConsistentHashLB;
  localityLbSetting?: LocalityLbSetting;
  warmupDurationSecs?: string;
  warmup?: { duration?: string; minimumPercent?: number; aggression?: number };
}

export interface ConnectionPoolSettings {
  tcp?: {
    maxConnections?: number;
    connectTimeout?: string;
    tcpKeepalive?: { probes?: number; time?: string; interval?: string };
    maxConnectionDuration?: string;
    idleTimeout?: string;
  };
  http?: {
    http1MaxPendingRequests?: number;
    http2MaxRequests?: number;
    maxRequestsPerConnection?: number;
    maxRetries?: number;
    idleTimeout?: string;
    h2UpgradePolicy?: 'DEFAULT' | 'DO_NOT_UPGRADE' | 'UPGRADE';
    useClientProtocol?: boolean;
    maxConcurrentStreams?: number;
  };
}

export interface OutlierDetection {
  splitExternalLocalOriginErrors?: boolean;
  consecutiveLocalOriginFailures?: number;
  consecutiveGatewayErrors?: number;
  consecutive5xxErrors?: number;
  consecutiveErrors?: number;
  interval?: string;
  baseEjectionTime?: string;
  maxEjectionPercent?: number;
  minHealthPercent?: number;
}

export interface ClientTLSSettings {
  mode?: 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';
  clientCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  credentialName?: string;
  subjectAltNames?: string[];
  sni?: string;
  insecureSkipVerify?: boolean;
  caCrl?: string;
}

export interface PortTrafficPolicy {
  port?: PortSelector;
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTLSSettings;
}

export interface TrafficPolicy {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTLSSettings;
  portLevelSettings?: PortTrafficPolicy[];
  tunnel?: { protocol?: string; targetHost?: string; targetPort?: number };
  proxyProtocol?: { version?: 'V1' | 'V2' };
  retryBudget?: { percent?: number; minRetryConcurrency?: number };
}

export interface DestinationRuleSpec {
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets?: Subset[];
  exportTo?: string[];
  workloadSelector?: { matchLabels?: Record<string, string> };
}

// ---- ServiceEntry / WorkloadEntry ----

export interface IstioPort {
  number: number;
  protocol?: string;
  name: string;
  targetPort?: number;
}

export interface WorkloadEntrySpec {
  address?: string;
  ports?: Record<string, number>;
  labels?: Record<string, string>;
  network?: string;
  locality?: string;
  weight?: number;
  serviceAccount?: string;
}

export type ServiceEntryResolution = 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';

export interface ServiceEntrySpec {
  hosts: string[];
  addresses?: string[];
  ports?: IstioPort[];
  location?: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  resolution?: ServiceEntryResolution;
  endpoints?: WorkloadEntrySpec[];
  workloadSelector?: { labels?: Record<string, string> };
  exportTo?: string[];
  subjectAltNames?: string[];
}

// ---- Gateway ----

export interface ServerTLSSettings {
  httpsRedirect?: boolean;
  mode?: 'PASSTHROUGH' | 'SIMPLE' | 'MUTUAL' | 'AUTO_PASSTHROUGH' | 'ISTIO_MUTUAL' | 'OPTIONAL_MUTUAL';
  serverCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  caCrl?: string;
  credentialName?: string;
  credentialNames?: string[];
  subjectAltNames?: string[];
  verifyCertificateSpki?: string[];
  verifyCertificateHash?: string[];
  minProtocolVersion?: 'TLS_AUTO' | 'TLSV1_0' | 'TLSV1_1' | 'TLSV1_2' | 'TLSV1_3';
  maxProtocolVersion?: 'TLS_AUTO' | 'TLSV1_0' | 'TLSV1_1' | 'TLSV1_2' | 'TLSV1_3';
  cipherSuites?: string[];
}

export interface GatewayServer {
  port: { number: number; protocol: string; name: string; targetPort?: number };
  bind?: string;
  hosts: string[];
  tls?: ServerTLSSettings;
  defaultEndpoint?: string;
  name?: string;
}

export interface GatewaySpec {
  servers: GatewayServer[];
  selector?: Record<string, string>;
}

// ---- Sidecar ----

export type CaptureMode = 'DEFAULT' | 'IPTABLES' | 'NONE';

export interface SidecarPort {
  number?: number;
  protocol?: string;
  name?: string;
  targetPort?: number;
}

export interface IstioEgressListener {
  port?: SidecarPort;
  bind?: string;
  captureMode?: CaptureMode;
  /** `namespace/dnsName`: namespace `*`, `.`, `~` or a name; dnsName `*`, `*.suffix` or an FQDN. */
  hosts: string[];
}

export interface IstioIngressListener {
  port: SidecarPort;
  bind?: string;
  captureMode?: CaptureMode;
  /** `127.0.0.1:<port>`, `0.0.0.0:<port>`, `[::1]:<port>`, `[::]:<port>` or `unix://<path>`. */
  defaultEndpoint?: string;
  tls?: ServerTLSSettings;
  connectionPool?: Record<string, unknown>;
}

export interface SidecarSpec {
  workloadSelector?: { labels?: Record<string, string> };
  ingress?: IstioIngressListener[];
  egress?: IstioEgressListener[];
  inboundConnectionPool?: Record<string, unknown>;
  outboundTrafficPolicy?: { mode?: 'REGISTRY_ONLY' | 'ALLOW_ANY'; egressProxy?: Record<string, unknown> };
}

// ---- Secret (gateway credentials) ----

export interface SecretBody {
  type?: string;
  /** base64 values, as Kubernetes stores them. */
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

/** A ConfigError naming one object and where it came from. */
export function objectError(o: ConfigObject, errors: readonly FieldError[]): ConfigError {
  return {
    source: o.origin.source,
    document: o.origin.document,
    item: o.origin.item,
    kind: o.kind,
    namespace: o.metadata.namespace,
    name: o.metadata.name,
    errors,
  };
}
