/**
 * CA material as istiod keeps it (`cacerts` / `istio-ca-secret` keys) and what the authority
 * makes of it: a checked signing CA, the chain to append to every leaf, and the trust bundle.
 * Also the self-signed root (node-forge, RSA, subject O=<trust domain>, 10 years by default)
 * and the rotation arithmetic.
 */
import { X509Certificate, createHash, createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { TAG, children, oidToString, parseOne, pemBlocks, toPem } from './der';
import { type Issuer, OID, randomSerial, signatureAlgorithm } from './sign';

/** The four files of `cacerts` and `istio-ca-secret`. */
export interface RootMaterial {
  /** `ca-cert.pem`: the certificate that signs workload certificates. */
  caCertPem: string;
  /** `ca-key.pem`: its private key (PKCS#1, PKCS#8 or SEC1 PEM). */
  caKeyPem: string;
  /** `root-cert.pem`: the root(s) workloads trust. Empty in istiod's self-signed secret: then ca-cert.pem. */
  rootCertPem: string;
  /** `cert-chain.pem`: ca-cert.pem's chain up to (optionally including) the root; empty for a self-signed root. */
  certChainPem: string;
}

export const MATERIAL_FILES = Object.freeze({
  caCertPem: 'ca-cert.pem',
  caKeyPem: 'ca-key.pem',
  rootCertPem: 'root-cert.pem',
  certChainPem: 'cert-chain.pem',
} as const);

/** Bad CA material. Messages name files and problems, never their contents. */
export class RootMaterialError extends Error {}

/** A CA ready to sign: issuer fields, the chain after the leaf, and the trust bundle. */
export interface SigningCa {
  issuer: Issuer;
  cert: X509Certificate;
  notAfter: Date;
  /** After the leaf: ca-cert.pem and intermediates (unless ca-cert.pem is the root itself), then the root. */
  chainPem: string[];
  /** Every root in root-cert.pem. */
  roots: X509Certificate[];
  /** Whether ca-cert.pem is itself a root in the bundle (self-signed mode). */
  selfSigned: boolean;
}

export function certsFromPem(text: string): X509Certificate[] {
  return pemBlocks(text, 'CERTIFICATE').map((der) => new X509Certificate(der));
}

const isSelfSigned = (c: X509Certificate): boolean => c.checkIssued(c) && c.verify(c.publicKey);
const issued = (parent: X509Certificate, child: X509Certificate): boolean => child.checkIssued(parent) && child.verify(parent.publicKey);

/** Subject Name DER and subject key identifier (the extension, else RFC 5280's SHA-1 of the key). */
export function subjectAndKeyId(cert: X509Certificate): { subjectDer: Buffer; keyId: Buffer } {
  const tbs = children(children(parseOne(cert.raw, TAG.SEQUENCE).value)[0]?.value ?? Buffer.alloc(0));
  const off = tbs[0]?.tag === 0xa0 ? 1 : 0;
  const subject = tbs[off + 4];
  const spki = tbs[off + 5];
  if (!subject || !spki) throw new RootMaterialError('malformed CA certificate');
  let keyId: Buffer | undefined;
  const extsTlv = tbs.slice(off + 6).find((t) => t.tag === 0xa3);
  const exts = extsTlv ? children(children(extsTlv.value)[0]?.value ?? Buffer.alloc(0)) : [];
  for (const e of exts) {
    const parts = children(e.value);
    if (parts[0] && oidToString(parts[0].value) === OID.subjectKeyId) {
      const inner = parts[parts.length - 1];
      if (inner) keyId = Buffer.from(parseOne(inner.value, TAG.OCTET_STRING).value);
    }
  }
  if (!keyId) {
    const bitString = children(spki.value)[1];
    keyId = createHash('sha1')
      .update(bitString ? bitString.value.subarray(1) : spki.raw)
      .digest();
  }
  return { subjectDer: Buffer.from(subject.raw), keyId };
}

function privateKey(pem: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch {
    throw new RootMaterialError(`${MATERIAL_FILES.caKeyPem} is not a readable private key`);
  }
}

/** Checks material and turns it into a signing CA. Throws RootMaterialError. */
export function loadSigningCa(m: RootMaterial): SigningCa {
  let caCerts: X509Certificate[], rootsIn: X509Certificate[], chainIn: X509Certificate[];
  try {
    caCerts = certsFromPem(m.caCertPem);
    rootsIn = certsFromPem(m.rootCertPem);
    chainIn = certsFromPem(m.certChainPem);
  } catch {
    throw new RootMaterialError('a certificate in the CA material cannot be parsed');
  }
  const cert = caCerts[0];
  if (!cert) throw new RootMaterialError(`${MATERIAL_FILES.caCertPem} holds no certificate`);
  if (!cert.ca) throw new RootMaterialError(`${MATERIAL_FILES.caCertPem} is not a CA certificate (basicConstraints CA:TRUE)`);
  const key = privateKey(m.caKeyPem);
  if (!cert.checkPrivateKey(key)) throw new RootMaterialError(`${MATERIAL_FILES.caKeyPem} does not match ${MATERIAL_FILES.caCertPem}`);
  const alg = signatureAlgorithm(key);
  if (!alg) throw new RootMaterialError(`${MATERIAL_FILES.caKeyPem}: unsupported CA key (use RSA, or ECDSA P-256/P-384)`);

  const roots = rootsIn.length > 0 ? rootsIn : isSelfSigned(cert) ? [cert] : [];
  if (roots.length === 0) throw new RootMaterialError(`${MATERIAL_FILES.rootCertPem} holds no certificate`);
  const selfSigned = roots.some((r) => r.fingerprint256 === cert.fingerprint256);

  const chain: X509Certificate[] = [];
  let root: X509Certificate | undefined;
  if (selfSigned) {
    root = cert;
  } else {
    // ca-cert.pem, then cert-chain.pem's intermediates (without ca-cert.pem and roots), each issuing the one before.
    chain.push(cert);
    for (const c of chainIn) {
      if (c.fingerprint256 === cert.fingerprint256 || isSelfSigned(c)) continue;
      chain.push(c);
    }
    for (let i = 1; i < chain.length; i++) {
      if (!issued(chain[i] as X509Certificate, chain[i - 1] as X509Certificate)) {
        throw new RootMaterialError(`${MATERIAL_FILES.certChainPem}: certificate ${i} does not issue the one before it`);
      }
    }
    const top = chain[chain.length - 1] as X509Certificate;
    root = roots.find((r) => issued(r, top));
    if (!root) throw new RootMaterialError(`${MATERIAL_FILES.caCertPem} does not chain to a root in ${MATERIAL_FILES.rootCertPem}`);
  }
  const { subjectDer, keyId } = subjectAndKeyId(cert);
  return {
    issuer: { subjectDer, keyId, key, hash: alg.hash, algorithmDer: alg.algorithmDer },
    cert,
    notAfter: new Date(cert.validTo),
    chainPem: [...chain, root].map((c) => c.toString()),
    roots,
    selfSigned,
  };
}

export interface SelfSignedRootOptions {
  trustDomain: string;
  now: Date;
  ttlMs: number;
  /** RSA modulus; istiod's default 2048. */
  keySize?: number;
  /** notBefore is this far in the past. */
  backdateMs?: number;
}

/** A fresh self-signed root as istiod makes it: RSA, subject O=<trust domain>, CA:TRUE. */
export function generateSelfSignedRoot(o: SelfSignedRootOptions): { certPem: string; keyPem: string } {
  const { privateKey: key } = generateKeyPairSync('rsa', { modulusLength: o.keySize ?? 2048 });
  const keyPem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  const priv = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const c = forge.pki.createCertificate();
  c.publicKey = forge.pki.rsa.setPublicKey(priv.n, priv.e);
  const serial = randomSerial();
  c.serialNumber = ((serial[0] as number) & 0x80 ? '00' : '') + serial.toString('hex');
  c.validity.notBefore = new Date(o.now.getTime() - (o.backdateMs ?? 0));
  c.validity.notAfter = new Date(o.now.getTime() + o.ttlMs);
  const name = [{ name: 'organizationName', value: o.trustDomain }];
  c.setSubject(name);
  c.setIssuer(name);
  c.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  c.sign(priv, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(c), keyPem };
}

/** Whether a root has passed the rotation point: less than `gracePercent` of its lifetime left. */
export function rotationDue(root: X509Certificate, now: Date, gracePercent: number): boolean {
  const from = Date.parse(root.validFrom);
  const to = Date.parse(root.validTo);
  return now.getTime() >= to - ((to - from) * gracePercent) / 100;
}

/**
 * The self-signed trust bundle at `now`: the current root first, then earlier roots still inside
 * the overlap window (which starts when the current root was made) and not expired.
 */
export function selfSignedBundle(current: X509Certificate, bundle: readonly X509Certificate[], now: Date, overlapMs: number): X509Certificate[] {
  const overlapEnd = Date.parse(current.validFrom) + overlapMs;
  const t = now.getTime();
  const older = bundle.filter((c) => c.fingerprint256 !== current.fingerprint256 && t < overlapEnd && t < Date.parse(c.validTo));
  return [current, ...older];
}

export const pemOf = (certs: readonly X509Certificate[]): string => certs.map((c) => c.toString()).join('');

/** Canonical PEM of one DER certificate (used by tests and tools). */
export const certPem = (der: Buffer): string => toPem('CERTIFICATE', der);
