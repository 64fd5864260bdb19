/**
 * The narrow interfaces between meshd's CA parts: roots and signing (the authority), the gRPC
 * certificate service, and the authenticators that prove who a caller is. Each side depends only
 * on these, so tests fake them cheaply (as Istio's CertificateAuthority interface allows).
 */

/** What the caller proved about itself. */
export interface Caller {
  /** SPIFFE identities, e.g. `spiffe://cluster.local/ns/default/sa/reviews`. */
  identities: readonly string[];
  /** How it was proved: `kubernetes-token`, `jwt`, `mtls`. */
  via: string;
}

/** Why a request was refused: a stable reason for metrics plus a message for the caller. */
export class CaError extends Error {
  constructor(
    /** e.g. `csr_parse_error`, `key_type`, `id_mismatch`, `authentication_failure`, `ttl_error`, `signing_error`. */
    readonly reason: string,
    message: string,
    /** gRPC status to answer with. */
    readonly grpcCode: number,
  ) {
    super(message);
  }
}

export interface SignRequest {
  /** PEM PKCS#10 certificate signing request (RSA 2048/3072/4096 with 65537 <= e < 2^31, or ECDSA P-256/P-384). The authority verifies it. */
  csrPem: string;
  /** The identities to put in the URI SAN: exactly those the caller proved. */
  identities: readonly string[];
  /** DNS names for the SAN: only for meshd's own serving certificate (15012), never from a caller. */
  dnsNames?: readonly string[];
  /** Requested lifetime; capped at the authority's maximum. */
  ttlSeconds: number;
  /** Defaults to now. */
  now?: Date;
}

export interface SignedCertificate {
  /** Leaf first, then intermediates, ending with the root (Istio's cert_chain order). */
  certChainPem: string[];
}

/** Roots and signing. */
export interface CertificateAuthority {
  /** Verifies the CSR (structure, key, self-signature: the certificate service does not) and signs. */
  sign(req: SignRequest): Promise<SignedCertificate>;
  /** Every root workloads must trust now (during a rotation, old and new). */
  rootBundlePem(): string;
  /** The trust domain in issued SPIFFE IDs (default `cluster.local`). */
  readonly trustDomain: string;
}

/** Proves who a caller is from the request's metadata and connection. */
export interface Authenticator {
  readonly name: string;
  /** undefined: this authenticator does not apply (e.g. no bearer token); throws CaError when it applies and fails. */
  authenticate(ctx: { metadata: Readonly<Record<string, readonly string[]>>; peerCertificatePem?: string }): Promise<Caller | undefined>;
}
