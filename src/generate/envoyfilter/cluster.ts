/**
 * EnvoyFilter patches on clusters, as istiod's cluster_patch.go applies them: MERGE (with the
 * transport socket rule of mergeTransportSocketCluster), REMOVE, and ADD (a new cluster, for
 * sidecar outbound and gateways when the context is ANY). A cluster is matched by name, or by
 * the service, port and subset its `outbound|port|subset|host` name carries.
 */
import type { EnvoyFilterContext } from '../../model/objects-envoyfilter';
import type { ProtoObject, ProtoValue } from '../types';
import { mergeAnyWithAny, protoMerge } from './merge';
import { type PatchRef, type PatchValues, contextMatch } from './select';

function isObj(v: ProtoValue | undefined): v is ProtoObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** istiod's ParseSubsetKey: direction, subset, host and port of `dir|port|subset|host`. */
function parseSubsetKey(name: string): { direction: string; subset: string; host: string; port: number } {
  const parts = name.split('|');
  if (parts.length < 4) return { direction: '', subset: '', host: '', port: 0 };
  return { direction: parts[0] ?? '', port: Number(parts[1]) || 0, subset: parts[2] ?? '', host: parts[3] ?? '' };
}

export function clusterMatch(name: string, cp: PatchRef, hosts: readonly string[] = []): boolean {
  const m = cp.patch.match?.cluster;
  if (!m) return true;
  if (m.name) return m.name === name;
  const { direction, subset, host, port } = parseSubsetKey(name);
  const hostMatches = direction === 'inbound' && hosts.length > 0 ? hosts : [host];
  if (m.subset && m.subset !== subset) return false;
  if (m.service && !hostMatches.includes(m.service)) return false;
  if (m.portNumber && m.portNumber !== port) return false;
  return true;
}

export class ClusterPatcher {
  private readonly refs: readonly PatchRef[];

  constructor(
    private readonly pv: PatchValues,
    private readonly pctx: EnvoyFilterContext,
    refs: readonly PatchRef[],
  ) {
    this.refs = refs.filter((r) => r.patch.applyTo === 'CLUSTER' && contextMatch(r, pctx));
  }

  get empty(): boolean {
    return this.refs.length === 0;
  }

  /** Whether a REMOVE takes the cluster out (istiod stops at the first matching REMOVE). */
  removes(name: string): boolean {
    for (const cp of this.refs) {
      if (cp.patch.operation === 'REMOVE' && clusterMatch(name, cp)) return true;
    }
    return false;
  }

  /** Whether any MERGE matches the cluster (the others leave it as it is). */
  touches(name: string): boolean {
    return this.refs.some((cp) => cp.patch.operation === 'MERGE' && clusterMatch(name, cp));
  }

  merge(cluster: ProtoObject): ProtoObject {
    const name = String(cluster['name'] ?? '');
    let c = cluster;
    for (const cp of this.refs) {
      if (cp.patch.operation !== 'MERGE' || !clusterMatch(name, cp)) continue;
      const value = this.pv.value(cp);
      const ts = this.mergeTransportSocket(c, value);
      c = ts ?? protoMerge(this.pv.types.type('envoy.config.cluster.v3.Cluster'), c, value, this.pv.types);
    }
    return c;
  }

  /** ADD patches: new clusters (an ANY-context ADD only on sidecar outbound and gateways). */
  added(): PatchRef[] {
    return this.refs.filter((cp) => cp.patch.operation === 'ADD' && !(cp.patch.context === 'ANY' && this.pctx !== 'SIDECAR_OUTBOUND' && this.pctx !== 'GATEWAY'));
  }

  /** istiod's mergeTransportSocketCluster; undefined: merge the whole value as usual. */
  private mergeTransportSocket(c: ProtoObject, value: ProtoObject): ProtoObject | undefined {
    const want = value['transport_socket'];
    if (!isObj(want)) return undefined;
    let ts: ProtoObject | undefined;
    let at: number | undefined;
    const matches = Array.isArray(c['transport_socket_matches']) ? c['transport_socket_matches'].filter(isObj) : [];
    if (matches.length > 0) {
      at = matches.findIndex((m) => isObj(m['transport_socket']) && m['transport_socket']['name'] === want['name']);
      // Merging would leave both transport_socket and transport_socket_matches: the patch is dropped.
      if (at < 0) return c;
      ts = matches[at]?.['transport_socket'] as ProtoObject;
    } else if (isObj(c['transport_socket']) && c['transport_socket']['name'] === want['name']) {
      ts = c['transport_socket'];
    }
    if (!ts) return { ...c, transport_socket: want };
    const dst = ts['typed_config'];
    const src = want['typed_config'];
    if (!isObj(dst) || !isObj(src)) return c;
    const merged: ProtoObject = { ...ts, typed_config: mergeAnyWithAny(dst, src, this.pv.types) };
    if (at !== undefined) return { ...c, transport_socket_matches: matches.map((m, i) => (i === at ? { ...m, transport_socket: merged } : m)) };
    return { ...c, transport_socket: merged };
  }
}
