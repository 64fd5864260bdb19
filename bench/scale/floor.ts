/**
 * Transport floor (forked by main.ts): a bare @grpc/grpc-js server on 127.0.0.1 serving the
 * same ADS methods with raw Buffer (de)serializers. It computes nothing: for each proxy (known
 * by node.id in its first request) it replays exactly the response bytes that proxy received
 * from meshd, in the same order.
 *  - Cold start: each recorded response is written as soon as the proxy has subscribed to its
 *    type (the first is the answer to the initial subscription, the rest follow in order).
 *  - A change phase: on 'push', every connected proxy gets its recorded responses at once
 *    (yielding to the event loop every 16 MB written).
 * The time the benchmark clients need against this server is what the transport alone costs.
 */
import * as grpc from '@grpc/grpc-js';
import type { FromFloor, ToFloor } from './ipc';
import { DELTA_PATH, SOTW_PATH, XdsCodec } from './proto';
import { type Recorded, readRecording } from './recording';

const codec = new XdsCodec();

interface FloorProxy {
  idx: number;
  stream: grpc.ServerDuplexStream<Buffer, Buffer>;
  subscribed: Set<string>;
  /** Cold-start responses not written yet, in order. */
  pending: Rec[];
}

/** A recorded response and its type (read once, at load). */
type Rec = Recorded & { typeUrl: string };

let delta = false;
let coldPhase = 0;
const idxById = new Map<string, number>();
/** phase → proxy idx → responses in order. */
const byPhase = new Map<number, Map<number, Rec[]>>();
const connected = new Map<number, FloorProxy>();
const server = new grpc.Server({ 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 });

function send(msg: FromFloor): void {
  process.send?.(msg);
}

const join = (r: Recorded): Buffer => (r.parts.length === 1 ? (r.parts[0] as Buffer) : Buffer.concat(r.parts, r.bytes));

function drain(p: FloorProxy): void {
  while (p.pending.length > 0 && p.subscribed.has((p.pending[0] as Rec).typeUrl)) p.stream.write(join(p.pending.shift() as Rec));
}

function handle(stream: grpc.ServerDuplexStream<Buffer, Buffer>, isDelta: boolean): void {
  let proxy: FloorProxy | undefined;
  stream.on('data', (req: Buffer) => {
    const { nodeId, typeUrl } = codec.scanRequest(req, isDelta);
    if (!proxy) {
      const idx = idxById.get(nodeId);
      if (idx === undefined) {
        stream.emit('error', { code: grpc.status.NOT_FOUND, details: `no recording for node ${nodeId}` });
        return;
      }
      const cold = byPhase.get(coldPhase)?.get(idx) ?? [];
      proxy = { idx, stream, subscribed: new Set(), pending: [...cold] };
      connected.set(idx, proxy);
    }
    if (!proxy.subscribed.has(typeUrl)) {
      proxy.subscribed.add(typeUrl);
      drain(proxy);
    }
  });
  const done = (): void => {
    if (proxy && connected.get(proxy.idx) === proxy) connected.delete(proxy.idx);
  };
  stream.on('end', () => {
    done();
    stream.end();
  });
  stream.on('error', done);
  stream.on('cancelled', done);
}

function method(path: string, name: string): grpc.MethodDefinition<Buffer, Buffer> {
  const id = (b: Buffer): Buffer => b;
  return { path, requestStream: true, responseStream: true, originalName: name, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id };
}

server.addService(
  { StreamAggregatedResources: method(SOTW_PATH, 'streamAggregatedResources'), DeltaAggregatedResources: method(DELTA_PATH, 'deltaAggregatedResources') },
  {
    StreamAggregatedResources: (s: grpc.ServerDuplexStream<Buffer, Buffer>) => handle(s, false),
    DeltaAggregatedResources: (s: grpc.ServerDuplexStream<Buffer, Buffer>) => handle(s, true),
  },
);

function load(msg: Extract<ToFloor, { t: 'load' }>): { responses: number; bytes: number } {
  delta = msg.delta;
  coldPhase = msg.coldPhase;
  msg.ids.forEach((id, idx) => idxById.set(id, idx));
  let responses = 0;
  let bytes = 0;
  for (const file of msg.files) {
    for (const r of readRecording(file)) {
      const rec: Rec = { ...r, typeUrl: codec.scanResponse(join(r), delta).typeUrl };
      let perProxy = byPhase.get(rec.phase);
      if (!perProxy) byPhase.set(rec.phase, (perProxy = new Map()));
      let list = perProxy.get(rec.proxy);
      if (!list) perProxy.set(rec.proxy, (list = []));
      list.push(rec);
      responses++;
      bytes += rec.bytes;
    }
  }
  return { responses, bytes };
}

/**
 * Writes each connected proxy's recorded responses of a phase, in order, yielding to the event
 * loop every 16 MB (as any server pushing to thousands of proxies would) so PINGs are answered.
 */
async function push(phase: number): Promise<void> {
  let proxies = 0;
  let responses = 0;
  let sinceYield = 0;
  for (const [idx, list] of byPhase.get(phase) ?? []) {
    const p = connected.get(idx);
    if (!p) continue;
    proxies++;
    for (const rec of list) {
      p.stream.write(join(rec));
      responses++;
      sinceYield += rec.bytes;
    }
    if (sinceYield >= 16 * 2 ** 20) {
      sinceYield = 0;
      await new Promise((r) => setImmediate(r));
    }
  }
  send({ t: 'pushed', phase, proxies, responses });
}

process.on('message', (msg: ToFloor) => {
  try {
    if (msg.t === 'load') {
      const stats = load(msg);
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
        if (err) send({ t: 'error', message: err.message });
        else send({ t: 'listening', port, ...stats });
      });
    } else if (msg.t === 'push') {
      void push(msg.phase);
    } else if (msg.t === 'stop') {
      for (const p of connected.values()) p.stream.end();
      server.tryShutdown(() => process.exit(0));
      setTimeout(() => process.exit(0), 2000).unref();
    }
  } catch (err) {
    send({ t: 'error', message: (err as Error).stack ?? String(err) });
  }
});
process.on('disconnect', () => process.exit(0));
