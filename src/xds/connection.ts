/** Per-stream ADS state: what each type was asked for, sent, ACKed and NACKed. */
import type * as grpc from '@grpc/grpc-js';
import type { StreamIdentity, VerifiedIdentity } from './authn';
import type { Proxy } from '../model/proxy';
import type { ProxyHandle, ResourceSet } from './engine';
import { type AnyMsg, type ControlPlaneMsg, type DeltaResourceMsg, RequestDecoder, Scratch, deltaBytes, sotwBytes } from './wire';
import type { EnvoyProtos, TypeUrl } from './protos';
import { FRAMED } from './shared-responses';

export interface NackRecord {
  version: string;
  nonce: string;
  message: string;
  at: string;
}

export interface WatchState {
  /** undefined = wildcard */
  names?: Set<string>;
  /** SotW: the resource names of the last request, as sent (to spot a repeated subscription cheaply). */
  namesList?: readonly string[];
  /** Delta: the names subscribed explicitly, kept while a wildcard is on too. */
  explicit?: Set<string>;
  versionSent?: string;
  nonceSent?: string;
  /** The newest shared response this watch was sent (SharedResponse.seq): an older one never again. */
  sharedSeq?: number;
  sentAt?: string;
  /** Resources in the last response. */
  resourcesSent: number;
  /** name → content hash of what this client has (delta: its per-resource version). */
  sent: SentState;
  /** The resource set last compared against (identity: unchanged means nothing to do). */
  lastSet?: ResourceSet;
  /** An answer is owed (a new subscription, changed names, a reconnect): respond even if empty. */
  mustRespond: boolean;
  versionAcked?: string;
  nonceAcked?: string;
  ackedAt?: string;
  /** The last rejection; cleared from "current" once a later version is ACKed, kept as history. */
  lastNack?: NackRecord;
  nackCount: number;
}

/**
 * What a client has, per resource name: a shared map it has every entry of (`base`, typically a
 * resource set it was brought up to date with) plus the names where it differs. Thousands of
 * proxies with the same config then share one map instead of keeping a copy each.
 */
export class SentState {
  private base?: ReadonlyMap<string, { hash: string }>;
  private readonly overlay = new Map<string, string | undefined>();

  get(name: string): string | undefined {
    return this.overlay.has(name) ? this.overlay.get(name) : this.base?.get(name)?.hash;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  set(name: string, hash: string): void {
    if (this.base?.get(name)?.hash === hash) this.overlay.delete(name);
    else this.overlay.set(name, hash);
  }

  delete(name: string): void {
    if (this.base?.has(name)) this.overlay.set(name, undefined);
    else this.overlay.delete(name);
  }

  *keys(): IterableIterator<string> {
    if (this.base) for (const n of this.base.keys()) if (!this.overlay.has(n)) yield n;
    for (const [n, h] of this.overlay) if (h !== undefined) yield n;
  }

  /** The client now has `base`'s version of every name it is asked about. */
  resetTo(base: ReadonlyMap<string, { hash: string }>): void {
    this.base = base;
    this.overlay.clear();
  }

  isExactly(base: ReadonlyMap<string, { hash: string }>): boolean {
    return this.base === base && this.overlay.size === 0;
  }
}

export interface DiscoveryRequestMsg {
  version_info?: string;
  node?: {
    id?: string;
    cluster?: string;
    metadata?: unknown;
    locality?: { region?: string; zone?: string; sub_zone?: string };
    user_agent_name?: string;
    user_agent_version?: string;
  };
  resource_names?: readonly string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

export interface DiscoveryResponseMsg {
  version_info: string;
  resources: AnyMsg[];
  type_url: string;
  nonce: string;
  /** Which control plane answered (istiod's IstioControlPlaneInstance JSON). */
  control_plane?: ControlPlaneMsg;
}

export interface DeltaDiscoveryRequestMsg {
  node?: DiscoveryRequestMsg['node'];
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

export interface DeltaDiscoveryResponseMsg {
  system_version_info: string;
  resources: DeltaResourceMsg[];
  type_url: string;
  removed_resources: string[];
  nonce: string;
  control_plane?: ControlPlaneMsg;
}

export type AdsStream = grpc.ServerDuplexStream<DiscoveryRequestMsg, DiscoveryResponseMsg>;
export type DeltaStream = grpc.ServerDuplexStream<DeltaDiscoveryRequestMsg, DeltaDiscoveryResponseMsg>;

/**
 * What the server needs of a stream: grpc-js's server duplex stream, or a fake in tests. `write`
 * calls back once the message has left for the network, which is what flow control counts on.
 */
export interface XdsStream<Res> {
  write(msg: Res, cb: (err?: Error | null) => void): boolean;
  end(): void;
  emit(event: 'error', err: { code: number; details: string }): boolean;
  getPeer(): string;
}

/** A debug client (istioctl): asks for `istio.io/debug/*` and is sent no config. */
export interface DebugState {
  /** The identity it proved over TLS; absent on a plaintext stream. */
  caller?: VerifiedIdentity;
  /** The nonce of the last answer per debug type (a request repeating it is an ACK). */
  readonly nonces: Map<string, string>;
}

export class Connection {
  readonly watches = new Map<TypeUrl, WatchState>();
  /** Set for a debug connection (node type `debug` or GENERATOR=event), which has no proxy. */
  debug?: DebugState;
  readonly connectedAt: string;
  /** When the proxy lifecycle (auto-registration) accepted this stream; unset without one. */
  lifecycleAt?: Date;
  proxy?: Proxy;
  /** The config side's state for this proxy. */
  handle?: ProxyHandle;
  userAgent = '';
  /** Who the stream proved to be (TLS), or why it has no identity; set when the proxy is identified. */
  identity?: StreamIdentity;
  /** Credential names this proxy asked for and was refused, with the reason (reported once each). */
  readonly secretsDenied = new Map<string, string>();
  /** Bytes written to the stream and not yet sent on to the network. */
  queuedBytes = 0;
  /** Pushes wait while queuedBytes is over the limit; the next drain resumes them. */
  blocked = false;
  /** When the oldest change not yet delivered to this proxy was seen (convergence time). */
  pendingSince?: number;
  closed = false;
  private nonceCounter = 0;

  constructor(
    readonly id: string,
    readonly protocol: 'sotw' | 'delta',
    readonly stream: XdsStream<DiscoveryResponseMsg> | XdsStream<DeltaDiscoveryResponseMsg>,
    readonly peer: string,
    now: Date,
  ) {
    this.connectedAt = now.toISOString();
  }

  nextNonce(): string {
    this.nonceCounter++;
    return `${this.id}-${this.nonceCounter}`;
  }
}

/** Names from a request: empty = wildcard for LDS/CDS; `*` is an explicit wildcard. */
export function requestedNames(typeUrl: TypeUrl, names: readonly string[] | undefined, wildcardTypes: ReadonlySet<TypeUrl>): Set<string> | undefined {
  const list = names ?? [];
  if (list.includes('*')) return undefined;
  if (list.length === 0 && wildcardTypes.has(typeUrl)) return undefined;
  return new Set(list);
}

export function sameNames(a: Set<string> | undefined, b: Set<string> | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.size !== b.size) return false;
  for (const n of a) if (!b.has(n)) return false;
  return true;
}

/**
 * A bidirectional xDS stream method (ADS, SDS, …) with protobufjs (de)serializers for
 * DiscoveryRequest/DiscoveryResponse: one definition for servers and test clients alike.
 */
export function deltaStreamMethod(protos: EnvoyProtos, path: string, originalName: string): grpc.MethodDefinition<DeltaDiscoveryRequestMsg, DeltaDiscoveryResponseMsg> {
  const req = protos.type('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  const res = protos.type('envoy.service.discovery.v3.DeltaDiscoveryResponse');
  const scratch = new Scratch();
  return {
    path,
    requestStream: true,
    responseStream: true,
    originalName,
    requestSerialize: (v: DeltaDiscoveryRequestMsg) => Buffer.from(req.encode(req.fromObject(v as unknown as Record<string, unknown>)).finish()),
    requestDeserialize: (b: Buffer) => req.toObject(req.decode(b), { defaults: false, arrays: true, objects: true }) as DeltaDiscoveryRequestMsg,
    responseSerialize: (v: DeltaDiscoveryResponseMsg) => framedBody(v) ?? deltaBytes(v, scratch) ?? Buffer.from(res.encode(v as unknown as Record<string, unknown>).finish()),
    responseDeserialize: (b: Buffer) => res.toObject(res.decode(b), { defaults: false, arrays: true, objects: true }) as DeltaDiscoveryResponseMsg,
  };
}

export function discoveryStreamMethod(protos: EnvoyProtos, path: string, originalName: string): grpc.MethodDefinition<DiscoveryRequestMsg, DiscoveryResponseMsg> {
  const scratch = new Scratch();
  const requests = new RequestDecoder(protos.root);
  return {
    path,
    requestStream: true,
    responseStream: true,
    originalName,
    requestSerialize: (v: DiscoveryRequestMsg) => Buffer.from(protos.DiscoveryRequest.encode(protos.DiscoveryRequest.fromObject(v as unknown as Record<string, unknown>)).finish()),
    requestDeserialize: (b: Buffer) => requests.decode(b) as DiscoveryRequestMsg,
    responseSerialize: (v: DiscoveryResponseMsg) =>
      framedBody(v) ?? sotwBytes(v, scratch) ?? Buffer.from(protos.DiscoveryResponse.encode(v as unknown as Record<string, unknown>).finish()),
    responseDeserialize: (b: Buffer) => protos.DiscoveryResponse.decode(b) as unknown as DiscoveryResponseMsg,
  };
}

/** The serialised message of a response that carries its frame (when grpc-js frames it itself). */
function framedBody(v: object): Buffer | undefined {
  return (v as { [FRAMED]?: Buffer })[FRAMED]?.subarray(5);
}

/** Stops a gRPC server: gracefully, then by force after `graceMs` so a stuck peer cannot hold it. */
export function shutdownServer(server: grpc.Server, graceMs = 2000): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
