/**
 * EnvoyFilter patches on listeners, as istiod's listener_patch.go applies them: LISTENER
 * (MERGE, REMOVE; ADD at the list level), LISTENER_FILTER, FILTER_CHAIN (MERGE with istiod's
 * transport socket rule, REMOVE, ADD), NETWORK_FILTER and HTTP_FILTER (ADD, INSERT_FIRST,
 * INSERT_BEFORE, INSERT_AFTER, REPLACE, REMOVE, and MERGE into a filter's typed_config), each
 * applyTo's patches of every EnvoyFilter in order, object by object from the listener down.
 */
import type { EnvoyFilterApplyTo, EnvoyFilterContext } from '../../model/objects-envoyfilter';
import type { ProtoObject, ProtoValue } from '../types';
import { mergeAnyWithAny, protoMerge } from './merge';
import { type PatchRef, type PatchValues, contextMatch } from './select';

export const LISTENER_CLASS: readonly EnvoyFilterApplyTo[] = ['LISTENER', 'LISTENER_FILTER', 'FILTER_CHAIN', 'NETWORK_FILTER', 'HTTP_FILTER'];

const HCM = 'envoy.filters.network.http_connection_manager';
const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const VIRTUAL = new Set(['virtualInbound', 'virtualOutbound']);

function isObj(v: ProtoValue | undefined): v is ProtoObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function objects(v: ProtoValue | undefined): ProtoObject[] {
  return Array.isArray(v) ? v.filter(isObj) : [];
}

function num(v: ProtoValue | undefined): number {
  if (typeof v === 'number') return v;
  if (isObj(v) && typeof v['value'] === 'number') return v['value'];
  return 0;
}

function listenerPort(l: ProtoObject): number | undefined {
  const addr = l['address'];
  const sa = isObj(addr) ? addr['socket_address'] : undefined;
  return isObj(sa) ? num(sa['port_value']) : undefined;
}

export function listenerMatch(l: ProtoObject, lp: PatchRef): boolean {
  const m = lp.patch.match?.listener;
  if (!m) return true;
  if (m.name && m.name !== l['name']) return false;
  // Virtual listeners carry the port in their filter chains' matches (filterChainMatch checks it).
  if (lp.patch.applyTo !== 'LISTENER' && VIRTUAL.has(String(l['name']))) return true;
  if (m.portNumber) {
    const port = listenerPort(l);
    if (port === undefined || port !== m.portNumber) return false;
  }
  return true;
}

export function filterChainMatch(l: ProtoObject, fc: ProtoObject, lp: PatchRef): boolean {
  const m = lp.patch.match?.listener;
  if (!m) return true;
  const fcm = isObj(fc['filter_chain_match']) ? fc['filter_chain_match'] : undefined;
  if (VIRTUAL.has(String(l['name'])) && (m.portNumber ?? 0) > 0 && num(fcm?.['destination_port']) !== m.portNumber) return false;
  const match = m.filterChain;
  if (!match) return true;
  if (match.name && match.name !== fc['name']) return false;
  if (match.sni) {
    const names = Array.isArray(fcm?.['server_names']) ? fcm['server_names'] : [];
    if (!names.includes(match.sni)) return false;
  }
  if (match.transportProtocol && (!fcm || fcm['transport_protocol'] !== match.transportProtocol)) return false;
  if (match.applicationProtocols) {
    if (!fcm) return false;
    const have = Array.isArray(fcm['application_protocols']) ? fcm['application_protocols'] : [];
    for (const p of match.applicationProtocols.split(',')) if (!have.includes(p)) return false;
  }
  if ((match.destinationPort ?? 0) > 0) {
    if (!fcm || fcm['destination_port'] === undefined || num(fcm['destination_port']) !== match.destinationPort) return false;
  }
  return true;
}

const hasListenerFilterMatch = (lp: PatchRef): boolean => !!lp.patch.match?.listener?.listenerFilter;
const hasNetworkFilterMatch = (lp: PatchRef): boolean => lp.patch.match?.listener?.filterChain?.filter !== undefined;
const hasHttpFilterMatch = (lp: PatchRef): boolean => hasNetworkFilterMatch(lp) && lp.patch.match?.listener?.filterChain?.filter?.subFilter !== undefined;
const networkFilterMatch = (f: ProtoObject, lp: PatchRef): boolean => !hasNetworkFilterMatch(lp) || lp.patch.match?.listener?.filterChain?.filter?.name === f['name'];
const httpFilterMatch = (f: ProtoObject, lp: PatchRef): boolean => !hasHttpFilterMatch(lp) || lp.patch.match?.listener?.filterChain?.filter?.subFilter?.name === f['name'];
const listenerFilterMatch = (f: ProtoObject, lp: PatchRef): boolean => !hasListenerFilterMatch(lp) || lp.patch.match?.listener?.listenerFilter === f['name'];

/**
 * The list operations istiod shares between listener filters, network filters and HTTP filters
 * (ADD, INSERT_FIRST, INSERT_AFTER / INSERT_BEFORE at the first match or at the end / start
 * without a filter match, REPLACE the first match, REMOVE every match). MERGE is not a list
 * operation and leaves the list as it is.
 */
function listOp(list: ProtoObject[], lp: PatchRef, value: () => ProtoObject, hasMatch: boolean, matches: (f: ProtoObject) => boolean): ProtoObject[] {
  const at = (): number => list.findIndex(matches);
  switch (lp.patch.operation) {
    case 'ADD':
      return [...list, value()];
    case 'INSERT_FIRST':
      return [value(), ...list];
    case 'INSERT_AFTER': {
      if (!hasMatch) return [...list, value()];
      const i = at();
      return i < 0 ? list : [...list.slice(0, i + 1), value(), ...list.slice(i + 1)];
    }
    case 'INSERT_BEFORE': {
      if (!hasMatch) return [value(), ...list];
      const i = at();
      return i < 0 ? list : [...list.slice(0, i), value(), ...list.slice(i)];
    }
    case 'REPLACE': {
      if (!hasMatch) return list;
      const i = at();
      return i < 0 ? list : [...list.slice(0, i), value(), ...list.slice(i + 1)];
    }
    case 'REMOVE':
      return hasMatch ? list.filter((f) => !matches(f)) : list;
    default:
      return list;
  }
}

export class ListenerPatcher {
  constructor(
    private readonly pv: PatchValues,
    private readonly pctx: EnvoyFilterContext,
    private readonly refs: readonly PatchRef[],
  ) {}

  private of(applyTo: EnvoyFilterApplyTo): PatchRef[] {
    return this.refs.filter((r) => r.patch.applyTo === applyTo && contextMatch(r, this.pctx));
  }

  private type(name: string) {
    return this.pv.types.type(name);
  }

  /** Whether a LISTENER REMOVE takes this listener out. */
  removes(l: ProtoObject): boolean {
    return this.of('LISTENER').some((lp) => lp.patch.operation === 'REMOVE' && listenerMatch(l, lp));
  }

  /** The listener with every patch applied (a removed listener is left to `removes`). */
  patch(lis: ProtoObject): ProtoObject {
    let l = lis;
    for (const lp of this.of('LISTENER')) {
      if (!listenerMatch(l, lp)) continue;
      if (lp.patch.operation === 'REMOVE') return l;
      if (lp.patch.operation === 'MERGE') l = protoMerge(this.type('envoy.config.listener.v3.Listener'), l, this.pv.value(lp), this.pv.types);
    }
    l = this.listenerFilters(l);
    return this.filterChains(l);
  }

  /** LISTENER ADD patches for this context (an ANY-context ADD only on sidecar outbound and gateways, as istiod). */
  added(): PatchRef[] {
    return this.of('LISTENER').filter((lp) => lp.patch.operation === 'ADD' && !(lp.patch.context === 'ANY' && this.pctx !== 'SIDECAR_OUTBOUND' && this.pctx !== 'GATEWAY'));
  }

  private listenerFilters(l: ProtoObject): ProtoObject {
    const patches = this.of('LISTENER_FILTER').filter((lp) => listenerMatch(l, lp));
    if (patches.length === 0) return l;
    let list = objects(l['listener_filters']);
    for (const lp of patches)
      list = listOp(
        list,
        lp,
        () => this.pv.value(lp),
        hasListenerFilterMatch(lp),
        (f) => listenerFilterMatch(f, lp),
      );
    return { ...l, listener_filters: list };
  }

  private filterChains(l: ProtoObject): ProtoObject {
    const out: ProtoObject = { ...l };
    if (Array.isArray(l['filter_chains'])) {
      const chains: ProtoObject[] = [];
      for (const fc of objects(l['filter_chains'])) {
        const p = fc['filters'] === undefined ? fc : this.filterChain(l, fc);
        if (p) chains.push(p);
      }
      out['filter_chains'] = chains;
    }
    const dfc = l['default_filter_chain'];
    if (isObj(dfc) && dfc['filters'] !== undefined) {
      const p = this.filterChain(l, dfc);
      if (p) out['default_filter_chain'] = p;
      else delete out['default_filter_chain'];
    }
    for (const lp of this.of('FILTER_CHAIN')) {
      if (lp.patch.operation !== 'ADD' || !listenerMatch(l, lp)) continue;
      out['filter_chains'] = [...objects(out['filter_chains']), this.pv.value(lp)];
    }
    return out;
  }

  /** A filter chain patched, or undefined when a REMOVE takes it out. */
  private filterChain(l: ProtoObject, chain: ProtoObject): ProtoObject | undefined {
    let fc = chain;
    for (const lp of this.of('FILTER_CHAIN')) {
      if (!listenerMatch(l, lp) || !filterChainMatch(l, fc, lp)) continue;
      if (lp.patch.operation === 'REMOVE') return undefined;
      if (lp.patch.operation === 'MERGE') {
        const value = this.pv.value(lp);
        const merged = this.mergeTransportSocket(fc, value);
        fc = merged ?? protoMerge(this.type('envoy.config.listener.v3.FilterChain'), fc, value, this.pv.types);
      }
    }
    return this.networkFilters(l, fc);
  }

  /** istiod's mergeTransportSocketListener: the same-named transport socket's config merged in; undefined: merge the whole value. */
  private mergeTransportSocket(fc: ProtoObject, value: ProtoObject): ProtoObject | undefined {
    const want = value['transport_socket'];
    const have = fc['transport_socket'];
    if (!isObj(want) || !isObj(have) || want['name'] !== have['name']) return undefined;
    const dst = have['typed_config'];
    const src = want['typed_config'];
    if (!isObj(dst) || !isObj(src)) return fc;
    return { ...fc, transport_socket: { ...have, typed_config: mergeAnyWithAny(dst, src, this.pv.types) } };
  }

  private networkFilters(l: ProtoObject, chain: ProtoObject): ProtoObject {
    let filters = objects(chain['filters']);
    for (const lp of this.of('NETWORK_FILTER')) {
      if (!listenerMatch(l, lp) || !filterChainMatch(l, chain, lp)) continue;
      filters = listOp(
        filters,
        lp,
        () => this.pv.value(lp),
        hasNetworkFilterMatch(lp),
        (f) => networkFilterMatch(f, lp),
      );
    }
    filters = filters.map((f) => this.networkFilter(l, chain, f));
    return { ...chain, filters };
  }

  private networkFilter(l: ProtoObject, chain: ProtoObject, filter: ProtoObject): ProtoObject {
    let f = filter;
    for (const lp of this.of('NETWORK_FILTER')) {
      if (lp.patch.operation !== 'MERGE' || !listenerMatch(l, lp) || !filterChainMatch(l, chain, lp) || !networkFilterMatch(f, lp)) continue;
      f = this.mergeFilter(f, lp);
    }
    if (f['name'] === HCM) f = this.httpFilters(l, chain, f);
    return f;
  }

  /** A filter MERGE: the name replaced when the patch gives one, the typed configs merged (as the filter's own type). */
  private mergeFilter(f: ProtoObject, lp: PatchRef): ProtoObject {
    const cfg = f['typed_config'];
    // istiod skips a MERGE into a filter without typed_config.
    if (!isObj(cfg) || typeof cfg['@type'] !== 'string') return f;
    const value = this.pv.value(lp);
    const name = typeof value['name'] === 'string' && value['name'] !== '' ? value['name'] : f['name'];
    const user = this.pv.typedConfigAs(lp, cfg['@type']);
    return { ...f, ...(name !== undefined ? { name } : {}), ...(user ? { typed_config: mergeAnyWithAny(cfg, user, this.pv.types) } : {}) };
  }

  private httpFilters(l: ProtoObject, chain: ProtoObject, filter: ProtoObject): ProtoObject {
    const cfg = filter['typed_config'];
    // Without a typed HCM config istiod patches an empty one and keeps nothing of it.
    if (!isObj(cfg) || cfg['@type'] !== HCM_TYPE) return filter;
    const patches = this.of('HTTP_FILTER').filter((lp) => listenerMatch(l, lp) && filterChainMatch(l, chain, lp) && networkFilterMatch(filter, lp));
    if (patches.length === 0) return filter;
    let list = objects(cfg['http_filters']);
    for (const lp of patches)
      list = listOp(
        list,
        lp,
        () => this.pv.value(lp),
        hasHttpFilterMatch(lp),
        (f) => httpFilterMatch(f, lp),
      );
    list = list.map((hf) => {
      let out = hf;
      for (const lp of patches) if (lp.patch.operation === 'MERGE' && httpFilterMatch(out, lp)) out = this.mergeFilter(out, lp);
      return out;
    });
    return { ...filter, typed_config: { ...cfg, http_filters: list } };
  }
}
