/**
 * The resource types the fake Kubernetes API server serves, and its discovery documents
 * (/api, /api/v1, /apis, /apis/<group>, /apis/<group>/<version>) built from them.
 */

export interface ApiResource {
  /** API group; '' is the core group (served under /api/v1). */
  group: string;
  /** Served versions, preferred first. Objects are stored once and readable at every version. */
  versions: readonly string[];
  /** Plural resource name in paths, e.g. `virtualservices`. */
  resource: string;
  kind: string;
  namespaced: boolean;
  /**
   * A custom resource: list items carry apiVersion and kind. Built-in types do not (a real
   * API server leaves them out of list items), so clients must not rely on them.
   */
  crd?: boolean;
  /** Has a `/status` subresource: the main resource ignores status changes and vice versa. */
  status?: boolean;
  shortNames?: readonly string[];
}

const core = (resource: string, kind: string, namespaced = true, status = false): ApiResource => ({ group: '', versions: ['v1'], resource, kind, namespaced, status });
const istio = (group: string, versions: readonly string[], resource: string, kind: string): ApiResource => ({
  group,
  versions,
  resource,
  kind,
  namespaced: true,
  crd: true,
  status: true,
});
const NETWORKING = ['v1', 'v1beta1', 'v1alpha3'] as const;
const SECURITY = ['v1', 'v1beta1'] as const;
const GATEWAY_API = 'gateway.networking.k8s.io';

/** What a cluster with Istio's and the Gateway API's CRDs installed serves (as far as meshd and its tests care). */
export const DEFAULT_RESOURCES: readonly ApiResource[] = [
  core('namespaces', 'Namespace', false, true),
  core('services', 'Service', true, true),
  core('endpoints', 'Endpoints'),
  core('pods', 'Pod', true, true),
  core('secrets', 'Secret'),
  core('configmaps', 'ConfigMap'),
  core('serviceaccounts', 'ServiceAccount'),
  core('events', 'Event'),
  core('nodes', 'Node', false, true),
  { group: 'discovery.k8s.io', versions: ['v1'], resource: 'endpointslices', kind: 'EndpointSlice', namespaced: true },
  { group: 'coordination.k8s.io', versions: ['v1'], resource: 'leases', kind: 'Lease', namespaced: true },
  { group: 'admissionregistration.k8s.io', versions: ['v1'], resource: 'mutatingwebhookconfigurations', kind: 'MutatingWebhookConfiguration', namespaced: false },
  { group: 'admissionregistration.k8s.io', versions: ['v1'], resource: 'validatingwebhookconfigurations', kind: 'ValidatingWebhookConfiguration', namespaced: false },
  { group: 'apps', versions: ['v1'], resource: 'deployments', kind: 'Deployment', namespaced: true, status: true },
  { group: 'certificates.k8s.io', versions: ['v1'], resource: 'certificatesigningrequests', kind: 'CertificateSigningRequest', namespaced: false, status: true },
  istio('networking.istio.io', NETWORKING, 'virtualservices', 'VirtualService'),
  istio('networking.istio.io', NETWORKING, 'destinationrules', 'DestinationRule'),
  istio('networking.istio.io', NETWORKING, 'serviceentries', 'ServiceEntry'),
  istio('networking.istio.io', NETWORKING, 'workloadentries', 'WorkloadEntry'),
  istio('networking.istio.io', NETWORKING, 'workloadgroups', 'WorkloadGroup'),
  istio('networking.istio.io', NETWORKING, 'gateways', 'Gateway'),
  istio('networking.istio.io', NETWORKING, 'sidecars', 'Sidecar'),
  istio('networking.istio.io', ['v1alpha3'], 'envoyfilters', 'EnvoyFilter'),
  istio('networking.istio.io', ['v1beta1'], 'proxyconfigs', 'ProxyConfig'),
  istio('security.istio.io', SECURITY, 'peerauthentications', 'PeerAuthentication'),
  istio('security.istio.io', SECURITY, 'authorizationpolicies', 'AuthorizationPolicy'),
  istio('security.istio.io', SECURITY, 'requestauthentications', 'RequestAuthentication'),
  istio('telemetry.istio.io', ['v1', 'v1alpha1'], 'telemetries', 'Telemetry'),
  istio('extensions.istio.io', ['v1alpha1'], 'wasmplugins', 'WasmPlugin'),
  // The Gateway API (the kinds meshd reads, and writes status for).
  { ...istio(GATEWAY_API, ['v1', 'v1beta1'], 'gatewayclasses', 'GatewayClass'), namespaced: false },
  istio(GATEWAY_API, ['v1', 'v1beta1'], 'gateways', 'Gateway'),
  istio(GATEWAY_API, ['v1', 'v1beta1'], 'httproutes', 'HTTPRoute'),
  istio(GATEWAY_API, ['v1', 'v1alpha2'], 'grpcroutes', 'GRPCRoute'),
  istio(GATEWAY_API, ['v1alpha2'], 'tcproutes', 'TCPRoute'),
  istio(GATEWAY_API, ['v1alpha3', 'v1alpha2'], 'tlsroutes', 'TLSRoute'),
  { ...istio(GATEWAY_API, ['v1beta1', 'v1alpha2'], 'referencegrants', 'ReferenceGrant'), status: false },
  istio(GATEWAY_API, ['v1', 'v1alpha3'], 'backendtlspolicies', 'BackendTLSPolicy'),
];

/** DEFAULT_RESOURCES without the given kinds (e.g. to simulate a missing CRD). */
export function resourcesWithout(...kinds: string[]): ApiResource[] {
  return DEFAULT_RESOURCES.filter((r) => !kinds.includes(r.kind));
}

/** DEFAULT_RESOURCES with one kind served only at the given versions. */
export function resourcesWithVersions(kind: string, versions: readonly string[]): ApiResource[] {
  return DEFAULT_RESOURCES.map((r) => (r.kind === kind ? { ...r, versions } : r));
}

export function groupVersion(group: string, version: string): string {
  return group === '' ? version : `${group}/${version}`;
}

/** `<resource>.<group>` as Status details and error messages spell it. */
export function qualifiedResource(r: ApiResource): string {
  return r.group === '' ? r.resource : `${r.resource}.${r.group}`;
}

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function singular(kind: string): string {
  return kind.toLowerCase();
}

export function apiResourceList(resources: readonly ApiResource[], group: string, version: string): object | undefined {
  const served = resources.filter((r) => r.group === group && r.versions.includes(version));
  if (served.length === 0) return undefined;
  const list: object[] = [];
  for (const r of served) {
    list.push({ name: r.resource, singularName: singular(r.kind), namespaced: r.namespaced, kind: r.kind, verbs: VERBS, ...(r.shortNames ? { shortNames: r.shortNames } : {}) });
    if (r.status) list.push({ name: `${r.resource}/status`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs: ['get', 'patch', 'update'] });
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: groupVersion(group, version), resources: list };
}

function groupDoc(resources: readonly ApiResource[], name: string): object | undefined {
  const versions: string[] = [];
  for (const r of resources) if (r.group === name) for (const v of r.versions) if (!versions.includes(v)) versions.push(v);
  if (versions.length === 0) return undefined;
  const gv = (v: string): object => ({ groupVersion: `${name}/${v}`, version: v });
  return { name, versions: versions.map(gv), preferredVersion: gv(versions[0] as string) };
}

export function apiGroup(resources: readonly ApiResource[], name: string): object | undefined {
  const g = groupDoc(resources, name);
  return g ? { kind: 'APIGroup', apiVersion: 'v1', ...g } : undefined;
}

export function apiGroupList(resources: readonly ApiResource[]): object {
  const names = [...new Set(resources.map((r) => r.group).filter((g) => g !== ''))];
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: names.map((n) => groupDoc(resources, n)) };
}

export function apiVersions(address: string): object {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: address }] };
}
