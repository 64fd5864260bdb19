/**
 * How one service port becomes a cluster for one proxy: its discovery type (istiod's
 * convertResolution), the endpoints of a subset, their locality groups (shared by EDS and the
 * inline load assignments of DNS clusters), and the identities TLS verifies.
 */
import { isIP } from 'node:net';
import { proxyDestinationRule, proxyLocality } from '../model/lookup';
import { type Proxy, proxyLabels } from '../model/proxy';
import type { TrafficPolicy } from '../model/objects';
import { spiffeIdentities } from '../model/trust-domain';
import { type DestinationRuleConfig, type Locality, type MeshService, type MeshSnapshot, type ServiceEndpoint, type ServicePort, labelsMatch } from '../model/snapshot';
import { type ClusterFlavor, clusterPolicy, isPassthrough } from './cluster-policy';
import { type LocalityGroup, type LocalityLbPlan, applyLocalityLb, localityLbPlan, topologyLabels } from './locality';
import type { GenerateContext, ProtoObject } from './types';
import { parseOutboundClusterName, socketAddress } from './util';

export type DiscoveryType = 'EDS' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'ORIGINAL_DST';

export function flavorOfProxy(proxy: Proxy): ClusterFlavor {
  return proxy.generator === 'grpc' ? 'grpc' : 'envoy';
}

/**
 * The cluster type. Envoy: ServiceEntry resolution (DNS → STRICT_DNS, DNS_ROUND_ROBIN →
 * LOGICAL_DNS, NONE → ORIGINAL_DST except on gateways, which cannot use it and get EDS), or
 * ORIGINAL_DST for a PASSTHROUGH load balancer. gRPC has EDS and LOGICAL_DNS only.
 */
export function discoveryType(svc: MeshService, proxy: Proxy, policy: TrafficPolicy | undefined, flavor: ClusterFlavor): DiscoveryType {
  if (flavor === 'grpc') return svc.resolution === 'DNS' || svc.resolution === 'DNS_ROUND_ROBIN' ? 'LOGICAL_DNS' : 'EDS';
  if (isPassthrough(policy)) return 'ORIGINAL_DST';
  switch (svc.resolution) {
    case 'DNS':
      return 'STRICT_DNS';
    case 'DNS_ROUND_ROBIN':
      return 'LOGICAL_DNS';
    case 'PASSTHROUGH':
      return proxy.type === 'router' ? 'EDS' : 'ORIGINAL_DST';
    default:
      return 'EDS';
  }
}

/** The endpoints of one port, narrowed to a subset's labels; undefined if the rule has no such subset. */
export function subsetEndpoints(snap: MeshSnapshot, svc: MeshService, port: number, dr: DestinationRuleConfig | undefined, subset: string): readonly ServiceEndpoint[] | undefined {
  const all = snap.endpoints.get(svc.hostname)?.get(port) ?? [];
  if (!subset) return all;
  const s = dr?.spec.subsets?.find((x) => x.name === subset);
  if (!s) return undefined;
  return all.filter((e) => labelsMatch(s.labels, e.labels));
}

function localityKey(l: Locality): string {
  return `${l.region ?? ''}/${l.zone ?? ''}/${l.subZone ?? ''}`;
}

export function lbEndpoint(e: ServiceEndpoint): ProtoObject {
  return {
    endpoint: { address: socketAddress(e.address, e.port) },
    health_status: 'HEALTHY',
    load_balancing_weight: { value: e.weight ?? 1 },
  };
}

/**
 * Ready endpoints grouped by locality, sorted by locality as istiod does. An address and port
 * appears once (the first): sources that name the same workload twice (a WorkloadEntry and a
 * pod, two ServiceEntry endpoints) must not make a ClusterLoadAssignment clients refuse.
 */
export function localityGroups(endpoints: readonly ServiceEndpoint[], ipOnly: boolean): LocalityGroup[] {
  const groups = new Map<string, LocalityGroup>();
  const seen = new Set<string>();
  for (const e of endpoints) {
    // EDS carries addresses only; hostnames belong to DNS clusters.
    if (!e.ready || (ipOnly && isIP(e.address) === 0)) continue;
    const key = `${e.address}|${e.port}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const k = localityKey(e.locality);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { locality: e.locality, endpoints: [], lbEndpoints: [], weight: 0, priority: 0 }));
    g.endpoints.push(e);
    g.lbEndpoints.push(lbEndpoint(e));
    g.weight += e.weight ?? 1;
  }
  return [...groups.keys()].sort().map((k) => groups.get(k) as LocalityGroup);
}

export function localityProto(l: Locality): ProtoObject {
  const out: ProtoObject = {};
  if (l.region) out.region = l.region;
  if (l.zone) out.zone = l.zone;
  if (l.subZone) out.sub_zone = l.subZone;
  return out;
}

export function groupsToProto(groups: readonly LocalityGroup[]): ProtoObject[] {
  return groups.map((g) => {
    const out: ProtoObject = {
      locality: localityProto(g.locality),
      lb_endpoints: g.lbEndpoints,
      // gRPC clients drop localities without a weight; Envoy reads it only when locality-weighted.
      load_balancing_weight: { value: g.weight },
    };
    if (g.priority > 0) out.priority = g.priority;
    return out;
  });
}

/** The proxy's view for locality load balancing: its locality and labels with topology labels added. */
export interface ProxyPlacement {
  locality: Locality;
  labels: Readonly<Record<string, string>>;
}

export function proxyPlacement(snap: MeshSnapshot, proxy: Proxy): ProxyPlacement {
  const locality = proxyLocality(proxy, snap);
  const network = typeof proxy.metadata.NETWORK === 'string' ? proxy.metadata.NETWORK : undefined;
  return { locality, labels: { ...proxyLabels(proxy, snap), ...topologyLabels(locality, network) } };
}

/** Locality groups for one proxy, with its locality load balancing applied. */
export function placedGroups(
  endpoints: readonly ServiceEndpoint[],
  plan: LocalityLbPlan | undefined,
  placement: ProxyPlacement | undefined,
  opts: { ipOnly: boolean; withLabels: boolean },
): LocalityGroup[] {
  const groups = localityGroups(endpoints, opts.ipOnly);
  if (!plan || !placement) return groups;
  return applyLocalityLb(groups, placement.locality, placement.labels, plan, opts.withLabels);
}

/** spiffe identities of every workload behind the service, plus ServiceEntry subjectAltNames; sorted. */
export function serviceAccounts(snap: MeshSnapshot, svc: MeshService): string[] {
  const out = new Set<string>(svc.subjectAltNames);
  // The model keeps them per host apart from the endpoints, so an endpoint change that keeps
  // the identities leaves every cluster that verifies them untouched.
  for (const id of snap.serviceAccountsByHost.get(svc.hostname) ?? []) for (const spiffe of spiffeIdentities(snap.trustDomains, id)) out.add(spiffe);
  return [...out].sort();
}

/** One outbound cluster as this proxy sees it. */
export interface ClusterTarget {
  svc: MeshService;
  port: ServicePort;
  subset: string;
  dr: DestinationRuleConfig | undefined;
  policy: TrafficPolicy | undefined;
  type: DiscoveryType;
}

export function clusterTarget(
  snap: MeshSnapshot,
  svc: MeshService,
  port: ServicePort,
  subset: string,
  dr: DestinationRuleConfig | undefined,
  proxy: Proxy,
  flavor: ClusterFlavor,
): ClusterTarget {
  // The same for every proxy of a flavour and type that sees the same rule: computed once per snapshot.
  const key = `ct|${flavor}|${proxy.type}|${dr ? dr.sources.join(',') : ''}|${svc.hostname}|${port.port}|${subset}`;
  return snap.memo.get(key, () => {
    const policy = clusterPolicy(dr, subset, port.port);
    return { svc, port, subset, dr, policy, type: discoveryType(svc, proxy, policy, flavor) };
  });
}

/** What an outbound cluster name stands for, for this proxy: its service, port, subset and rule. */
export function outboundNamed(
  ctx: GenerateContext,
  clusterName: string,
): { svc: MeshService; port: ServicePort; subset: string; dr: DestinationRuleConfig | undefined } | undefined {
  const parsed = parseOutboundClusterName(clusterName);
  if (!parsed) return undefined;
  const svc = ctx.snap.serviceByHost.get(parsed.host);
  const port = svc?.ports.find((p) => p.port === parsed.port);
  if (!svc || !port || port.protocol === 'UDP') return undefined;
  const dr = proxyDestinationRule(ctx.snap, ctx.proxy, svc.hostname);
  if (parsed.subset && !dr?.spec.subsets?.some((s) => s.name === parsed.subset)) return undefined;
  return { svc, port, subset: parsed.subset, dr };
}

/** The target an EDS name stands for, if it names an EDS cluster this proxy has. */
export function edsTarget(ctx: GenerateContext, clusterName: string): ClusterTarget | undefined {
  const o = outboundNamed(ctx, clusterName);
  if (!o) return undefined;
  const t = clusterTarget(ctx.snap, o.svc, o.port, o.subset, o.dr, ctx.proxy, flavorOfProxy(ctx.proxy));
  return t.type === 'EDS' ? t : undefined;
}

/** The locality load-balancing plan, when the proxy's placement shapes this cluster's endpoints. */
export function placementPlan(t: ClusterTarget, snap: MeshSnapshot): LocalityLbPlan | undefined {
  return localityLbPlan(t.policy, snap.localityLbSetting);
}
