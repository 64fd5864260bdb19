/**
 * Worker threads that issue certificates (sign-worker.ts runs issueFromCsr), so CSR verification
 * and signing use the other cores and stay off the event loop that serves xDS. The current issuer
 * (with its key, as a KeyObject: never as text) is posted to every worker when it changes; jobs go
 * to the worker with the fewest in flight, and messages to one worker stay in order, so a job
 * always runs with the issuer that was current when it was posted. The queue is bounded: past
 * `maxQueue` requests in flight, issue() refuses at once (RESOURCE_EXHAUSTED, reason `ca_busy`)
 * rather than letting latency and memory grow. A worker that dies fails its own jobs only and is
 * replaced on the next request.
 */
import type { KeyObject } from 'node:crypto';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { IssueJob } from './issue';
import type { Issuer } from './sign';
import { CaError } from './types';

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

export type ToWorker = { type: 'issuer'; issuer: IssuerMessage } | { type: 'job'; id: number; job: IssueJob };
export type FromWorker = { id: number; der: Uint8Array } | { id: number; error: { reason: string; message: string; grpcCode: number } };

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
  inFlight: Map<number, Pending>;
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

export class SignPool {
  private readonly slots: Slot[] = [];
  private issuer: IssuerMessage | undefined;
  private nextId = 1;
  private inFlight = 0;
  private closed = false;
  private readonly source = workerSource();

  constructor(private readonly opts: SignPoolOptions) {
    if (!(opts.workers >= 1) || !(opts.maxQueue >= 1)) throw new Error(`a signing pool needs at least one worker and one queue place (got ${opts.workers}, ${opts.maxQueue})`);
    for (let i = 0; i < opts.workers; i++) this.spawn();
  }

  private spawn(): Slot {
    const worker = new Worker(this.source, { eval: true, execArgv: [] });
    worker.unref();
    const slot: Slot = { worker, inFlight: new Map() };
    worker.on('message', (m: FromWorker) => {
      const p = slot.inFlight.get(m.id);
      if (!p) return;
      slot.inFlight.delete(m.id);
      this.inFlight--;
      if (slot.inFlight.size === 0) worker.unref();
      if ('der' in m) p.resolve(Buffer.from(m.der.buffer, m.der.byteOffset, m.der.byteLength));
      else p.reject(new CaError(m.error.reason, m.error.message, m.error.grpcCode));
    });
    const lost = (why: string): void => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return;
      this.slots.splice(i, 1);
      for (const p of slot.inFlight.values()) p.reject(new CaError('signing_error', 'the signing worker stopped', INTERNAL));
      this.inFlight -= slot.inFlight.size;
      slot.inFlight.clear();
      if (!this.closed) this.opts.log.error({ why }, 'a CA signing worker stopped; it is replaced on the next request');
    };
    worker.on('error', (err: Error) => lost(err.message));
    worker.on('exit', (code: number) => lost(`exit code ${code}`));
    if (this.issuer) worker.postMessage({ type: 'issuer', issuer: this.issuer } satisfies ToWorker);
    this.slots.push(slot);
    return slot;
  }

  /** The CA that signs from now on (every worker gets it before any later job). */
  setIssuer(issuer: Issuer): void {
    this.issuer = { subjectDer: issuer.subjectDer, keyId: issuer.keyId, key: issuer.key, hash: issuer.hash, algorithmDer: issuer.algorithmDer };
    for (const s of this.slots) s.worker.postMessage({ type: 'issuer', issuer: this.issuer } satisfies ToWorker);
  }

  /** Requests queued or running now. */
  get pending(): number {
    return this.inFlight;
  }

  /** Issues `job` on a worker: the leaf (DER), or a CaError as issueFromCsr throws it (or `ca_busy`). */
  issue(job: IssueJob): Promise<Buffer> {
    if (this.closed) return Promise.reject(new CaError('ca_not_ready', 'the CA is shutting down', 14));
    if (this.inFlight >= this.opts.maxQueue) {
      return Promise.reject(new CaError('ca_busy', `the CA is busy: ${this.inFlight} certificate requests in flight; retry later`, RESOURCE_EXHAUSTED));
    }
    while (this.slots.length < this.opts.workers) this.spawn();
    let slot = this.slots[0] as Slot;
    for (const s of this.slots) if (s.inFlight.size < slot.inFlight.size) slot = s;
    const id = this.nextId++;
    this.inFlight++;
    return new Promise<Buffer>((resolve, reject) => {
      // A worker with work keeps the process alive until it answers; an idle one does not.
      if (slot.inFlight.size === 0) slot.worker.ref();
      slot.inFlight.set(id, { resolve, reject });
      slot.worker.postMessage({ type: 'job', id, job } satisfies ToWorker);
    });
  }

  /** Stops the workers; requests still in flight are refused. */
  async close(): Promise<void> {
    this.closed = true;
    const slots = this.slots.splice(0);
    for (const s of slots) {
      for (const p of s.inFlight.values()) p.reject(new CaError('ca_not_ready', 'the CA is shutting down', 14));
      s.inFlight.clear();
    }
    this.inFlight = 0;
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}
