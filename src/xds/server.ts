/**
 * ADS, state of the world (envoy.service.discovery.v3.AggregatedDiscoveryService).
 * Versions, nonces, ACK/NACK, wildcard and named subscriptions, pushes in CDS → EDS → LDS → RDS
 * order to every proxy whose resources changed.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { flavorOf, generatorsFor } from '../generate';
import type { MeshSnapshot } from '../model/snapshot';
import { type Proxy, type ProxyMetadata, parseProxy } from '../model/proxy';
import { type EncodedResource, type ResourceCache, setHash } from './cache';
import { type AdsStream, Connection, type DiscoveryRequestMsg, type DiscoveryResponseMsg, type WatchState, discoveryStreamMethod, requestedNames, sameNames, shutdownServer } from './connection';
import type { XdsMetrics } from './metrics';
import { type EnvoyProtos, PUSH_ORDER, SHORT_TYPE, TypeUrl, isTypeUrl } from './protos';
import { type PbStruct, structToJs } from './struct';

export const ADS_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

const WILDCARD_TYPES: ReadonlySet<TypeUrl> = new Set([TypeUrl.Cluster, TypeUrl.Listener]);

/** The narrow view of the model the server needs. */
export interface SnapshotSource {
  current(): MeshSnapshot | undefined;
}

export interface AdsServerOptions {
  protos: EnvoyProtos;
  cache: ResourceCache;
  metrics: XdsMetrics;
  log: Logger;
  snapshots: SnapshotSource;
  /** The time source; tests may fix it. */
  now?: () => Date;
}

export interface PushEvent {
  snap: MeshSnapshot;
  /** When the change that caused this push was first seen (for convergence time). */
  triggeredAt: number;
  reason: string;
}

export class AdsServer {
  private readonly connections = new Map<string, Connection>();
  private readonly server = new grpc.Server({ 'grpc.max_send_message_length': 64 * 1024 * 1024, 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  private connCounter = 0;
  private pushing: Promise<void> = Promise.resolve();
  private readonly now: () => Date;
  readonly lastPush: { version?: string; reason?: string; at?: string; proxies: number; durationMs: number } = { proxies: 0, durationMs: 0 };

  constructor(private readonly opts: AdsServerOptions) {
    this.now = opts.now ?? (() => new Date());
    const { protos } = opts;
    const definition: grpc.ServiceDefinition = {
      StreamAggregatedResources: discoveryStreamMethod(protos, ADS_PATH, 'streamAggregatedResources'),
    };
    this.server.addService(definition, {
      StreamAggregatedResources: (stream: AdsStream) => this.handleStream(stream),
    });
  }

  /** Listens on one more port; every port serves every registered service. Default plaintext. */
  listen(host: string, port: number, credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure()): Promise<number> {
    return new Promise((resolve, reject) => {
      const addr = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
      this.server.bindAsync(addr, credentials, (err, bound) => (err ? reject(err) : resolve(bound)));
    });
  }

  /** Serves another gRPC service (e.g. the CA) beside ADS, on the same ports. */
  addService(definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
    this.server.addService(definition, implementation);
  }

  async close(): Promise<void> {
    for (const c of this.connections.values()) c.stream.end();
    await shutdownServer(this.server);
  }

  connectionList(): readonly Connection[] {
    return [...this.connections.values()];
  }

  /** Pushes a new snapshot to every connection whose resources changed. Serialised. */
  push(ev: PushEvent): Promise<void> {
    this.opts.metrics.pushTriggers.inc({ type: ev.reason });
    this.pushing = this.pushing.then(() => this.pushAll(ev)).catch((err: unknown) => {
      this.opts.metrics.internalErrors.inc();
      this.opts.log.error({ err }, 'push failed');
    });
    return this.pushing;
  }

  private async pushAll(ev: PushEvent): Promise<void> {
    const start = performance.now();
    let n = 0;
    for (const conn of [...this.connections.values()]) {
      if (!conn.proxy || !this.connections.has(conn.id)) continue;
      let sent = false;
      try {
        for (const t of PUSH_ORDER) {
          if (conn.watches.has(t)) sent = this.respond(conn, t, false) || sent;
        }
      } catch (err) {
        // One proxy's failure must not stop the push to the others.
        this.opts.metrics.internalErrors.inc();
        this.opts.log.error({ err, conn: conn.id, proxy: conn.proxy.id }, 'push to proxy failed');
      }
      if (sent) {
        n++;
        this.opts.metrics.convergence.observe((Date.now() - ev.triggeredAt) / 1000);
      }
      // Let requests and other streams make progress between proxies.
      if (n % 50 === 49) await new Promise((r) => setImmediate(r));
    }
    Object.assign(this.lastPush, { version: ev.snap.version, reason: ev.reason, at: this.now().toISOString(), proxies: n, durationMs: performance.now() - start });
  }

  private handleStream(stream: AdsStream): void {
    const conn = new Connection(`c${++this.connCounter}`, stream, stream.getPeer(), this.now());
    stream.on('data', (req: DiscoveryRequestMsg) => {
      try {
        this.onRequest(conn, req);
      } catch (err) {
        this.opts.metrics.internalErrors.inc();
        this.opts.log.error({ err, conn: conn.id }, 'failed to handle discovery request');
        stream.emit('error', { code: grpc.status.INTERNAL, details: 'internal error' });
      }
    });
    const done = (): void => {
      if (this.connections.delete(conn.id)) {
        this.opts.metrics.connected.dec();
        this.opts.log.info({ conn: conn.id, proxy: conn.proxy?.id }, 'ADS stream closed');
      }
    };
    stream.on('end', () => {
      done();
      stream.end();
    });
    stream.on('error', done);
    stream.on('close', done);
    stream.on('cancelled', done);
  }

  private onRequest(conn: Connection, req: DiscoveryRequestMsg): void {
    if (!conn.proxy) {
      const id = req.node?.id;
      if (!id) {
        conn.stream.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'the first DiscoveryRequest must carry node.id' });
        return;
      }
      let proxy: Proxy;
      try {
        proxy = parseProxy(id, structToJs(req.node?.metadata as PbStruct | undefined) as ProxyMetadata, req.node?.locality);
      } catch (err) {
        conn.stream.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: (err as Error).message });
        return;
      }
      conn.proxy = proxy;
      conn.userAgent = `${req.node?.user_agent_name ?? ''}/${req.node?.user_agent_version ?? ''}`;
      this.connections.set(conn.id, conn);
      this.opts.metrics.connected.inc();
      this.opts.log.info({ conn: conn.id, proxy: proxy.id, generator: proxy.generator, peer: conn.peer }, 'ADS stream connected');
    }
    const typeUrl = req.type_url ?? '';
    if (!isTypeUrl(typeUrl)) {
      this.opts.log.warn({ conn: conn.id, typeUrl }, 'request for an unsupported type ignored');
      return;
    }
    const short = SHORT_TYPE[typeUrl].toLowerCase();
    const names = requestedNames(typeUrl, req.resource_names, WILDCARD_TYPES);
    const w = conn.watches.get(typeUrl);
    const nonce = req.response_nonce ?? '';

    if (nonce === '' || !w) {
      // A new subscription, or a client reconnecting with a nonce of an earlier stream: answer.
      conn.watches.set(typeUrl, { names, resourcesSent: 0, nackCount: 0, versionAcked: w?.versionAcked });
      this.respond(conn, typeUrl, true);
      return;
    }
    if (nonce !== w.nonceSent) {
      // An answer to a response we have since replaced: its content is outdated.
      this.opts.metrics.expiredNonce.inc({ type: short });
      this.opts.log.debug({ conn: conn.id, type: short, nonce, current: w.nonceSent }, 'stale nonce ignored');
      return;
    }
    const at = this.now().toISOString();
    if (req.error_detail && (req.error_detail.code || req.error_detail.message)) {
      w.lastNack = { version: w.versionSent ?? '', nonce, message: req.error_detail.message ?? '', at };
      w.nackCount++;
      this.opts.metrics.rejects.inc({ type: short });
      this.opts.log.warn({ conn: conn.id, proxy: conn.proxy.id, type: short, version: w.versionSent, error: req.error_detail.message }, 'proxy rejected config (NACK)');
    } else {
      w.versionAcked = req.version_info ?? w.versionSent;
      w.nonceAcked = nonce;
      w.ackedAt = at;
    }
    if (!sameNames(names, w.names)) {
      w.names = names;
      this.respond(conn, typeUrl, true);
    }
  }

  /** Generates and sends one type to one connection; false if nothing changed and not forced. */
  private respond(conn: Connection, typeUrl: TypeUrl, force: boolean): boolean {
    const snap = this.opts.snapshots.current();
    const proxy = conn.proxy;
    const w = conn.watches.get(typeUrl);
    if (!snap || !proxy || !w) return false;
    const start = performance.now();
    const resources = this.generate(snap, proxy, typeUrl, w);
    const hash = setHash(resources);
    if (!force && hash === w.hashSent) return false;
    const nonce = conn.nextNonce();
    const response: DiscoveryResponseMsg = {
      version_info: snap.version,
      resources: resources.map((r) => ({ type_url: typeUrl, value: r.bytes })),
      type_url: typeUrl,
      nonce,
    };
    conn.stream.write(response);
    Object.assign(w, { versionSent: snap.version, nonceSent: nonce, hashSent: hash, sentAt: this.now().toISOString(), resourcesSent: resources.length });
    const short = SHORT_TYPE[typeUrl].toLowerCase();
    this.opts.metrics.pushes.inc({ type: short });
    this.opts.metrics.pushTime.observe({ type: short }, (performance.now() - start) / 1000);
    this.opts.metrics.configSize.observe({ type: short }, resources.reduce((s, r) => s + r.bytes.length, 0));
    this.opts.log.debug({ conn: conn.id, proxy: proxy.id, type: short, version: snap.version, resources: resources.length }, 'pushed');
    return true;
  }

  /** The encoded resources a proxy would get for a type and subscription, right now. */
  generate(snap: MeshSnapshot, proxy: Proxy, typeUrl: TypeUrl, w: Pick<WatchState, 'names'>): EncodedResource[] {
    const gen = generatorsFor(proxy)[typeUrl];
    if (!gen) return [];
    const resources = gen({ snap, proxy, names: w.names });
    const encoded = this.opts.cache.encode(snap.version, flavorOf(proxy), typeUrl, resources);
    this.opts.metrics.rejectedResources.set(this.opts.cache.rejectionCount());
    return encoded;
  }
}
