/**
 * The CPU-bound part of issuing a workload certificate: parse and verify the CSR (csr.ts), then
 * build and sign the leaf (sign.ts). The authority runs it inline or hands it to its signing
 * workers (sign-pool.ts); both run exactly this function, so they issue the same certificates and
 * refuse with the same CaErrors.
 */
import { parseCsr } from './csr';
import { type Issuer, issueLeaf } from './sign';
import { CaError } from './types';

const INTERNAL = 13;

/** One certificate to issue; plain data, so it can be posted to a worker thread. */
export interface IssueJob {
  csrPem: string;
  /** URI SANs, in order. */
  uris: readonly string[];
  /** DNS SANs (meshd's own serving certificate only). */
  dnsNames?: readonly string[];
  /** Validity, epoch milliseconds. */
  notBefore: number;
  notAfter: number;
}

/** The leaf certificate (DER) for `job`, signed by `issuer`. Throws CaError (csr_parse_error, key_type, signing_error). */
export function issueFromCsr(issuer: Issuer, job: IssueJob): Buffer {
  const csr = parseCsr(job.csrPem);
  try {
    return issueLeaf(issuer, { spki: csr.spki, uris: job.uris, dnsNames: job.dnsNames, notBefore: new Date(job.notBefore), notAfter: new Date(job.notAfter) });
  } catch {
    // Never the error itself: it could name key material.
    throw new CaError('signing_error', 'signing the certificate failed', INTERNAL);
  }
}
