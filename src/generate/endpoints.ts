/** EDS: ClusterLoadAssignments for outbound clusters, subsets selected by pod labels. */
import { proxyDestinationRule, visibleServices } from '../model/lookup';
import { type ServiceEndpoint, labelsMatch } from '../model/snapshot';
import type { GenerateContext, ProtoObject, Resource } from './types';
import { outboundClusterName, parseOutboundClusterName, socketAddress } from './util';

function localityKey(e: ServiceEndpoint): string {
  return `${e.locality.region ?? ''}/${e.locality.zone ?? ''}/${e.locality.subZone ?? ''}`;
}

export function loadAssignment(clusterName: string, endpoints: readonly ServiceEndpoint[]): ProtoObject {
  const groups = new Map<string, ServiceEndpoint[]>();
  for (const e of endpoints) {
    if (!e.ready) continue;
    const k = localityKey(e);
    const g = groups.get(k) ?? [];
    g.push(e);
    groups.set(k, g);
  }
  const localities = [...groups.keys()].sort();
  return {
    cluster_name: clusterName,
    endpoints: localities.map((k) => {
      const eps = groups.get(k) ?? [];
      const first = eps[0];
      const locality: ProtoObject = {};
      if (first?.locality.region) locality.region = first.locality.region;
      if (first?.locality.zone) locality.zone = first.locality.zone;
      if (first?.locality.subZone) locality.sub_zone = first.locality.subZone;
      return {
        locality,
        lb_endpoints: eps.map((e) => ({
          endpoint: { address: socketAddress(e.address, e.port) },
          health_status: 'HEALTHY',
          load_balancing_weight: { value: 1 },
        })),
        // gRPC clients drop localities without a weight; Envoy ignores it unless locality-weighted.
        load_balancing_weight: { value: eps.length },
      };
    }),
  };
}

/** The endpoints behind one outbound cluster name, or undefined if it names nothing we know. */
export function endpointsForCluster(ctx: GenerateContext, clusterName: string): readonly ServiceEndpoint[] | undefined {
  const parsed = parseOutboundClusterName(clusterName);
  if (!parsed) return undefined;
  const svc = ctx.snap.serviceByHost.get(parsed.host);
  if (!svc || !svc.ports.some((p) => p.port === parsed.port)) return undefined;
  const all = ctx.snap.endpoints.get(parsed.host)?.get(parsed.port) ?? [];
  if (!parsed.subset) return all;
  const dr = proxyDestinationRule(ctx.snap, ctx.proxy, parsed.host);
  const subset = dr?.spec.subsets?.find((s) => s.name === parsed.subset);
  if (!subset) return undefined;
  return all.filter((e) => labelsMatch(subset.labels, e.labels));
}

export function endpointResources(ctx: GenerateContext): Resource[] {
  const names = ctx.names ?? new Set(allEdsClusterNames(ctx));
  const out: Resource[] = [];
  for (const name of [...names].sort()) {
    // Existence is cheap to check; selecting subset endpoints happens only on a cache miss.
    if (!clusterExists(ctx, name)) continue;
    // A subset's endpoints depend on the DestinationRule in effect for this proxy.
    const parsed = parseOutboundClusterName(name);
    const dr = parsed?.subset ? proxyDestinationRule(ctx.snap, ctx.proxy, parsed.host) : undefined;
    out.push({ name, key: dr ? dr.sources.join(',') : '', build: () => loadAssignment(name, endpointsForCluster(ctx, name) ?? []) });
  }
  return out;
}

function clusterExists(ctx: GenerateContext, clusterName: string): boolean {
  const parsed = parseOutboundClusterName(clusterName);
  if (!parsed) return false;
  const svc = ctx.snap.serviceByHost.get(parsed.host);
  if (!svc || !svc.ports.some((p) => p.port === parsed.port)) return false;
  return !parsed.subset || proxyDestinationRule(ctx.snap, ctx.proxy, parsed.host)?.spec.subsets?.some((s) => s.name === parsed.subset) === true;
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
