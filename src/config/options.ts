/** Every option meshd takes, as one typed object. Only main.ts reads argv or env. */
import { JWT_DEFAULTS, jwksSourceProblem } from '../ca/authn/jwt';
import { DEFAULT_DOMAIN } from '../model/snapshot';
import { checkRevision } from './revision';
import { DEFAULT_INPUT_LIMITS, type InputLimits, inputLimits } from './limits';

export interface MeshdOptions {
  /** Folder source. Exactly one of configDir, kubeconfig and inCluster is set. */
  configDir?: string;
  /** Kubernetes source: the API server and credentials of this kubeconfig file (its current context). */
  kubeconfig?: string;
  /** Kubernetes source: the API server of the cluster meshd runs in, with its pod's service account. */
  inCluster?: boolean;
  host: string;
  xdsPort: number;
  debugPort: number;
  /** Prometheus `/metrics` as istiod serves it on 15014; -1 disables. */
  monitoringPort: number;
  domain: string;
  logLevel: string;
  /**
   * Folder source: every file is re-read this often and compared by content hash, so a change
   * whose watch events were lost is still served (0 turns the rescan off).
   */
  configRescanIntervalMs: number;
  /** Folder source: quiet period a rewritten file must stay unchanged before it is read as final. */
  configSettleMs: number;
  /** Push debounce: quiet period and maximum delay. */
  debounceQuietMs: number;
  debounceMaxMs: number;
  /** Check every generated resource against Envoy's validate.rules before serving it. */
  validateResources: boolean;
  /**
   * Bytes of recently built resource contents kept for reuse after no proxy uses them, per
   * content cache (resources, virtual hosts); contents in use are found again whatever this is.
   */
  contentCacheBytes: number;
  /** HTTPS admission webhooks (injection, validation) as istiod serves them on 15017; -1 disables. */
  webhookPort: number;
  /** Extra DNS names of the webhook serving certificate (istiod's ISTIOD_CUSTOM_HOST). */
  customHosts: string[];
  /** This replica's pod (POD_NAME), for its leader-election identity. */
  podName?: string;
  /** meshd's own namespace (POD_NAMESPACE): where the leader Lease lives. Default istio-system. */
  podNamespace?: string;
  /** xDS and the CA over TLS as istiod serves them on 15012; -1 disables. */
  secureXdsPort: number;
  /** Also serve the CA (CreateCertificate) on the plaintext xDS port, for development: tokens then cross the network in clear. */
  plaintextCa: boolean;
  /**
   * istiod's `--meshConfig`: a MeshConfig file (or the ConfigMap `istio` as YAML), watched. When
   * set it is the MeshConfig, and the source's (folder `mesh.yaml`, ConfigMap `istio`) is not read.
   */
  meshConfigFile?: string;
  /**
   * meshd's revision (`--revision`, else istiod's REVISION): names its Service, webhook
   * configurations, MeshConfig ConfigMap and Leases as istiod's (config/revision.ts). Default `default`.
   */
  revision?: string;
  /** SPIFFE trust domain of issued identities: the default of MeshConfig `trustDomain`, which wins when set. */
  trustDomain: string;
  /**
   * Other trust domains that mean this mesh, added to MeshConfig trustDomainAliases: peers whose
   * identities carry them are accepted, and policies' principals are spelled for them too.
   */
  trustDomainAliases: string[];
  /**
   * The filter types (type URLs) EnvoyFilter patches may put into listeners, as managed meshes
   * restrict EnvoyFilter to a few extensions (Lua, compressor, local rate limit, …); empty: any.
   */
  envoyFilterAllowedTypes: string[];
  /** Self-signed root folder (folder source). Unset: a new root in memory on every start. */
  caDir?: string;
  /** Plug-in root folder (`cacerts`); replaces the self-signed root. */
  cacertsDir?: string;
  /** JWT authentication of CSRs: a JWKS file or https URL, with the issuer and audiences tokens must carry. */
  jwks?: string;
  jwtIssuer?: string;
  jwtAudiences?: string[];
  /**
   * PEM CA certificates trusted, besides the system roots, when fetching RequestAuthentication
   * JWKS (istiod reads /cacerts/extra.pem for this).
   */
  jwksCaFile?: string;
  /** Longest JWT lifetime accepted (exp − iat, or exp − now without iat), seconds. */
  jwtMaxLifetimeSeconds: number;
  /** Worker threads that verify CSRs and sign certificates (0: on the main thread, which also serves xDS). */
  caSignWorkers: number;
  /** Workload certificate lifetime when none is asked for, and the longest handed out (seconds). */
  workloadCertTtlSeconds: number;
  maxWorkloadCertTtlSeconds: number;
  /** What one input may cost: file size, documents, depth, aliases, errors (config/limits.ts). */
  limits: InputLimits;
  /**
   * istiod's ENABLE_DEBUG_ENDPOINT_AUTH: xDS debug types (istioctl's proxy-status, config dump)
   * are answered only to an identity verified over TLS, of the system namespace or the proxy's
   * own. Off: answered on the plaintext port too, to anyone who reaches it.
   */
  debugEndpointAuth: boolean;
  /** istiod's PILOT_WORKLOAD_ENTRY_GRACE_PERIOD: how long an auto-registered WorkloadEntry outlives its proxy's disconnect (ms). */
  workloadEntryGracePeriodMs: number;
  /**
   * istiod's VALIDATE_WORKLOAD_ENTRY_IDENTITY: auto-registration needs an identity verified over
   * TLS, of the group's namespace and template service account. Off: any stream may register.
   */
  validateWorkloadEntryIdentity: boolean;
}

/** Options as callers give them: any subset, the limits too. */
export type MeshdOptionsInput = Partial<Omit<MeshdOptions, 'limits'>> & { limits?: Partial<InputLimits> };

export const DEFAULTS: Omit<MeshdOptions, 'configDir' | 'kubeconfig' | 'inCluster'> = {
  host: '127.0.0.1',
  xdsPort: 15010,
  debugPort: 8080,
  monitoringPort: 15014,
  domain: DEFAULT_DOMAIN,
  logLevel: 'info',
  configRescanIntervalMs: 5000,
  configSettleMs: 50,
  debounceQuietMs: 100,
  debounceMaxMs: 10_000,
  validateResources: true,
  contentCacheBytes: 16 * 1024 * 1024,
  // Off for embedders and tests; the command line turns it on at 15017 as istiod.
  webhookPort: -1,
  customHosts: [],
  // Off for embedders and tests, as the webhook port; the command line serves 15012.
  secureXdsPort: -1,
  // As istiod: the CA only over TLS.
  plaintextCa: false,
  trustDomain: 'cluster.local',
  trustDomainAliases: [],
  envoyFilterAllowedTypes: [],
  workloadCertTtlSeconds: 24 * 3600,
  maxWorkloadCertTtlSeconds: 90 * 24 * 3600,
  jwtMaxLifetimeSeconds: JWT_DEFAULTS.maxLifetimeSeconds,
  limits: DEFAULT_INPUT_LIMITS,
  // Off for embedders and tests; the command line uses the cores beside meshd's own.
  caSignWorkers: 0,
  debugEndpointAuth: true,
  workloadEntryGracePeriodMs: 10_000,
  validateWorkloadEntryIdentity: true,
};

/** A DNS name for a certificate SAN: lower-case labels of letters, digits and inner hyphens, optionally `*.` first. */
const DNS_NAME = /^(\*\.)?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

export function withDefaults(o: MeshdOptionsInput): MeshdOptions {
  const { limits, ...rest } = o;
  const merged: MeshdOptions = { ...DEFAULTS, ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)), limits: inputLimits(limits) };
  const sources = [merged.configDir !== undefined, merged.kubeconfig !== undefined, merged.inCluster === true].filter(Boolean).length;
  if (sources === 0) throw new Error('a config source is required: --config-dir DIR or --kubeconfig FILE (or in-cluster config)');
  if (sources > 1) throw new Error('--config-dir and --kubeconfig (or in-cluster config) are exclusive: pick one config source');
  for (const k of ['xdsPort', 'debugPort'] as const) {
    const v = merged[k];
    if (!Number.isInteger(v) || v < 0 || v > 65535) throw new Error(`--${k === 'xdsPort' ? 'xds-port' : 'debug-port'}: ${v} is not a port (0-65535)`);
  }
  if (!Number.isInteger(merged.monitoringPort) || merged.monitoringPort < -1 || merged.monitoringPort > 65535) {
    throw new Error(`--monitoring-port: ${merged.monitoringPort} is not a port (0-65535, or -1 to disable)`);
  }
  if (!Number.isInteger(merged.webhookPort) || merged.webhookPort < -1 || merged.webhookPort > 65535) {
    throw new Error(`--webhook-port: ${merged.webhookPort} is not a port (0-65535, or -1 to disable)`);
  }
  if (!Number.isInteger(merged.secureXdsPort) || merged.secureXdsPort < -1 || merged.secureXdsPort > 65535) {
    throw new Error(`--secure-xds-port: ${merged.secureXdsPort} is not a port (0-65535, or -1 to disable)`);
  }
  if (merged.revision !== undefined) checkRevision(merged.revision);
  for (const h of merged.customHosts) {
    if (!DNS_NAME.test(h)) throw new Error(`--custom-host: ${JSON.stringify(h)} is not a DNS name (comma-separated names such as webhook.example.com)`);
  }
  for (const k of ['configRescanIntervalMs', 'configSettleMs'] as const) {
    const v = merged[k];
    if (!Number.isFinite(v) || v < 0) throw new Error(`${k === 'configRescanIntervalMs' ? '--config-rescan-interval' : 'configSettleMs'}: ${v} must be a duration >= 0`);
  }
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(merged.trustDomain)) throw new Error(`--trust-domain: ${JSON.stringify(merged.trustDomain)} is not a DNS-like name`);
  for (const alias of merged.trustDomainAliases) {
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(alias)) throw new Error(`--trust-domain-aliases: ${JSON.stringify(alias)} is not a DNS-like name`);
  }
  for (const t of merged.envoyFilterAllowedTypes) {
    if (!/^[A-Za-z0-9.-]+\/[A-Za-z_][A-Za-z0-9_.]*$/.test(t))
      throw new Error(`--envoy-filter-allowed-types: ${JSON.stringify(t)} is not a type URL (such as type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua)`);
  }
  const { workloadCertTtlSeconds: ttl, maxWorkloadCertTtlSeconds: maxTtl } = merged;
  if (!Number.isInteger(ttl) || ttl <= 0 || !Number.isInteger(maxTtl) || maxTtl < ttl) {
    throw new Error(`--workload-cert-ttl ${ttl}s and --max-workload-cert-ttl ${maxTtl}s: both must be positive, and the default no longer than the maximum`);
  }
  if (!Number.isSafeInteger(merged.contentCacheBytes) || merged.contentCacheBytes < 0) {
    throw new Error(`--content-cache-bytes: ${merged.contentCacheBytes} is not a size in bytes (0 or more)`);
  }
  if (!Number.isInteger(merged.caSignWorkers) || merged.caSignWorkers < 0 || merged.caSignWorkers > 64) {
    throw new Error(`--ca-sign-workers: ${merged.caSignWorkers} is not a worker count (0-64)`);
  }
  if (merged.jwks !== undefined && (!merged.jwtIssuer || !merged.jwtAudiences || merged.jwtAudiences.length === 0)) {
    throw new Error('--jwks needs --jwt-issuer and --jwt-audience');
  }
  const jwksProblem = merged.jwks !== undefined ? jwksSourceProblem(merged.jwks) : undefined;
  if (jwksProblem) throw new Error(jwksProblem);
  if (typeof merged.debugEndpointAuth !== 'boolean') throw new Error(`--debug-endpoint-auth: ${JSON.stringify(merged.debugEndpointAuth)} is not true or false`);
  if (!Number.isInteger(merged.jwtMaxLifetimeSeconds) || merged.jwtMaxLifetimeSeconds <= 0) {
    throw new Error(`--jwt-max-lifetime: ${merged.jwtMaxLifetimeSeconds} is not a positive number of seconds`);
  }
  return merged;
}
