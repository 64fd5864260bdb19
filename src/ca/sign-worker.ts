/**
 * A signing process of sign-pool.ts: keeps the issuer it was last sent and runs issueFromCsr for
 * each job of a batch, in order, answering the batch with one message. Replies carry the
 * certificate or the CaError's fields; any other error becomes a generic signing_error (its text
 * could name key material). It exits when its IPC channel closes (the pool closed, or meshd died).
 */
import { createPrivateKey } from 'node:crypto';
import { type IssueJob, issueFromCsr } from './issue';
import type { FromWorker, IssuerMessage, JobResult, ToWorker } from './sign-pool';
import type { Issuer } from './sign';
import { CaError } from './types';

const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

function issuerOf(m: IssuerMessage): Issuer {
  return {
    subjectDer: buf(m.subjectDer),
    keyId: buf(m.keyId),
    key: createPrivateKey({ key: buf(m.keyPkcs8), format: 'der', type: 'pkcs8' }),
    hash: m.hash,
    algorithmDer: buf(m.algorithmDer),
  };
}

function run(issuer: Issuer | undefined, id: number, job: IssueJob): JobResult {
  try {
    if (!issuer) throw new CaError('ca_not_ready', 'the signing process has no CA yet', 14);
    return { id, der: issueFromCsr(issuer, job) };
  } catch (err) {
    const e = err instanceof CaError ? err : new CaError('signing_error', 'signing the certificate failed', 13);
    return { id, error: { reason: e.reason, message: e.message, grpcCode: e.grpcCode } };
  }
}

function serve(send: (m: FromWorker) => void): void {
  let issuer: Issuer | undefined;
  process.on('message', (m: ToWorker) => {
    if (m.type === 'issuer') issuer = issuerOf(m.issuer);
    else send({ type: 'results', results: m.jobs.map((j) => run(issuer, j.id, j.job)) });
  });
  process.on('disconnect', () => process.exit(0));
}

if (require.main === module && process.send) {
  const send = process.send.bind(process);
  serve((m) => send(m));
}
