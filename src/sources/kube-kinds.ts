/**
 * The Kubernetes kinds meshd watches, and how one API object becomes the ConfigObject the
 * folder source would produce for the same YAML: only the fields that shape config are
 * kept, so that writes the mesh cannot see (status, managedFields, resourceVersion,
 * generation, and annotations where meshd reads none) leave the object — and with it the
 * snapshot's content hash — unchanged.
 */
import {
  GATEWAY_API_GROUP,
  GATEWAY_API_VERSIONS,
  ISTIO_NETWORKING_VERSIONS,
  ISTIO_SECURITY_VERSIONS,
  ISTIO_TELEMETRY_VERSIONS,
  ISTIO_EXTENSIONS_VERSIONS,
  KNOWN_KINDS,
  type ConfigError,
  type ConfigObject,
  type Kind,
} from '../model/objects';
import { DEFAULT_INPUT_LIMITS, type InputLimits } from '../config/limits';
import { checkTree } from './bounds';
import { parseObject } from './parse';
import { validated } from './source';

/** A resource a watcher can follow: a kind meshd models, or another (the mesh config's ConfigMap). */
export interface KubeResource {
  kind: string;
  group: string;
  versions: readonly string[];
  plural: string;
  namespaced: boolean;
  keepAnnotations: boolean;
  /** Watch this namespace only (default: every namespace). */
  namespace?: string;
}

export interface KubeKind extends KubeResource {
  kind: Kind;
  /** API group ('' for core). */
  group: string;
  /** Versions to try, preferred first. */
  versions: readonly string[];
  /** The resource name in paths. */
  plural: string;
  namespaced: boolean;
  /** Annotations meshd reads (Service: exportTo; Secret: type-specific ones validation checks). */
  keepAnnotations: boolean;
  /** Keep metadata.generation (Gateway API kinds: their status carries the observedGeneration it was computed from). */
  keepGeneration?: boolean;
  /** Only objects this accepts are config (ConfigMaps: those with a `ca.crt`); others are as if absent. */
  keep?: (raw: Readonly<Record<string, unknown>>) => boolean;
}

const core = (kind: Kind, plural: string, namespaced = true, keepAnnotations = false): KubeKind => ({ kind, group: '', versions: ['v1'], plural, namespaced, keepAnnotations });
const istio = (kind: Kind, plural: string): KubeKind => ({
  kind,
  group: 'networking.istio.io',
  versions: ISTIO_NETWORKING_VERSIONS,
  plural,
  namespaced: true,
  keepAnnotations: false,
});
const security = (kind: Kind, plural: string): KubeKind => ({
  kind,
  group: 'security.istio.io',
  versions: ISTIO_SECURITY_VERSIONS,
  plural,
  namespaced: true,
  keepAnnotations: false,
});

/** A Gateway API kind; generation is kept: status carries observedGeneration. */
const gatewayApi = (kind: keyof typeof GATEWAY_API_VERSIONS, plural: string, namespaced = true, keepAnnotations = false): KubeKind => ({
  kind,
  group: GATEWAY_API_GROUP,
  versions: GATEWAY_API_VERSIONS[kind],
  plural,
  namespaced,
  keepAnnotations,
  keepGeneration: true,
});

/** Every kind the Kubernetes source watches (Endpoints are not: EndpointSlices replace them). */
export const KUBE_KINDS: readonly KubeKind[] = [
  core('Namespace', 'namespaces', false),
  core('Service', 'services', true, true),
  { kind: 'EndpointSlice', group: 'discovery.k8s.io', versions: ['v1'], plural: 'endpointslices', namespaced: true, keepAnnotations: false },
  core('Pod', 'pods'),
  core('Secret', 'secrets', true, true),
  // Only ConfigMaps with a `ca.crt`, and only that key (configView): the CA bundles BackendTLSPolicies
  // name. Others (the MeshConfig's, the root cert meshd publishes) never reach the config.
  { ...core('ConfigMap', 'configmaps'), keep: (raw) => isRecord(raw['data']) && typeof raw['data']['ca.crt'] === 'string' },
  istio('VirtualService', 'virtualservices'),
  istio('DestinationRule', 'destinationrules'),
  istio('ServiceEntry', 'serviceentries'),
  istio('WorkloadEntry', 'workloadentries'),
  istio('WorkloadGroup', 'workloadgroups'),
  istio('Gateway', 'gateways'),
  istio('Sidecar', 'sidecars'),
  { kind: 'EnvoyFilter', group: 'networking.istio.io', versions: ['v1alpha3'], plural: 'envoyfilters', namespaced: true, keepAnnotations: false },
  { kind: 'ProxyConfig', group: 'networking.istio.io', versions: ['v1beta1'], plural: 'proxyconfigs', namespaced: true, keepAnnotations: false },
  security('PeerAuthentication', 'peerauthentications'),
  security('AuthorizationPolicy', 'authorizationpolicies'),
  security('RequestAuthentication', 'requestauthentications'),
  { kind: 'Telemetry', group: 'telemetry.istio.io', versions: ISTIO_TELEMETRY_VERSIONS, plural: 'telemetries', namespaced: true, keepAnnotations: false },
  { kind: 'WasmPlugin', group: 'extensions.istio.io', versions: ISTIO_EXTENSIONS_VERSIONS, plural: 'wasmplugins', namespaced: true, keepAnnotations: false },
  // The Gateway API: a Gateway's annotations matter (networking.istio.io/service-type, gateway.istio.io/*).
  gatewayApi('GatewayClass', 'gatewayclasses', false),
  gatewayApi('KubernetesGateway', 'gateways', true, true),
  gatewayApi('HTTPRoute', 'httproutes'),
  gatewayApi('GRPCRoute', 'grpcroutes'),
  gatewayApi('TCPRoute', 'tcproutes'),
  gatewayApi('TLSRoute', 'tlsroutes'),
  gatewayApi('ReferenceGrant', 'referencegrants'),
  gatewayApi('BackendTLSPolicy', 'backendtlspolicies'),
];

export function apiVersionOf(k: KubeResource, version: string): string {
  return k.group === '' ? version : `${k.group}/${version}`;
}

/** Discovery document path for one version of a kind's group. */
export function discoveryPath(k: KubeResource, version: string): string {
  return k.group === '' ? `/api/${version}` : `/apis/${k.group}/${version}`;
}

/** Path of the kind's collection across all namespaces (or in its one namespace). */
export function collectionPath(k: KubeResource, version: string): string {
  return k.namespace ? `${discoveryPath(k, version)}/namespaces/${k.namespace}/${k.plural}` : `${discoveryPath(k, version)}/${k.plural}`;
}

/** `kubernetes:<Kind>/<ns>/<name>` (cluster-scoped: `kubernetes:<Kind>/<name>`). */
export function originOf(kind: string, namespace: string | undefined, name: string): string {
  return `kubernetes:${kind}/${namespace ? `${namespace}/` : ''}${name}`;
}

type Json = Record<string, unknown>;

function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Pod status fields the model reads (the IP) and its phase; conditions and times are left out. */
const POD_STATUS_FIELDS = ['phase', 'podIP', 'podIPs'] as const;

/**
 * The object as meshd sees it: apiVersion and kind from the informer (list items of built-in
 * types carry neither), metadata reduced to name, namespace, labels (and annotations where
 * they matter), no status except a Pod's IPs and phase.
 */
export function configView(k: KubeKind, version: string, raw: Json): Json {
  const { metadata, status, apiVersion: _a, kind: _k, ...rest } = raw;
  const m = isRecord(metadata) ? metadata : {};
  const meta: Json = { name: m['name'] };
  if (k.namespaced) meta['namespace'] = m['namespace'];
  if (m['labels'] !== undefined && m['labels'] !== null) meta['labels'] = m['labels'];
  if (k.keepAnnotations && m['annotations'] !== undefined && m['annotations'] !== null) meta['annotations'] = m['annotations'];
  if (k.keepGeneration && typeof m['generation'] === 'number') meta['generation'] = m['generation'];
  // Gateway API conflicts (and BackendTLSPolicy precedence) go to the older object.
  if (k.keepGeneration && typeof m['creationTimestamp'] === 'string') meta['creationTimestamp'] = m['creationTimestamp'];
  // The kind as the API spells it (the Gateway API's Gateway is keyed KubernetesGateway here).
  const out: Json = { apiVersion: apiVersionOf(k, version), kind: KNOWN_KINDS[k.kind].kind, metadata: meta, ...rest };
  if (k.kind === 'ConfigMap') {
    // meshd reads a ConfigMap only for a BackendTLSPolicy's CA; other data never reaches the config.
    const data = isRecord(rest['data']) ? rest['data'] : {};
    delete out['binaryData'];
    out['data'] = typeof data['ca.crt'] === 'string' ? { 'ca.crt': data['ca.crt'] } : {};
  }
  if (k.kind === 'Pod' && isRecord(status)) {
    const s: Json = {};
    for (const f of POD_STATUS_FIELDS) if (status[f] !== undefined && status[f] !== null) s[f] = status[f];
    out['status'] = s;
  }
  return out;
}

export interface ObjectResult {
  /** The valid object, or none if it was left out. */
  object?: ConfigObject;
  errors: ConfigError[];
  /** What the result was computed from: equal fingerprints give equal results. */
  fingerprint: string;
}

/**
 * One API object → parse and validate exactly as a file's document would be. Its depth and
 * keys are checked first: the API server stores JSON nested as deep as it is sent, and the
 * fingerprint (JSON.stringify) and readers that follow recurse.
 */
export function toConfigObject(k: KubeKind, version: string, raw: Json, limits: InputLimits = DEFAULT_INPUT_LIMITS): ObjectResult {
  const view = configView(k, version, raw);
  const m = view['metadata'] as Json;
  const source = originOf(k.kind, typeof m['namespace'] === 'string' ? m['namespace'] : undefined, String(m['name'] ?? ''));
  const refused = checkTree(view, limits);
  if (refused.length > 0) {
    const { errors } = validated(parseObject(view, source, limits), limits);
    // An equal refusal of the same version is the same result.
    return { errors, fingerprint: `refused:${String((raw['metadata'] as Json | undefined)?.['resourceVersion'] ?? '')}:${JSON.stringify(errors)}` };
  }
  const { objects, errors } = validated(parseObject(view, source, limits), limits);
  return { object: objects[0], errors, fingerprint: JSON.stringify(view) };
}
