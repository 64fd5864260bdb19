/**
 * Validated objects → MeshSnapshot. Pure: no I/O, no clock (the caller passes the time),
 * per-object problems are collected, never thrown.
 */
import { createHash } from 'node:crypto';
import type {
  ConfigError,
  ConfigObject,
  DestinationRuleSpec,
  EndpointSliceSpec,
  EndpointsSpec,
  PodSpecLite,
  PodStatusLite,
  ServiceSpec,
  VirtualServiceSpec,
} from './objects';
import { objectError } from './objects';
import { protocolOf } from './protocol';
import {
  type DestinationRuleConfig,
  type MeshService,
  type MeshSnapshot,
  type ServiceEndpoint,
  type VirtualServiceConfig,
  type Workload,
  resolveHost,
} from './snapshot';

export interface BuildInput {
  objects: readonly ConfigObject[];
  /** Problems found before building (parse and validation errors). */
  errors: readonly ConfigError[];
  sequence: number;
  now: Date;
  domain: string;
}

const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const ZONE_LABEL = 'topology.kubernetes.io/zone';
const REGION_LABEL = 'topology.kubernetes.io/region';

function byKey(a: ConfigObject, b: ConfigObject): number {
  const ka = `${a.metadata.namespace}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    if (value instanceof Map) {
      for (const v of value.values()) deepFreeze(v);
    } else {
      for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
    }
  }
  return value;
}

export function buildSnapshot(input: BuildInput): MeshSnapshot {
  const { domain } = input;
  const errors: ConfigError[] = [...input.errors];
  const byKind = new Map<string, ConfigObject[]>();
  for (const o of input.objects) {
    const list = byKind.get(o.kind) ?? [];
    list.push(o);
    byKind.set(o.kind, list);
  }
  for (const list of byKind.values()) list.sort(byKey);
  const kind = (k: string): ConfigObject[] => byKind.get(k) ?? [];

  const namespaces = new Set<string>(['default']);
  for (const ns of kind('Namespace')) namespaces.add(ns.metadata.name);
  for (const o of input.objects) if (o.metadata.namespace) namespaces.add(o.metadata.namespace);

  // Workloads (pods)
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
      containerPorts: (spec.containers ?? []).flatMap((c) =>
        (c.ports ?? []).map((p) => ({ name: p.name, port: p.containerPort })),
      ),
    };
    workloads.set(`${w.namespace}/${w.name}`, w);
    // Host-network pods share an IP; the first (sorted) one keeps the IP index.
    if (ip && !workloadByIp.has(ip)) workloadByIp.set(ip, w);
  }

  // Services
  const services: MeshService[] = [];
  const serviceByHost = new Map<string, MeshService>();
  for (const o of kind('Service')) {
    const spec = (o.body.spec ?? {}) as ServiceSpec;
    if (spec.type === 'ExternalName') continue; // modelled by ServiceEntry-like handling later
    const hostname = `${o.metadata.name}.${o.metadata.namespace}.svc.${domain}`;
    const clusterIP = spec.clusterIP && spec.clusterIP !== 'None' ? spec.clusterIP : undefined;
    const svc: MeshService = {
      name: o.metadata.name,
      namespace: o.metadata.namespace,
      hostname,
      clusterIP,
      selector: spec.selector ?? {},
      labels: o.metadata.labels,
      ports: (spec.ports ?? []).map((p) => ({
        name: p.name ?? '',
        port: p.port,
        targetPort: p.targetPort,
        protocol: protocolOf(p),
      })),
    };
    services.push(svc);
    serviceByHost.set(hostname, svc);
  }
  services.sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));

  // Endpoints: EndpointSlices first; legacy Endpoints only for services without slices.
  const endpoints = new Map<string, Map<number, ServiceEndpoint[]>>();
  const add = (host: string, port: number, ep: ServiceEndpoint): void => {
    let m = endpoints.get(host);
    if (!m) endpoints.set(host, (m = new Map()));
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
  const endpointFor = (address: string, port: number, ready: boolean, w: Workload | undefined, zone?: string): ServiceEndpoint => ({
    address,
    port,
    ready,
    labels: w?.labels ?? {},
    pod: w ? `${w.namespace}/${w.name}` : undefined,
    serviceAccount: w?.serviceAccount,
    locality: {
      region: w?.labels[REGION_LABEL],
      zone: zone ?? w?.labels[ZONE_LABEL],
    },
  });

  const withSlices = new Set<string>();
  for (const o of kind('EndpointSlice')) {
    const svcName = o.metadata.labels[SERVICE_NAME_LABEL];
    const svc = svcName ? serviceByHost.get(`${svcName}.${o.metadata.namespace}.svc.${domain}`) : undefined;
    if (!svc) continue; // slice for a service we do not know (yet): ignored, not an error
    withSlices.add(svc.hostname);
    const spec = o.body as unknown as EndpointSliceSpec;
    if (spec.addressType === 'FQDN') continue;
    for (const sp of svc.ports) {
      const slicePort = (spec.ports ?? []).find((p) => (p.name ?? '') === sp.name);
      if (!slicePort || slicePort.port === undefined) continue;
      for (const e of spec.endpoints ?? []) {
        const ready = e.conditions?.ready !== false;
        for (const address of e.addresses) {
          add(svc.hostname, sp.port, endpointFor(address, slicePort.port, ready, podOf(o.metadata.namespace, e.targetRef, address), e.zone));
        }
      }
    }
  }
  for (const o of kind('Endpoints')) {
    const svc = serviceByHost.get(`${o.metadata.name}.${o.metadata.namespace}.svc.${domain}`);
    if (!svc || withSlices.has(svc.hostname)) continue;
    const spec = o.body as unknown as EndpointsSpec;
    for (const subset of spec.subsets ?? []) {
      for (const sp of svc.ports) {
        const p = (subset.ports ?? []).find((x) => (x.name ?? '') === sp.name);
        if (!p) continue;
        for (const a of subset.addresses ?? []) add(svc.hostname, sp.port, endpointFor(a.ip, p.port, true, podOf(o.metadata.namespace, a.targetRef, a.ip)));
        for (const a of subset.notReadyAddresses ?? []) add(svc.hostname, sp.port, endpointFor(a.ip, p.port, false, podOf(o.metadata.namespace, a.targetRef, a.ip)));
      }
    }
  }
  for (const m of endpoints.values()) {
    for (const list of m.values()) list.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port));
  }

  // VirtualServices: for sidecars and gRPC clients one VirtualService owns a host; the first
  // by namespace/name wins and later ones are reported for that host (Istio merges only for gateways).
  const virtualServices: VirtualServiceConfig[] = [];
  const virtualServiceByHost = new Map<string, VirtualServiceConfig>();
  for (const o of kind('VirtualService')) {
    const spec = (o.body.spec ?? {}) as VirtualServiceSpec;
    const hosts = (spec.hosts ?? []).map((h) => resolveHost(h, o.metadata.namespace, domain));
    const vs: VirtualServiceConfig = { meta: o.metadata, spec, hosts };
    virtualServices.push(vs);
    const gateways = spec.gateways ?? [];
    if (gateways.length > 0 && !gateways.includes('mesh')) continue; // gateway-only
    hosts.forEach((h, i) => {
      const owner = virtualServiceByHost.get(h);
      if (owner) {
        errors.push(objectError(o, [{ path: `spec.hosts[${i}]`, message: `host "${h}" is already routed by VirtualService ${owner.meta.namespace}/${owner.meta.name}; this one is ignored for that host` }]));
      } else {
        virtualServiceByHost.set(h, vs);
      }
    });
  }

  const destinationRules: DestinationRuleConfig[] = [];
  const destinationRuleByHost = new Map<string, DestinationRuleConfig>();
  for (const o of kind('DestinationRule')) {
    const spec = (o.body.spec ?? {}) as DestinationRuleSpec;
    const dr: DestinationRuleConfig = { meta: o.metadata, spec, host: resolveHost(spec.host, o.metadata.namespace, domain) };
    destinationRules.push(dr);
    const owner = destinationRuleByHost.get(dr.host);
    if (owner) {
      errors.push(objectError(o, [{ path: 'spec.host', message: `host "${dr.host}" already has DestinationRule ${owner.meta.namespace}/${owner.meta.name}; this one is ignored` }]));
    } else {
      destinationRuleByHost.set(dr.host, dr);
    }
  }

  const counts: Record<string, number> = {};
  for (const [k, list] of byKind) counts[k] = list.length;

  const hash = createHash('sha256');
  for (const o of [...input.objects].sort((a, b) => (a.kind + byKeyStr(a) < b.kind + byKeyStr(b) ? -1 : 1))) {
    hash.update(o.kind).update('\0').update(byKeyStr(o)).update('\0').update(JSON.stringify(o.body));
  }

  return deepFreeze({
    version: `${input.sequence}-${hash.digest('hex').slice(0, 12)}`,
    builtAt: input.now.toISOString(),
    domain,
    namespaces,
    services,
    serviceByHost,
    endpoints,
    workloads,
    workloadByIp,
    virtualServices,
    virtualServiceByHost,
    destinationRules,
    destinationRuleByHost,
    errors,
    counts,
  });
}

function byKeyStr(o: ConfigObject): string {
  return `${o.metadata.namespace}/${o.metadata.name}`;
}
