/**
 * What the certificate service reads from a CSR before the authority signs it: that it is one
 * well-formed PKCS#10 request, and which identities its subjectAltName asks for. Its key and
 * self-signature are checked once, by the authority (csr.ts), which refuses the request if they
 * fail: verifying here as well doubled the cost of every request. A small DER reader, since
 * node-forge cannot parse requests with ECDSA keys.
 */

/** `parse`: not a valid CSR (istiod's csr_parsing_err); `id`: its subjectAltName cannot be read (id_extraction_err). */
export class CsrReadError extends Error {
  constructor(
    readonly kind: 'parse' | 'id',
    message: string,
  ) {
    super(message);
  }
}

export interface CsrIdentities {
  /** URI SANs (SPIFFE IDs). */
  uris: string[];
  dnsNames: string[];
}

const MAX_CSR_BYTES = 64 * 1024;
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';

interface Tlv {
  tag: number;
  start: number;
  body: number;
  end: number;
}

function tlvAt(buf: Buffer, pos: number, limit: number): Tlv {
  const fail = (): never => {
    throw new CsrReadError('parse', 'malformed DER');
  };
  if (pos + 2 > limit) fail();
  const tag = buf[pos] as number;
  if ((tag & 0x1f) === 0x1f) fail();
  let p = pos + 1;
  let len = buf[p++] as number;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || p + n > limit) fail();
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[p++] as number);
  }
  if (p + len > limit) fail();
  return { tag, start: pos, body: p, end: p + len };
}

function childrenOf(buf: Buffer, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = t.body; p < t.end;) {
    const c = tlvAt(buf, p, t.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

function oid(buf: Buffer, t: Tlv): string {
  if (t.tag !== 0x06 || t.end === t.body) throw new CsrReadError('parse', 'malformed object identifier');
  const bytes = buf.subarray(t.body, t.end);
  const first = bytes[0] as number;
  const parts = [Math.min(2, Math.floor(first / 40)), first - 40 * Math.min(2, Math.floor(first / 40))];
  let v = 0;
  for (const b of bytes.subarray(1)) {
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

function pemToDer(pem: string): Buffer {
  const blocks = [...pem.matchAll(/-----BEGIN (NEW )?CERTIFICATE REQUEST-----([\s\S]*?)-----END (NEW )?CERTIFICATE REQUEST-----/g)];
  if (blocks.length !== 1) throw new CsrReadError('parse', blocks.length === 0 ? 'no PEM CERTIFICATE REQUEST block' : 'more than one CERTIFICATE REQUEST block');
  const body = (blocks[0] as RegExpMatchArray)[2] as string;
  if (!/^[A-Za-z0-9+/=\s]*$/.test(body)) throw new CsrReadError('parse', 'the PEM block is not base64');
  return Buffer.from(body.replace(/\s+/g, ''), 'base64');
}

/** The subjectAltName of a CSR's extensionRequest attribute (none: empty lists). */
function sanOf(buf: Buffer, attributes: Tlv | undefined): CsrIdentities {
  const out: CsrIdentities = { uris: [], dnsNames: [] };
  if (!attributes) return out;
  for (const attr of childrenOf(buf, attributes)) {
    const [type, values] = childrenOf(buf, attr);
    if (!type || !values || oid(buf, type) !== OID_EXTENSION_REQUEST) continue;
    for (const exts of childrenOf(buf, values)) {
      for (const ext of childrenOf(buf, exts)) {
        const parts = childrenOf(buf, ext);
        if (!parts[0] || oid(buf, parts[0]) !== OID_SUBJECT_ALT_NAME) continue;
        const value = parts[parts.length - 1] as Tlv;
        if (value.tag !== 0x04) throw new CsrReadError('id', 'subjectAltName is not an OCTET STRING');
        const names = tlvAt(buf, value.body, value.end);
        if (names.tag !== 0x30 || names.end !== value.end) throw new CsrReadError('id', 'subjectAltName is not a GeneralNames sequence');
        for (const n of childrenOf(buf, names)) {
          const text = buf.subarray(n.body, n.end).toString('latin1');
          if (n.tag === 0x86) out.uris.push(text);
          else if (n.tag === 0x82) out.dnsNames.push(text);
        }
      }
    }
  }
  return out;
}

/** Checks a PEM CSR's structure and returns the identities it asks for (the authority verifies its signature). */
export function readCsr(pem: string): CsrIdentities {
  if (typeof pem !== 'string' || pem.length === 0) throw new CsrReadError('parse', 'the request has no CSR');
  if (pem.length > MAX_CSR_BYTES) throw new CsrReadError('parse', `the CSR is larger than ${MAX_CSR_BYTES} bytes`);
  const der = pemToDer(pem);
  const top = tlvAt(der, 0, der.length);
  if (top.tag !== 0x30 || top.end !== der.length) throw new CsrReadError('parse', 'not a PKCS#10 CertificationRequest');
  const [info, sigAlg, sig] = childrenOf(der, top);
  if (!info || !sigAlg || !sig || info.tag !== 0x30 || sigAlg.tag !== 0x30 || sig.tag !== 0x03) throw new CsrReadError('parse', 'not a PKCS#10 CertificationRequest');
  const fields = childrenOf(der, info);
  const spki = fields[2];
  if (!spki || spki.tag !== 0x30 || fields[0]?.tag !== 0x02 || fields[1]?.tag !== 0x30) throw new CsrReadError('parse', 'malformed certificationRequestInfo');
  const attributes = fields[3]?.tag === 0xa0 ? fields[3] : undefined;
  oid(der, childrenOf(der, sigAlg)[0] ?? sigAlg);
  if (der[sig.body] !== 0 || sig.end - sig.body < 2) throw new CsrReadError('parse', 'malformed signature');
  try {
    return sanOf(der, attributes);
  } catch (e) {
    if (e instanceof CsrReadError) throw new CsrReadError('id', `cannot read the CSR's subjectAltName: ${e.message}`);
    throw e;
  }
}
