/**
 * Signing processes: CSR verification and signing (sign-worker.ts runs issueFromCsr) on the other
 * cores, off the event loop that serves xDS.
 *
 * Processes, not worker threads: with the OpenSSL 3.0 that Node 20 ships, ECDSA signing and the
 * key import and first verification a new CSR key needs do not get faster with a second thread in
 * the same process (threads wait on OpenSSL's shared locks; bench:ca shows it), while a second
 * process has its own OpenSSL and uses its own core.
 *
 * The current issuer is sent to every process when it changes (its key as PKCS#8 DER over the
 * private IPC channel: never logged, never on disk); messages to one process stay in order, so a
 * job always runs with the issuer that was current when it was sent. Jobs go to the process with
 * the fewest in flight and are sent together once per event-loop turn (IPC costs per message).
 * The queue is bounded: past `maxQueue` requests in flight, issue() refuses at once
 * (RESOURCE_EXHAUSTED, reason `ca_busy`) rather than letting latency and memory grow. A process
 * that dies fails its own jobs only and is replaced on the next request; one whose parent dies
 * exits when its IPC channel closes.
 */
import { type ChildProcess, fork } from 'node:child_process';
import * as path from 'node:path';
import type { Logger } from 'pino';
import type { IssueJob } from './issue';
import type { Issuer } from './sign';
import { CaError } from './types';

const UNAVAILABLE = 14;
const RESOURCE_EXHAUSTED = 8;
const INTERNAL = 13;

/** The issuer as sent to a signing process (Buffers may arrive as Uint8Arrays). */
export interface IssuerMessage {
  subjectDer: Uint8Array;
  keyId: Uint8Array;
  /** The CA's private key, PKCS#8 DER. */
  keyPkcs8: Uint8Array;
  hash: string;
  algorithmDer: Uint8Array;
}

export interface JobResult {
  id: number;
  der?: Uint8Array;
  error?: { reason: string; message: string; grpcCode: number };
}

export type ToWorker = { type: 'issuer'; issuer: IssuerMessage } | { type: 'jobs'; jobs: Array<{ id: number; job: IssueJob }> };
export type FromWorker = { type: 'results'; results: JobResult[] };

export interface SignPoolOptions {
  /** Signing processes (at least 1). */
  workers: number;
  /** Requests in flight (queued or running) across all processes before new ones are refused. */
  maxQueue: number;
  log: Logger;
}

interface Pending {
  resolve: (der: Buffer) => void;
  reject: (err: CaError) => void;
}

interface Slot {
  child: ChildProcess;
  inFlight: Map<number, Pending>;
  /** Jobs waiting for this turn's send. */
  outbox: Array<{ id: number; job: IssueJob }>;
}

const WORKER_FILE = path.join(__dirname, `sign-worker${path.extname(__filename)}`);

/** The parent's loader flags (e.g. `--import tsx` when running from sources); nothing else of its execArgv. */
function loaderExecArgv(): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (/^--(import|require|loader|experimental-loader)=/.test(a)) out.push(a);
    else if (/^(--import|--require|-r|--loader|--experimental-loader)$/.test(a) && i + 1 < argv.length) out.push(a, argv[++i] as string);
  }
  return out;
}

const bufferOf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export class SignPool {
  private readonly slots: Slot[] = [];
  private issuer: IssuerMessage | undefined;
  private nextId = 1;
  private inFlight = 0;
  private closed = false;
  private flushing: NodeJS.Immediate | undefined;
  private readonly execArgv = loaderExecArgv();

  constructor(private readonly opts: SignPoolOptions) {
    if (!(opts.workers >= 1) || !(opts.maxQueue >= 1)) throw new Error(`a signing pool needs at least one process and one queue place (got ${opts.workers}, ${opts.maxQueue})`);
    for (let i = 0; i < opts.workers; i++) this.spawn();
  }

  private spawn(): Slot {
    const child = fork(WORKER_FILE, [], { serialization: 'advanced', execArgv: this.execArgv, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const slot: Slot = { child, inFlight: new Map(), outbox: [] };
    this.idle(slot);
    child.on('message', (m: FromWorker) => {
      for (const r of m.results) {
        const p = slot.inFlight.get(r.id);
        if (!p) continue;
        slot.inFlight.delete(r.id);
        this.inFlight--;
        if (r.der) p.resolve(bufferOf(r.der));
        else p.reject(new CaError(r.error?.reason ?? 'signing_error', r.error?.message ?? 'signing the certificate failed', r.error?.grpcCode ?? INTERNAL));
      }
      if (slot.inFlight.size === 0) this.idle(slot);
    });
    child.on('error', (err: Error) => this.lost(slot, err.message));
    child.on('exit', (code: number | null, signal: NodeJS.Signals | null) => this.lost(slot, signal ? `signal ${signal}` : `exit code ${code}`));
    if (this.issuer) child.send({ type: 'issuer', issuer: this.issuer } satisfies ToWorker);
    this.slots.push(slot);
    return slot;
  }

  /** An idle process does not keep meshd running; one with work does, until it answers. */
  private idle(slot: Slot): void {
    slot.child.unref();
    slot.child.channel?.unref();
  }

  private busy(slot: Slot): void {
    slot.child.ref();
    slot.child.channel?.ref();
  }

  private lost(slot: Slot, why: string): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.slots.splice(i, 1);
    for (const p of slot.inFlight.values()) p.reject(new CaError('signing_error', 'the signing process stopped', INTERNAL));
    this.inFlight -= slot.inFlight.size;
    slot.inFlight.clear();
    slot.outbox.length = 0;
    if (slot.child.exitCode === null && slot.child.signalCode === null) slot.child.kill();
    if (!this.closed) this.opts.log.error({ why }, 'a CA signing process stopped; it is replaced on the next request');
  }

  /** The CA that signs from now on (every process gets it before any later job). */
  setIssuer(issuer: Issuer): void {
    this.flush();
    this.issuer = {
      subjectDer: issuer.subjectDer,
      keyId: issuer.keyId,
      keyPkcs8: issuer.key.export({ type: 'pkcs8', format: 'der' }),
      hash: issuer.hash,
      algorithmDer: issuer.algorithmDer,
    };
    for (const s of this.slots) s.child.send({ type: 'issuer', issuer: this.issuer } satisfies ToWorker);
  }

  /** Requests queued or running now. */
  get pending(): number {
    return this.inFlight;
  }

  /** Issues `job` in a signing process: the leaf (DER), or a CaError as issueFromCsr throws it (or `ca_busy`). */
  issue(job: IssueJob): Promise<Buffer> {
    if (this.closed) return Promise.reject(new CaError('ca_not_ready', 'the CA is shutting down', UNAVAILABLE));
    if (this.inFlight >= this.opts.maxQueue) {
      return Promise.reject(new CaError('ca_busy', `the CA is busy: ${this.inFlight} certificate requests in flight; retry later`, RESOURCE_EXHAUSTED));
    }
    while (this.slots.length < this.opts.workers) this.spawn();
    let slot = this.slots[0] as Slot;
    for (const s of this.slots) if (s.inFlight.size < slot.inFlight.size) slot = s;
    const id = this.nextId++;
    this.inFlight++;
    return new Promise<Buffer>((resolve, reject) => {
      if (slot.inFlight.size === 0) this.busy(slot);
      slot.inFlight.set(id, { resolve, reject });
      slot.outbox.push({ id, job });
      this.flushing ??= setImmediate(() => this.flush());
    });
  }

  /** Sends every process its waiting jobs, as one message each. */
  private flush(): void {
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = undefined;
    for (const slot of this.slots) {
      if (slot.outbox.length === 0) continue;
      const jobs = slot.outbox.splice(0);
      slot.child.send({ type: 'jobs', jobs } satisfies ToWorker, (err: Error | null) => {
        if (err) this.lost(slot, `cannot send jobs: ${err.message}`);
      });
    }
  }

  /** Stops the processes; requests still in flight are refused. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = undefined;
    const slots = this.slots.splice(0);
    for (const s of slots) {
      for (const p of s.inFlight.values()) p.reject(new CaError('ca_not_ready', 'the CA is shutting down', UNAVAILABLE));
      s.inFlight.clear();
    }
    this.inFlight = 0;
    await Promise.all(
      slots.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.child.exitCode !== null || s.child.signalCode !== null) return resolve();
            const timer = setTimeout(() => s.child.kill('SIGKILL'), 2000);
            timer.unref();
            s.child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            // Closing the channel ends the process (sign-worker.ts exits on disconnect).
            if (s.child.connected) s.child.disconnect();
            else s.child.kill();
          }),
      ),
    );
  }
}
