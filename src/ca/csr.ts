/**
 * PKCS#10 certificate signing requests (RFC 2986): parsed, their key checked against what Istio
 * workloads use (RSA 2048/3072/4096 with a sane exponent and modulus, ECDSA P-256/P-384), and their
 * self-signature verified. Only the public key is taken from a CSR; its subject, SANs and other
 * attributes are ignored, since the certificate names exactly the identities the caller proved.
 */
import { type KeyObject, createPublicKey, verify } from 'node:crypto';
import { DerError, TAG, children, oidToString, parseOne, pemBlocks } from './der';
import { CaError } from './types';

const INVALID_ARGUMENT = 3;

export const RSA_SIZES: readonly number[] = Object.freeze([2048, 3072, 4096]);
/** Accepted ECDSA curves (OpenSSL names) and how they are reported: P-256 and P-384, as istio-agent makes keys. */
export const EC_CURVES: Readonly<Record<string, string>> = Object.freeze({ prime256v1: 'ECDSA-P256', secp384r1: 'ECDSA-P384' });
/** The smallest RSA public exponent accepted (F4), and the largest (Go's crypto/rsa: e must fit 31 bits). */
export const RSA_MIN_EXPONENT = 65537n;
export const RSA_MAX_EXPONENT = 2n ** 31n - 1n;

/** Signature algorithms accepted on a CSR: OID → [hash, key type]. SHA-1 is refused. */
const SIG_ALGS: Readonly<Record<string, readonly [string, 'rsa' | 'ec']>> = Object.freeze({
  '1.2.840.113549.1.1.11': ['sha256', 'rsa'],
  '1.2.840.113549.1.1.12': ['sha384', 'rsa'],
  '1.2.840.113549.1.1.13': ['sha512', 'rsa'],
  '1.2.840.10045.4.3.2': ['sha256', 'ec'],
  '1.2.840.10045.4.3.3': ['sha384', 'ec'],
  '1.2.840.10045.4.3.4': ['sha512', 'ec'],
});

export interface ParsedCsr {
  /** The SubjectPublicKeyInfo exactly as in the CSR (copied into the certificate). */
  spki: Buffer;
  publicKey: KeyObject;
  /** `RSA-2048`, `ECDSA-P256`, … */
  keyDescription: string;
}

const b64url = (b: Buffer): string => b.toString('base64url');
const stripZeros = (b: Buffer): Buffer => {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
};

/** The numbers of an RSA public key, big-endian without leading zeros. */
export interface RsaNumbers {
  n: Buffer;
  e: Buffer;
}

/** The public key of a SubjectPublicKeyInfo (see readSpki). */
export function publicKeyFromSpki(spki: Buffer): KeyObject {
  return readSpki(spki).key;
}

/**
 * The public key of a SubjectPublicKeyInfo, with an RSA key's modulus and exponent. RSA and
 * uncompressed P-256 keys are read here (strictly: exact lengths, no trailing data, NULL RSA
 * parameters as Go's x509 requires) and imported as JWK, which skips OpenSSL 3's key decoder (about
 * 140 µs per RSA key against 4 µs); anything else goes through the decoder (and an RSA key that
 * only the decoder reads comes without `rsa`, which checkWorkloadKey refuses).
 */
export function readSpki(spki: Buffer): { key: KeyObject; rsa?: RsaNumbers } {
  try {
    const [alg, key] = children(parseOne(spki, TAG.SEQUENCE).value);
    const [algOid, params] = children(alg?.value ?? Buffer.alloc(0));
    if (key?.tag === TAG.BIT_STRING && key.value[0] === 0 && algOid?.tag === TAG.OID) {
      const kind = oidToString(algOid.value);
      const bitsBuf = key.value.subarray(1);
      if (kind === '1.2.840.113549.1.1.1' && params?.tag === TAG.NULL && params.value.length === 0) {
        const [n, e, extra] = children(parseOne(bitsBuf, TAG.SEQUENCE).value);
        if (n?.tag === TAG.INTEGER && e?.tag === TAG.INTEGER && !extra && !((n.value[0] as number) & 0x80) && !((e.value[0] as number) & 0x80)) {
          const rsa = { n: stripZeros(n.value), e: stripZeros(e.value) };
          return { key: createPublicKey({ key: { kty: 'RSA', n: b64url(rsa.n), e: b64url(rsa.e) }, format: 'jwk' }), rsa };
        }
      }
      if (kind === '1.2.840.10045.2.1' && params?.tag === TAG.OID && oidToString(params.value) === '1.2.840.10045.3.1.7' && bitsBuf.length === 65 && bitsBuf[0] === 4) {
        return { key: createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64url(bitsBuf.subarray(1, 33)), y: b64url(bitsBuf.subarray(33)) }, format: 'jwk' }) };
      }
    }
  } catch {
    // fall through to the decoder, which decides
  }
  return { key: createPublicKey({ key: spki, format: 'der', type: 'spki' }) };
}

const parseError = (msg: string): CaError => new CaError('csr_parse_error', msg, INVALID_ARGUMENT);
const keyTypeError = (msg: string): CaError => new CaError('key_type', msg, INVALID_ARGUMENT);

const bigintOf = (b: Buffer): bigint => (b.length === 0 ? 0n : BigInt(`0x${b.toString('hex')}`));

/**
 * Refuses RSA numbers that no honest key has, as Go's crypto/rsa does for istiod: an even
 * modulus, an exponent below 65537 (e = 1 makes every "signature" verify: anyone could then sign
 * for this key), an even exponent, or one past 31 bits.
 */
function checkRsaNumbers(rsa: RsaNumbers): void {
  const { n } = rsa;
  if (n.length === 0 || !((n[n.length - 1] as number) & 1)) throw keyTypeError('invalid RSA key: the modulus is even');
  const e = bigintOf(rsa.e);
  if (e < RSA_MIN_EXPONENT) throw keyTypeError(`invalid RSA key: public exponent ${e} is below ${RSA_MIN_EXPONENT}`);
  if (!(e & 1n)) throw keyTypeError('invalid RSA key: the public exponent is even');
  if (e > RSA_MAX_EXPONENT) throw keyTypeError('invalid RSA key: the public exponent is larger than 2^31-1');
}

/**
 * Describes a public key, or throws CaError('key_type') if workloads may not use it. RSA keys need
 * their numbers (`rsa`, from readSpki): a size of 2048, 3072 or 4096 bits, then checkRsaNumbers.
 * ECDSA keys must be on P-256 or P-384 (OpenSSL checked the point is on the curve when it imported it).
 */
export function checkWorkloadKey(key: KeyObject, rsa?: RsaNumbers): string {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (!RSA_SIZES.includes(bits)) throw keyTypeError(`unsupported RSA key size ${bits}: use 2048, 3072 or 4096 bits`);
    if (!rsa) throw keyTypeError('the CSR RSA public key is not strict DER (rsaEncryption with NULL parameters, minimal positive integers)');
    checkRsaNumbers(rsa);
    return `RSA-${bits}`;
  }
  if (type === 'ec') {
    const curve = details.namedCurve ?? 'unknown';
    const name = EC_CURVES[curve];
    if (!name) throw keyTypeError(`unsupported ECDSA curve ${curve}: use P-256 or P-384`);
    return name;
  }
  throw keyTypeError(`unsupported key type ${type ?? 'unknown'}: use RSA (2048, 3072, 4096 bits) or ECDSA P-256/P-384`);
}

/** Parses and verifies a PEM CSR. Errors never quote the input. */
export function parseCsr(pem: string): ParsedCsr {
  const blocks = pemBlocks(pem, 'CERTIFICATE REQUEST');
  const der = blocks[0] ?? pemBlocks(pem, 'NEW CERTIFICATE REQUEST')[0];
  if (!der || der.length === 0) throw parseError('no PEM "CERTIFICATE REQUEST" block in the CSR');
  if (blocks.length > 1) throw parseError('more than one CSR in the request');

  let cri: Buffer, spki: Buffer, algOid: string, signature: Buffer;
  try {
    const top = children(parseOne(der, TAG.SEQUENCE).value);
    if (top.length !== 3) throw new DerError('CertificationRequest must have 3 elements');
    const [criTlv, algTlv, sigTlv] = top as [(typeof top)[0], (typeof top)[0], (typeof top)[0]];
    if (criTlv.tag !== TAG.SEQUENCE || algTlv.tag !== TAG.SEQUENCE || sigTlv.tag !== TAG.BIT_STRING) throw new DerError('unexpected element');
    const info = children(criTlv.value);
    const version = info[0];
    if (!version || version.tag !== TAG.INTEGER || version.value.length !== 1 || version.value[0] !== 0) throw new DerError('version must be 0');
    const spkiTlv = info[2];
    if (!spkiTlv || spkiTlv.tag !== TAG.SEQUENCE) throw new DerError('missing subjectPKInfo');
    const algOidTlv = children(algTlv.value)[0];
    if (!algOidTlv || algOidTlv.tag !== TAG.OID) throw new DerError('missing signature algorithm');
    if (sigTlv.value[0] !== 0) throw new DerError('signature has unused bits');
    cri = criTlv.raw;
    spki = Buffer.from(spkiTlv.raw);
    algOid = oidToString(algOidTlv.value);
    signature = sigTlv.value.subarray(1);
  } catch (err) {
    if (err instanceof DerError) throw parseError(`malformed CSR: ${err.message}`);
    throw err;
  }

  let publicKey: KeyObject;
  let rsa: RsaNumbers | undefined;
  try {
    ({ key: publicKey, rsa } = readSpki(spki));
  } catch {
    throw keyTypeError('the CSR public key is of an unsupported or malformed type');
  }
  const keyDescription = checkWorkloadKey(publicKey, rsa);

  const alg = SIG_ALGS[algOid];
  if (!alg) throw parseError(`unsupported CSR signature algorithm ${algOid}`);
  if (alg[1] !== publicKey.asymmetricKeyType) throw parseError(`CSR signature algorithm ${algOid} does not match its ${keyDescription} key`);
  let ok: boolean;
  try {
    ok = verify(alg[0], cri, publicKey, signature);
  } catch {
    ok = false;
  }
  if (!ok) throw parseError('CSR signature does not verify with its own public key');
  return { spki, publicKey, keyDescription };
}
