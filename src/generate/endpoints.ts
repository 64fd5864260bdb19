/**
 * EDS: ClusterLoadAssignments for outbound EDS clusters. Subsets select endpoints by labels;
 * endpoints are grouped by locality, with the proxy-relative priorities and weights of locality
 * load balancing when the DestinationRule makes them apply. DNS and original-destination
 * clusters get no assignment here.
 */
import { destinationRuleScope, localityString, proxyDestinationRule, visibleServices } from '../model/lookup';
import {
  type ClusterTarget,
  type ProxyPlacement,
  edsTarget,
  flavorOfProxy,
  groupsToProto,
  placedGroups,
  placementPlan,
  proxyPlacement,
  subsetEndpoints,
} from './cluster-shape';
import { failoverPriorityKey } from './locality';
import { withTlsModeMetadata } from './security/auto-mtls';
import type { GenerateContext, ProtoObject, Resource } from './types';
import { outboundClusterName } from './util';

function clusterLoadAssignment(ctx: GenerateContext, name: string, t: ClusterTarget, placement: ProxyPlacement | undefined): ProtoObject {
  const endpoints = subsetEndpoints(ctx.snap, t.svc, t.port.port, t.dr, t.subset) ?? [];
  // Endpoints with sidecars are marked for the clusters' auto-mTLS transport socket match.
  const groups = withTlsModeMetadata(ctx.snap, t.svc, placedGroups(endpoints, placementPlan(t), placement, { ipOnly: true, withLabels: true }));
  return groups.length > 0 ? { cluster_name: name, endpoints: groupsToProto(groups) } : { cluster_name: name };
}

export function endpointResources(ctx: GenerateContext): Resource[] {
  const names = ctx.names ?? new Set(allEdsClusterNames(ctx));
  const out: Resource[] = [];
  let placement: ProxyPlacement | undefined;
  // Which cluster a name is and which policy applies is the same for every proxy with the same
  // flavour, type, namespace and rule scope: look it up once per snapshot, by the name itself.
  const targets = ctx.snap.memo.get(
    `eds-targets|${flavorOfProxy(ctx.proxy)}|${ctx.proxy.type}|${ctx.proxy.namespace}|${destinationRuleScope(ctx.snap, ctx.proxy)}`,
    () => new Map<string, { t: ClusterTarget; ruleKey: string; plan: ReturnType<typeof placementPlan> } | null>(),
  );
  for (const name of [...names].sort()) {
    // Endpoints themselves are selected only on a cache miss.
    let found = targets.get(name);
    if (found === undefined) {
      const target = edsTarget(ctx, name);
      // The rule in effect (subsets, locality settings) depends on the proxy's namespace and labels.
      found = target ? { t: target, ruleKey: target.dr ? target.dr.sources.join(',') : '', plan: placementPlan(target) } : null;
      targets.set(name, found);
    }
    if (!found) continue;
    const { t, plan } = found;
    let key = found.ruleKey;
    let placed: ProxyPlacement | undefined;
    if (plan) {
      // Only locality load balancing makes endpoints proxy-relative; otherwise they are shared.
      placement ??= proxyPlacement(ctx.snap, ctx.proxy);
      placed = placement;
      key += `|${localityString(placed.locality)}|${failoverPriorityKey(placed.labels, plan.failover ? plan.setting.failoverPriority : undefined)}`;
    }
    out.push({ name, key, build: () => clusterLoadAssignment(ctx, name, t, placed) });
  }
  return out;
}

function allEdsClusterNames(ctx: GenerateContext): string[] {
  const names: string[] = [];
  for (const svc of visibleServices(ctx.snap, ctx.proxy.namespace)) {
    const dr = proxyDestinationRule(ctx.snap, ctx.proxy, svc.hostname);
    const subsets = ['', ...(dr?.spec.subsets ?? []).map((s) => s.name)];
    for (const p of svc.ports) for (const s of subsets) names.push(outboundClusterName(p.port, s, svc.hostname));
  }
  return names;
}
