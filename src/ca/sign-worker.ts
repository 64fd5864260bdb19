/**
 * A signing worker thread of sign-pool.ts: keeps the issuer it was last sent and runs
 * issueFromCsr for each job, in order. Replies carry the certificate or the CaError's fields; any
 * other error becomes a generic signing_error (its text could name key material).
 */
import { type MessagePort, parentPort } from 'node:worker_threads';
import { type IssueJob, issueFromCsr } from './issue';
import type { FromWorker, IssuerMessage, ToWorker } from './sign-pool';
import type { Issuer } from './sign';
import { CaError } from './types';

const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

function issuerOf(m: IssuerMessage): Issuer {
  return { subjectDer: buf(m.subjectDer), keyId: buf(m.keyId), key: m.key, hash: m.hash, algorithmDer: buf(m.algorithmDer) };
}

/** The reply for one job, and what to transfer with it (the certificate's own buffer, not a copy of a shared pool slab). */
function run(issuer: Issuer | undefined, id: number, job: IssueJob): [FromWorker, ArrayBuffer[]] {
  try {
    if (!issuer) throw new CaError('ca_not_ready', 'the signing worker has no CA yet', 14);
    const der = new Uint8Array(issueFromCsr(issuer, job));
    return [{ id, der }, [der.buffer]];
  } catch (err) {
    const e = err instanceof CaError ? err : new CaError('signing_error', 'signing the certificate failed', 13);
    return [{ id, error: { reason: e.reason, message: e.message, grpcCode: e.grpcCode } }, []];
  }
}

function serve(port: MessagePort): void {
  let issuer: Issuer | undefined;
  port.on('message', (m: ToWorker) => {
    if (m.type === 'issuer') issuer = issuerOf(m.issuer);
    else port.postMessage(...run(issuer, m.id, m.job));
  });
}

if (parentPort) serve(parentPort);
