/**
 * The proxy view: who is asking, from the xDS node's id and metadata.
 * Node ID: `<type>~<ip>~<pod>.<ns>~<ns>.svc.<domain>`; metadata as istio-agent sends it.
 */
import type { Locality, MeshSnapshot, Workload } from './snapshot';

export type ProxyType = 'sidecar' | 'router';
export type Generator = 'envoy' | 'grpc';

export interface ProxyMetadata {
  NAMESPACE?: string;
  LABELS?: Record<string, string>;
  SERVICE_ACCOUNT?: string;
  CLUSTER_ID?: string;
  GENERATOR?: string;
  ISTIO_VERSION?: string;
  INSTANCE_IPS?: string;
  [key: string]: unknown;
}

export interface Proxy {
  id: string;
  type: ProxyType;
  generator: Generator;
  ips: readonly string[];
  /** Pod name (without namespace), when the id carries one. */
  podName: string;
  namespace: string;
  dnsDomain: string;
  labels: Readonly<Record<string, string>>;
  serviceAccount?: string;
  clusterId?: string;
  istioVersion?: string;
  metadata: Readonly<ProxyMetadata>;
  /** From the xDS node's `locality`, when it sends one. */
  locality?: Locality;
  /**
   * The namespace whose Secrets this proxy may be sent (gateway credentials over SDS): set by the
   * xDS server only for an identity verified over TLS that may read Secrets there, never from the
   * node's own claims.
   */
  credentialNamespace?: string;
}

export class ProxyIdError extends Error {
  readonly code = 'INVALID_NODE_ID';
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v && typeof v === 'object') {
    // `__proto__` from a client would set the object's prototype, not a label: it is not a label.
    for (const [k, val] of Object.entries(v as Record<string, unknown>)) if (typeof val === 'string' && k !== '__proto__') out[k] = val;
  }
  return out;
}

export function parseProxy(id: string, metadata: ProxyMetadata, locality?: { region?: string; zone?: string; sub_zone?: string }): Proxy {
  const parts = id.split('~');
  if (parts.length !== 4) throw new ProxyIdError(`node.id "${id}": want <type>~<ip>~<pod>.<namespace>~<domain>`);
  const [type, ip, podId, dnsDomain] = parts as [string, string, string, string];
  if (type !== 'sidecar' && type !== 'router') throw new ProxyIdError(`node.id "${id}": type "${type}" must be sidecar or router`);
  const dot = podId.lastIndexOf('.');
  const podName = dot > 0 ? podId.slice(0, dot) : podId;
  const idNamespace = dot > 0 ? podId.slice(dot + 1) : '';
  const namespace = (typeof metadata.NAMESPACE === 'string' && metadata.NAMESPACE) || idNamespace || 'default';
  const ips = typeof metadata.INSTANCE_IPS === 'string' && metadata.INSTANCE_IPS ? metadata.INSTANCE_IPS.split(',') : [ip];
  return {
    id,
    type,
    generator: metadata.GENERATOR === 'grpc' ? 'grpc' : 'envoy',
    ips,
    podName,
    namespace,
    dnsDomain,
    labels: stringMap(metadata.LABELS),
    serviceAccount: typeof metadata.SERVICE_ACCOUNT === 'string' ? metadata.SERVICE_ACCOUNT : undefined,
    clusterId: typeof metadata.CLUSTER_ID === 'string' ? metadata.CLUSTER_ID : undefined,
    istioVersion: typeof metadata.ISTIO_VERSION === 'string' ? metadata.ISTIO_VERSION : undefined,
    metadata,
    ...(locality && (locality.region || locality.zone || locality.sub_zone)
      ? {
          locality: {
            ...(locality.region ? { region: locality.region } : {}),
            ...(locality.zone ? { zone: locality.zone } : {}),
            ...(locality.sub_zone ? { subZone: locality.sub_zone } : {}),
          },
        }
      : {}),
  };
}

/** The proxy's own workload in this snapshot: by pod name, else by IP. */
export function workloadOf(proxy: Proxy, snap: MeshSnapshot): Workload | undefined {
  return snap.workloads.get(`${proxy.namespace}/${proxy.podName}`) ?? proxy.ips.map((ip) => snap.workloadByIp.get(ip)).find((w) => w !== undefined);
}

/** Labels from metadata, else from the pod in the model. */
export function proxyLabels(proxy: Proxy, snap: MeshSnapshot): Readonly<Record<string, string>> {
  if (Object.keys(proxy.labels).length > 0) return proxy.labels;
  return workloadOf(proxy, snap)?.labels ?? {};
}
