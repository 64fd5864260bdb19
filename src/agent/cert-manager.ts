/**
 * The workload certificate's life cycle, as istio-agent's secret manager runs it: a fresh key and
 * CSR, a signed chain from the CA, and a renewal when half the certificate's lifetime is left
 * (SECRET_GRACE_PERIOD_RATIO 0.5, with a small jitter). A failed request is retried with
 * exponential backoff while the current certificate stays in use; it is replaced only by a new
 * one that checks out (the leaf holds the key we made and our SPIFFE ID).
 */
import { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { type KeyType, generateKeyAndCsr, keyMatchesCert } from './csr';

/** One issued certificate and its key. `keyPem` is secret: never log this object whole. */
export interface WorkloadCert {
  /** Increments with every rotation (the SDS version). */
  version: number;
  /** The CA's chain, leaf first, root last. */
  chainPem: readonly string[];
  /** The chain as one PEM file (cert-chain.pem). */
  certChainPem: string;
  keyPem: string;
  /** The root to trust (root-cert.pem, SDS ROOTCA). */
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
  /** Root to trust when the CA's chain has a single certificate. */
  fallbackRootPem?: () => string | undefined;
  log: Logger;
  now?: () => number;
  random?: () => number;
}

export type CertEvent =
  | { type: 'rotated'; cert: WorkloadCert; previous?: WorkloadCert }
  | { type: 'failed'; error: string; attempt: number; retryInMs: number; keptVersion?: number };

const certMatchesIdentity = (x: X509Certificate, id: string): boolean => (x.subjectAltName ?? '').split(/,\s*/).includes(`URI:${id}`);

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
      log.info({ identity: this.opts.spiffeId, ...describeCert(cert), previousSerial: previous?.serialNumber }, previous ? 'workload certificate rotated' : 'workload certificate issued');
      this.emit({ type: 'rotated', cert, ...(previous ? { previous } : {}) });
      for (const w of this.waiters.splice(0)) w(cert);
      this.schedule(this.renewDelayMs(cert));
    } catch (err) {
      if (this.stopped) return;
      this.attempt++;
      const base = this.opts.retryInitialMs ?? 1000;
      const retryInMs = Math.min(this.opts.retryMaxMs ?? 30_000, base * 2 ** (this.attempt - 1));
      const error = err instanceof Error ? err.message : String(err);
      log.warn({ identity: this.opts.spiffeId, attempt: this.attempt, retryInMs, error, keptSerial: previous?.serialNumber }, 'certificate request failed; keeping the current certificate and retrying');
      this.emit({ type: 'failed', error, attempt: this.attempt, retryInMs, ...(previous ? { keptVersion: previous.version } : {}) });
      this.schedule(retryInMs);
    }
  }

  /** Validates the CA's answer against what we asked for. Errors name no key material. */
  private check(chain: readonly string[], keyPem: string, version: number): WorkloadCert {
    const pems = chain.map((p) => p.trim() + '\n');
    const leafPem = pems[0] as string;
    let leaf: X509Certificate;
    try {
      leaf = new X509Certificate(leafPem);
    } catch {
      throw new Error('the CA returned a leaf that is not a PEM certificate');
    }
    if (!keyMatchesCert(keyPem, leafPem)) throw new Error('the CA returned a certificate for another key');
    if (!certMatchesIdentity(leaf, this.opts.spiffeId)) throw new Error(`the CA returned a certificate without the identity ${this.opts.spiffeId} (SANs: ${leaf.subjectAltName ?? 'none'})`);
    const rootPem = pems.length > 1 ? (pems[pems.length - 1] as string) : this.opts.fallbackRootPem?.();
    if (!rootPem) throw new Error('the CA returned no root and none is configured (--ca-root-cert)');
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
