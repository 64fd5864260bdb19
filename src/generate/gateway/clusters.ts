/**
 * CDS and EDS for gateway proxies: the same outbound clusters as sidecars plus BlackHoleCluster
 * (gateways have no original-destination listeners, so no passthrough or inbound clusters), and
 * for AUTO_PASSTHROUGH servers one cluster per SNI name `outbound_.<port>_.<subset>_.<host>`
 * with the endpoints of the matching outbound cluster (istiod's SNI-DNAT clusters).
 */
import { outboundClusters } from '../clusters';
import { endpointResources } from '../endpoints';
import type { GenerateContext, ProtoObject, Resource } from '../types';
import { BLACKHOLE_CLUSTER } from '../util';
import { autoPassthroughTargets } from './l4';
import { mergeGateways } from './merge';

function sniTargets(ctx: GenerateContext): { name: string; outbound: string }[] {
  const merged = mergeGateways(ctx.snap, ctx.proxy);
  return merged.autoPassthroughHosts.length > 0 ? autoPassthroughTargets(ctx.snap, ctx.proxy, merged.autoPassthroughHosts) : [];
}

/** An outbound resource under another name: the same cluster (or endpoints), reached by SNI. */
function renamed(r: Resource, name: string, rename: (body: ProtoObject) => void): Resource {
  return {
    name,
    build: () => {
      const body = r.build();
      rename(body);
      return body;
    },
  };
}

export function gatewayClusters(ctx: GenerateContext): Resource[] {
  const out = outboundClusters(ctx, 'envoy');
  const want = (n: string): boolean => !ctx.names || ctx.names.has(n);
  const targets = sniTargets(ctx).filter((t) => want(t.name));
  // One pass over the outbound clusters for all SNI targets, not one per target.
  const bases = targets.length > 0 ? new Map(outboundClusters({ ...ctx, names: new Set(targets.map((t) => t.outbound)) }, 'envoy').map((r) => [r.name, r])) : undefined;
  for (const t of targets) {
    const base = bases?.get(t.outbound);
    if (!base) continue;
    out.push(
      renamed(base, t.name, (c) => {
        c.name = t.name;
        const eds = c.eds_cluster_config as ProtoObject | undefined;
        if (eds) eds.service_name = t.name;
        // The client's TLS passes through untouched; the gateway does not originate its own.
        delete c.transport_socket;
        delete c.transport_socket_matches;
      }),
    );
  }
  if (want(BLACKHOLE_CLUSTER)) {
    out.push({
      name: BLACKHOLE_CLUSTER,
      build: () => ({ name: BLACKHOLE_CLUSTER, type: 'STATIC', connect_timeout: { ...ctx.snap.connectTimeout }, load_assignment: { cluster_name: BLACKHOLE_CLUSTER } }),
    });
  }
  return out;
}

export function gatewayEndpoints(ctx: GenerateContext): Resource[] {
  const targets = sniTargets(ctx);
  if (targets.length === 0) return endpointResources(ctx);
  const sni = new Set(targets.map((t) => t.name));
  const out = endpointResources({ ...ctx, names: ctx.names ? new Set([...ctx.names].filter((n) => !sni.has(n))) : undefined });
  const wanted = targets.filter((t) => !ctx.names || ctx.names.has(t.name));
  if (wanted.length === 0) return out;
  const bases = new Map(endpointResources({ ...ctx, names: new Set(wanted.map((t) => t.outbound)) }).map((r) => [r.name, r]));
  for (const t of wanted) {
    const base = bases.get(t.outbound);
    if (base) out.push(renamed(base, t.name, (cla) => (cla.cluster_name = t.name)));
  }
  return out;
}
