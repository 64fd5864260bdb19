/**
 * Real gRPC backends for end-to-end tests: N grpc-js servers on 127.0.0.1, each on its own
 * free port, answering the unary method `/meshd.test.Echo/Who` with its own name as raw
 * UTF-8 bytes. Serializers are the identity on Buffers, so no .proto file is involved and
 * any client (grpc-js, gRPC C-core from Python) can call it with raw bytes.
 *
 * Each backend can be told to fail its first K calls or to answer after a delay, for tests
 * of retries, outlier detection and timeouts.
 */
import * as grpc from '@grpc/grpc-js';

export const ECHO_SERVICE = 'meshd.test.Echo';
export const WHO_METHOD = `/${ECHO_SERVICE}/Who`;

export interface BackendBehaviour {
  /** Fail this many calls (counted from now) before answering normally. Default 0. */
  failFirst?: number;
  /** Status code for those failures. Default UNAVAILABLE (retriable in gRPC retry policies). */
  failCode?: grpc.status;
  /** Wait this long before answering (or failing). Default 0. */
  delayMs?: number;
}

export interface Backend {
  readonly name: string;
  readonly port: number;
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  /** Calls received (answered or failed) since start or the last `reset()`. */
  readonly calls: number;
  /** Calls that this backend failed on purpose. */
  readonly failed: number;
  /** Request metadata of the most recent call (lower-case keys, string values only). */
  readonly lastMetadata: Readonly<Record<string, string>>;
  /** Calls being handled right now (received, not yet answered or cancelled). */
  readonly inFlight: number;
  /** The most calls ever in flight at once since start or the last `reset()`. */
  readonly maxInFlight: number;
  /** Replace the behaviour (failure budget restarts from the new `failFirst`). */
  setBehaviour(b: BackendBehaviour): void;
  /** Zero `calls` and `failed`; `maxInFlight` restarts from the calls in flight now. */
  reset(): void;
}

export interface BackendSet {
  readonly backends: readonly Backend[];
  /** The backend with this name; throws if there is none. */
  get(name: string): Backend;
  /** Call counts by backend name. */
  counts(): Record<string, number>;
  resetAll(): void;
  close(): Promise<void>;
}

export type BackendSpec = string | { name: string; behaviour?: BackendBehaviour };

const identity = (b: Buffer): Buffer => b;

/** The service definition for `/meshd.test.Echo/Who` with identity (Buffer) serializers. */
export const ECHO_DEFINITION: grpc.ServiceDefinition = {
  Who: {
    path: WHO_METHOD,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

class EchoBackend implements Backend {
  readonly address: string;
  private callCount = 0;
  private failCount = 0;
  private failBudget = 0;
  private failCode: grpc.status = grpc.status.UNAVAILABLE;
  private delayMs = 0;
  private metadata: Record<string, string> = {};
  private active = 0;
  private peak = 0;

  constructor(
    readonly name: string,
    readonly port: number,
    private readonly server: grpc.Server,
  ) {
    this.address = `127.0.0.1:${port}`;
  }

  get calls(): number {
    return this.callCount;
  }
  get failed(): number {
    return this.failCount;
  }
  get lastMetadata(): Readonly<Record<string, string>> {
    return this.metadata;
  }
  get inFlight(): number {
    return this.active;
  }
  get maxInFlight(): number {
    return this.peak;
  }

  setBehaviour(b: BackendBehaviour): void {
    this.failBudget = Math.max(0, b.failFirst ?? 0);
    this.failCode = b.failCode ?? grpc.status.UNAVAILABLE;
    this.delayMs = Math.max(0, b.delayMs ?? 0);
  }

  reset(): void {
    this.callCount = 0;
    this.failCount = 0;
    this.peak = this.active;
  }

  handle(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>): void {
    this.callCount++;
    this.active++;
    this.peak = Math.max(this.peak, this.active);
    let done = false;
    const finish = (): void => {
      if (!done) {
        done = true;
        this.active--;
      }
    };
    const md: Record<string, string> = {};
    for (const [k, v] of Object.entries(call.metadata.getMap())) {
      if (typeof v === 'string') md[k] = v;
    }
    this.metadata = md;
    const fail = this.failBudget > 0;
    if (fail) {
      this.failBudget--;
      this.failCount++;
    }
    const code = this.failCode;
    const answer = (): void => {
      finish();
      if (fail) {
        callback({ code, details: `${this.name}: injected failure` });
      } else {
        const trailer = new grpc.Metadata();
        trailer.set('x-backend', this.name);
        callback(null, Buffer.from(this.name, 'utf8'), trailer);
      }
    };
    if (this.delayMs > 0) {
      const t = setTimeout(answer, this.delayMs);
      // A cancelled call (client deadline) needs no answer; don't keep the timer around.
      call.on('cancelled', () => {
        clearTimeout(t);
        finish();
      });
    } else {
      answer();
    }
  }

  shutdown(): Promise<void> {
    return new Promise((resolve) => {
      // Graceful first; force after a short grace period so a hung client can't stall `after`.
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 1000);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}

function bind(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) reject(err);
      else resolve(port);
    });
  });
}

async function startOne(spec: BackendSpec): Promise<EchoBackend> {
  const name = typeof spec === 'string' ? spec : spec.name;
  const server = new grpc.Server();
  // The handler needs the backend object, which needs the port: bind through a holder.
  const holder: { backend?: EchoBackend } = {};
  server.addService(ECHO_DEFINITION, {
    Who: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      if (holder.backend) holder.backend.handle(call, cb);
      else cb({ code: grpc.status.UNAVAILABLE, details: 'backend not ready' });
    },
  });
  const port = await bind(server);
  const backend = new EchoBackend(name, port, server);
  if (typeof spec !== 'string' && spec.behaviour) backend.setBehaviour(spec.behaviour);
  holder.backend = backend;
  return backend;
}

/** Start one backend per spec, each on its own free 127.0.0.1 port. */
export async function startBackends(specs: readonly BackendSpec[]): Promise<BackendSet> {
  const started: EchoBackend[] = [];
  try {
    for (const spec of specs) started.push(await startOne(spec));
  } catch (err) {
    await Promise.all(started.map((b) => b.shutdown()));
    throw err;
  }
  const byName = new Map(started.map((b) => [b.name, b]));
  return {
    backends: started,
    get(name: string): Backend {
      const b = byName.get(name);
      if (!b) throw new Error(`no backend named ${name} (have ${[...byName.keys()].join(', ')})`);
      return b;
    },
    counts(): Record<string, number> {
      return Object.fromEntries(started.map((b) => [b.name, b.calls]));
    },
    resetAll(): void {
      for (const b of started) b.reset();
    },
    async close(): Promise<void> {
      await Promise.all(started.map((b) => b.shutdown()));
    },
  };
}
