/**
 * Client worker (forked by main.ts): a share of the benchmark's proxies, each with its own
 * gRPC channel (own HTTP/2 connection) and one ADS stream, subscribing like Envoy: CDS
 * wildcard → EDS for the EDS clusters → LDS wildcard → RDS for the listeners' routes, ACKing
 * every response. Reports one small record per response to the parent, batched every 50 ms.
 */
import * as grpc from '@grpc/grpc-js';
import { type FromWorker, type ProxySpec, type ToWorker, wallNow } from './ipc';
import { CDS, DELTA_PATH, EDS, LDS, RDS, SOTW_PATH, type ScannedResponse, TYPE_URLS, XdsCodec, typeIndex } from './proto';
import { RecordingWriter } from './recording';

const codec = new XdsCodec();
let delta = false;
let proxies: ProxySpec[] = [];
let phase = 0;
let recording = false;
const recorder = new RecordingWriter((buf) => {
  const s = codec.scanResponse(buf, delta);
  return s.runStart < 0 ? undefined : { start: s.runStart, end: s.runEnd };
});
const clients: ProxyClient[] = [];
let events: number[] = [];

function send(msg: FromWorker): void {
  process.send?.(msg);
}

const ALL_TYPES = (1 << CDS) | (1 << EDS) | (1 << LDS) | (1 << RDS);
const CLIENT_OPTIONS: grpc.ClientOptions = {
  'grpc.use_local_subchannel_pool': 1,
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
};

const sameSet = (a: ReadonlySet<string>, b: ReadonlySet<string>): boolean => a.size === b.size && [...a].every((x) => b.has(x));

class ProxyClient {
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  private node: Record<string, unknown> | undefined;
  /** Bit per type: ACKed at least once (or nothing to subscribe to). */
  private acked = 0;
  private full = false;
  private ldsRequested = false;
  // State of the world: last version/nonce per type, current EDS/RDS subscriptions.
  private readonly version = ['', '', '', ''];
  private readonly nonce = ['', '', '', ''];
  private edsNames = new Set<string>();
  private rdsNames = new Set<string>();
  private edsSubscribed = false;
  private rdsSubscribed = false;
  // Delta: the resources held, for subscriptions derived from them.
  private readonly clusters = new Map<string, string | undefined>();
  private readonly listeners = new Map<string, string[]>();
  closed = false;

  constructor(
    readonly spec: ProxySpec,
    addr: string,
  ) {
    this.node = XdsCodec.node(spec);
    this.client = new grpc.Client(addr, grpc.credentials.createInsecure(), CLIENT_OPTIONS);
    this.call = this.client.makeBidiStreamRequest<Buffer, Buffer>(
      delta ? DELTA_PATH : SOTW_PATH,
      (b) => b,
      (b) => b,
    );
    this.call.on('data', (buf: Buffer) => this.onResponse(buf));
    this.call.on('error', (err: grpc.ServiceError) => {
      if (!this.closed) send({ t: 'err', proxy: spec.idx, code: err.code, details: err.details ?? err.message, phase });
      this.closed = true;
    });
    this.call.on('end', () => {
      this.closed = true;
    });
    this.subscribe(CDS, []);
  }

  close(): void {
    this.closed = true;
    this.call.cancel();
    this.client.close();
  }

  private write(buf: Buffer): void {
    if (!this.closed) this.call.write(buf);
  }

  /** A SotW request (the node rides on the first one) or a delta subscription change. */
  private subscribe(type: number, names: readonly string[], unsubscribe: readonly string[] = []): void {
    const node = this.node;
    this.node = undefined;
    const typeUrl = TYPE_URLS[type] as string;
    if (delta) this.write(codec.deltaRequestBytes({ node, typeUrl, subscribe: names, unsubscribe }));
    else this.write(codec.sotwRequest({ node, typeUrl, names, version: this.version[type] as string, nonce: this.nonce[type] as string }));
  }

  private ack(type: number, r: ScannedResponse, names: readonly string[]): void {
    const typeUrl = TYPE_URLS[type] as string;
    if (delta) this.write(codec.deltaRequestBytes({ typeUrl, nonce: r.nonce }));
    else this.write(codec.sotwRequest({ typeUrl, names, version: r.version, nonce: r.nonce }));
    // A later subscription change of this type carries the last ACKed version and nonce.
    this.version[type] = r.version;
    this.nonce[type] = r.nonce;
    this.acked |= 1 << type;
  }

  private onResponse(buf: Buffer): void {
    if (this.closed) return;
    if (recording) recorder.add(phase, this.spec.idx, buf);
    const r = codec.scanResponse(buf, delta);
    const type = typeIndex(r.typeUrl);
    if (type === CDS) this.onClusters(buf, r);
    else if (type === LDS) this.onListeners(buf, r);
    else if (type === EDS) {
      this.ack(EDS, r, [...this.edsNames]);
      this.requestLds();
    } else if (type === RDS) this.ack(RDS, r, [...this.rdsNames]);
    let becameFull = 0;
    if (!this.full && (this.acked & ALL_TYPES) === ALL_TYPES) {
      this.full = true;
      becameFull = 1;
    }
    // Layout: see EV_FIELDS in ipc.ts.
    events.push(this.spec.idx, wallNow(), type, r.resources.length / 2, buf.length, becameFull, phase);
  }

  /** Envoy asks for listeners once its clusters are warm (first EDS answer, or no EDS clusters). */
  private requestLds(): void {
    if (this.ldsRequested) return;
    this.ldsRequested = true;
    this.subscribe(LDS, []);
  }

  private onClusters(buf: Buffer, r: ScannedResponse): void {
    const names = new Set<string>();
    if (delta) {
      for (const n of r.removed) this.clusters.delete(n);
      for (let i = 0; i < r.resources.length; i += 2) {
        const p = codec.payload(buf, r.resources[i] as number, r.resources[i + 1] as number, true);
        if (p) this.clusters.set(p.name, codec.cluster(buf, p.s, p.e).eds);
      }
      for (const eds of this.clusters.values()) if (eds) names.add(eds);
    } else {
      for (let i = 0; i < r.resources.length; i += 2) {
        const p = codec.payload(buf, r.resources[i] as number, r.resources[i + 1] as number, false);
        const eds = p && codec.cluster(buf, p.s, p.e).eds;
        if (eds) names.add(eds);
      }
    }
    this.ack(CDS, r, []);
    this.resubscribe(EDS, names);
  }

  private onListeners(buf: Buffer, r: ScannedResponse): void {
    const names = new Set<string>();
    if (delta) {
      for (const n of r.removed) this.listeners.delete(n);
      for (let i = 0; i < r.resources.length; i += 2) {
        const p = codec.payload(buf, r.resources[i] as number, r.resources[i + 1] as number, true);
        if (p) this.listeners.set(p.name, codec.listener(buf, p.s, p.e).routes);
      }
      for (const routes of this.listeners.values()) for (const n of routes) names.add(n);
    } else {
      for (let i = 0; i < r.resources.length; i += 2) {
        const p = codec.payload(buf, r.resources[i] as number, r.resources[i + 1] as number, false);
        if (p) for (const n of codec.listener(buf, p.s, p.e).routes) names.add(n);
      }
    }
    this.ack(LDS, r, []);
    this.resubscribe(RDS, names);
  }

  /** EDS/RDS follow CDS/LDS: (re)subscribe when the set of names changed. */
  private resubscribe(type: typeof EDS | typeof RDS, names: Set<string>): void {
    const current = type === EDS ? this.edsNames : this.rdsNames;
    const subscribed = type === EDS ? this.edsSubscribed : this.rdsSubscribed;
    if (subscribed && sameSet(current, names)) return;
    if (!subscribed && names.size === 0) {
      // Nothing to ask for: Envoy would not subscribe; count the type as done.
      this.acked |= 1 << type;
      if (type === EDS) this.requestLds();
      return;
    }
    if (type === EDS) [this.edsNames, this.edsSubscribed] = [names, true];
    else [this.rdsNames, this.rdsSubscribed] = [names, true];
    if (delta) {
      const add = [...names].filter((n) => !current.has(n));
      const drop = [...current].filter((n) => !names.has(n));
      if (add.length || drop.length) this.subscribe(type, add, drop);
    } else this.subscribe(type, [...names]);
  }
}

function flush(): void {
  if (events.length === 0) return;
  const ev = events;
  events = [];
  send({ t: 'ev', ev });
}
setInterval(flush, 50);

process.on('message', (msg: ToWorker) => {
  switch (msg.t) {
    case 'init':
      proxies = msg.proxies;
      delta = msg.delta;
      send({ t: 'ready' });
      break;
    case 'connect':
      phase = msg.phase;
      recording = msg.record;
      for (const p of proxies) clients.push(new ProxyClient(p, msg.addr));
      break;
    case 'phase':
      flush();
      if (recording) recorder.compact();
      phase = msg.phase;
      send({ t: 'phaseAck', recordedBytes: recorder.recordedBytes, uniqueBytes: recorder.uniqueBytes });
      break;
    case 'close':
      flush();
      for (const c of clients.splice(0)) c.close();
      recording = false;
      send({ t: 'closed' });
      break;
    case 'dump':
      send({ t: 'dumped', file: msg.file, bytes: recorder.dump(msg.file) });
      break;
    case 'exit':
      flush();
      for (const c of clients.splice(0)) c.close();
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
