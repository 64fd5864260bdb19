/**
 * The intermediate model: one frozen, indexed view of the mesh built from validated objects.
 * A new snapshot is built for every change and swapped in whole; nothing patches one in place.
 * Nothing here knows about Envoy.
 */
import type { ConfigError, DestinationRuleSpec, ObjectMeta, VirtualServiceSpec } from './objects';
import type { Protocol } from './protocol';

export interface ServicePort {
  name: string;
  port: number;
  targetPort?: number | string;
  protocol: Protocol;
}

export interface MeshService {
  name: string;
  namespace: string;
  /** `<name>.<namespace>.svc.<domain>` */
  hostname: string;
  ports: readonly ServicePort[];
  selector: Readonly<Record<string, string>>;
  /** Absent for headless services. */
  clusterIP?: string;
  labels: Readonly<Record<string, string>>;
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
}

export interface Workload {
  name: string;
  namespace: string;
  ip?: string;
  labels: Readonly<Record<string, string>>;
  serviceAccount: string;
  nodeName?: string;
  containerPorts: readonly { name?: string; port: number }[];
}

export interface VirtualServiceConfig {
  meta: ObjectMeta;
  spec: VirtualServiceSpec;
  /** spec.hosts with short names expanded to FQDNs in the object's namespace. */
  hosts: readonly string[];
}

export interface DestinationRuleConfig {
  meta: ObjectMeta;
  spec: DestinationRuleSpec;
  /** spec.host expanded to an FQDN in the object's namespace. */
  host: string;
}

export interface MeshSnapshot {
  /** Monotonic build number plus a content hash; changes whenever any input changed. */
  readonly version: string;
  readonly builtAt: string;
  readonly domain: string;
  readonly namespaces: ReadonlySet<string>;
  /** Sorted by hostname. */
  readonly services: readonly MeshService[];
  readonly serviceByHost: ReadonlyMap<string, MeshService>;
  /** hostname → service port number → endpoints (sorted by address, port). */
  readonly endpoints: ReadonlyMap<string, ReadonlyMap<number, readonly ServiceEndpoint[]>>;
  /** `namespace/name` → workload */
  readonly workloads: ReadonlyMap<string, Workload>;
  readonly workloadByIp: ReadonlyMap<string, Workload>;
  /** Sorted by namespace/name. */
  readonly virtualServices: readonly VirtualServiceConfig[];
  /** host FQDN → the VirtualService that owns it for sidecars and gRPC clients. */
  readonly virtualServiceByHost: ReadonlyMap<string, VirtualServiceConfig>;
  readonly destinationRules: readonly DestinationRuleConfig[];
  readonly destinationRuleByHost: ReadonlyMap<string, DestinationRuleConfig>;
  /** Objects left out (invalid, unparsable, conflicting), with reasons. */
  readonly errors: readonly ConfigError[];
  /** Counts of accepted objects by kind, for /debug/configz. */
  readonly counts: Readonly<Record<string, number>>;
}

export const DEFAULT_DOMAIN = 'cluster.local';

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
