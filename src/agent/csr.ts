/**
 * The workload key and its PKCS#10 certificate signing request, as istio-agent makes them: an
 * ECDSA P-256 key (default) or RSA 2048, an empty subject, and one critical subjectAltName
 * extension holding the SPIFFE URI `spiffe://<trustDomain>/ns/<ns>/sa/<sa>`.
 *
 * RSA requests are built and signed by node-forge. node-forge cannot handle ECDSA keys, so ECDSA
 * requests are assembled with node-forge's ASN.1 encoder and signed by Node's crypto.
 */
import { createPublicKey, generateKeyPairSync, sign as cryptoSign, type KeyObject, X509Certificate } from 'node:crypto';
import forge from 'node-forge';

export type KeyType = 'ecdsa' | 'rsa';

export interface CsrOptions {
  /** SPIFFE URI for the subjectAltName. */
  spiffeId: string;
  keyType: KeyType;
  /** RSA modulus length (default 2048). */
  rsaBits?: number;
}

export interface KeyAndCsr {
  /** PKCS#8 PEM. Secret: never log it. */
  keyPem: string;
  csrPem: string;
}

export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

const asn1 = forge.asn1;
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';
const OID_ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';

const seq = (items: forge.asn1.Asn1[]): forge.asn1.Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
const oid = (o: string): forge.asn1.Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(o).getBytes());

/** The DER of a subjectAltName extension value with one URI. */
function sanExtension(uri: string): forge.asn1.Asn1 {
  // GeneralNames ::= SEQUENCE OF GeneralName; uniformResourceIdentifier [6] IMPLICIT IA5String.
  const names = seq([asn1.create(asn1.Class.CONTEXT_SPECIFIC, 6, false, uri)]);
  return seq([
    oid(OID_SUBJECT_ALT_NAME),
    // Critical: the subject is empty (RFC 5280 4.2.1.6), as Istio marks it.
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BOOLEAN, false, String.fromCharCode(0xff)),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, asn1.toDer(names).getBytes()),
  ]);
}

function ecdsaCsr(privateKey: KeyObject, publicSpkiDer: Buffer, uri: string): string {
  const spki = asn1.fromDer(forge.util.createBuffer(publicSpkiDer.toString('binary')));
  const attributes = asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [
    seq([oid(OID_EXTENSION_REQUEST), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [seq([sanExtension(uri)])])]),
  ]);
  const info = seq([
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, String.fromCharCode(0)),
    seq([]), // empty subject Name
    spki,
    attributes,
  ]);
  const infoDer = Buffer.from(asn1.toDer(info).getBytes(), 'binary');
  const signature = cryptoSign('sha256', infoDer, privateKey); // DER ECDSA-Sig-Value
  const req = seq([info, seq([oid(OID_ECDSA_WITH_SHA256)]), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, String.fromCharCode(0) + signature.toString('binary'))]);
  const der = Buffer.from(asn1.toDer(req).getBytes(), 'binary');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END CERTIFICATE REQUEST-----\n`;
}

function rsaCsr(keyPem: string, uri: string): string {
  const priv = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.rsa.setPublicKey(priv.n, priv.e);
  csr.setSubject([]);
  csr.setAttributes([{ name: 'extensionRequest', extensions: [{ name: 'subjectAltName', critical: true, altNames: [{ type: 6, value: uri }] }] }]);
  csr.sign(priv, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

/** A fresh key and a CSR for `spiffeId`. Keys come from Node's crypto (fast, native). */
export function generateKeyAndCsr(opts: CsrOptions): KeyAndCsr {
  if (opts.keyType === 'rsa') {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: opts.rsaBits ?? 2048 });
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    return { keyPem, csrPem: rsaCsr(keyPem, opts.spiffeId) };
  }
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return { keyPem, csrPem: ecdsaCsr(privateKey, spki, opts.spiffeId) };
}

/** Whether `keyPem` is the private key of the certificate `certPem` (public keys compared). */
export function keyMatchesCert(keyPem: string, certPem: string): boolean {
  const fromKey = createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
  const fromCert = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return fromKey.equals(fromCert);
}
