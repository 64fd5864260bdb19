/**
 * EDS: ClusterLoadAssignments for outbound EDS clusters. Subsets select endpoints by labels;
 * endpoints are grouped by locality, with the proxy-relative priorities and weights of locality
 * load balancing when the DestinationRule makes them apply. DNS and original-destination
 * clusters get no assignment here.
 */
import { proxyDestinationRule, proxyServices } from '../model/lookup';
import { type ClusterTarget, type ProxyPlacement, edsTarget, groupsToProto, placedGroups, placementPlan, proxyPlacement, subsetEndpoints } from './cluster-shape';
import { withTlsModeMetadata } from './security/auto-mtls';
import type { GenerateContext, ProtoObject, Resource } from './types';
import { outboundClusterName } from './util';

function clusterLoadAssignment(ctx: GenerateContext, name: string, t: ClusterTarget, placement: ProxyPlacement | undefined): ProtoObject {
  const endpoints = subsetEndpoints(ctx.snap, t.svc, t.port.port, t.dr, t.subset) ?? [];
  // Endpoints with sidecars are marked for the clusters' auto-mTLS transport socket match.
  const groups = withTlsModeMetadata(ctx.snap, t.svc, placedGroups(endpoints, placementPlan(t, ctx.snap), placement, { ipOnly: true, withLabels: true }));
  return groups.length > 0 ? { cluster_name: name, endpoints: groupsToProto(groups) } : { cluster_name: name };
}

export function endpointResources(ctx: GenerateContext): Resource[] {
  const names = ctx.names ?? new Set(allEdsClusterNames(ctx));
  const out: Resource[] = [];
  let placement: ProxyPlacement | undefined;
  const placed = (): ProxyPlacement => (placement ??= proxyPlacement(ctx.snap, ctx.proxy));
  for (const name of [...names].sort()) {
    const r = endpointResource(ctx, name, placed);
    if (r) out.push(r);
  }
  return out;
}

/** The ClusterLoadAssignment for EDS cluster `name`, if the proxy has such a cluster. */
export function endpointResource(ctx: GenerateContext, name: string, placement: () => ProxyPlacement = () => proxyPlacement(ctx.snap, ctx.proxy)): Resource | undefined {
  const t = edsTarget(ctx, name);
  if (!t) return undefined;
  const plan = placementPlan(t, ctx.snap);
  let placed: ProxyPlacement | undefined;
  if (plan) {
    // Only locality load balancing makes endpoints proxy-relative; otherwise they are shared.
    placed = placement();
  }
  const where = placed;
  // t is a function of (svc, port, subset, dr, type); the placement is new per computation.
  return { name, build: () => clusterLoadAssignment(ctx, name, t, where), inputs: [t.svc, t.port, t.subset, t.dr, t.type, where] };
}

export function allEdsClusterNames(ctx: GenerateContext): string[] {
  const names: string[] = [];
  for (const svc of proxyServices(ctx.snap, ctx.proxy)) {
    const dr = proxyDestinationRule(ctx.snap, ctx.proxy, svc.hostname);
    const subsets = ['', ...(dr?.spec.subsets ?? []).map((s) => s.name)];
    for (const p of svc.ports) for (const s of subsets) names.push(outboundClusterName(p.port, s, svc.hostname));
  }
  return names;
}
