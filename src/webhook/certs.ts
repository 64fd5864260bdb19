/**
 * The webhook's serving certificate. Today meshd makes its own at start: a self-signed CA and a
 * serving certificate for istiod's service names, whose CA the webhook configurations carry as
 * `caBundle`. The server only sees `ServingCertificate`, so a certificate issued by meshd's CA
 * can take its place later without touching the server.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface ServingCertificate {
  /** Leaf first, then intermediates (PEM). */
  certChainPem: string;
  keyPem: string;
  /** What API servers must trust: the webhook configurations' `caBundle` (PEM; base64 it there). */
  caBundlePem: string;
}

/** `istiod.istio-system.svc`, `istiod.istio-system.svc.cluster.local`, `istiod.istio-system`, `istiod`. */
export function webhookDnsNames(service = 'istiod', namespace = 'istio-system', domain = 'cluster.local'): string[] {
  return [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.${domain}`, `${service}.${namespace}`, service];
}

export interface SelfSignedOptions {
  dnsNames: readonly string[];
  /** Defaults to the current time. */
  now?: Date;
  /** Serving certificate lifetime; the CA lives 10 years (Istio's self-signed root). */
  validityDays?: number;
}

function rsaKey(): { priv: forge.pki.rsa.PrivateKey; pub: forge.pki.PublicKey; pem: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const priv = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  return { priv, pub: forge.pki.rsa.setPublicKey(priv.n, priv.e), pem };
}

function certificate(pub: forge.pki.PublicKey, cn: string, notBefore: Date, days: number): forge.pki.Certificate {
  const c = forge.pki.createCertificate();
  c.publicKey = pub;
  c.serialNumber = `01${randomBytes(15).toString('hex')}`; // positive, 128 bits of randomness
  c.validity.notBefore = new Date(notBefore.getTime() - 5 * 60_000); // tolerate clock skew
  c.validity.notAfter = new Date(notBefore.getTime() + days * 86_400_000);
  c.setSubject([
    { name: 'organizationName', value: 'meshd' },
    { name: 'commonName', value: cn },
  ]);
  return c;
}

/** A CA for webhook serving certificates: PEM certificate and PKCS#8 key. */
export interface WebhookCa {
  certPem: string;
  keyPem: string;
}

/** A fresh self-signed webhook CA (10 years, as Istio's self-signed root). */
export function createWebhookCa(now: Date = new Date()): WebhookCa {
  const ca = rsaKey();
  const caCert = certificate(ca.pub, 'meshd webhook CA', now, 3650);
  caCert.setIssuer(caCert.subject.attributes);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  caCert.sign(ca.priv, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(caCert), keyPem: ca.pem };
}

/** A serving certificate for `dnsNames`, signed by `ca`. */
export function servingCertificateFrom(ca: WebhookCa, o: SelfSignedOptions): ServingCertificate {
  if (o.dnsNames.length === 0) throw new Error('a serving certificate needs at least one DNS name');
  const now = o.now ?? new Date();
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const leaf = rsaKey();
  const cert = certificate(leaf.pub, o.dnsNames[0] as string, now, o.validityDays ?? 365);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    // Picks the right CA when a trust bundle holds several of the same name (after a restart).
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
    { name: 'subjectAltName', altNames: o.dnsNames.map((value) => ({ type: 2, value })) },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certChainPem: forge.pki.certificateToPem(cert), keyPem: leaf.pem, caBundlePem: ca.certPem };
}

/** A fresh CA and a serving certificate it signed for `dnsNames`. */
export function selfSignedServingCertificate(o: SelfSignedOptions): ServingCertificate {
  return servingCertificateFrom(createWebhookCa(o.now ?? new Date()), o);
}
