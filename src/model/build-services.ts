/**
 * The service registry part of a snapshot: Kubernetes Services and ServiceEntry hosts as one
 * list of MeshServices, and their endpoints from EndpointSlices (or Endpoints), WorkloadEntries,
 * ServiceEntry endpoints and pods selected by a ServiceEntry's workloadSelector.
 */
import type { ConfigError, ConfigObject, EndpointSliceSpec, EndpointsSpec, PodSpecLite, PodStatusLite, ServiceEntrySpec, ServiceSpec, WorkloadEntrySpec } from './objects';
import { objectError } from './objects';
import { parseLocality } from './lookup';
import { protocolOf, serviceEntryProtocol } from './protocol';
import { type Locality, type MeshService, type Resolution, type ServiceEndpoint, type Workload, labelsMatch, resolveExportTo } from './snapshot';

const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const ZONE_LABEL = 'topology.kubernetes.io/zone';
const REGION_LABEL = 'topology.kubernetes.io/region';
const SUBZONE_LABEL = 'topology.istio.io/subzone';
/** Istio's own override: `region.zone.subzone` (dots, as label values cannot hold slashes). */
const ISTIO_LOCALITY_LABEL = 'istio-locality';
const EXPORT_TO_ANNOTATION = 'networking.istio.io/exportTo';

export type Kinds = (kind: string) => readonly ConfigObject[];

export interface Registry {
  workloads: Map<string, Workload>;
  workloadByIp: Map<string, Workload>;
  services: MeshService[];
  serviceByHost: Map<string, MeshService>;
  endpoints: Map<string, Map<number, ServiceEndpoint[]>>;
}

export function localityFromLabels(labels: Readonly<Record<string, string>>): Locality {
  const istio = labels[ISTIO_LOCALITY_LABEL];
  if (istio) return parseLocality(istio.replace(/\./g, '/'));
  const out: Locality = {};
  if (labels[REGION_LABEL]) out.region = labels[REGION_LABEL];
  if (labels[ZONE_LABEL]) out.zone = labels[ZONE_LABEL];
  if (labels[SUBZONE_LABEL]) out.subZone = labels[SUBZONE_LABEL];
  return out;
}

export function buildWorkloads(kind: Kinds): Pick<Registry, 'workloads' | 'workloadByIp'> {
  const workloads = new Map<string, Workload>();
  const workloadByIp = new Map<string, Workload>();
  for (const o of kind('Pod')) {
    const spec = (o.body.spec ?? {}) as PodSpecLite;
    const status = (o.body.status ?? {}) as PodStatusLite;
    const ip = status.podIP ?? status.podIPs?.[0]?.ip;
    const w: Workload = {
      name: o.metadata.name,
      namespace: o.metadata.namespace,
      ip,
      labels: o.metadata.labels,
      serviceAccount: spec.serviceAccountName ?? 'default',
      nodeName: spec.nodeName,
      containerPorts: (spec.containers ?? []).flatMap((c) => (c.ports ?? []).map((p) => ({ name: p.name, port: p.containerPort }))),
      locality: localityFromLabels(o.metadata.labels),
    };
    workloads.set(`${w.namespace}/${w.name}`, w);
    // Host-network pods share an IP; the first (sorted) one keeps the IP index.
    if (ip && !workloadByIp.has(ip)) workloadByIp.set(ip, w);
  }
  return { workloads, workloadByIp };
}

function kubernetesService(o: ConfigObject, domain: string, exportDefault: readonly string[]): MeshService | undefined {
  const spec = (o.body.spec ?? {}) as ServiceSpec;
  if (spec.type === 'ExternalName') return undefined;
  const clusterIP = spec.clusterIP && spec.clusterIP !== 'None' ? spec.clusterIP : undefined;
  const exportAnnotation = o.metadata.annotations[EXPORT_TO_ANNOTATION];
  return {
    name: o.metadata.name,
    namespace: o.metadata.namespace,
    hostname: `${o.metadata.name}.${o.metadata.namespace}.svc.${domain}`,
    clusterIP,
    addresses: clusterIP ? [clusterIP] : [],
    selector: spec.selector ?? {},
    labels: o.metadata.labels,
    ports: (spec.ports ?? []).map((p) => ({ name: p.name ?? '', port: p.port, targetPort: p.targetPort, protocol: protocolOf(p) })),
    source: { kind: 'Service', namespace: o.metadata.namespace, name: o.metadata.name },
    // Headless (clusterIP None): clients reach the pods' own addresses, as istiod's Passthrough.
    resolution: spec.clusterIP === 'None' ? 'PASSTHROUGH' : 'EDS',
    meshExternal: false,
    exportTo: resolveExportTo(
      exportAnnotation
        ?.split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      o.metadata.namespace,
      exportDefault,
    ),
    subjectAltNames: [],
  };
}

const RESOLUTION: Readonly<Record<string, Resolution>> = { NONE: 'PASSTHROUGH', STATIC: 'EDS', DNS: 'DNS', DNS_ROUND_ROBIN: 'DNS_ROUND_ROBIN' };

function serviceEntryServices(o: ConfigObject, exportDefault: readonly string[]): MeshService[] {
  const spec = (o.body.spec ?? {}) as ServiceEntrySpec;
  const vip = (spec.addresses ?? []).find((a) => !a.includes('/'));
  return (spec.hosts ?? []).map((host) => ({
    name: host,
    namespace: o.metadata.namespace,
    hostname: host,
    clusterIP: vip,
    addresses: [...(spec.addresses ?? [])],
    selector: spec.workloadSelector?.labels ?? {},
    labels: o.metadata.labels,
    ports: (spec.ports ?? []).map((p) => ({ name: p.name, port: p.number, targetPort: p.targetPort, protocol: serviceEntryProtocol(p.protocol) })),
    source: { kind: 'ServiceEntry', namespace: o.metadata.namespace, name: o.metadata.name },
    resolution: RESOLUTION[spec.resolution ?? 'NONE'] ?? 'PASSTHROUGH',
    meshExternal: spec.location !== 'MESH_INTERNAL',
    exportTo: resolveExportTo(spec.exportTo, o.metadata.namespace, exportDefault),
    subjectAltNames: [...(spec.subjectAltNames ?? [])],
  }));
}

/** A WorkloadEntry (or ServiceEntry endpoint) as an endpoint of one service port. */
function entryEndpoint(we: WorkloadEntrySpec, port: number, ns: string, name?: string): ServiceEndpoint | undefined {
  if (!we.address) return undefined;
  return {
    address: we.address,
    port,
    ready: true,
    labels: we.labels ?? {},
    pod: name ? `${ns}/${name}` : undefined,
    serviceAccount: we.serviceAccount,
    locality: parseLocality(we.locality),
    ...(we.weight ? { weight: we.weight } : {}),
    ...(we.network ? { network: we.network } : {}),
  };
}

/** Services and ServiceEntry hosts, by host; a host defined twice is an error on the later ServiceEntry. */
export interface ServiceSet {
  services: MeshService[];
  serviceByHost: Map<string, MeshService>;
  /** The ServiceEntry each ServiceEntry host came from, by host (not by service: interning replaces services). */
  entries: Map<string, ConfigObject>;
}

/** `exportDefault`: MeshConfig defaultServiceExportTo, for Services and ServiceEntries without exportTo. */
export function buildServices(kind: Kinds, domain: string, errors: ConfigError[], exportDefault: readonly string[] = ['*']): ServiceSet {
  const services: MeshService[] = [];
  const serviceByHost = new Map<string, MeshService>();
  const owner = new Map<string, string>();
  for (const o of kind('Service')) {
    const svc = kubernetesService(o, domain, exportDefault);
    if (!svc) continue;
    services.push(svc);
    serviceByHost.set(svc.hostname, svc);
    owner.set(svc.hostname, `Service ${o.metadata.namespace}/${o.metadata.name}`);
  }
  const entries = new Map<string, ConfigObject>();
  for (const o of kind('ServiceEntry')) {
    serviceEntryServices(o, exportDefault).forEach((svc, i) => {
      const prev = owner.get(svc.hostname);
      if (prev) {
        errors.push(objectError(o, [{ path: `spec.hosts[${i}]`, message: `host "${svc.hostname}" is already defined by ${prev}; this ServiceEntry is ignored for that host` }]));
        return;
      }
      services.push(svc);
      serviceByHost.set(svc.hostname, svc);
      owner.set(svc.hostname, `ServiceEntry ${o.metadata.namespace}/${o.metadata.name}`);
      entries.set(svc.hostname, o);
    });
  }
  services.sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
  return { services, serviceByHost, entries };
}

/** Keeps one host's endpoints while what they are made of is the same (model/build-cache.ts). */
export type HostMemo = <T>(host: string, given: readonly unknown[], compute: () => T) => T;

const noMemo: HostMemo = (_host, _given, compute) => compute();

type Workloads = Pick<Registry, 'workloads' | 'workloadByIp'>;

/**
 * Every service's endpoints, host by host: from its EndpointSlices (or legacy Endpoints),
 * WorkloadEntries, a ServiceEntry's endpoints and the pods its workloadSelector picks. One
 * host's endpoints are made of its own objects and the workloads, so `memo` keeps them while
 * those are the same.
 */
export function buildEndpoints(kind: Kinds, domain: string, set: ServiceSet, wl: Workloads, memo: HostMemo = noMemo): Map<string, Map<number, ServiceEndpoint[]>> {
  const slicesOf = new Map<string, ConfigObject[]>();
  for (const o of kind('EndpointSlice')) {
    const svcName = o.metadata.labels[SERVICE_NAME_LABEL];
    if (!svcName) continue;
    const host = `${svcName}.${o.metadata.namespace}.svc.${domain}`;
    const list = slicesOf.get(host);
    if (list) list.push(o);
    else slicesOf.set(host, [o]);
  }
  const legacyOf = new Map<string, ConfigObject>();
  for (const o of kind('Endpoints')) {
    const host = `${o.metadata.name}.${o.metadata.namespace}.svc.${domain}`;
    if (!legacyOf.has(host)) legacyOf.set(host, o);
  }
  const workloadEntries = kind('WorkloadEntry');
  const endpoints = new Map<string, Map<number, ServiceEndpoint[]>>();
  for (const svc of set.services) {
    const kube = svc.source.kind === 'Service';
    const slices = kube ? slicesOf.get(svc.hostname) : undefined;
    const legacy = kube && !slices ? legacyOf.get(svc.hostname) : undefined;
    const entry = set.entries.get(svc.hostname);
    const usesEntries = Object.keys(svc.selector).length > 0 ? workloadEntries : undefined;
    const m = memo(svc.hostname, [svc, slices ?? [], legacy, usesEntries, entry, wl.workloads, wl.workloadByIp], () =>
      hostEndpoints(svc, slices ?? [], legacy, usesEntries ?? [], entry, wl),
    );
    if (m) endpoints.set(svc.hostname, m);
  }
  return endpoints;
}

/** One service's endpoints, by service port; undefined when it has none. */
function hostEndpoints(
  svc: MeshService,
  slices: readonly ConfigObject[],
  legacy: ConfigObject | undefined,
  workloadEntries: readonly ConfigObject[],
  entry: ConfigObject | undefined,
  { workloads, workloadByIp }: Workloads,
): Map<number, ServiceEndpoint[]> | undefined {
  const m = new Map<number, ServiceEndpoint[]>();
  const add = (port: number, ep: ServiceEndpoint | undefined): void => {
    if (!ep) return;
    const list = m.get(port) ?? [];
    list.push(ep);
    m.set(port, list);
  };
  const podOf = (ns: string, ref?: { kind?: string; name?: string; namespace?: string }, ip?: string): Workload | undefined => {
    if (ref?.name && (ref.kind ?? 'Pod') === 'Pod') {
      const w = workloads.get(`${ref.namespace ?? ns}/${ref.name}`);
      if (w) return w;
    }
    return ip ? workloadByIp.get(ip) : undefined;
  };
  const podEndpoint = (address: string, port: number, ready: boolean, w: Workload | undefined, zone?: string): ServiceEndpoint => ({
    address,
    port,
    ready,
    labels: w?.labels ?? {},
    pod: w ? `${w.namespace}/${w.name}` : undefined,
    serviceAccount: w?.serviceAccount,
    locality: zone && !w?.locality.zone ? { ...w?.locality, zone } : (w?.locality ?? {}),
  });

  // Kubernetes endpoints, one per address for each service port as istiod keeps them: an address
  // in two slices of a Service (a pod moving between slices, or a mistake) is sent once, else
  // clients refuse the whole ClusterLoadAssignment. A ready copy wins; else the first slice's.
  // The key holds the endpoint's port and pod too: pods sharing an IP (host network, or every
  // test backend on 127.0.0.1) are different endpoints, each in its own subsets; where they are
  // the same address and port, the ClusterLoadAssignment still sends it once (cluster-shape.ts).
  const kubeEndpoints = new Map<number, Map<string, ServiceEndpoint>>();
  const addKube = (port: number, ep: ServiceEndpoint): void => {
    let byAddress = kubeEndpoints.get(port);
    if (!byAddress) kubeEndpoints.set(port, (byAddress = new Map()));
    const key = `${ep.address}|${ep.port}|${ep.pod ?? ''}`;
    const prev = byAddress.get(key);
    if (!prev || (!prev.ready && ep.ready)) byAddress.set(key, ep);
  };
  // EndpointSlices first; legacy Endpoints only for services without slices.
  for (const o of slices) {
    const spec = o.body as unknown as EndpointSliceSpec;
    if (spec.addressType === 'FQDN') continue;
    for (const sp of svc.ports) {
      const slicePort = (spec.ports ?? []).find((p) => (p.name ?? '') === sp.name);
      if (!slicePort || slicePort.port === undefined) continue;
      for (const e of spec.endpoints ?? []) {
        const ready = e.conditions?.ready !== false;
        for (const address of e.addresses) addKube(sp.port, podEndpoint(address, slicePort.port, ready, podOf(o.metadata.namespace, e.targetRef, address), e.zone));
      }
    }
  }
  if (legacy) {
    const spec = legacy.body as unknown as EndpointsSpec;
    const ns = legacy.metadata.namespace;
    for (const subset of spec.subsets ?? []) {
      for (const sp of svc.ports) {
        const p = (subset.ports ?? []).find((x) => (x.name ?? '') === sp.name);
        if (!p) continue;
        for (const a of subset.addresses ?? []) addKube(sp.port, podEndpoint(a.ip, p.port, true, podOf(ns, a.targetRef, a.ip)));
        for (const a of subset.notReadyAddresses ?? []) addKube(sp.port, podEndpoint(a.ip, p.port, false, podOf(ns, a.targetRef, a.ip)));
      }
    }
  }
  for (const [port, byAddress] of kubeEndpoints) for (const ep of byAddress.values()) add(port, ep);

  // WorkloadEntries join Kubernetes Services (by selector) and ServiceEntries (by workloadSelector)
  // in their own namespace.
  const numericTarget = (t: number | string | undefined): number | undefined => (typeof t === 'number' ? t : typeof t === 'string' && /^\d+$/.test(t) ? Number(t) : undefined);
  if (Object.keys(svc.selector).length > 0) {
    for (const o of workloadEntries) {
      const spec = (o.body.spec ?? {}) as WorkloadEntrySpec;
      if (o.metadata.namespace !== svc.namespace || !labelsMatch(svc.selector, spec.labels ?? {})) continue;
      for (const sp of svc.ports) {
        const port = spec.ports?.[sp.name] ?? numericTarget(sp.targetPort) ?? sp.port;
        add(sp.port, entryEndpoint(spec, port, o.metadata.namespace, o.metadata.name));
      }
    }
  }
  if (entry) {
    const spec = (entry.body.spec ?? {}) as ServiceEntrySpec;
    for (const sp of svc.ports) {
      const defaultPort = numericTarget(sp.targetPort) ?? sp.port;
      for (const e of spec.endpoints ?? []) add(sp.port, entryEndpoint(e, e.ports?.[sp.name] ?? defaultPort, entry.metadata.namespace));
      if (Object.keys(svc.selector).length > 0) {
        for (const w of workloads.values()) {
          if (w.namespace !== svc.namespace || !w.ip || !labelsMatch(svc.selector, w.labels)) continue;
          add(sp.port, podEndpoint(w.ip, defaultPort, true, w));
        }
      }
      // DNS resolution without endpoints resolves the host itself.
      if ((svc.resolution === 'DNS' || svc.resolution === 'DNS_ROUND_ROBIN') && (spec.endpoints ?? []).length === 0 && !svc.hostname.startsWith('*')) {
        add(sp.port, { address: svc.hostname, port: defaultPort, ready: true, labels: {}, locality: {} });
      }
    }
  }
  if (m.size === 0) return undefined;
  for (const list of m.values()) list.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port));
  return m;
}

/** `exportDefault`: MeshConfig defaultServiceExportTo, for Services and ServiceEntries without exportTo. */
export function buildRegistry(kind: Kinds, domain: string, errors: ConfigError[], exportDefault: readonly string[] = ['*']): Registry {
  const wl = buildWorkloads(kind);
  const set = buildServices(kind, domain, errors, exportDefault);
  return { ...wl, services: set.services, serviceByHost: set.serviceByHost, endpoints: buildEndpoints(kind, domain, set, wl) };
}
