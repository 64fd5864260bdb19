/**
 * Injection settings: what istiod takes from its Helm values and mesh config for the sidecar
 * template, as one typed object. Defaults follow Istio 1.24's chart.
 */
import { parse as parseYaml } from 'yaml';

export const DEFAULT_PROXY_IMAGE = 'docker.io/istio/proxyv2:1.24.0';

/** Kubernetes resource requests/limits, as the chart's `global.proxy.resources`. */
export interface ResourceRequirements {
  requests?: Readonly<Record<string, string>>;
  limits?: Readonly<Record<string, string>>;
}

export interface InjectionOptions {
  /** Image of both `istio-proxy` and `istio-init` (`sidecar.istio.io/proxyImage` overrides it). */
  image: string;
  /** The version the sidecar announces (`ISTIO_META_ISTIO_VERSION`); from the image tag by default. */
  istioVersion: string;
  /** xDS address written into PROXY_CONFIG (`discoveryAddress`). */
  discoveryAddress: string;
  /** Certificate service address (`CA_ADDR`). */
  caAddress: string;
  clusterId: string;
  meshId: string;
  trustDomain: string;
  /** Cluster DNS domain (`--domain $(POD_NAMESPACE).svc.<clusterDomain>`). */
  clusterDomain: string;
  /** Control-plane revision this injector serves (`istio.io/rev`). */
  revision: string;
  interceptionMode: 'REDIRECT' | 'TPROXY';
  proxyLogLevel: string;
  proxyComponentLogLevel: string;
  agentLogLevel: string;
  /** Left unset unless configured, as in the chart. */
  imagePullPolicy?: string;
  resources: ResourceRequirements;
  /** The agent's status port (15020): excluded from inbound capture, scraped for merged metrics. */
  statusPort: number;
  /**
   * Mesh config `defaultConfig` (a ProxyConfig, JSON field names): rendered whole into
   * PROXY_CONFIG with `discoveryAddress` set, and each `proxyMetadata` entry as an env variable
   * of `istio-proxy` (overriding the template's variable of that name), as Istio's template does.
   */
  proxyConfig: Readonly<Record<string, unknown>>;
}

/** What callers may set: any option, plus `plaintext` (xDS on 15010 instead of 15012). */
export type InjectionConfig = Partial<InjectionOptions> & {
  plaintext?: boolean;
  /** Where istiod runs: `<service>.<namespace>.svc`; default `istiod`, or `istiod-<revision>` for a revision other than default. */
  istiodService?: string;
  istioNamespace?: string;
};

export const XDS_TLS_PORT = 15012;
export const XDS_PLAINTEXT_PORT = 15010;

/** `docker.io/istio/proxyv2:1.24.0` → `1.24.0`; digests and untagged images give ''. */
export function versionFromImage(image: string): string {
  const slash = image.lastIndexOf('/');
  const tail = image.slice(slash + 1);
  const colon = tail.indexOf(':');
  if (colon < 0 || tail.includes('@')) return '';
  return tail.slice(colon + 1).replace(/-distroless$|-debug$/, '');
}

export function resolveInjectionOptions(c: InjectionConfig = {}): InjectionOptions {
  const service = c.istiodService ?? (c.revision && c.revision !== 'default' ? `istiod-${c.revision}` : 'istiod');
  const ns = c.istioNamespace ?? 'istio-system';
  const host = `${service}.${ns}.svc`;
  const image = c.image ?? DEFAULT_PROXY_IMAGE;
  const trustDomain = c.trustDomain ?? 'cluster.local';
  const proxyConfig = c.proxyConfig ?? {};
  const configured = typeof proxyConfig['discoveryAddress'] === 'string' && proxyConfig['discoveryAddress'] !== '' ? proxyConfig['discoveryAddress'] : undefined;
  const out: InjectionOptions = {
    image,
    istioVersion: c.istioVersion ?? versionFromImage(image),
    discoveryAddress: c.discoveryAddress ?? (c.plaintext ? undefined : configured) ?? `${host}:${c.plaintext ? XDS_PLAINTEXT_PORT : XDS_TLS_PORT}`,
    caAddress: c.caAddress ?? `${host}:${XDS_TLS_PORT}`,
    clusterId: c.clusterId ?? 'Kubernetes',
    meshId: c.meshId ?? trustDomain,
    trustDomain,
    clusterDomain: c.clusterDomain ?? 'cluster.local',
    revision: c.revision ?? 'default',
    interceptionMode: c.interceptionMode ?? 'REDIRECT',
    proxyLogLevel: c.proxyLogLevel ?? 'warning',
    proxyComponentLogLevel: c.proxyComponentLogLevel ?? 'misc:error',
    agentLogLevel: c.agentLogLevel ?? 'default:info',
    resources: c.resources ?? { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '2', memory: '1Gi' } },
    statusPort: c.statusPort ?? 15020,
    proxyConfig,
  };
  if (c.imagePullPolicy !== undefined) out.imagePullPolicy = c.imagePullPolicy;
  const md = proxyConfig['proxyMetadata'];
  if (md !== undefined && (typeof md !== 'object' || md === null || Array.isArray(md) || Object.values(md).some((v) => typeof v !== 'string'))) {
    throw new Error('proxyConfig.proxyMetadata must be a mapping of strings to strings');
  }
  if (out.interceptionMode !== 'REDIRECT' && out.interceptionMode !== 'TPROXY') {
    throw new Error(`interceptionMode must be REDIRECT or TPROXY (got ${JSON.stringify(out.interceptionMode)})`);
  }
  return out;
}

/** Keys an injection config file may carry (anything else is a typo worth reporting). */
export const INJECTION_CONFIG_KEYS: readonly string[] = [
  'image',
  'istioVersion',
  'discoveryAddress',
  'caAddress',
  'clusterId',
  'meshId',
  'trustDomain',
  'clusterDomain',
  'revision',
  'interceptionMode',
  'proxyLogLevel',
  'proxyComponentLogLevel',
  'agentLogLevel',
  'imagePullPolicy',
  'resources',
  'statusPort',
  'proxyConfig',
  'plaintext',
  'istiodService',
  'istioNamespace',
];

/**
 * Injection settings from Istio's mesh config (the `mesh` key of ConfigMap `istio`):
 * `defaultConfig` becomes the ProxyConfig, `trustDomain` the trust domain and mesh ID.
 * Accepts the mesh config itself, or the ConfigMap holding it. Throws on anything else.
 */
export function injectionFromMeshConfig(doc: unknown): InjectionConfig {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObj(doc)) throw new Error('mesh config must be a mapping');
  let mesh: unknown = doc;
  if (doc['kind'] === 'ConfigMap') {
    const data = doc['data'];
    const text = isObj(data) ? data['mesh'] : undefined;
    if (typeof text !== 'string') throw new Error('ConfigMap has no data.mesh');
    mesh = parseYaml(text) as unknown;
    if (!isObj(mesh)) throw new Error('data.mesh must be a mapping');
  }
  const m = mesh as Record<string, unknown>;
  const out: InjectionConfig = {};
  if (m['defaultConfig'] !== undefined) {
    if (!isObj(m['defaultConfig'])) throw new Error('defaultConfig must be a mapping');
    out.proxyConfig = m['defaultConfig'];
  }
  if (typeof m['trustDomain'] === 'string' && m['trustDomain'] !== '') out.trustDomain = m['trustDomain'];
  return out;
}
