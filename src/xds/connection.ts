/** Per-stream ADS state: what each type was asked for, sent, ACKed and NACKed. */
import type * as grpc from '@grpc/grpc-js';
import type { Proxy } from '../model/proxy';
import type { EnvoyProtos, TypeUrl } from './protos';

export interface NackRecord {
  version: string;
  nonce: string;
  message: string;
  at: string;
}

export interface WatchState {
  /** undefined = wildcard */
  names?: Set<string>;
  versionSent?: string;
  nonceSent?: string;
  hashSent?: string;
  sentAt?: string;
  resourcesSent: number;
  versionAcked?: string;
  nonceAcked?: string;
  ackedAt?: string;
  /** The last rejection; cleared from "current" once a later version is ACKed, kept as history. */
  lastNack?: NackRecord;
  nackCount: number;
}

export interface DiscoveryRequestMsg {
  version_info?: string;
  node?: { id?: string; cluster?: string; metadata?: unknown; locality?: { region?: string; zone?: string; sub_zone?: string }; user_agent_name?: string; user_agent_version?: string };
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

export interface DiscoveryResponseMsg {
  version_info: string;
  resources: { type_url: string; value: Uint8Array }[];
  type_url: string;
  nonce: string;
}

export type AdsStream = grpc.ServerDuplexStream<DiscoveryRequestMsg, DiscoveryResponseMsg>;

export class Connection {
  readonly watches = new Map<TypeUrl, WatchState>();
  readonly connectedAt: string;
  proxy?: Proxy;
  userAgent = '';
  private nonceCounter = 0;

  constructor(
    readonly id: string,
    readonly stream: AdsStream,
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
export function discoveryStreamMethod(protos: EnvoyProtos, path: string, originalName: string): grpc.MethodDefinition<DiscoveryRequestMsg, DiscoveryResponseMsg> {
  return {
    path,
    requestStream: true,
    responseStream: true,
    originalName,
    requestSerialize: (v: DiscoveryRequestMsg) => Buffer.from(protos.DiscoveryRequest.encode(protos.DiscoveryRequest.fromObject(v as unknown as Record<string, unknown>)).finish()),
    requestDeserialize: (b: Buffer) => protos.DiscoveryRequest.decode(b) as unknown as DiscoveryRequestMsg,
    responseSerialize: (v: DiscoveryResponseMsg) => Buffer.from(protos.DiscoveryResponse.encode(v as unknown as Record<string, unknown>).finish()),
    responseDeserialize: (b: Buffer) => protos.DiscoveryResponse.decode(b) as unknown as DiscoveryResponseMsg,
  };
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
