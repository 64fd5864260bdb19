/**
 * Worker threads that verify CSRs and sign (sign-worker.ts runs issueFromCsr), so a P-256 request,
 * whose cost is mostly OpenSSL importing a new key and verifying with it, can use the other cores,
 * and CSR bursts stay off the event loop that serves xDS.
 *
 * The current issuer (its key as a KeyObject, cloned to each thread: never as text) is posted to
 * every worker when it changes; messages to one worker stay in order, so a job always runs with the
 * issuer that was current when it was posted. Jobs go to the worker with the fewest in flight and
 * are posted together once per event-loop turn, and each worker answers a batch with one message:
 * a message per certificate each way cost as much as the batching saves (about 10 % of
 * throughput). The queue is bounded: past `maxQueue` requests in flight, issue() refuses at once
 * (RESOURCE_EXHAUSTED, reason `ca_busy`) rather than letting latency and memory grow. Until a
 * worker has loaded (and while all are being replaced) the authority signs on its own thread, so
 * starting them never delays a certificate. A worker that dies fails its own jobs only and is
 * replaced on the next request.
 */
import type { KeyObject } from 'node:crypto';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { IssueJob } from './issue';
import type { Issuer } from './sign';
import { CaError } from './types';

const UNAVAILABLE = 14;
const RESOURCE_EXHAUSTED = 8;
const INTERNAL = 13;

/** The issuer as posted to a worker (Buffers arrive as Uint8Arrays; the KeyObject is cloned). */
export interface IssuerMessage {
  subjectDer: Uint8Array;
  keyId: Uint8Array;
  key: KeyObject;
  hash: string;
  algorithmDer: Uint8Array;
}

export interface JobResult {
  id: number;
  der?: Uint8Array;
  error?: { reason: string; message: string; grpcCode: number };
}

export type ToWorker = { type: 'issuer'; issuer: IssuerMessage } | { type: 'jobs'; jobs: Array<{ id: number; job: IssueJob }> };
export type FromWorker = { type: 'ready' } | { type: 'results'; results: JobResult[] };

export interface SignPoolOptions {
  /** Worker threads (at least 1). */
  workers: number;
  /** Requests in flight (queued or running) across all workers before new ones are refused. */
  maxQueue: number;
  log: Logger;
}

interface Pending {
  resolve: (der: Buffer) => void;
  reject: (err: CaError) => void;
}

interface Slot {
  worker: Worker;
  /** It has loaded and said so; jobs go only to ready workers. */
  ready: boolean;
  inFlight: Map<number, Pending>;
  /** Jobs waiting for this turn's post. */
  outbox: Array<{ id: number; job: IssueJob }>;
}

/**
 * The worker's entry: the compiled `sign-worker.js` beside this file; or, when meshd runs from its
 * TypeScript sources through tsx (tests, benchmarks), `sign-worker.ts` through tsx's require hook,
 * since worker threads do not inherit `--import tsx`.
 */
function workerSource(): string {
  const file = path.join(__dirname, `sign-worker${path.extname(__filename)}`);
  const load = `require(${JSON.stringify(file)});`;
  return path.extname(__filename) === '.ts' ? `require(${JSON.stringify(require.resolve('tsx/cjs'))}); ${load}` : load;
}

const bufferOf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export class SignPool {
  private readonly slots: Slot[] = [];
  private issuer: IssuerMessage | undefined;
  private nextId = 1;
  private inFlight = 0;
  private closed = false;
  private flushing: NodeJS.Immediate | undefined;
  private readonly source = workerSource();
  private readonly readyWaiters: Array<() => void> = [];

  constructor(private readonly opts: SignPoolOptions) {
    if (!(opts.workers >= 1) || !(opts.maxQueue >= 1)) throw new Error(`a signing pool needs at least one worker and one queue place (got ${opts.workers}, ${opts.maxQueue})`);
    for (let i = 0; i < opts.workers; i++) this.spawn();
  }

  private spawn(): Slot {
    const worker = new Worker(this.source, { eval: true, execArgv: [] });
    const slot: Slot = { worker, ready: false, inFlight: new Map(), outbox: [] };
    // Loading counts as work (someone may wait for it); once ready and idle it keeps nothing alive.
    worker.ref();
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'ready') {
        slot.ready = true;
        if (slot.inFlight.size === 0) worker.unref();
        for (const w of this.readyWaiters.splice(0)) w();
        return;
      }
      for (const r of m.results) {
        const p = slot.inFlight.get(r.id);
        if (!p) continue;
        slot.inFlight.delete(r.id);
        this.inFlight--;
        if (r.der) p.resolve(bufferOf(r.der));
        else p.reject(new CaError(r.error?.reason ?? 'signing_error', r.error?.message ?? 'signing the certificate failed', r.error?.grpcCode ?? INTERNAL));
      }
      if (slot.inFlight.size === 0) worker.unref();
    });
    worker.on('error', (err: Error) => this.lost(slot, err.message));
    worker.on('exit', (code: number) => this.lost(slot, `exit code ${code}`));
    if (this.issuer) worker.postMessage({ type: 'issuer', issuer: this.issuer } satisfies ToWorker);
    this.slots.push(slot);
    return slot;
  }

  private lost(slot: Slot, why: string): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.slots.splice(i, 1);
    for (const p of slot.inFlight.values()) p.reject(new CaError('signing_error', 'the signing worker stopped', INTERNAL));
    this.inFlight -= slot.inFlight.size;
    slot.inFlight.clear();
    slot.outbox.length = 0;
    void slot.worker.terminate();
    if (!this.closed) this.opts.log.error({ why }, 'a CA signing worker stopped; it is replaced on the next request');
  }

  /** The CA that signs from now on (every worker gets it before any later job). */
  setIssuer(issuer: Issuer): void {
    this.flush();
    this.issuer = { subjectDer: issuer.subjectDer, keyId: issuer.keyId, key: issuer.key, hash: issuer.hash, algorithmDer: issuer.algorithmDer };
    for (const s of this.slots) s.worker.postMessage({ type: 'issuer', issuer: this.issuer } satisfies ToWorker);
  }

  /** Requests queued or running now. */
  get pending(): number {
    return this.inFlight;
  }

  /** Whether a worker has loaded and can take jobs (until then, and between restarts, the caller signs itself). */
  get ready(): boolean {
    return this.slots.some((s) => s.ready);
  }

  /** Resolves once a worker can take jobs (tests, benchmarks). */
  whenReady(): Promise<void> {
    return this.ready ? Promise.resolve() : new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** Issues `job` on a worker: the leaf (DER), or a CaError as issueFromCsr throws it (or `ca_busy`). */
  issue(job: IssueJob): Promise<Buffer> {
    if (this.closed) return Promise.reject(new CaError('ca_not_ready', 'the CA is shutting down', UNAVAILABLE));
    if (this.inFlight >= this.opts.maxQueue) {
      return Promise.reject(new CaError('ca_busy', `the CA is busy: ${this.inFlight} certificate requests in flight; retry later`, RESOURCE_EXHAUSTED));
    }
    while (this.slots.length < this.opts.workers) this.spawn();
    const ready = this.slots.filter((s) => s.ready);
    if (ready.length === 0) return Promise.reject(new CaError('ca_not_ready', 'no signing worker has started yet', UNAVAILABLE));
    let slot = ready[0] as Slot;
    for (const s of ready) if (s.inFlight.size < slot.inFlight.size) slot = s;
    const id = this.nextId++;
    this.inFlight++;
    return new Promise<Buffer>((resolve, reject) => {
      // A worker with work keeps the process alive until it answers.
      if (slot.inFlight.size === 0) slot.worker.ref();
      slot.inFlight.set(id, { resolve, reject });
      slot.outbox.push({ id, job });
      this.flushing ??= setImmediate(() => this.flush());
    });
  }

  /** Posts every worker its waiting jobs, as one message each. */
  private flush(): void {
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = undefined;
    for (const slot of this.slots) {
      if (slot.outbox.length > 0) slot.worker.postMessage({ type: 'jobs', jobs: slot.outbox.splice(0) } satisfies ToWorker);
    }
  }

  /** Stops the workers; requests still in flight are refused. */
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
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}
