/**
 * A signing worker thread of sign-pool.ts: keeps the issuer it was last sent and runs
 * issueFromCsr for each job of a batch, in order, answering the batch with one message (each
 * certificate in a buffer of its own, transferred rather than copied). Replies carry the
 * certificate or the CaError's fields; any other error becomes a generic signing_error (its text
 * could name key material).
 */
import { type MessagePort, parentPort } from 'node:worker_threads';
import { type IssueJob, issueFromCsr } from './issue';
import type { FromWorker, IssuerMessage, JobResult, ToWorker } from './sign-pool';
import type { Issuer } from './sign';
import { CaError } from './types';

const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

function issuerOf(m: IssuerMessage): Issuer {
  return { subjectDer: buf(m.subjectDer), keyId: buf(m.keyId), key: m.key, hash: m.hash, algorithmDer: buf(m.algorithmDer) };
}

function run(issuer: Issuer | undefined, id: number, job: IssueJob): JobResult {
  try {
    if (!issuer) throw new CaError('ca_not_ready', 'the signing worker has no CA yet', 14);
    // Its own buffer (not a slice of Node's shared pool), so it can be transferred.
    return { id, der: new Uint8Array(issueFromCsr(issuer, job)) };
  } catch (err) {
    const e = err instanceof CaError ? err : new CaError('signing_error', 'signing the certificate failed', 13);
    return { id, error: { reason: e.reason, message: e.message, grpcCode: e.grpcCode } };
  }
}

function serve(port: MessagePort): void {
  let issuer: Issuer | undefined;
  port.on('message', (m: ToWorker) => {
    if (m.type === 'issuer') {
      issuer = issuerOf(m.issuer);
      return;
    }
    const results = m.jobs.map((j) => run(issuer, j.id, j.job));
    const transfer = results.flatMap((r) => (r.der ? [r.der.buffer as ArrayBuffer] : []));
    port.postMessage({ type: 'results', results } satisfies FromWorker, transfer);
  });
  port.postMessage({ type: 'ready' } satisfies FromWorker);
}

if (parentPort) serve(parentPort);
