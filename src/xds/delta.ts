/**
 * Incremental xDS (DeltaAggregatedResources), as Envoy and Istio 1.22+ sidecars speak it:
 * - subscriptions per type: names added and removed by `resource_names_subscribe` and
 *   `_unsubscribe`; a first request with no names for CDS or LDS, or the name `*`, is a wildcard
 *   (Envoy's legacy and explicit wildcard);
 * - each resource carries its own version (the hash of its bytes); a response holds only the
 *   resources that changed for this client, and `removed_resources` for subscribed ones that
 *   are gone;
 * - `initial_resource_versions` on a new stream says what the client already has: unchanged
 *   resources are not sent again, and ones that no longer exist are removed;
 * - ACK and NACK by nonce, as in state of the world.
 */
import type { Connection, DeltaDiscoveryRequestMsg, DeltaDiscoveryResponseMsg, WatchState } from './connection';
import { type ProtocolDeps, WILDCARD_TYPES, beginRespond, newWatch, recordAck } from './sotw';
import { SHORT_TYPE, type TypeUrl, isTypeUrl } from './protos';
import { FRAMED } from './shared-responses';
import { deltaBytes } from './wire';

export function deltaRequest(deps: ProtocolDeps, conn: Connection, req: DeltaDiscoveryRequestMsg): void {
  const typeUrl = req.type_url ?? '';
  if (!isTypeUrl(typeUrl)) {
    deps.log.warn({ conn: conn.id, typeUrl }, 'request for an unsupported type ignored');
    return;
  }
  const subscribe = req.resource_names_subscribe ?? [];
  const unsubscribe = req.resource_names_unsubscribe ?? [];
  let w = conn.watches.get(typeUrl);
  const nonce = req.response_nonce ?? '';
  if (!w) {
    // The first request of a type: no names means a wildcard for CDS and LDS (legacy wildcard).
    const wildcard = subscribe.includes('*') || (subscribe.length === 0 && WILDCARD_TYPES.has(typeUrl));
    const explicit = new Set(subscribe.filter((n) => n !== '*'));
    w = newWatch(wildcard ? undefined : new Set(explicit));
    w.explicit = explicit;
    for (const [name, version] of Object.entries(req.initial_resource_versions ?? {})) w.sent.set(name, version);
    conn.watches.set(typeUrl, w);
    deps.enqueue(conn);
    return;
  }
  if (nonce !== '' && !recordAck(deps, conn, typeUrl, w, nonce, undefined, req.error_detail)) {
    // A stale ACK may still carry subscription changes; they count.
    if (subscribe.length === 0 && unsubscribe.length === 0) return;
  }
  if (subscribe.length > 0 || unsubscribe.length > 0) {
    changeSubscription(w, subscribe, unsubscribe);
    w.lastSet = undefined;
    w.mustRespond = subscribe.length > 0;
    deps.enqueue(conn);
  }
}

/**
 * Names subscribed explicitly are remembered while a wildcard is on, so leaving the wildcard
 * (unsubscribing `*`) keeps them, as Envoy expects.
 */
function changeSubscription(w: WatchState, subscribe: readonly string[], unsubscribe: readonly string[]): void {
  const explicit = (w.explicit ??= new Set(w.names ?? []));
  // A set handed to the engine is never changed afterwards (it keys results by the set): a
  // changed subscription is a new set.
  if (w.names) w.names = new Set(w.names);
  for (const n of unsubscribe) {
    if (n === '*') {
      if (!w.names) w.names = new Set(explicit);
      continue;
    }
    explicit.delete(n);
    if (!w.names) continue; // still sent under the wildcard
    w.names.delete(n);
    // Forgotten, so subscribing again sends it again.
    w.sent.delete(n);
  }
  for (const n of subscribe) {
    if (n === '*') {
      w.names = undefined;
      continue;
    }
    explicit.add(n);
    w.names?.add(n);
    // Subscribing to a name the client already has means it wants it again.
    w.sent.delete(n);
  }
}

/** Sends the changes for one type; true if a response was written. */
export function deltaRespond(deps: ProtocolDeps, conn: Connection, typeUrl: TypeUrl): boolean {
  const begun = beginRespond(deps, conn, typeUrl);
  if (!begun) return false;
  const { w, version, set, from } = begun;
  // When the set replaced the one this client was last compared with, only the changed names matter.
  const only = set.changed && set.changed.from === from && !w.mustRespond ? set.changed.names : undefined;
  const changed: DeltaDiscoveryResponseMsg['resources'] = [];
  let bytes = 0;
  const consider = (name: string): void => {
    const r = set.resources.get(name);
    if (!r || w.sent.get(name) === r.hash) return;
    changed.push(deps.wire.delta(r, typeUrl));
    bytes += r.bytes.length;
  };
  const subscribed = (n: string): boolean => !w.names || w.names.has(n);
  if (only) {
    for (const n of only) if (subscribed(n)) consider(n);
  } else if (w.names) for (const n of w.names) consider(n);
  else for (const n of set.resources.keys()) consider(n);
  const removed: string[] = [];
  for (const n of only ?? [...w.sent.keys()]) if (w.sent.has(n) && !set.resources.has(n) && subscribed(n)) removed.push(n);
  // As in state of the world: after a full look, or a look at the changes from a map the client
  // had exactly, the client has (once this is sent) this set's version of every subscribed name,
  // so its record shares the set's map instead of keeping a copy.
  if (!only || (from && w.sent.isExactly(from.resources))) w.sent.resetTo(set.resources);
  else {
    for (const r of changed) w.sent.set(r.name, r.version);
    for (const n of removed) w.sent.delete(n);
  }
  if (changed.length === 0 && removed.length === 0 && !w.mustRespond) return false;
  w.mustRespond = false;
  const controlPlane = deps.controlPlane ? { control_plane: deps.controlPlane } : {};
  const shared = deps.shared.response(version, 'delta', typeUrl, changed, removed, (n) =>
    deltaBytes({ system_version_info: version, resources: changed, type_url: typeUrl, removed_resources: removed, nonce: n, ...controlPlane }),
  );
  // A shared nonce only ever newer than the last this watch got: never one it was sent before.
  const useShared = shared !== undefined && shared.seq > (w.sharedSeq ?? 0);
  const nonce = useShared ? shared.nonce : conn.nextNonce();
  if (useShared) w.sharedSeq = shared.seq;
  const response: DeltaDiscoveryResponseMsg = { system_version_info: version, resources: changed, type_url: typeUrl, removed_resources: removed, nonce, ...controlPlane };
  if (useShared) Object.defineProperty(response, FRAMED, { value: shared.framed, enumerable: false });
  deps.send(conn, response, bytes);
  Object.assign(w, { versionSent: version, nonceSent: nonce, sentAt: deps.now().toISOString(), resourcesSent: changed.length });
  deps.log.debug({ conn: conn.id, type: SHORT_TYPE[typeUrl], changed: changed.length, removed: removed.length }, 'delta pushed');
  return true;
}
