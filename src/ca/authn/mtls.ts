/**
 * Istio's ClientCertAuthenticator, for renewal: a workload certificate presented over TLS (port
 * 15012). The TLS handshake proves the caller holds its key; here the certificate must be valid
 * now, be a leaf usable for client auth, and chain (through the CA's intermediates) to one of the
 * CA's current roots. The identity is its SPIFFE URI SAN in the mesh's trust domain. Refusals say
 * why: `expired_certificate`, `untrusted_certificate` (another CA), `invalid_certificate` (the rest).
 */
import { X509Certificate } from 'node:crypto';
import type { Authenticator, Caller } from '../types';
import { type AuthnContext, parseSpiffeId, unauthenticated } from './common';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const MAX_DEPTH = 5;

export interface MtlsAuthenticatorOptions {
  trustDomain: string;
  /** PEM roots that client certificates must chain to (the CA's current bundle). */
  roots(): string;
  /** PEM intermediates between the roots and workload certificates (plug-in CA), if any. */
  intermediates?(): string;
  now?(): Date;
}

export function splitPemCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
}

function certificates(pem: string | undefined): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const block of splitPemCertificates(pem ?? '')) {
    try {
      out.push(new X509Certificate(block));
    } catch {
      // An unreadable certificate in a bundle is skipped; it cannot be an issuer.
    }
  }
  return out;
}

function validAt(c: X509Certificate, now: Date): boolean {
  return new Date(c.validFrom) <= now && now <= new Date(c.validTo);
}

/** The URI SANs of a certificate (Node prints them as `URI:<uri>`, quoted when they need escaping). */
export function uriSans(c: X509Certificate): string[] {
  const out: string[] = [];
  for (const part of (c.subjectAltName ?? '').split(', ')) {
    if (part.startsWith('URI:')) out.push(part.slice(4));
  }
  return out;
}

export class MtlsAuthenticator implements Authenticator {
  readonly name = 'mtls';

  constructor(private readonly opts: MtlsAuthenticatorOptions) {}

  async authenticate(ctx: AuthnContext): Promise<Caller | undefined> {
    if (!ctx.peerCertificatePem) return undefined;
    const now = this.opts.now?.() ?? new Date();
    let leaf: X509Certificate;
    try {
      leaf = new X509Certificate(ctx.peerCertificatePem);
    } catch {
      throw unauthenticated('invalid_certificate', `${this.name}: the client certificate cannot be parsed`);
    }
    if (now > new Date(leaf.validTo)) throw unauthenticated('expired_certificate', `${this.name}: the client certificate expired at ${new Date(leaf.validTo).toISOString()}`);
    if (now < new Date(leaf.validFrom))
      throw unauthenticated('invalid_certificate', `${this.name}: the client certificate is not valid before ${new Date(leaf.validFrom).toISOString()}`);
    if (leaf.ca) throw unauthenticated('invalid_certificate', `${this.name}: the client certificate is a CA certificate, not a workload certificate`);
    if (leaf.keyUsage && !leaf.keyUsage.includes(CLIENT_AUTH))
      throw unauthenticated('invalid_certificate', `${this.name}: the client certificate is not for client authentication`);
    if (!this.chainsToRoot(leaf, now)) throw unauthenticated('untrusted_certificate', `${this.name}: the client certificate does not chain to the mesh's root certificate`);
    const prefix = `spiffe://${this.opts.trustDomain}/`;
    const identities = uriSans(leaf).filter((u) => u.startsWith(prefix) && parseSpiffeId(u));
    if (identities.length === 0)
      throw unauthenticated('invalid_certificate', `${this.name}: the client certificate has no SPIFFE identity in trust domain ${this.opts.trustDomain}`);
    return { identities, via: this.name };
  }

  private chainsToRoot(leaf: X509Certificate, now: Date): boolean {
    const roots = certificates(this.opts.roots()).filter((r) => validAt(r, now));
    const intermediates = certificates(this.opts.intermediates?.()).filter((c) => c.ca && validAt(c, now));
    const issues = (issuer: X509Certificate, c: X509Certificate): boolean => c.checkIssued(issuer) && c.verify(issuer.publicKey);
    let current = leaf;
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      if (roots.some((r) => issues(r, current))) return true;
      const next = intermediates.find((i) => i !== current && issues(i, current));
      if (!next) return false;
      current = next;
    }
    return false;
  }
}
