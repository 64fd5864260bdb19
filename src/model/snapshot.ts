/**
 * The intermediate model: one frozen, indexed view of the mesh built from validated objects.
 * A new snapshot is built for every change and swapped in whole; nothing patches one in place.
 * Nothing here knows about Envoy.
 */
import type { ConfigError, DestinationRuleSpec, GatewaySpec, ObjectMeta, VirtualServiceSpec } from './objects';
import type { SnapshotMemo } from './memo';
import type { SecurityPolicies } from './build-security';
import type { RequestAuthenticationConfig } from './build-reqauthn';
import type { JwksEntry } from './jwks';
import type { Protocol } from './protocol';
import type { LocalityLbSetting } from './objects';
import type { MeshAccessLog, MeshConfigStatus } from './build-mesh';
import type { MeshConfig, OutboundTrafficMode, ProtoDuration } from './mesh-config';
import type { TelemetryConfig } from './build-telemetry';
import type { WasmPluginConfig } from './build-wasm';
import type { EnvoyFilterConfig } from './build-envoyfilter';
import type { ProxyConfigEntry } from './proxy-config';
import type { WorkloadGroupConfig } from './workload-group';
import type { TelemetryMesh } from './telemetry-providers';
import type { SidecarScope, SidecarSelector } from './build-sidecar';
import type { GatewayApiStatus } from '../gatewayapi/status-types';

export interface ServicePort {
  name: string;
  port: number;
  targetPort?: number | string;
  protocol: Protocol;
}

/**
 * How a client finds a service's endpoints: EDS (Kubernetes services and STATIC ServiceEntries),
 * DNS (strict DNS, every address), DNS_ROUND_ROBIN (logical DNS, one address at a time), or
 * PASSTHROUGH (the original destination: ServiceEntry resolution NONE, headless Kubernetes Services).
 */
export type Resolution = 'EDS' | 'DNS' | 'DNS_ROUND_ROBIN' | 'PASSTHROUGH';

export interface MeshService {
  /** Kubernetes: the Service name. ServiceEntry: the host. */
  name: string;
  namespace: string;
  /** `<name>.<namespace>.svc.<domain>`, or the ServiceEntry host (possibly `*.example.com`). */
  hostname: string;
  ports: readonly ServicePort[];
  selector: Readonly<Record<string, string>>;
  /** The first VIP; absent for headless services and ServiceEntries without addresses. */
  clusterIP?: string;
  /** Every VIP or CIDR (ServiceEntry `addresses`). */
  addresses: readonly string[];
  labels: Readonly<Record<string, string>>;
  /** The object it came from. */
  source: { kind: 'Service' | 'ServiceEntry'; namespace: string; name: string };
  resolution: Resolution;
  /** ServiceEntry location MESH_EXTERNAL (the default for ServiceEntries). */
  meshExternal: boolean;
  /** Namespaces that see it: `*` (all) or names; empty = none. */
  exportTo: readonly string[];
  /** ServiceEntry subjectAltNames, for upstream TLS verification. */
  subjectAltNames: readonly string[];
}

export interface Locality {
  region?: string;
  zone?: string;
  subZone?: string;
}

/** One address:port that serves one port of one service. */
export interface ServiceEndpoint {
  address: string;
  port: number;
  ready: boolean;
  labels: Readonly<Record<string, string>>;
  /** `namespace/name` of the pod behind it, when known. */
  pod?: string;
  serviceAccount?: string;
  locality: Locality;
  /** Relative load-balancing weight (WorkloadEntry / ServiceEntry endpoint `weight`). */
  weight?: number;
  network?: string;
}

export interface Workload {
  name: string;
  namespace: string;
  ip?: string;
  labels: Readonly<Record<string, string>>;
  serviceAccount: string;
  nodeName?: string;
  containerPorts: readonly { name?: string; port: number }[];
  locality: Locality;
}

export interface VirtualServiceConfig {
  meta: ObjectMeta;
  spec: VirtualServiceSpec;
  /** spec.hosts with short names expanded to FQDNs in the object's namespace. */
  hosts: readonly string[];
  /** spec.gateways as `namespace/name` (short names in the object's namespace); `mesh` kept as is. */
  gateways: readonly string[];
  /** Namespaces that see it: `*` or names. */
  exportTo: readonly string[];
}

/**
 * The DestinationRule in effect for one host at one scope: Istio merges rules for the same host
 * in the same namespace (same workloadSelector), the first keeping its traffic policy and later
 * ones adding subsets.
 */
export interface DestinationRuleConfig {
  /** Metadata of the first (by namespace/name) of the merged rules. */
  meta: ObjectMeta;
  spec: DestinationRuleSpec;
  /** spec.host expanded to an FQDN in the object's namespace. */
  host: string;
  exportTo: readonly string[];
  /** `namespace/name` of every rule merged into this one. */
  sources: readonly string[];
}

export interface GatewayConfig {
  meta: ObjectMeta;
  spec: GatewaySpec;
  /** `namespace/name`, as VirtualServices name it. */
  key: string;
}

/** TLS material from a Secret: PEM text, decoded. Never logged or shown in debug output. */
export interface CredentialSecret {
  namespace: string;
  name: string;
  certChain?: string;
  privateKey?: string;
  caCert?: string;
}

export interface MeshSnapshot {
  /** Monotonic build number plus a content hash; changes whenever any input changed. */
  readonly version: string;
  readonly builtAt: string;
  readonly domain: string;
  /** The mesh's SPIFFE trust domain first, then its aliases (MeshConfig trustDomainAliases). */
  readonly trustDomains: readonly string[];
  /** Istio's config root namespace (MeshConfig rootNamespace): its DestinationRules and policies apply mesh-wide. */
  readonly rootNamespace: string;
  /**
   * The effective MeshConfig, whole (for `/debug/mesh` and the injector). Generators read the
   * settings below instead: each is its own field, so a result depends only on what it read.
   */
  readonly meshConfig: MeshConfig;
  /** Where the MeshConfig came from, its warnings, and whether an invalid one was refused. */
  readonly meshStatus: MeshConfigStatus;
  /** MeshConfig outboundTrafficPolicy.mode: where a sidecar sends traffic to unknown destinations. */
  readonly outboundTrafficPolicy: OutboundTrafficMode;
  /** MeshConfig accessLogFile/Format/Encoding: the file access log, or none. */
  readonly accessLog: MeshAccessLog | undefined;
  /** MeshConfig extensionProviders, defaultProviders, enableTracing and the default tracing sampling (the Telemetry API's view). */
  readonly telemetryMesh: TelemetryMesh;
  /** Telemetry objects by namespace, in name order. */
  readonly telemetries: ReadonlyMap<string, readonly TelemetryConfig[]>;
  /** WasmPlugins by namespace, in name order. */
  readonly wasmPlugins: ReadonlyMap<string, readonly WasmPluginConfig[]>;
  /** EnvoyFilter objects by namespace, in name order, with the patches the allowlist lets through. */
  readonly envoyFilters: ReadonlyMap<string, readonly EnvoyFilterConfig[]>;
  /** ProxyConfig objects by namespace, oldest first then by name (first match wins; model/proxy-config.ts). */
  readonly proxyConfigs: ReadonlyMap<string, readonly ProxyConfigEntry[]>;
  /** WorkloadGroups by `namespace/name` (auto-registration templates; autoreg/registrar.ts). */
  readonly workloadGroups: ReadonlyMap<string, WorkloadGroupConfig>;
  /** The status every Gateway API object meshd controls should have (gatewayapi/convert.ts). */
  readonly gatewayApiStatuses: readonly GatewayApiStatus[];
  /** `<gateway ns>|<secret ns>/<name>`: cross-namespace certificateRefs a ReferenceGrant permits (SDS serves these). */
  readonly gatewayCredentialGrants: readonly string[];
  /** MeshConfig connectTimeout: clusters' connect_timeout unless a DestinationRule sets one. */
  readonly connectTimeout: ProtoDuration;
  /** MeshConfig enableAutoMtls. */
  readonly enableAutoMtls: boolean;
  /** MeshConfig localityLbSetting: for clusters whose DestinationRule has none. */
  readonly localityLbSetting: LocalityLbSetting;
  /**
   * MeshConfig protocolDetectionTimeout in milliseconds (istiod's default 0: no timeout): how long
   * a sidecar listener's inspectors wait for the first bytes before treating a connection as TCP.
   */
  readonly protocolDetectionTimeoutMs: number;
  readonly namespaces: ReadonlySet<string>;
  /** Labels of the Namespace objects (e.g. `istio-injection`), by name. */
  readonly namespaceLabels: ReadonlyMap<string, Readonly<Record<string, string>>>;
  /** Sorted by hostname: Kubernetes Services and ServiceEntry hosts. */
  readonly services: readonly MeshService[];
  readonly serviceByHost: ReadonlyMap<string, MeshService>;
  /** namespace → the services a proxy there sees (exportTo applied); see `visibleServices`. */
  readonly servicesVisibleIn: ReadonlyMap<string, readonly MeshService[]>;
  /** The services exported to every namespace. */
  readonly publicServices: readonly MeshService[];
  /** hostname → service port number → endpoints (sorted by address, port). */
  readonly endpoints: ReadonlyMap<string, ReadonlyMap<number, readonly ServiceEndpoint[]>>;
  /** hostname → `<namespace>/sa/<serviceAccount>` of the workloads behind its endpoints, sorted. */
  readonly serviceAccountsByHost: ReadonlyMap<string, readonly string[]>;
  /** `namespace/name` → workload */
  readonly workloads: ReadonlyMap<string, Workload>;
  readonly workloadByIp: ReadonlyMap<string, Workload>;
  /** Sorted by namespace/name, delegates resolved; includes gateway-bound and delegate ones. */
  readonly virtualServices: readonly VirtualServiceConfig[];
  /**
   * namespace → host → the VirtualService that routes it for sidecars and gRPC clients there:
   * one in the proxy's own namespace first, then the first visible by namespace/name.
   */
  readonly meshVirtualServicesIn: ReadonlyMap<string, ReadonlyMap<string, VirtualServiceConfig>>;
  /** The same for a namespace with no entry above: only VirtualServices exported everywhere. */
  readonly publicMeshVirtualServices: ReadonlyMap<string, VirtualServiceConfig>;
  /** The wildcard-host entries of each index above (`''`: the public one), in index order. */
  readonly meshVirtualServiceWildcards: ReadonlyMap<string, readonly (readonly [string, VirtualServiceConfig])[]>;
  /**
   * Sidecar scopes (istiod's SidecarScope) by scope key: a namespace name for the namespace's
   * default Sidecar (its own without workloadSelector, else the root namespace's), `namespace/name`
   * for a Sidecar with a workloadSelector. See model/build-sidecar.ts and lookup.ts `sidecarScopeKey`.
   */
  readonly sidecarScopes: ReadonlyMap<string, SidecarScope>;
  /** namespace → its Sidecars with a workloadSelector, first match wins (oldest first). */
  readonly sidecarSelectors: ReadonlyMap<string, readonly SidecarSelector[]>;
  /** scope key → the services (ports trimmed by port-bound egress listeners) the scope imports. */
  readonly sidecarServices: ReadonlyMap<string, readonly MeshService[]>;
  /** scope key → host → VirtualService, from the VirtualServices the scope's egress hosts select. */
  readonly sidecarVirtualServices: ReadonlyMap<string, ReadonlyMap<string, VirtualServiceConfig>>;
  /** The wildcard-host entries of each index above. */
  readonly sidecarVirtualServiceWildcards: ReadonlyMap<string, readonly (readonly [string, VirtualServiceConfig])[]>;
  /** Merged rules, sorted by namespace/name of their first source. */
  readonly destinationRules: readonly DestinationRuleConfig[];
  /** spec.host (FQDN or wildcard) → merged rules for it, one per namespace and selector. */
  readonly destinationRulesByHost: ReadonlyMap<string, readonly DestinationRuleConfig[]>;
  /** The wildcard keys of destinationRulesByHost, longest first. */
  readonly wildcardDestinationRuleHosts: readonly string[];
  /** Sorted by namespace/name. */
  readonly gateways: readonly GatewayConfig[];
  readonly gatewayByKey: ReadonlyMap<string, GatewayConfig>;
  /** `namespace/name` → TLS material of Secrets that carry it. */
  readonly secrets: ReadonlyMap<string, CredentialSecret>;
  /** `namespace/name` → the PEM `ca.crt` of ConfigMaps that carry a valid one (BackendTLSPolicy CAs, SDS `configmap://`). */
  readonly configMapCAs?: ReadonlyMap<string, string>;
  /** PeerAuthentications and AuthorizationPolicies (sorted by namespace/name). */
  readonly security: SecurityPolicies;
  /** RequestAuthentications (sorted by namespace/name); apart from `security`, so they change alone. */
  readonly requestAuthentications: readonly RequestAuthenticationConfig[];
  /** Remote JWKS by source key (model/jwks.ts), as last fetched; only sources a policy names. */
  readonly jwks: ReadonlyMap<string, JwksEntry>;
  /** Objects left out (invalid, unparsable, conflicting), with reasons. */
  readonly errors: readonly ConfigError[];
  /** Per-proxy-class lookups computed once per snapshot (see lookup.ts). */
  readonly memo: SnapshotMemo;
  /** Counts of accepted objects by kind, for /debug/configz. */
  readonly counts: Readonly<Record<string, number>>;
}

export const DEFAULT_DOMAIN = 'cluster.local';
export const DEFAULT_ROOT_NAMESPACE = 'istio-system';

/** Expands a host as Istio does: a name without dots is `<name>.<ns>.svc.<domain>`. */
export function resolveHost(host: string, namespace: string, domain: string): string {
  if (host === '*' || host.startsWith('*.')) return host;
  if (!host.includes('.')) return `${host}.${namespace}.svc.${domain}`;
  return host;
}

/** Whether a (possibly wildcard) VirtualService host matches a concrete hostname. */
export function hostMatches(pattern: string, hostname: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) return hostname.endsWith(pattern.slice(1));
  return pattern === hostname;
}

export function labelsMatch(selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

/** Whether config exported to `exportTo` (resolved: `*` or names) is visible in namespace `ns`. */
export function exportedTo(exportTo: readonly string[], ns: string): boolean {
  return exportTo.includes('*') || exportTo.includes(ns);
}

/**
 * Istio's exportTo values resolved for an object in `namespace`: `.` → it, `~` → none; unset:
 * the MeshConfig default for the kind (`defaultServiceExportTo`, …), itself `*` by default.
 */
export function resolveExportTo(exportTo: readonly string[] | undefined, namespace: string, meshDefault: readonly string[] = ['*']): string[] {
  const given = !exportTo || exportTo.length === 0 ? meshDefault : exportTo;
  if (given.length === 0 || (given.length === 1 && given[0] === '*')) return ['*'];
  const out = new Set<string>();
  for (const e of given) {
    if (e === '~') continue;
    out.add(e === '.' ? namespace : e);
  }
  return [...out].sort();
}
