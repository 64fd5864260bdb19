/**
 * WorkloadGroup (networking.istio.io): the template a VM's WorkloadEntry is made from when its
 * proxy connects with `AUTO_REGISTER_GROUP` (istiod's workloadEntryFromGroup). Pure.
 */
import type { ConfigObject, ObjectMeta } from './objects';

export interface WorkloadEntrySpecJson {
  address?: string;
  ports?: Readonly<Record<string, number>>;
  labels?: Readonly<Record<string, string>>;
  network?: string;
  locality?: string;
  weight?: number;
  serviceAccount?: string;
}

export interface WorkloadGroupSpec {
  metadata?: { labels?: Readonly<Record<string, string>>; annotations?: Readonly<Record<string, string>> };
  template?: WorkloadEntrySpecJson;
  probe?: Readonly<Record<string, unknown>>;
}

export interface WorkloadGroupConfig {
  meta: ObjectMeta;
  /** The apiVersion it was read at (the owner reference of the entries made from it names it). */
  apiVersion: string;
  spec: WorkloadGroupSpec;
}

export function workloadGroupOf(o: ConfigObject): WorkloadGroupConfig {
  return { meta: o.metadata, apiVersion: o.apiVersion, spec: (o.body['spec'] ?? {}) as WorkloadGroupSpec };
}

export const AUTO_REGISTRATION_GROUP_ANNOTATION = 'istio.io/autoRegistrationGroup';
export const WORKLOAD_CONTROLLER_ANNOTATION = 'istio.io/workloadController';
export const CONNECTED_AT_ANNOTATION = 'istio.io/connectedAt';
export const DISCONNECTED_AT_ANNOTATION = 'istio.io/disconnectedAt';
export const HEALTH_CHECK_ANNOTATION = 'proxy.istio.io/health-checks-enabled';

/** What istiod knows of the connecting proxy when it registers it. */
export interface RegisteringProxy {
  id: string;
  namespace: string;
  ips: readonly string[];
  /** Node metadata LABELS (the proxy's own, not those of a workload in the model). */
  labels: Readonly<Record<string, string>>;
  /** Node metadata NETWORK. */
  network?: string;
  /** The xDS node's locality as `region/zone/subzone`. */
  locality?: string;
  /** PROXY_CONFIG carries a readinessProbe (the agent health-checks the VM). */
  readinessProbe: boolean;
}

/** autoregisteredWorkloadEntryName: `<group>-<ip with ':' → '-'>[-<network>]`, the last 253 characters. */
export function autoRegisteredEntryName(group: string, proxy: RegisteringProxy): string | undefined {
  const ip = proxy.ips[0];
  if (group === '' || ip === undefined || ip === '' || proxy.namespace === '') return undefined;
  const parts = [group, ip.replace(/:/g, '-')];
  if (proxy.network) parts.push(proxy.network);
  const name = parts.join('-');
  return name.length > 253 ? name.slice(name.length - 253) : name;
}

/** A WorkloadEntry as the API server takes it (apiVersion networking.istio.io/v1). */
export interface WorkloadEntryObject {
  apiVersion: string;
  kind: 'WorkloadEntry';
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    annotations: Record<string, string>;
    ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller: boolean }>;
    resourceVersion?: string;
  };
  spec: WorkloadEntrySpecJson;
}

/**
 * workloadEntryFromGroup: the template with the proxy's address; labels template < group
 * metadata < proxy metadata; annotations: the group's name, then the group's metadata
 * annotations; network and locality from the proxy; owned (controller) by the group.
 */
export function workloadEntryFromGroup(name: string, proxy: RegisteringProxy, group: WorkloadGroupConfig, groupUid: string): WorkloadEntryObject {
  const spec: WorkloadEntrySpecJson = { ...structuredClone(group.spec.template ?? {}), address: proxy.ips[0] ?? '' };
  let labels: Record<string, string> | undefined = spec.labels ? { ...spec.labels } : undefined;
  if (group.spec.metadata?.labels) labels = { ...(labels ?? {}), ...group.spec.metadata.labels };
  if (Object.keys(proxy.labels).length > 0) labels = { ...(labels ?? {}), ...proxy.labels };
  if (labels) spec.labels = labels;
  const annotations: Record<string, string> = { [AUTO_REGISTRATION_GROUP_ANNOTATION]: group.meta.name, ...(group.spec.metadata?.annotations ?? {}) };
  if (proxy.network) spec.network = proxy.network;
  if (proxy.locality) spec.locality = proxy.locality;
  if (proxy.readinessProbe) annotations[HEALTH_CHECK_ANNOTATION] = 'true';
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: {
      name,
      namespace: proxy.namespace,
      ...(labels ? { labels } : {}),
      annotations,
      ownerReferences: [{ apiVersion: group.apiVersion, kind: 'WorkloadGroup', name: group.meta.name, uid: groupUid, controller: true }],
    },
    spec,
  };
}
