/**
 * State of the world (StreamAggregatedResources): requests update subscriptions and record
 * ACKs and NACKs; responses are computed later by the push queue (never in the request handler).
 *
 * What a response holds (Envoy's "grouping resources into responses"):
 * - CDS and LDS: every subscribed resource, whenever any of them changed (a missing one is a
 *   removal for the client);
 * - EDS, RDS and SDS: only the subscribed resources that changed since this client was sent
 *   them (the others stay as the client has them), or everything asked for on a new stream.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { type Connection, type DiscoveryRequestMsg, type DiscoveryResponseMsg, SentState, type WatchState, type XdsStream, requestedNames, sameNames } from './connection';
import type { EncodedResource } from './cache';
import type { ResourceSet, XdsWatcher } from './engine';
import type { XdsMetrics } from './metrics';
import { type AnyMsg, type ControlPlaneMsg, type WireCache, sotwBytes } from './wire';
import { FRAMED, type SharedResponses } from './shared-responses';
import { SHORT_TYPE, TypeUrl, isTypeUrl } from './protos';

export const WILDCARD_TYPES: ReadonlySet<TypeUrl> = new Set([TypeUrl.Cluster, TypeUrl.Listener]);
/** Types whose every response must carry the whole subscribed set. */
const FULL_STATE_TYPES: ReadonlySet<TypeUrl> = new Set([TypeUrl.Cluster, TypeUrl.Listener]);

export interface ProtocolDeps {
  watcher: XdsWatcher;
  metrics: XdsMetrics;
  log: Logger;
  now: () => Date;
  /** Queue the connection for the push queue. */
  enqueue: (conn: Connection) => void;
  /** Wire wrappers of encoded resources, made once each. */
  wire: WireCache;
  /** Responses serialised once for every proxy they go to. */
  shared: SharedResponses;
  /** Subscribed name sets, one per distinct request list (never changed once made). */
  subscriptions: Subscriptions;
  /** Writes a message, counting its bytes as queued until it is on its way. */
  send: (conn: Connection, msg: object, bytes: number) => void;
  /** Put on every response, as istiod does: which control plane instance and version answered. */
  controlPlane?: ControlPlaneMsg;
}

/**
 * The name set of a state-of-the-world subscription, shared by every stream that sent the same
 * list (the request decoder hands out one array per distinct list): what is derived from a set
 * (the engine's key for it) is then derived once per class of proxies, not once per proxy.
 * State-of-the-world watches replace their set and never change it, so sharing is safe.
 */
export class Subscriptions {
  private readonly sets = new Map<TypeUrl, WeakMap<readonly string[], Set<string> | undefined>>();

  of(typeUrl: TypeUrl, list: readonly string[]): Set<string> | undefined {
    if (!Object.isFrozen(list)) return requestedNames(typeUrl, list, WILDCARD_TYPES);
    let byList = this.sets.get(typeUrl);
    if (!byList) this.sets.set(typeUrl, (byList = new WeakMap()));
    if (byList.has(list)) return byList.get(list);
    const names = requestedNames(typeUrl, list, WILDCARD_TYPES);
    byList.set(list, names);
    return names;
  }
}

export function newWatch(names: Set<string> | undefined, previous?: WatchState): WatchState {
  return { names, resourcesSent: 0, nackCount: 0, versionAcked: previous?.versionAcked, sharedSeq: previous?.sharedSeq, sent: new SentState(), mustRespond: true };
}

/** Records a NACK or an ACK of the latest response; false if the nonce is stale. */
export function recordAck(
  deps: ProtocolDeps,
  conn: Connection,
  typeUrl: TypeUrl,
  w: WatchState,
  nonce: string,
  version: string | undefined,
  error: { code?: number; message?: string } | undefined,
): boolean {
  const short = SHORT_TYPE[typeUrl].toLowerCase();
  if (nonce !== w.nonceSent) {
    // An answer to a response since replaced: its content is outdated.
    deps.metrics.expiredNonce.inc({ type: short });
    deps.log.debug({ conn: conn.id, type: short, nonce, current: w.nonceSent }, 'stale nonce ignored');
    return false;
  }
  const at = deps.now().toISOString();
  if (error && (error.code || error.message)) {
    w.lastNack = { version: w.versionSent ?? '', nonce, message: error.message ?? '', at };
    w.nackCount++;
    deps.metrics.rejects.inc({ type: short });
    deps.log.warn({ conn: conn.id, proxy: conn.proxy?.id, type: short, version: w.versionSent, error: error.message }, 'proxy rejected config (NACK)');
  } else {
    w.versionAcked = version || w.versionSent;
    w.nonceAcked = nonce;
    w.ackedAt = at;
  }
  return true;
}

export function sotwRequest(deps: ProtocolDeps, conn: Connection, req: DiscoveryRequestMsg): void {
  const typeUrl = req.type_url ?? '';
  if (!isTypeUrl(typeUrl)) {
    deps.log.warn({ conn: conn.id, typeUrl }, 'request for an unsupported type ignored');
    return;
  }
  const list = req.resource_names ?? [];
  const w = conn.watches.get(typeUrl);
  const nonce = req.response_nonce ?? '';
  if (nonce === '' || !w) {
    // A new subscription, or a client reconnecting with a nonce of an earlier stream: answer in full.
    const fresh = newWatch(deps.subscriptions.of(typeUrl, list), w);
    fresh.namesList = list;
    conn.watches.set(typeUrl, fresh);
    deps.enqueue(conn);
    return;
  }
  if (!recordAck(deps, conn, typeUrl, w, nonce, req.version_info, req.error_detail)) return;
  // An ACK repeats the subscription (thousands of EDS names): the same list, in the same order,
  // is the same subscription, without building a set.
  if (sameList(list, w.namesList)) return;
  w.namesList = list;
  const names = deps.subscriptions.of(typeUrl, list);
  if (!sameNames(names, w.names)) {
    // Unsubscribed names are forgotten, so subscribing again sends them again; newly subscribed
    // ones are not had, whatever a shared map says.
    if (names) for (const n of [...w.sent.keys()]) if (!names.has(n)) w.sent.delete(n);
    if (names && w.names) for (const n of names) if (!w.names.has(n)) w.sent.delete(n);
    const added = !names || !w.names || [...names].some((n) => !w.names?.has(n));
    w.names = names;
    w.lastSet = undefined;
    // A full-state type owes the new full set; others only what was added (if it exists).
    w.mustRespond = FULL_STATE_TYPES.has(typeUrl);
    if (added || w.mustRespond) deps.enqueue(conn);
  }
}

function sameList(a: readonly string[], b: readonly string[] | undefined): boolean {
  if (a === b) return true;
  if (!b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The start of a response, in both protocols: the watch, the served version, the resource set
 * now and the one this client was last compared with; undefined when nothing can have changed.
 */
export function beginRespond(deps: ProtocolDeps, conn: Connection, typeUrl: TypeUrl): { w: WatchState; version: string; set: ResourceSet; from?: ResourceSet } | undefined {
  const w = conn.watches.get(typeUrl);
  const version = deps.watcher.version();
  if (!w || !conn.handle || version === undefined) return undefined;
  const set = deps.watcher.resources(conn.handle, typeUrl, w.names);
  if (set === w.lastSet && !w.mustRespond) return undefined;
  const from = w.lastSet;
  w.lastSet = set;
  return { w, version, set, from };
}

/** Sends what changed for one type; true if a response was written. */
export function sotwRespond(deps: ProtocolDeps, conn: Connection, typeUrl: TypeUrl): boolean {
  const begun = beginRespond(deps, conn, typeUrl);
  if (!begun) return false;
  const { w, version, set, from } = begun;
  let out: readonly EncodedResource[];
  let anys: readonly AnyMsg[] | undefined;
  /** When `out` is these kept lists one after another: the shared response's key is made from theirs. */
  let lists: readonly (readonly EncodedResource[])[] | undefined;
  if (FULL_STATE_TYPES.has(typeUrl)) {
    let subscribed: readonly EncodedResource[];
    if (w.names) {
      const named: EncodedResource[] = [];
      for (const n of w.names) {
        const r = set.resources.get(n);
        if (r) named.push(r);
      }
      subscribed = named;
    } else {
      // The whole set, as every proxy of the class is sent it: its list and wrappers made once.
      const whole = deps.wire.whole(set.resources, typeUrl);
      subscribed = whole.resources;
      anys = whole.anys;
      lists = whole.lists;
    }
    if (!w.mustRespond) {
      if (!w.names && w.sent.isExactly(set.resources)) return false;
      let had = 0;
      for (const _ of w.sent.keys()) had++;
      if (subscribed.length === had && subscribed.every((r) => w.sent.get(r.name) === r.hash)) return false;
    }
    out = subscribed;
    if (!w.names) w.sent.resetTo(set.resources);
    else {
      // By name: the client has exactly the subscribed ones (few: gRPC listeners and clusters).
      w.sent = new SentState();
      for (const r of subscribed) w.sent.set(r.name, r.hash);
    }
  } else {
    // Only what the client lacks: when the set replaced the one this client was last compared
    // with, only the names that changed between the two need a look.
    const fast = set.changed !== undefined && from !== undefined && set.changed.from === from && !w.mustRespond;
    const candidates: Iterable<string> = fast && set.changed ? set.changed.names : (w.names ?? set.resources.keys());
    const lacking: EncodedResource[] = [];
    for (const n of candidates) {
      if (w.names && !w.names.has(n)) continue;
      const r = set.resources.get(n);
      if (r && w.sent.get(n) !== r.hash) lacking.push(r);
    }
    out = lacking;
    // After a full look, or a look at what changed from a map the client had exactly, the client
    // has (once `out` is sent) this set's version of every subscribed name: share the set's map
    // instead of copying it.
    if (!fast || (from && w.sent.isExactly(from.resources))) w.sent.resetTo(set.resources);
    else for (const r of out) w.sent.set(r.name, r.hash);
    if (out.length === 0 && !w.mustRespond) return false;
  }
  w.mustRespond = false;
  const resources = anys ?? out.map((r) => deps.wire.any(r, typeUrl));
  const controlPlane = deps.controlPlane ? { control_plane: deps.controlPlane } : {};
  // The response every proxy sent these resources at this version gets.
  const shared = deps.shared.response(
    version,
    'sotw',
    typeUrl,
    out,
    [],
    (n) => sotwBytes({ version_info: version, resources, type_url: typeUrl, nonce: n, ...controlPlane }),
    lists,
  );
  // A shared nonce only ever newer than the last this watch got: never one it was sent before.
  const useShared = shared !== undefined && shared.seq > (w.sharedSeq ?? 0);
  const nonce = useShared ? shared.nonce : conn.nextNonce();
  if (useShared) w.sharedSeq = shared.seq;
  const response: DiscoveryResponseMsg = { version_info: version, resources: resources as AnyMsg[], type_url: typeUrl, nonce, ...controlPlane };
  if (useShared) Object.defineProperty(response, FRAMED, { value: shared.framed, enumerable: false });
  const bytes = out.reduce((s, r) => s + r.bytes.length, 0);
  deps.send(conn, response, bytes);
  Object.assign(w, { versionSent: version, nonceSent: nonce, sentAt: deps.now().toISOString(), resourcesSent: out.length });
  return true;
}

/** Ends a stream with a status, as a gRPC error. */
export function failStream(stream: Pick<XdsStream<unknown>, 'emit'>, code: grpc.status, details: string): void {
  stream.emit('error', { code, details });
}
