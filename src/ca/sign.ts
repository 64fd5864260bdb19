/**
 * Issues workload certificates as istiod does: the authenticated identities as URI SANs (critical,
 * since the subject is empty), key usage digitalSignature + keyEncipherment, ext key usage
 * serverAuth + clientAuth, basicConstraints CA:false (critical), the issuer's key identifier, a
 * random positive 128-bit serial. The TBSCertificate is written as DER here and signed with
 * Node's native crypto (RSA or ECDSA CA keys alike).
 */
import { type KeyObject, randomBytes, sign as cryptoSign } from 'node:crypto';
import { bits, bool, ctx, oid, octets, seq, time, tlv, uint } from './der';

export const OID = {
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  basicConstraints: '2.5.29.19',
  authorityKeyId: '2.5.29.35',
  subjectKeyId: '2.5.29.14',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

/** What signing needs from the CA: its name, key identifier, key and signature algorithm. */
export interface Issuer {
  /** The CA certificate's subject Name, exact DER (becomes the leaf's issuer). */
  subjectDer: Buffer;
  /** The CA's subject key identifier (becomes the leaf's authority key identifier). */
  keyId: Buffer;
  key: KeyObject;
  /** Digest for crypto.sign and the matching AlgorithmIdentifier DER. */
  hash: string;
  algorithmDer: Buffer;
}

/** The AlgorithmIdentifier a CA key signs with: sha256WithRSA, ecdsa-with-SHA256 (P-256) or -SHA384 (P-384). */
export function signatureAlgorithm(key: KeyObject): { hash: string; algorithmDer: Buffer } | undefined {
  if (key.asymmetricKeyType === 'rsa') return { hash: 'sha256', algorithmDer: seq(oid('1.2.840.113549.1.1.11'), tlv(0x05, Buffer.alloc(0))) };
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return { hash: 'sha256', algorithmDer: seq(oid('1.2.840.10045.4.3.2')) };
    if (curve === 'secp384r1') return { hash: 'sha384', algorithmDer: seq(oid('1.2.840.10045.4.3.3')) };
  }
  return undefined;
}

function extension(id: string | Buffer, critical: boolean, value: Buffer): Buffer {
  const idDer = typeof id === 'string' ? oid(id) : id;
  return critical ? seq(idDer, bool(true), octets(value)) : seq(idDer, octets(value));
}

/** A random positive serial with 128 bits of randomness (DER-minimal, at most 17 octets). */
export function randomSerial(): Buffer {
  const b = randomBytes(16);
  if (b.every((x) => x === 0)) b[15] = 1;
  return b;
}

export interface LeafOptions {
  /** SubjectPublicKeyInfo DER, copied as is from the CSR. */
  spki: Buffer;
  /** URIs for the SAN, in order. */
  uris: readonly string[];
  /** DNS names for the SAN, after the URIs (meshd's own serving certificate only). */
  dnsNames?: readonly string[];
  notBefore: Date;
  notAfter: Date;
}

// Constant extension values.
const KEY_USAGE = extension(OID.keyUsage, true, tlv(0x03, Buffer.from([0x05, 0xa0]))); // digitalSignature, keyEncipherment
const EXT_KEY_USAGE = extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth), oid(OID.clientAuth)));
const BASIC_CONSTRAINTS = extension(OID.basicConstraints, true, seq());
const V3 = ctx(0, true, uint(Buffer.from([2])));
const EMPTY_NAME = seq();
const AUTHORITY_KEY_ID = oid(OID.authorityKeyId);
const SUBJECT_ALT_NAME = oid(OID.subjectAltName);

/** The TBSCertificate of a workload certificate. */
export function leafTbs(issuer: Issuer, o: LeafOptions, serial: Buffer = randomSerial()): Buffer {
  const san = seq(...o.uris.map((u) => ctx(6, false, Buffer.from(u, 'ascii'))), ...(o.dnsNames ?? []).map((d) => ctx(2, false, Buffer.from(d, 'ascii'))));
  const extensions = seq(KEY_USAGE, EXT_KEY_USAGE, BASIC_CONSTRAINTS, extension(AUTHORITY_KEY_ID, false, seq(ctx(0, false, issuer.keyId))), extension(SUBJECT_ALT_NAME, true, san));
  return seq(V3, uint(serial), issuer.algorithmDer, issuer.subjectDer, seq(time(o.notBefore), time(o.notAfter)), EMPTY_NAME, o.spki, ctx(3, true, extensions));
}

/** Signs a TBSCertificate into a Certificate (DER). */
export function signTbs(issuer: Issuer, tbs: Buffer): Buffer {
  const signature = cryptoSign(issuer.hash, tbs, issuer.key);
  return seq(tbs, issuer.algorithmDer, bits(signature));
}

/** A workload certificate (DER). */
export function issueLeaf(issuer: Issuer, o: LeafOptions): Buffer {
  return signTbs(issuer, leafTbs(issuer, o));
}
