/**
 * Real proxyless xDS clients for end-to-end tests, each in its own child process.
 *
 * - grpc-js-xds: `test/helpers/grpc-js-xds-client.ts`, run with `node --import tsx`.
 *   grpc-js-xds's bootstrap is process-global and cached, hence the child process.
 * - gRPC C-core: `test/helpers/xds_client.py`, run with `/usr/bin/python3` (Debian's
 *   python3-grpcio lives in the system interpreter only).
 *
 * Both get a bootstrap file through GRPC_XDS_BOOTSTRAP pointing at meshd on 127.0.0.1,
 * open ONE channel to the target at start, and keep it until stdin is closed. They speak
 * the same JSON-lines protocol: one command in, one reply out.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { XDS_TARGET } from './mesh-fixture';

export const SYSTEM_PYTHON = '/usr/bin/python3';

const HELPERS = __dirname;
const REPO_ROOT = path.resolve(HELPERS, '..', '..');
const JS_CLIENT = path.join(HELPERS, 'grpc-js-xds-client.ts');
const PY_CLIENT = path.join(HELPERS, 'xds_client.py');
const STDERR_KEEP = 64 * 1024;

export type ClientImpl = 'grpc-js-xds' | 'grpc-core';

export interface CallCommand {
  /** Number of unary calls (bounded by the child at 10 000). Default 1. */
  calls?: number;
  /** Request metadata (header) to send on every call. */
  metadata?: Record<string, string>;
  /** Per-call deadline. Default 1000 ms. */
  deadlineMs?: number;
  /** Calls in flight at once. Default 8. */
  concurrency?: number;
  /** Queue calls until the channel is READY instead of failing fast while it connects. */
  waitForReady?: boolean;
  /** Start successive calls at least this many ms apart (at most 1000). Default 0: at once. */
  staggerMs?: number;
  /** The unary method's full path; default `/meshd.test.Echo/Who` (grpc-js-xds client only). */
  method?: string;
}

export interface CallResult {
  /** Successful calls per backend name (the name each backend answered with). */
  counts: Record<string, number>;
  errors: number;
  /** Failed calls per numeric gRPC status code. */
  errorCodes: Record<string, number>;
  /** Up to 5 distinct `<code> <details>` strings. */
  errorSamples: string[];
  /** Successful calls per serial of the server's TLS certificate (grpc-js-xds; empty over plaintext). */
  serverSerials?: Record<string, number>;
}

export interface XdsClientOptions {
  xdsPort: number;
  /** Defaults to XDS_TARGET (`xds:///reviews.default.svc.cluster.local:9080`). */
  target?: string;
  /** The pod name in the node ID; default `client-<random hex>`. */
  podName?: string;
  namespace?: string;
  /** Extra node metadata (merged over the defaults). */
  metadata?: Record<string, unknown>;
  /** The xDS node's locality (`region`, `zone`, `sub_zone`); default none. */
  locality?: { region?: string; zone?: string; sub_zone?: string };
  /** Extra environment for the child (e.g. GRPC_TRACE). */
  env?: Record<string, string>;
  /** How long to wait for the child to say it is ready. Default 15 s. */
  startTimeoutMs?: number;
  /**
   * Use this bootstrap file as it is (e.g. the one a workload's agent wrote) instead of writing
   * one; `podName`, `namespace`, `metadata` and `locality` are then ignored.
   */
  bootstrapFile?: string;
  /**
   * `xds`: XdsChannelCredentials with an insecure fallback, so clusters with xDS TLS get mTLS
   * from the bootstrap's certificate providers (grpc-js-xds client only). Default `insecure`.
   */
  credentials?: 'insecure' | 'xds';
}

export interface XdsClient {
  readonly impl: ClientImpl;
  readonly nodeId: string;
  readonly pid: number;
  /** Run calls over the one long-lived channel. Rejects (with stderr attached) on failure. */
  run(cmd: CallCommand): Promise<CallResult>;
  /** The channel's connectivity state as the client library reports it (e.g. `READY`). */
  state(): Promise<string>;
  /** Everything the child wrote to stderr so far (last 64 KiB). */
  stderr(): string;
  /** Close stdin, wait for exit (kill after 3 s), remove the bootstrap. Safe to call twice. */
  close(): Promise<void>;
}

export interface Bootstrap {
  xds_servers: Array<{ server_uri: string; channel_creds: Array<{ type: string }>; server_features: string[] }>;
  node: { id: string; cluster?: string; locality?: Record<string, string>; metadata: Record<string, unknown> };
}

/** An Istio-style proxyless bootstrap: node ID `sidecar~127.0.0.1~<pod>.<ns>~<ns>.svc.cluster.local`. */
export function makeBootstrap(xdsPort: number, podName: string, namespace = 'default', extra: Record<string, unknown> = {}, locality: Record<string, string> = {}): Bootstrap {
  return {
    xds_servers: [{ server_uri: `127.0.0.1:${xdsPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: {
      id: `sidecar~127.0.0.1~${podName}.${namespace}~${namespace}.svc.cluster.local`,
      locality: { ...locality },
      metadata: {
        GENERATOR: 'grpc',
        NAMESPACE: namespace,
        CLUSTER_ID: 'Kubernetes',
        INSTANCE_IPS: '127.0.0.1',
        LABELS: { app: 'xds-test-client' },
        SERVICE_ACCOUNT: 'default',
        ISTIO_VERSION: '1.24.0',
        ...extra,
      },
    },
  };
}

/** Whether `/usr/bin/python3` can import grpc; `reason` says why not. */
export function pythonGrpcAvailable(): { ok: boolean; reason: string; version?: string } {
  const r = spawnSync(SYSTEM_PYTHON, ['-c', 'import grpc, sys; sys.stdout.write(grpc.__version__)'], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  if (r.error) return { ok: false, reason: `${SYSTEM_PYTHON}: ${r.error.message}` };
  if (r.status !== 0) return { ok: false, reason: `${SYSTEM_PYTHON} cannot import grpc: ${r.stderr.trim().split('\n').pop() ?? ''}` };
  return { ok: true, reason: '', version: r.stdout.trim() };
}

interface Pending {
  resolve: (v: Record<string, unknown>) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

class ChildClient implements XdsClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private errBuf = '';
  private exited: Promise<void>;
  private exitInfo: string | undefined;
  private closed = false;

  constructor(
    readonly impl: ClientImpl,
    readonly nodeId: string,
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly tmpDir: string,
    private readonly onReady: (msg: Record<string, unknown>) => void,
  ) {
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      this.errBuf = (this.errBuf + d).slice(-STDERR_KEEP);
    });
    const rl = readline.createInterface({ input: child.stdout, crlfDelay: Infinity });
    rl.on('line', (line) => this.onLine(line));
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitInfo = `exited with ${signal ?? `code ${code}`}`;
        for (const [id, p] of this.pending) {
          clearTimeout(p.timer);
          p.reject(this.failure(`${impl} client ${this.exitInfo} before answering command ${id}`));
        }
        this.pending.clear();
        resolve();
      });
    });
    // stdin errors (EPIPE after the child died) surface through `exit`; don't crash the test.
    child.stdin.on('error', () => undefined);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  stderr(): string {
    return this.errBuf;
  }

  private failure(message: string): Error {
    const tail = this.errBuf.trim().split('\n').slice(-40).join('\n');
    return new Error(`${message}\n--- ${this.impl} client stderr (tail) ---\n${tail || '(empty)'}`);
  }

  private onLine(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.errBuf = (this.errBuf + `[stdout, not JSON] ${line}\n`).slice(-STDERR_KEEP);
      return;
    }
    if (msg['ready'] === true) {
      this.onReady(msg);
      return;
    }
    const id = typeof msg['id'] === 'number' ? msg['id'] : undefined;
    const p = id !== undefined ? this.pending.get(id) : undefined;
    if (!p || id === undefined) {
      this.errBuf = (this.errBuf + `[unsolicited reply] ${line}\n`).slice(-STDERR_KEEP);
      return;
    }
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (typeof msg['error'] === 'string') p.reject(this.failure(`${this.impl} client error: ${msg['error']}`));
    else p.resolve(msg);
  }

  private request(cmd: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
    if (this.closed || this.exitInfo) {
      return Promise.reject(this.failure(`${this.impl} client is ${this.exitInfo ?? 'closed'}`));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(this.failure(`${this.impl} client did not answer ${JSON.stringify(cmd)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.child.stdin.write(JSON.stringify({ ...cmd, id }) + '\n');
    });
  }

  async run(cmd: CallCommand): Promise<CallResult> {
    const calls = cmd.calls ?? 1;
    const deadline = cmd.deadlineMs ?? 1000;
    const conc = cmd.concurrency ?? 8;
    // Worst case: every call runs to its deadline, `conc` at a time, starts staggered; plus slack.
    const timeoutMs = Math.ceil(calls / conc) * deadline + calls * (cmd.staggerMs ?? 0) + 10_000;
    const r = await this.request({ op: 'calls', ...cmd }, timeoutMs);
    return {
      counts: (r['counts'] as Record<string, number> | undefined) ?? {},
      errors: typeof r['errors'] === 'number' ? r['errors'] : 0,
      errorCodes: (r['errorCodes'] as Record<string, number> | undefined) ?? {},
      errorSamples: (r['errorSamples'] as string[] | undefined) ?? [],
      serverSerials: (r['serverSerials'] as Record<string, number> | undefined) ?? {},
    };
  }

  async state(): Promise<string> {
    const r = await this.request({ op: 'state' }, 5000);
    return String(r['state']);
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.child.stdin.end();
      const killer = setTimeout(() => {
        if (!this.exitInfo && this.child.pid !== undefined) this.child.kill('SIGKILL');
      }, 3000);
      await this.exited;
      clearTimeout(killer);
    }
    await fs.rm(this.tmpDir, { recursive: true, force: true });
  }

  /** Wait for the ready line (or fail with stderr if the child dies or takes too long). */
  waitExit(): Promise<void> {
    return this.exited;
  }
  exitDescription(): string | undefined {
    return this.exitInfo;
  }
}

async function startChild(impl: ClientImpl, opts: XdsClientOptions): Promise<XdsClient> {
  const podName = opts.podName ?? `client-${randomBytes(3).toString('hex')}`;
  const namespace = opts.namespace ?? 'default';
  const locality = Object.fromEntries(Object.entries(opts.locality ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string'));
  if (opts.credentials === 'xds' && impl !== 'grpc-js-xds') throw new Error(`credentials 'xds' are implemented for grpc-js-xds only`);
  const bootstrap: Pick<Bootstrap, 'node'> = opts.bootstrapFile
    ? (JSON.parse(await fs.readFile(opts.bootstrapFile, 'utf8')) as Bootstrap)
    : makeBootstrap(opts.xdsPort, podName, namespace, opts.metadata, locality);
  const tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), 'meshd-xds-client-'));
  const bootstrapPath = opts.bootstrapFile ?? path.join(tmpDir, 'bootstrap.json');
  if (!opts.bootstrapFile) await fs.writeFile(bootstrapPath, JSON.stringify(bootstrap, null, 2));
  const target = opts.target ?? XDS_TARGET;

  const env: NodeJS.ProcessEnv = { ...process.env };
  // Only our bootstrap file (an inherited inline config would win in grpc-js-xds), and no
  // proxies: all traffic stays on 127.0.0.1.
  for (const k of ['GRPC_XDS_BOOTSTRAP_CONFIG', 'http_proxy', 'https_proxy', 'grpc_proxy', 'HTTP_PROXY', 'HTTPS_PROXY']) {
    delete env[k];
  }
  env['GRPC_XDS_BOOTSTRAP'] = bootstrapPath;
  if (impl === 'grpc-core') {
    env['GRPC_VERBOSITY'] = process.env['GRPC_VERBOSITY'] ?? 'ERROR';
    env['PYTHONUNBUFFERED'] = '1';
  }
  Object.assign(env, opts.env);

  const child =
    impl === 'grpc-js-xds'
      ? spawn(process.execPath, ['--import', 'tsx', JS_CLIENT, target, opts.credentials ?? 'insecure'], { cwd: REPO_ROOT, env, stdio: 'pipe' })
      : spawn(SYSTEM_PYTHON, ['-u', PY_CLIENT, target], { cwd: REPO_ROOT, env, stdio: 'pipe' });

  let markReady: (m: Record<string, unknown>) => void = () => undefined;
  const ready = new Promise<Record<string, unknown>>((resolve) => {
    markReady = resolve;
  });
  const client = new ChildClient(impl, bootstrap.node.id, child, tmpDir, (m) => markReady(m));
  const spawnError = new Promise<never>((_, reject) => {
    child.on('error', (e) => reject(new Error(`cannot start ${impl} client: ${e.message}`)));
  });
  const startTimeout = opts.startTimeoutMs ?? 15_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ready,
      spawnError,
      client.waitExit().then(() => {
        throw new Error(`${impl} client ${client.exitDescription() ?? 'exited'} before it was ready`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${impl} client not ready after ${startTimeout} ms`)), startTimeout);
      }),
    ]);
  } catch (e) {
    const err = new Error(`${(e as Error).message}\n--- stderr ---\n${client.stderr().trim() || '(empty)'}`);
    await client.close();
    throw err;
  } finally {
    if (timer) clearTimeout(timer);
  }
  return client;
}

/** Start a grpc-js-xds client process with its own bootstrap. */
export function startGrpcJsXdsClient(opts: XdsClientOptions): Promise<XdsClient> {
  return startChild('grpc-js-xds', opts);
}

/** Start a gRPC C-core (python3-grpcio) client process with its own bootstrap. */
export function startGrpcCoreClient(opts: XdsClientOptions): Promise<XdsClient> {
  return startChild('grpc-core', opts);
}

/** The fraction of successful calls per backend name. */
export function fractions(r: CallResult): Record<string, number> {
  const total = Object.values(r.counts).reduce((a, b) => a + b, 0);
  return Object.fromEntries(Object.entries(r.counts).map(([k, v]) => [k, total === 0 ? 0 : v / total]));
}

/**
 * Run `cmd` repeatedly until `done(result)` holds, or fail after `timeoutMs` with the last
 * result and the client's stderr. Used to wait for config to arrive or change without
 * fixed sleeps.
 */
export async function runUntil(
  client: XdsClient,
  cmd: CallCommand,
  done: (r: CallResult) => boolean,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<CallResult> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const interval = opts.intervalMs ?? 200;
  const start = Date.now();
  let last: CallResult | undefined;
  let attempts = 0;
  for (;;) {
    attempts++;
    last = await client.run(cmd);
    if (done(last)) return last;
    if (Date.now() - start >= timeoutMs) break;
    await new Promise((r) => setTimeout(r, interval));
  }
  const tail = client.stderr().trim().split('\n').slice(-30).join('\n');
  throw new Error(
    `${opts.what ?? 'condition'} not reached after ${attempts} attempts in ${Date.now() - start} ms ` +
      `(${client.impl}, node ${client.nodeId}); last result: ${JSON.stringify(last)}` +
      `\n--- ${client.impl} client stderr (tail) ---\n${tail || '(empty)'}`,
  );
}
