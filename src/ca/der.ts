/**
 * Just enough DER for a CA: a reader that walks TLVs and keeps each element's exact bytes (a
 * signature covers bytes, not a re-encoding), and a writer for the handful of types in a
 * certificate. Certificates carry ECDSA keys that node-forge cannot parse, so the CA reads and
 * writes the ASN.1 itself and leaves the cryptography to Node's crypto.
 */

export interface Tlv {
  /** The whole identifier octet (class, constructed bit and tag number < 31). */
  tag: number;
  /** Content octets. */
  value: Buffer;
  /** Tag, length and content: the element's exact encoding. */
  raw: Buffer;
}

export class DerError extends Error {}

/** Reads one element at `offset`. Throws DerError on anything malformed or not DER-minimal. */
export function readTlv(buf: Buffer, offset = 0): Tlv {
  if (offset + 2 > buf.length) throw new DerError('truncated element');
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not supported');
  let len = buf[offset + 1] as number;
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError('unsupported length encoding');
    if (offset + 2 + n > buf.length) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[offset + 2 + i] as number);
    if (len < 0x80) throw new DerError('non-minimal length');
    hdr += n;
  }
  const end = offset + hdr + len;
  if (end > buf.length) throw new DerError('element runs past its container');
  return { tag, value: buf.subarray(offset + hdr, end), raw: buf.subarray(offset, end) };
}

/** The elements inside a constructed element's content. */
export function children(value: Buffer): Tlv[] {
  const out: Tlv[] = [];
  let off = 0;
  while (off < value.length) {
    const t = readTlv(value, off);
    out.push(t);
    off += t.raw.length;
  }
  return out;
}

/** Parses exactly one element spanning all of `buf`. */
export function parseOne(buf: Buffer, expectTag?: number): Tlv {
  const t = readTlv(buf, 0);
  if (t.raw.length !== buf.length) throw new DerError('trailing data after element');
  if (expectTag !== undefined && t.tag !== expectTag) throw new DerError(`expected tag 0x${expectTag.toString(16)}`);
  return t;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Dotted OID from content octets. */
export function oidToString(value: Buffer): string {
  if (value.length === 0) throw new DerError('empty OID');
  const first = value[0] as number;
  const parts: number[] = [Math.min(2, Math.floor(first / 40)), first - Math.min(2, Math.floor(first / 40)) * 40];
  let n = 0;
  for (let i = 1; i < value.length; i++) {
    const b = value[i] as number;
    n = n * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(n);
      n = 0;
    }
  }
  return parts.join('.');
}

// ---- writer ----

/** An element of `tag` over `content`, written into one new buffer (certificates are built from many small ones). */
export function tlv(tag: number, ...content: Buffer[]): Buffer {
  let len = 0;
  for (const c of content) len += c.length;
  const hdr = len < 0x80 ? 2 : len < 0x100 ? 3 : len < 0x10000 ? 4 : len < 0x1000000 ? 5 : 6;
  const out = Buffer.allocUnsafe(hdr + len);
  out[0] = tag;
  if (hdr === 2) out[1] = len;
  else {
    out[1] = 0x80 | (hdr - 2);
    for (let i = hdr - 1, v = len; i >= 2; i--, v = Math.floor(v / 256)) out[i] = v & 0xff;
  }
  let off = hdr;
  for (const c of content) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

export const seq = (...items: Buffer[]): Buffer => tlv(TAG.SEQUENCE, ...items);
export const octets = (b: Buffer): Buffer => tlv(TAG.OCTET_STRING, b);
export const bool = (v: boolean): Buffer => tlv(TAG.BOOLEAN, Buffer.from([v ? 0xff : 0x00]));
/** BIT STRING with no unused bits. */
export const bits = (b: Buffer): Buffer => tlv(TAG.BIT_STRING, Buffer.from([0]), b);
/** Context-specific tag `[n]`, constructed (explicit) or primitive (implicit). */
export const ctx = (n: number, constructed: boolean, content: Buffer): Buffer => tlv(0x80 | (constructed ? 0x20 : 0) | n, content);

/** INTEGER from unsigned big-endian magnitude (leading zeros stripped, a 0x00 added if needed). */
export function uint(magnitude: Buffer): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  let m = magnitude.subarray(i);
  if (m.length === 0) m = Buffer.from([0]);
  if ((m[0] as number) & 0x80) m = Buffer.concat([Buffer.from([0]), m]);
  return tlv(TAG.INTEGER, m);
}

export function oid(dotted: string): Buffer {
  const p = dotted.split('.').map(Number);
  const out: number[] = [(p[0] as number) * 40 + (p[1] as number)];
  for (const n of p.slice(2)) {
    const enc: number[] = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) enc.unshift((v & 0x7f) | 0x80);
    out.push(...enc);
  }
  return tlv(TAG.OID, Buffer.from(out));
}

const two = (n: number): string => (n < 10 ? `0${n}` : `${n}`);

/** RFC 5280 Time: UTCTime through 2049, GeneralizedTime from 2050 (whole seconds, UTC). */
export function time(d: Date): Buffer {
  const year = d.getUTCFullYear();
  const rest = `${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}Z`;
  if (year >= 1950 && year < 2050) return tlv(TAG.UTC_TIME, Buffer.from(`${two(year % 100)}${rest}`, 'latin1'));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(`${String(year).padStart(4, '0')}${rest}`, 'latin1'));
}

/** PEM armour for DER. */
export function toPem(label: string, der: Buffer): string {
  const b64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Every PEM block of `label` in `text`, as DER. Never echoes the text in errors. */
export function pemBlocks(text: string, label: string): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]*?)-----END ${label}-----`, 'g');
  const out: Buffer[] = [];
  for (const m of text.matchAll(re)) out.push(Buffer.from((m[1] as string).replace(/\s+/g, ''), 'base64'));
  return out;
}
