/**
 * The TLS side of port 15012: istiod's own serving certificate, issued by meshd's CA for istiod's
 * names (`istiod.<ns>.svc`, …) with a fresh P-256 key, and re-issued at half its lifetime (as
 * istiod renews), handed to the 15012 listener (secure-port.ts) as a CertificateProvider so new
 * connections get the new certificate without a restart. Client certificates are requested (for
 * renewal over mTLS) but not required; the certificate service checks them against the CA's
 * roots itself.
 */
import { X509Certificate, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { bits, ctx, octets, oid, seq, tlv, toPem, uint } from './der';
import type { CertificateAuthority } from './types';

type CertificateProvider = grpc.experimental.CertificateProvider;
type CaCertificateUpdateListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityCertificateUpdate = grpc.experimental.IdentityCertificateUpdate;
type IdentityCertificateUpdateListener = grpc.experimental.IdentityCertificateUpdateListener;

/** istiod's serving names in `namespace` (its Service `istiod`, and the legacy `istio-pilot`). */
export function istiodDnsNames(namespace: string, domain: string, revision?: string): string[] {
  // As istiod: a revision other than default also answers as its own Service, istiod-<rev>.
  const services = ['istiod', 'istio-pilot', ...(revision && revision !== 'default' ? [`istiod-${revision}`] : [])];
  return services.flatMap((svc) => [`${svc}.${namespace}.svc`, `${svc}.${namespace}.svc.${domain}`]);
}

/** A P-256 key and a CSR for `uris` and `dnsNames` (DER written here, signed with Node's crypto). */
export function keyAndCsr(uris: readonly string[], dnsNames: readonly string[]): { keyPem: string; csrPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const names = seq(...uris.map((u) => ctx(6, false, Buffer.from(u, 'ascii'))), ...dnsNames.map((d) => ctx(2, false, Buffer.from(d, 'ascii'))));
  const extensionRequest = seq(oid('1.2.840.113549.1.9.14'), tlv(0x31, seq(seq(oid('2.5.29.17'), octets(names)))));
  const info = seq(uint(Buffer.from([0])), seq(), spki, ctx(0, true, extensionRequest));
  const csr = seq(info, seq(oid('1.2.840.10045.4.3.2')), bits(cryptoSign('sha256', info, privateKey)));
  return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), csrPem: toPem('CERTIFICATE REQUEST', csr) };
}

export interface ServingCertificateOptions {
  ca: CertificateAuthority;
  dnsNames: readonly string[];
  /** The SPIFFE identity in the certificate (istiod's service account). */
  identity: string;
  /** Lifetime asked for; default 24 h. Re-issued at half of the lifetime actually granted. */
  ttlSeconds?: number;
  log: Logger;
  /** First retry delay after a failed issuance (doubles, at most 30 s); default 1 s. */
  retryMs?: number;
}

/**
 * Keeps a serving certificate from the CA and feeds it (and the CA's roots, for requesting client
 * certificates) to grpc-js.
 */
export class ServingCertificate implements CertificateProvider {
  private identity: IdentityCertificateUpdate | undefined;
  private chain: string[] = [];
  private roots = '';
  private readonly caListeners = new Set<CaCertificateUpdateListener>();
  private readonly idListeners = new Set<IdentityCertificateUpdateListener>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private issuedCount = 0;
  private issuedAt = 0;

  constructor(private readonly opts: ServingCertificateOptions) {}

  /** Issues the first certificate (retrying until the CA can sign) and schedules renewals. */
  async start(): Promise<void> {
    let delay = this.opts.retryMs ?? 1000;
    while (!this.closed) {
      try {
        this.schedule(await this.issue());
        return;
      } catch (err) {
        this.opts.log.warn({ error: err instanceof Error ? err.message : String(err), retryMs: delay }, 'serving certificate not issued yet; retrying');
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 30_000);
      }
    }
  }

  private async issue(): Promise<X509Certificate> {
    const { ca, dnsNames, identity } = this.opts;
    const { keyPem, csrPem } = keyAndCsr([identity], dnsNames);
    const signed = await ca.sign({ csrPem, identities: [identity], dnsNames, ttlSeconds: this.opts.ttlSeconds ?? 24 * 3600 });
    const leaf = new X509Certificate(signed.certChainPem[0] as string);
    this.issuedAt = Date.now();
    this.chain = signed.certChainPem;
    // Serve the leaf and its intermediates (not the root: clients have it).
    const served = signed.certChainPem.length > 1 ? signed.certChainPem.slice(0, -1) : signed.certChainPem;
    this.identity = { certificate: Buffer.from(served.join('')), privateKey: Buffer.from(keyPem) };
    this.issuedCount++;
    this.opts.log.info({ dnsNames, identity, notAfter: new Date(leaf.validTo).toISOString(), serial: leaf.serialNumber }, 'serving certificate issued');
    for (const l of this.idListeners) l(this.identity);
    this.refreshRoots();
    return leaf;
  }

  /** Renews at half of the lifetime left when it was issued (notBefore is backdated for clock skew). */
  private schedule(leaf: X509Certificate): void {
    if (this.closed) return;
    const from = Math.max(new Date(leaf.validFrom).getTime(), this.issuedAt);
    const to = new Date(leaf.validTo).getTime();
    const at = from + (to - from) / 2;
    this.timer = setTimeout(() => void this.renew(), Math.max(1000, Math.min(at - Date.now(), 2 ** 31 - 1)));
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    this.timer = undefined;
    try {
      this.schedule(await this.issue());
    } catch (err) {
      this.opts.log.error({ error: err instanceof Error ? err.message : String(err) }, 'serving certificate renewal failed; retrying in 30 s');
      if (!this.closed) {
        this.timer = setTimeout(() => void this.renew(), 30_000);
        this.timer.unref();
      }
    }
  }

  /**
   * Re-reads the CA's root bundle (call when it changes). TLS verifies client certificates
   * against it (plus the CA's intermediates, for clients that send only their leaf) for
   * `getAuthContext()`; the certificate service checks every presented certificate itself.
   */
  refreshRoots(): void {
    const bundle = this.opts.ca.rootBundlePem();
    if (!bundle) return;
    const roots = bundle + this.chain.slice(1, -1).join('');
    if (roots === this.roots) return;
    this.roots = roots;
    for (const l of this.caListeners) l({ caCertificate: Buffer.from(roots) });
  }

  /** The chain of the current certificate (leaf … root), e.g. for its intermediates. */
  certChainPem(): readonly string[] {
    return this.chain;
  }

  /** How many certificates were issued so far. */
  issued(): number {
    return this.issuedCount;
  }

  /** grpc-js server credentials that follow this provider (they show handlers only client certificates TLS verified). */
  credentials(): grpc.ServerCredentials {
    // grpc-js names these arguments the other way round; this object provides both.
    return grpc.experimental.createCertificateProviderServerCredentials(this, this, false);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  addCaCertificateListener(l: CaCertificateUpdateListener): void {
    this.caListeners.add(l);
    // Asynchronously: grpc-js subscribes before it registers the watcher that applies updates.
    queueMicrotask(() => {
      if (this.roots && this.caListeners.has(l)) l({ caCertificate: Buffer.from(this.roots) });
    });
  }
  removeCaCertificateListener(l: CaCertificateUpdateListener): void {
    this.caListeners.delete(l);
  }
  addIdentityCertificateListener(l: IdentityCertificateUpdateListener): void {
    this.idListeners.add(l);
    queueMicrotask(() => {
      if (this.identity && this.idListeners.has(l)) l(this.identity);
    });
  }
  removeIdentityCertificateListener(l: IdentityCertificateUpdateListener): void {
    this.idListeners.delete(l);
  }
}
