/**
 * The workload certificate's life cycle, as istio-agent's secret manager runs it: a fresh key and
 * CSR, a signed chain from the CA, and a renewal when half the certificate's lifetime is left
 * (SECRET_GRACE_PERIOD_RATIO 0.5, with a small jitter). A failed request is retried with
 * exponential backoff while the current certificate stays in use; it is replaced only by a new
 * one that checks out: the leaf holds the key we made and exactly our SPIFFE ID, and it chains
 * through the returned intermediates to a configured root (verify-chain.ts).
 */
import { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { type KeyType, generateKeyAndCsr, keyMatchesCert } from './csr';
import { parseRoots, pemBlocks, verifyChain } from './verify-chain';

/** One issued certificate and its key. `keyPem` is secret: never log this object whole. */
export interface WorkloadCert {
  /** Increments with every rotation (the SDS version). */
  version: number;
  /** The CA's chain, leaf first, root last. */
  chainPem: readonly string[];
  /** The chain as one PEM file (cert-chain.pem). */
  certChainPem: string;
  keyPem: string;
  /** The roots to trust (root-cert.pem, SDS ROOTCA): the configured bundle the chain was verified against. */
  rootPem: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  /** When it was received; the lifetime for renewal is counted from here, as istio-agent does. */
  receivedAt: Date;
}

/** What may be logged about a certificate. */
export function describeCert(c: WorkloadCert): Record<string, unknown> {
  return { version: c.version, serial: c.serialNumber, notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString() };
}

/** Signs a CSR: the CA client, or a fake in tests. */
export interface Signer {
  sign(call: { csrPem: string; ttlSeconds: number; clientCert?: { certChainPem: string; keyPem: string } }): Promise<string[]>;
}

export interface CertManagerOptions {
  signer: Signer;
  spiffeId: string;
  keyType: KeyType;
  /** Requested lifetime (default 24 h, Istio's SECRET_TTL). */
  ttlSeconds: number;
  /** Renew when this share of the lifetime is left (default 0.5). */
  graceRatio?: number;
  /** ± random share added to graceRatio, so replicas spread out (default 0.01; 0 in tests). */
  graceJitter?: number;
  /** First retry delay after a failure, doubling up to retryMaxMs (defaults 1 s, 30 s). */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /**
   * The configured roots (PEM bundle), read at every answer (the file follows the ConfigMap).
   * Every chain the CA returns must lead to one of them; without any, every answer is refused.
   */
  trustedRootsPem: () => string | undefined;
  log: Logger;
  now?: () => number;
  random?: () => number;
}

export type CertEvent =
  { type: 'rotated'; cert: WorkloadCert; previous?: WorkloadCert } | { type: 'failed'; error: string; attempt: number; retryInMs: number; keptVersion?: number };

/** The CA answered, but with a certificate the agent will not use. */
class RefusedAnswer extends Error {}

/** The URI SANs of a certificate. */
const uriSans = (x: X509Certificate): string[] =>
  (x.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((n) => n.startsWith('URI:'))
    .map((n) => n.slice(4));

export class CertManager {
  private cert?: WorkloadCert;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private attempt = 0;
  private readonly listeners = new Set<(e: CertEvent) => void>();
  private readonly waiters: Array<(c: WorkloadCert) => void> = [];
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly opts: CertManagerOptions) {
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
  }

  current(): WorkloadCert | undefined {
    return this.cert;
  }

  /** Subscribes to rotations and failures; returns the unsubscribe function. */
  on(fn: (e: CertEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Resolves with the first certificate (at once if there is one). */
  ready(): Promise<WorkloadCert> {
    if (this.cert) return Promise.resolve(this.cert);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  start(): void {
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Delay until the renewal of `c`: when (graceRatio ± jitter) of its lifetime is left. */
  renewDelayMs(c: WorkloadCert): number {
    const lifetime = c.notAfter.getTime() - c.receivedAt.getTime();
    const jitter = (this.opts.graceJitter ?? 0.01) * (2 * this.random() - 1);
    const grace = ((this.opts.graceRatio ?? 0.5) + jitter) * lifetime;
    return Math.max(0, c.notAfter.getTime() - grace - this.now());
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.renew();
    }, ms);
  }

  private emit(e: CertEvent): void {
    for (const fn of [...this.listeners]) {
      try {
        fn(e);
      } catch (err) {
        this.opts.log.error({ err: String(err) }, 'certificate listener failed');
      }
    }
  }

  private async renew(): Promise<void> {
    const { log } = this.opts;
    const previous = this.cert;
    try {
      const { keyPem, csrPem } = generateKeyAndCsr({ spiffeId: this.opts.spiffeId, keyType: this.opts.keyType });
      const chain = await this.opts.signer.sign({
        csrPem,
        ttlSeconds: this.opts.ttlSeconds,
        ...(previous ? { clientCert: { certChainPem: previous.certChainPem, keyPem: previous.keyPem } } : {}),
      });
      if (this.stopped) return;
      const cert = this.check(chain, keyPem, (previous?.version ?? 0) + 1);
      this.cert = cert;
      this.attempt = 0;
      log.info(
        { identity: this.opts.spiffeId, ...describeCert(cert), previousSerial: previous?.serialNumber },
        previous ? 'workload certificate rotated' : 'workload certificate issued',
      );
      this.emit({ type: 'rotated', cert, ...(previous ? { previous } : {}) });
      for (const w of this.waiters.splice(0)) w(cert);
      this.schedule(this.renewDelayMs(cert));
    } catch (err) {
      if (this.stopped) return;
      this.attempt++;
      const base = this.opts.retryInitialMs ?? 1000;
      const retryInMs = Math.min(this.opts.retryMaxMs ?? 30_000, base * 2 ** (this.attempt - 1));
      const error = err instanceof Error ? err.message : String(err);
      if (err instanceof RefusedAnswer) {
        log.error(
          { identity: this.opts.spiffeId, attempt: this.attempt, retryInMs, error, keptSerial: previous?.serialNumber },
          "refused the CA's certificate; keeping the current certificate and retrying",
        );
      } else {
        log.warn(
          { identity: this.opts.spiffeId, attempt: this.attempt, retryInMs, error, keptSerial: previous?.serialNumber },
          'certificate request failed; keeping the current certificate and retrying',
        );
      }
      this.emit({ type: 'failed', error, attempt: this.attempt, retryInMs, ...(previous ? { keptVersion: previous.version } : {}) });
      this.schedule(retryInMs);
    }
  }

  /**
   * Validates the CA's answer against what we asked for and what we trust. Errors say which check
   * failed and name certificates by subject and serial, never key material.
   */
  private check(chain: readonly string[], keyPem: string, version: number): WorkloadCert {
    // One element may hold several certificates; split them so every link is checked.
    const pems = chain.flatMap((p) => {
      const blocks = pemBlocks(p);
      return blocks.length > 0 ? blocks : [p.trim() + '\n'];
    });
    if (pems.length === 0) throw new RefusedAnswer('the CA returned no certificate');
    const certs = pems.map((p, i) => {
      try {
        return new X509Certificate(p);
      } catch {
        throw new RefusedAnswer(`the CA returned a ${i === 0 ? 'leaf' : `chain element ${i + 1}`} that is not a PEM certificate`);
      }
    });
    const leafPem = pems[0] as string;
    const leaf = certs[0] as X509Certificate;
    if (!keyMatchesCert(keyPem, leafPem)) throw new RefusedAnswer('the CA returned a certificate for another key');
    const uris = uriSans(leaf);
    if (uris.length !== 1 || uris[0] !== this.opts.spiffeId)
      throw new RefusedAnswer(`the CA returned a certificate without the identity ${this.opts.spiffeId} alone (SANs: ${leaf.subjectAltName ?? 'none'})`);
    const rootPem = this.opts.trustedRootsPem();
    if (!rootPem || !rootPem.trim()) throw new RefusedAnswer("no trusted root is configured (--ca-root-cert): the CA's chain cannot be verified");
    try {
      verifyChain(certs, parseRoots(rootPem), this.now());
    } catch (err) {
      throw new RefusedAnswer(`the CA's chain does not verify against the configured root (--ca-root-cert): ${(err as Error).message}`);
    }
    return {
      version,
      chainPem: pems,
      certChainPem: pems.join(''),
      keyPem,
      rootPem,
      serialNumber: leaf.serialNumber,
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
      receivedAt: new Date(this.now()),
    };
  }
}
