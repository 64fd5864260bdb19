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
}

/** Where an object came from, for error messages: a file (and document index) or an API. */
export interface Origin {
  source: string;
  document?: number;
  /** Index in `items` when the document was a `kind: List` (or `*List`). */
  item?: number;
}

/** The kinds meshd understands, keyed by `group/Kind` (core group is empty). */
export const KNOWN_KINDS = {
  Namespace: { group: '', kind: 'Namespace', namespaced: false },
  Service: { group: '', kind: 'Service', namespaced: true },
  Endpoints: { group: '', kind: 'Endpoints', namespaced: true },
  Pod: { group: '', kind: 'Pod', namespaced: true },
  EndpointSlice: { group: 'discovery.k8s.io', kind: 'EndpointSlice', namespaced: true },
  VirtualService: { group: 'networking.istio.io', kind: 'VirtualService', namespaced: true },
  DestinationRule: { group: 'networking.istio.io', kind: 'DestinationRule', namespaced: true },
} as const;
export type Kind = keyof typeof KNOWN_KINDS;

export const ISTIO_NETWORKING_VERSIONS: readonly string[] = ['v1', 'v1beta1', 'v1alpha3'];

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

export interface HTTPRouteDestination {
  destination: Destination;
  weight?: number;
  headers?: Headers;
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
}

export interface HTTPRoute {
  name?: string;
  match?: HTTPMatchRequest[];
  route?: HTTPRouteDestination[];
  timeout?: string;
  headers?: Headers;
}

export interface L4MatchAttributes {
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

export interface VirtualServiceSpec {
  hosts?: string[];
  gateways?: string[];
  http?: HTTPRoute[];
  tcp?: TCPRoute[];
  exportTo?: string[];
}

export interface Subset {
  name: string;
  labels?: Record<string, string>;
  trafficPolicy?: TrafficPolicy;
}

export interface LoadBalancerSettings {
  simple?: 'UNSPECIFIED' | 'LEAST_CONN' | 'RANDOM' | 'PASSTHROUGH' | 'ROUND_ROBIN' | 'LEAST_REQUEST';
}

export interface TrafficPolicy {
  loadBalancer?: LoadBalancerSettings;
}

export interface DestinationRuleSpec {
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets?: Subset[];
  exportTo?: string[];
  workloadSelector?: { matchLabels?: Record<string, string> };
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
