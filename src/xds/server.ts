/**
 * The ADS server: state of the world (sotw.ts) and incremental (delta.ts) on every port it
 * listens on (one gRPC server per port, so a port can carry services others do not, as istiod's CA
 * is on 15012 only), behind the narrow XdsWatcher interface (engine.ts). Requests only update subscriptions;
 * responses are computed by the push queue (push-queue.ts), in CDS → EDS → LDS → RDS → SDS order,
 * for each connection whose config may have changed.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { MeshSnapshot } from '../model/snapshot';
import { type Proxy, type ProxyMetadata, parseProxy } from '../model/proxy';
import {
  type AdsStream,
  Connection,
  type DiscoveryResponseMsg,
  type DeltaDiscoveryRequestMsg,
  type DeltaStream,
  type DiscoveryRequestMsg,
  type XdsStream,
  deltaStreamMethod,
  discoveryStreamMethod,
  shutdownServer,
} from './connection';
import { secretDenial } from '../generate/secrets';
import {
  type AuthStream,
  PLAINTEXT_REASON,
  type ProvedIdentity,
  StreamAuthError,
  type StreamIdentity,
  type VerifiedIdentity,
  type XdsAuth,
  authenticateStream,
  matchIdentity,
  streamIdentity,
} from './authn';
import { deltaRequest, deltaRespond } from './delta';
import type { XdsWatcher } from './engine';
import type { XdsMetrics } from './metrics';
import { type EnvoyProtos, PUSH_ORDER, SHORT_TYPE, TypeUrl } from './protos';
import { PushQueue } from './push-queue';
import { type AnyMsg, WireCache, controlPlaneMsg } from './wire';
import { SharedResponses } from './shared-responses';
import { installFramedResponses } from './grpc-frames';
import { type ProtocolDeps, Subscriptions, failStream, sotwRequest, sotwRespond } from './sotw';
import { type PbStruct, structToJs } from './struct';

export const ADS_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
export const DELTA_ADS_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';

export interface AdsServerOptions {
  protos: EnvoyProtos;
  watcher: XdsWatcher;
  metrics: XdsMetrics;
  log: Logger;
  /** The time source; tests may fix it. */
  now?: () => Date;
  /** Longest run of push work before yielding to the event loop (ms). Default 10. */
  pushSliceMs?: number;
  /** Bytes a connection may have queued before its pushes wait for it to drain. Default 8 MiB. */
  maxQueuedBytes?: number;
  /** Bytes of serialised responses kept to be written again to other proxies of a class (default 64 MiB; 0: none). */
  sharedResponseBytes?: number;
  /** Authenticates TLS streams and authorizes credentials; absent: no stream has an identity, no credential is served. */
  auth?: XdsAuth;
  /** Answers the `istio.io/debug/*` types of debug connections (istioctl); absent: refused. */
  debug?: XdsDebugService;
  /**
   * istiod's ENABLE_DEBUG_ENDPOINT_AUTH: debug types are answered only to an identity verified
   * over TLS (default true). Off: answered on any stream, to anyone who can reach the port.
   */
  debugEndpointAuth?: boolean;
  /** The `control_plane.identifier` put on every response (version.ts controlPlaneIdentifier). */
  controlPlaneIdentifier?: string;
  /** Told when a proxy's stream is identified and when it ends (WorkloadGroup auto-registration); absent: nothing is. */
  lifecycle?: ProxyLifecycle;
}

/**
 * Proxy stream events for controllers that act on connections (istiod's WorkloadEntry
 * controller). Called once per identified config stream, never for debug streams.
 */
export interface ProxyLifecycle {
  /** The stream is identified; a returned message refuses it (FAILED_PRECONDITION), as istiod's RegisterWorkload. */
  connected(proxy: Proxy, identity: StreamIdentity, at: Date): string | undefined;
  /** The stream of a proxy `connected` accepted has ended. */
  disconnected(proxy: Proxy, connectedAt: Date): void;
}

/** A question of a debug connection, with who asks and what is connected. */
export interface DebugRequest {
  typeUrl: string;
  resourceNames: readonly string[];
  /** The verified caller; absent when debug endpoint auth is off (then anything may be asked). */
  caller?: VerifiedIdentity;
  /** The connected proxies (debug connections are not among them). */
  connections: readonly Connection[];
}

/** Answers debug types; throws XdsRequestError for a question it refuses or cannot answer. */
export interface XdsDebugService {
  answer(req: DebugRequest): AnyMsg[];
}

/** A request refused: the gRPC status and message the stream ends with. */
export class XdsRequestError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

const DEBUG_TYPE_PREFIX = 'istio.io/debug';

/** istioctl's node (`debug~…`, or adsc's with GENERATOR=event metadata) asks for debug types, not config. */
export function isDebugNode(id: string, metadata: ProxyMetadata): boolean {
  return id.split('~')[0] === 'debug' || metadata.GENERATOR === 'event';
}

/** A gRPC service served beside ADS on some ports only (istiod: the CA on 15012, not on 15010). */
export interface ExtraService {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

export interface PortOptions {
  /** Served on this port only, beside ADS (and the services of addService). */
  extraServices?: readonly ExtraService[];
}

const SERVER_OPTIONS: grpc.ServerOptions = { 'grpc.max_send_message_length': 64 * 1024 * 1024, 'grpc.max_receive_message_length': 16 * 1024 * 1024 };

/** The kind of port a stream came in on. */
export type Transport = 'plaintext' | 'tls';

/** Requests a stream may send before it is identified; more is a misbehaving client. */
const MAX_EARLY_REQUESTS = 64;

export interface PushEvent {
  snap: MeshSnapshot;
  /** When the change that caused this push was first seen (for convergence time). */
  triggeredAt: number;
  reason: string;
}

/** A server-side stream as the protocol code sees it (grpc-js's, or a fake in tests). */
export type ServerStream<Req, Res> = XdsStream<Res> & {
  on(event: 'data', cb: (req: Req) => void): unknown;
  on(event: 'end' | 'close' | 'cancelled', cb: () => void): unknown;
  on(event: 'error', cb: (err: unknown) => void): unknown;
};

export class AdsServer {
  private readonly connections = new Map<string, Connection>();
  /** Debug connections (istioctl): not proxies, not counted, sent no config. */
  private readonly debugConnections = new Set<Connection>();
  private readonly servers: grpc.Server[] = [];
  private readonly services: ExtraService[] = [];
  private connCounter = 0;
  private readonly now: () => Date;
  private readonly queue: PushQueue;
  private readonly deps: ProtocolDeps;
  private pushStarted?: { at: number; version: string; reason: string; sent: Set<string> };
  readonly lastPush: { version?: string; reason?: string; at?: string; proxies: number; durationMs: number } = { proxies: 0, durationMs: 0 };

  constructor(private readonly opts: AdsServerOptions) {
    this.now = opts.now ?? (() => new Date());
    this.queue = new PushQueue({
      sliceMs: opts.pushSliceMs ?? 10,
      maxQueuedBytes: opts.maxQueuedBytes ?? 8 * 1024 * 1024,
      process: (conn) => this.process(conn),
      onIdle: () => {
        // Kept while a blocked connection still waits for its turn; nothing waits: nothing to share.
        if (this.queue.size === 0) this.deps.shared.releaseBytes();
        this.pushDone();
      },
    });
    installFramedResponses();
    this.deps = {
      watcher: opts.watcher,
      metrics: opts.metrics,
      log: opts.log,
      now: this.now,
      enqueue: (conn) => this.queue.add(conn),
      wire: new WireCache(),
      subscriptions: new Subscriptions(),
      shared: new SharedResponses({ maxBytes: opts.sharedResponseBytes ?? 64 * 1024 * 1024 }),
      send: (conn, msg, bytes) => this.send(conn, msg, bytes),
      ...(opts.controlPlaneIdentifier !== undefined ? { controlPlane: controlPlaneMsg(opts.controlPlaneIdentifier) } : {}),
    };
  }

  /** A gRPC server for one port: ADS (its streams knowing the port's transport), the services added before, and `o.extraServices`. */
  private newServer(transport: Transport, o: PortOptions): grpc.Server {
    const { protos } = this.opts;
    const server = new grpc.Server(SERVER_OPTIONS);
    server.addService(
      {
        StreamAggregatedResources: discoveryStreamMethod(protos, ADS_PATH, 'streamAggregatedResources'),
        DeltaAggregatedResources: deltaStreamMethod(protos, DELTA_ADS_PATH, 'deltaAggregatedResources'),
      },
      {
        StreamAggregatedResources: (stream: AdsStream) => this.handleSotw(stream, transport),
        DeltaAggregatedResources: (stream: DeltaStream) => this.handleDelta(stream, transport),
      },
    );
    for (const s of [...this.services, ...(o.extraServices ?? [])]) server.addService(s.definition, s.implementation);
    this.servers.push(server);
    return server;
  }

  /**
   * Listens on one more port, with a gRPC server of its own: ADS, the services added before, and
   * `o.extraServices` on this port only. Default plaintext. Streams know which kind of port they
   * came in on (only TLS ones may prove an identity).
   */
  listen(host: string, port: number, credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(), o: PortOptions = {}): Promise<number> {
    const server = this.newServer(credentials._isSecure() ? 'tls' : 'plaintext', o);
    return new Promise((resolve, reject) => {
      const addr = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
      server.bindAsync(addr, credentials, (err, bound) => (err ? reject(err) : resolve(bound)));
    });
  }

  /**
   * The same for connections accepted elsewhere and injected one by one, e.g. by the TLS listener
   * of 15012 that keeps client certificates for the CA (`transport` says what they are).
   */
  connectionInjector(transport: Transport, o: PortOptions = {}): grpc.ConnectionInjector {
    return this.newServer(transport, o).createConnectionInjector(grpc.ServerCredentials.createInsecure());
  }

  /** Serves another gRPC service beside ADS on the ports listened on from now on (all of them). */
  addService(definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
    this.services.push({ definition, implementation });
  }

  async close(): Promise<void> {
    for (const c of [...this.connections.values(), ...this.debugConnections]) c.stream.end();
    await Promise.all(this.servers.map((s) => shutdownServer(s)));
  }

  connectionList(): readonly Connection[] {
    return [...this.connections.values()];
  }

  /**
   * A new snapshot is being served (the watcher already has it): every connection is queued to
   * learn what changed for it. Resolves when the queue has run dry (or only blocked proxies wait).
   */
  push(ev: PushEvent): Promise<void> {
    this.opts.metrics.pushTriggers.inc({ type: ev.reason });
    this.pushStarted ??= { at: performance.now(), version: ev.snap.version, reason: ev.reason, sent: new Set() };
    Object.assign(this.pushStarted, { version: ev.snap.version, reason: ev.reason });
    for (const conn of this.connections.values()) {
      if (!conn.handle) continue;
      conn.pendingSince = Math.min(conn.pendingSince ?? ev.triggeredAt, ev.triggeredAt);
      this.queue.add(conn);
    }
    return this.queue.idle();
  }

  /** Connections waiting in the push queue (blocked ones included). */
  queuedConnections(): number {
    return this.queue.size;
  }

  /** Resolves once every queued push that can make progress is done (tests, benchmarks). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** Handles a state-of-the-world stream (grpc-js's, or a fake one in tests). */
  handleSotw(stream: ServerStream<DiscoveryRequestMsg, unknown>, transport: Transport = 'plaintext'): void {
    const conn = new Connection(`c${++this.connCounter}`, 'sotw', stream as AdsStream, stream.getPeer(), this.now());
    this.handle(conn, stream, transport, (req) => sotwRequest(this.deps, conn, req));
  }

  /** Handles an incremental (delta) stream. */
  handleDelta(stream: ServerStream<DeltaDiscoveryRequestMsg, unknown>, transport: Transport = 'plaintext'): void {
    const conn = new Connection(`c${++this.connCounter}`, 'delta', stream as DeltaStream, stream.getPeer(), this.now());
    this.handle(conn, stream, transport, (req) => deltaRequest(this.deps, conn, req));
  }

  private handle<Req extends { node?: DiscoveryRequestMsg['node'] }>(
    conn: Connection,
    stream: ServerStream<Req, unknown>,
    transport: Transport,
    onRequest: (req: Req) => void,
  ): void {
    const run = (req: Req): void => {
      try {
        if (conn.debug) return this.debugRequest(conn, req as DiscoveryRequestMsg, transport);
        onRequest(req);
        if (conn.proxy?.type === 'router') this.noteSecretDenials(conn);
      } catch (err) {
        this.opts.metrics.internalErrors.inc();
        this.opts.log.error({ err, conn: conn.id }, 'failed to handle discovery request');
        failStream(stream, grpc.status.INTERNAL, 'internal error');
      }
    };
    // A TLS stream is authenticated before its first request is handled; requests that arrive
    // meanwhile wait, in order. A plaintext stream has no identity and is handled at once.
    const proving = this.opts.auth && transport === 'tls' ? authenticateStream(stream as AuthStream, this.opts.auth) : undefined;
    // Swallowed here, reported when the first request is identified.
    proving?.catch(() => undefined);
    let early: Req[] | undefined;
    stream.on('data', (req: Req) => {
      if (conn.proxy || conn.debug) return run(req);
      if (early) {
        if (early.length >= MAX_EARLY_REQUESTS)
          return failStream(stream, grpc.status.RESOURCE_EXHAUSTED, `more than ${MAX_EARLY_REQUESTS} requests before the stream was authenticated`);
        early.push(req);
        return;
      }
      const node = this.parseNode(conn, req);
      if (!node) return;
      if ('debug' in node) {
        if (conn.protocol === 'delta')
          return failStream(stream, grpc.status.UNIMPLEMENTED, `debug types (${DEBUG_TYPE_PREFIX}/*) are answered on StreamAggregatedResources, not on the delta stream`);
        if (!proving) {
          this.identifyDebug(conn, node.debug.id, undefined);
          return run(req);
        }
        early = [req];
        void proving
          .then((proved) => matchIdentity(node.debug, proved))
          .then(
            (caller) => {
              if (conn.closed) return;
              this.identifyDebug(conn, node.debug.id, caller);
              const queued = early ?? [];
              early = undefined;
              for (const r of queued) run(r);
            },
            (err: unknown) => refuse(node.debug.id, err),
          );
        return;
      }
      const proxy = node.proxy;
      if (!proving) {
        if (!this.identify(conn, proxy, req, { credentialsDenied: this.opts.auth ? PLAINTEXT_REASON : 'this server does not authenticate proxies: no credential is served' }))
          return;
        return run(req);
      }
      early = [req];
      void proving
        .then((proved: ProvedIdentity | undefined) => streamIdentity(proxy, proved, this.opts.auth))
        .then(
          (identity) => {
            if (conn.closed) return;
            if (!this.identify(conn, proxy, req, identity)) {
              early = undefined;
              return;
            }
            const queued = early ?? [];
            early = undefined;
            for (const r of queued) run(r);
          },
          (err: unknown) => refuse(proxy.id, err),
        );
    });
    const refuse = (who: string, err: unknown): void => {
      const e = err instanceof StreamAuthError ? err : new StreamAuthError(grpc.status.UNAUTHENTICATED, 'authentication failed');
      this.opts.metrics.authFailures.inc({ reason: e.code === grpc.status.PERMISSION_DENIED ? 'identity_mismatch' : 'unauthenticated' });
      this.opts.log.warn({ conn: conn.id, proxy: who, peer: conn.peer, error: e.message }, 'ADS stream refused');
      early = undefined;
      failStream(stream, e.code, e.message);
    };
    const done = (): void => {
      conn.closed = true;
      if (this.debugConnections.delete(conn)) return;
      this.queue.remove(conn);
      if (this.connections.delete(conn.id)) {
        this.opts.metrics.connected.dec({ version: conn.proxy?.istioVersion ?? '' });
        this.opts.log.info({ conn: conn.id, proxy: conn.proxy?.id }, 'ADS stream closed');
        if (conn.proxy && conn.lifecycleAt) this.opts.lifecycle?.disconnected(conn.proxy, conn.lifecycleAt);
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

  /**
   * The proxy the first request names, or the debug client it is; undefined (and the stream
   * failed) if it names none.
   */
  private parseNode(
    conn: Connection,
    req: { node?: DiscoveryRequestMsg['node'] },
  ): { proxy: Proxy } | { debug: { id: string; namespace?: string; serviceAccount?: string } } | undefined {
    const id = req.node?.id;
    if (!id) {
      failStream(conn.stream, grpc.status.INVALID_ARGUMENT, 'the first DiscoveryRequest must carry node.id');
      return undefined;
    }
    const metadata = structToJs(req.node?.metadata as PbStruct | undefined) as ProxyMetadata;
    if (isDebugNode(id, metadata)) {
      const ns = typeof metadata.NAMESPACE === 'string' && metadata.NAMESPACE ? metadata.NAMESPACE : undefined;
      const sa = typeof metadata.SERVICE_ACCOUNT === 'string' && metadata.SERVICE_ACCOUNT ? metadata.SERVICE_ACCOUNT : undefined;
      return { debug: { id, ...(ns ? { namespace: ns } : {}), ...(sa ? { serviceAccount: sa } : {}) } };
    }
    try {
      return { proxy: parseProxy(id, metadata, req.node?.locality) };
    } catch (err) {
      failStream(conn.stream, grpc.status.INVALID_ARGUMENT, (err as Error).message);
      return undefined;
    }
  }

  /** The proxy is known and its identity settled: attach it to the config side (false: refused, the stream failed). */
  private identify(conn: Connection, parsed: Proxy, req: { node?: DiscoveryRequestMsg['node'] }, identity: StreamIdentity): boolean {
    const credentialNamespace = identity.verified && !identity.credentialsDenied ? identity.verified.namespace : undefined;
    const proxy: Proxy = credentialNamespace !== undefined ? { ...parsed, credentialNamespace } : parsed;
    const lifecycle = this.opts.lifecycle;
    if (lifecycle) {
      const at = this.opts.now?.() ?? new Date();
      const refused = lifecycle.connected(proxy, identity, at);
      if (refused !== undefined) {
        this.opts.log.warn({ conn: conn.id, proxy: proxy.id, peer: conn.peer, error: refused }, 'ADS stream refused');
        failStream(conn.stream, grpc.status.FAILED_PRECONDITION, refused);
        return false;
      }
      conn.lifecycleAt = at;
    }
    conn.proxy = proxy;
    conn.identity = identity;
    conn.handle = this.opts.watcher.attach(proxy);
    conn.userAgent = `${req.node?.user_agent_name ?? ''}/${req.node?.user_agent_version ?? ''}`;
    this.connections.set(conn.id, conn);
    this.opts.metrics.connected.inc({ version: proxy.istioVersion ?? '' });
    this.opts.log.info(
      { conn: conn.id, proxy: proxy.id, generator: proxy.generator, protocol: conn.protocol, peer: conn.peer, identity: identity.verified?.id, via: identity.verified?.via },
      'ADS stream connected',
    );
    return true;
  }

  /** A debug client is known (and, over TLS, who it is): it is answered, never pushed to. */
  private identifyDebug(conn: Connection, id: string, caller: VerifiedIdentity | undefined): void {
    conn.debug = { ...(caller ? { caller } : {}), nonces: new Map() };
    this.debugConnections.add(conn);
    this.opts.log.info({ conn: conn.id, node: id, peer: conn.peer, identity: caller?.id }, 'debug stream connected');
  }

  /** One request of a debug connection: answered at once, or the stream ends with why not. */
  private debugRequest(conn: Connection, req: DiscoveryRequestMsg, transport: Transport): void {
    const debug = conn.debug;
    if (!debug) return;
    const typeUrl = req.type_url ?? '';
    // An ACK of an answer (istioctl sends none, other clients may): nothing to do.
    if (req.response_nonce && debug.nonces.get(typeUrl) === req.response_nonce) return;
    if (typeUrl !== DEBUG_TYPE_PREFIX && !typeUrl.startsWith(`${DEBUG_TYPE_PREFIX}/`)) {
      return failStream(
        conn.stream,
        grpc.status.INVALID_ARGUMENT,
        `a debug connection (node type debug, or GENERATOR=event) asks for ${DEBUG_TYPE_PREFIX}/* types only, not ${JSON.stringify(typeUrl)}`,
      );
    }
    const auth = this.opts.debugEndpointAuth !== false;
    if (auth && !debug.caller) {
      this.opts.log.warn({ conn: conn.id, peer: conn.peer, type: typeUrl, transport }, 'debug request refused: no verified identity');
      return failStream(
        conn.stream,
        grpc.status.PERMISSION_DENIED,
        `${typeUrl} is refused on a ${transport === 'tls' ? 'stream with no verified identity' : 'plaintext stream'}: debug endpoint auth is on (istiod's ENABLE_DEBUG_ENDPOINT_AUTH). ` +
          "Ask over TLS (port 15012) with a service-account token or workload certificate of the system namespace or of the proxy's namespace, " +
          'or start meshd with --debug-endpoint-auth=false',
      );
    }
    if (!this.opts.debug) return failStream(conn.stream, grpc.status.UNIMPLEMENTED, 'this server answers no debug types');
    let resources: AnyMsg[];
    try {
      resources = this.opts.debug.answer({ typeUrl, resourceNames: req.resource_names ?? [], ...(auth ? { caller: debug.caller } : {}), connections: this.connectionList() });
    } catch (err) {
      if (!(err instanceof XdsRequestError)) throw err;
      this.opts.log.warn({ conn: conn.id, peer: conn.peer, type: typeUrl, names: req.resource_names, identity: debug.caller?.id, error: err.message }, 'debug request refused');
      return failStream(conn.stream, err.code, err.message);
    }
    const nonce = conn.nextNonce();
    debug.nonces.set(typeUrl, nonce);
    const response: DiscoveryResponseMsg = {
      version_info: this.opts.watcher.version() ?? '',
      resources,
      type_url: typeUrl,
      nonce,
      ...(this.deps.controlPlane ? { control_plane: this.deps.controlPlane } : {}),
    };
    (conn.stream as XdsStream<DiscoveryResponseMsg>).write(response, () => undefined);
  }

  /** Each credential name a gateway asks for and is refused is recorded (syncz) and logged once, with the reason. */
  private noteSecretDenials(conn: Connection): void {
    const names = conn.watches.get(TypeUrl.Secret)?.names;
    const proxy = conn.proxy;
    if (!names || !proxy) return;
    for (const name of names) {
      if (conn.secretsDenied.has(name)) continue;
      const reason = secretDenial(proxy, name, conn.identity?.credentialsDenied ?? PLAINTEXT_REASON);
      if (!reason) continue;
      conn.secretsDenied.set(name, reason);
      this.opts.log.warn({ conn: conn.id, proxy: proxy.id, peer: conn.peer, secret: name, identity: conn.identity?.verified?.id ?? null, reason }, 'credential not served');
    }
  }

  /** One connection's turn in the push queue: every subscribed type, in push order. */
  private process(conn: Connection): void {
    if (conn.closed || !conn.handle) return;
    const start = performance.now();
    let sent = false;
    try {
      for (const t of PUSH_ORDER) {
        if (!conn.watches.has(t)) continue;
        if (conn.queuedBytes > (this.opts.maxQueuedBytes ?? 8 * 1024 * 1024)) {
          // Not draining: the rest waits for the drain (and then takes the newest config).
          this.queue.add(conn);
          break;
        }
        const typeStart = performance.now();
        const wrote = conn.protocol === 'delta' ? deltaRespond(this.deps, conn, t) : sotwRespond(this.deps, conn, t);
        if (wrote) {
          sent = true;
          this.opts.metrics.pushTime.observe({ type: SHORT_TYPE[t].toLowerCase() }, (performance.now() - typeStart) / 1000);
        }
      }
    } catch (err) {
      // One proxy's failure must not stop the push to the others.
      this.opts.metrics.internalErrors.inc();
      this.opts.log.error({ err, conn: conn.id, proxy: conn.proxy?.id }, 'push to proxy failed');
    }
    if (sent) {
      this.pushStarted?.sent.add(conn.id);
      if (conn.pendingSince !== undefined) this.opts.metrics.convergence.observe((Date.now() - conn.pendingSince) / 1000);
    }
    if (!this.queue.has(conn)) conn.pendingSince = undefined;
    this.opts.metrics.sendTime.observe((performance.now() - start) / 1000);
  }

  private send(conn: Connection, msg: object, bytes: number): void {
    const short = SHORT_TYPE[(msg as { type_url: keyof typeof SHORT_TYPE }).type_url]?.toLowerCase() ?? 'unknown';
    conn.queuedBytes += bytes;
    (conn.stream as XdsStream<object>).write(msg, () => {
      conn.queuedBytes -= bytes;
      this.queue.drained(conn);
    });
    this.opts.metrics.pushes.inc({ type: short });
    this.opts.metrics.configSize.observe({ type: short }, bytes);
  }

  private pushDone(): void {
    const p = this.pushStarted;
    if (!p) return;
    this.pushStarted = undefined;
    Object.assign(this.lastPush, { version: p.version, reason: p.reason, at: this.now().toISOString(), proxies: p.sent.size, durationMs: performance.now() - p.at });
  }
}
