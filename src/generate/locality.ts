/**
 * Locality load balancing relative to the proxy, as istiod's loadbalancer.go: `distribute`
 * rewrites locality weights; failover (the default, `failover` and `failoverPriority`) sets
 * EDS priorities. Failover applies only when the policy has outlierDetection, as in istiod:
 * without it a client never learns that a priority is unhealthy and so never moves on.
 */
import type { LocalityLbSetting, TrafficPolicy } from '../model/objects';
import type { Locality, ServiceEndpoint } from '../model/snapshot';
import type { ProtoObject } from './types';

export const REGION_LABEL = 'topology.kubernetes.io/region';
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
export const SUBZONE_LABEL = 'topology.istio.io/subzone';
export const NETWORK_LABEL = 'topology.istio.io/network';

/** istiod's MeshConfig default: locality load balancing on, no explicit settings. */
const MESH_DEFAULT: LocalityLbSetting = { enabled: true };

/** One locality of a ClusterLoadAssignment under construction. */
export interface LocalityGroup {
  locality: Locality;
  /** The model endpoints behind lbEndpoints (same order), for failoverPriority label matching. */
  endpoints: ServiceEndpoint[];
  lbEndpoints: ProtoObject[];
  /** Sum of the endpoint weights unless `distribute` rewrote it. */
  weight: number;
  priority: number;
}

export interface LocalityLbPlan {
  setting: LocalityLbSetting;
  /** Priorities apply: the policy has outlier detection. */
  failover: boolean;
}

/**
 * What locality load balancing does for a cluster with this (merged) policy, or undefined when
 * its endpoints do not depend on the proxy's locality: the rule's setting (enabled: false turns
 * it off), else the MeshConfig's localityLbSetting; weights always, priorities only with outlier detection.
 */
export function localityLbPlan(policy: TrafficPolicy | undefined, meshSetting: LocalityLbSetting = MESH_DEFAULT): LocalityLbPlan | undefined {
  const own = policy?.loadBalancer?.localityLbSetting;
  const setting = own ?? meshSetting;
  if (setting.enabled === false) return undefined;
  const failover = policy?.outlierDetection !== undefined;
  if ((setting.distribute?.length ?? 0) > 0 || failover) return { setting, failover };
  return undefined;
}

/** Whether the cluster gets common_lb_config.locality_weighted_lb_config (istiod's applyLocalityLoadBalancer). */
export function wantsLocalityWeightedConfig(plan: LocalityLbPlan | undefined): boolean {
  if (!plan) return false;
  const s = plan.setting;
  return (s.distribute?.length ?? 0) > 0 || (plan.failover && ((s.failover?.length ?? 0) > 0 || (s.failoverPriority?.length ?? 0) > 0));
}

function splitLocality(s: string | undefined): [string, string, string] {
  const [region = '', zone = '', subZone = ''] = (s ?? '').split('/');
  return [region, zone, subZone];
}

/** A rule locality (`region/zone/subzone`, `*` wildcards, missing parts match all) against a locality. */
export function localityMatch(l: Locality, rule: string | undefined): boolean {
  const [region, zone, subZone] = splitLocality(rule);
  return (
    (region === '*' || (l.region ?? '') === region) &&
    (zone === '*' || zone === '' || (l.zone ?? '') === zone) &&
    (subZone === '*' || subZone === '' || (l.subZone ?? '') === subZone)
  );
}

/** 0 same subzone, 1 same zone, 2 same region, 3 other region. */
export function lbPriority(proxy: Locality, ep: Locality): number {
  if ((proxy.region ?? '') !== (ep.region ?? '')) return 3;
  if ((proxy.zone ?? '') !== (ep.zone ?? '')) return 2;
  return (proxy.subZone ?? '') === (ep.subZone ?? '') ? 0 : 1;
}

/** Priorities must run 0..N without gaps: map the distinct values onto their rank. */
function compactPriorities(groups: LocalityGroup[]): void {
  const distinct = [...new Set(groups.map((g) => g.priority))].sort((a, b) => a - b);
  const rank = new Map(distinct.map((p, i) => [p, i]));
  for (const g of groups) g.priority = rank.get(g.priority) ?? 0;
}

/** istiod's applyLocalityWeights: the first `distribute` entry whose `from` matches the proxy wins. */
function applyLocalityWeights(groups: LocalityGroup[], proxy: Locality, distribute: NonNullable<LocalityLbSetting['distribute']>): void {
  const rule = distribute.find((d) => localityMatch(proxy, d.from));
  if (!rule) return;
  const unmatched = new Set(groups.map((_, i) => i));
  for (const [target, weight] of Object.entries(rule.to ?? {})) {
    const matched = new Map<number, number>();
    let total = 0;
    groups.forEach((g, i) => {
      if (!unmatched.has(i) || !localityMatch(g.locality, target)) return;
      unmatched.delete(i);
      matched.set(i, g.weight);
      total += g.weight;
    });
    // A wildcard target shares its weight among the localities it matches, by their own weight.
    for (const [i, original] of matched) {
      const w = total > 0 ? (original * weight) / total : 0;
      const g = groups[i];
      if (g && w > 0) g.weight = Math.ceil(w);
    }
  }
  // Localities the rule does not mention get no traffic.
  for (const i of unmatched) {
    const g = groups[i];
    if (g) g.lbEndpoints = [];
  }
}

/** istiod's applyLocalityFailover: priority by locality distance, `failover` demoting other regions. */
function applyLocalityFailover(groups: LocalityGroup[], proxy: Locality, failover: NonNullable<LocalityLbSetting['failover']>): void {
  for (const g of groups) {
    let p = lbPriority(proxy, g.locality);
    if (p === 3) {
      const f = failover.find((x) => x.from === (proxy.region ?? ''));
      if (f && (g.locality.region ?? '') !== (f.to ?? '')) p = 4;
    }
    // Up to 5 locality priorities nest inside any failoverPriority priorities already set.
    g.priority = g.priority * 5 + p;
  }
  compactPriorities(groups);
}

function priorityLabels(priorities: readonly string[]): { labels: string[]; overrides: Map<string, string> } {
  const labels: string[] = [];
  const overrides = new Map<string, string>();
  for (const p of priorities) {
    const [label = '', value] = p.split('=');
    labels.push(label);
    if (value !== undefined && p.split('=').length === 2) overrides.set(label, value);
  }
  return { labels, overrides };
}

/** istiod's applyFailoverPriorities: split each locality by how many priority labels match the proxy's. */
function applyFailoverPriorities(groups: LocalityGroup[], proxyLabels: Readonly<Record<string, string>>, priorities: readonly string[]): LocalityGroup[] {
  if (Object.keys(proxyLabels).length === 0 || groups.length === 0) return groups;
  const { labels, overrides } = priorityLabels(priorities);
  const out: LocalityGroup[] = [];
  for (const g of groups) {
    const byPriority = new Map<number, number[]>();
    g.endpoints.forEach((ep, i) => {
      const epLabels = endpointTopologyLabels(ep);
      let priority = 0;
      for (let j = 0; j < labels.length; j++) {
        const label = labels[j] as string;
        const want = overrides.get(label) ?? proxyLabels[label] ?? '';
        if (want !== (epLabels[label] ?? '')) {
          priority = labels.length - j;
          break;
        }
      }
      byPriority.set(priority, [...(byPriority.get(priority) ?? []), i]);
    });
    for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
      const idx = byPriority.get(priority) ?? [];
      const lbEndpoints = idx.map((i) => g.lbEndpoints[i]).filter((e): e is ProtoObject => e !== undefined);
      out.push({
        locality: g.locality,
        endpoints: idx.map((i) => g.endpoints[i]).filter((e): e is ServiceEndpoint => e !== undefined),
        lbEndpoints,
        weight: lbEndpoints.reduce((sum, e) => sum + lbWeight(e), 0),
        priority,
      });
    }
  }
  compactPriorities(out);
  return out;
}

function lbWeight(e: ProtoObject): number {
  const w = e.load_balancing_weight;
  return w && typeof w === 'object' && !Array.isArray(w) && typeof w.value === 'number' ? w.value : 1;
}

/**
 * Locality load balancing for one proxy. `withLabels` is false for inline load assignments
 * (DNS clusters), where istiod does not apply failoverPriority either.
 */
export function applyLocalityLb(
  groups: LocalityGroup[],
  proxy: Locality,
  proxyLabels: Readonly<Record<string, string>>,
  plan: LocalityLbPlan,
  withLabels: boolean,
): LocalityGroup[] {
  const s = plan.setting;
  if ((s.distribute?.length ?? 0) > 0) {
    applyLocalityWeights(groups, proxy, s.distribute ?? []);
    return groups;
  }
  if (!plan.failover) return groups;
  let out = groups;
  if ((s.failoverPriority?.length ?? 0) > 0) {
    if (withLabels) out = applyFailoverPriorities(out, proxyLabels, s.failoverPriority ?? []);
    if ((s.failover?.length ?? 0) > 0) applyLocalityFailover(out, proxy, s.failover ?? []);
  } else {
    applyLocalityFailover(out, proxy, s.failover ?? []);
  }
  return out;
}

/** Topology labels istiod adds to workloads and endpoints (labelutil.AugmentLabels). */
export function topologyLabels(l: Locality, network?: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (l.region) out[REGION_LABEL] = l.region;
  if (l.zone) out[ZONE_LABEL] = l.zone;
  if (l.subZone) out[SUBZONE_LABEL] = l.subZone;
  if (network) out[NETWORK_LABEL] = network;
  return out;
}

function endpointTopologyLabels(ep: ServiceEndpoint): Record<string, string> {
  return { ...ep.labels, ...topologyLabels(ep.locality, ep.network) };
}
