/**
 * The openssl CLI as an independent party for CA tests: it makes the CSRs and plug-in CAs meshd
 * must accept, and verifies what meshd issues.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, createPublicKey } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { bits, ctx, oid, seq, tlv, toPem, uint } from '../../src/ca/der';

export const quietLog = pino({ level: 'silent' });

export function tmpDir(prefix = 'meshd-ca-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function openssl(args: string[], cwd?: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `openssl verify`; resolves to [ok, output]. `atTime` in epoch seconds checks validity then. */
export function verify(dir: string, o: { root: string; leaf: string; untrusted?: string; atTime?: number }): [boolean, string] {
  const write = (name: string, pem: string): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, pem);
    return p;
  };
  const args = ['verify', '-CAfile', write('v-root.pem', o.root)];
  if (o.untrusted) args.push('-untrusted', write('v-untrusted.pem', o.untrusted));
  if (o.atTime !== undefined) args.push('-attime', String(Math.floor(o.atTime)));
  args.push(write('v-leaf.pem', o.leaf));
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return [r.status === 0, `${r.stdout}${r.stderr}`];
}

export type KeySpec = 'rsa:1024' | 'rsa:2048' | 'rsa:3072' | 'rsa:4096' | 'rsa:2048:e3' | 'P-256' | 'P-384' | 'P-521' | 'secp256k1' | 'ed25519';

function newKeyArgs(spec: KeySpec): string[] {
  // A real RSA key with public exponent 3 (openssl's keygen makes it; only the CA should refuse it).
  if (spec === 'rsa:2048:e3') return ['-newkey', 'rsa:2048', '-pkeyopt', 'rsa_keygen_pubexp:3'];
  if (spec.startsWith('rsa:')) return ['-newkey', spec];
  if (spec === 'ed25519') return ['-newkey', 'ed25519'];
  return ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${spec}`];
}

/** A CSR (and its key) that asks for a name and SAN the caller never proved. */
export function makeCsr(dir: string, spec: KeySpec, name = 'csr'): { csrPem: string; keyPem: string } {
  const csr = path.join(dir, `${name}.csr`);
  const key = path.join(dir, `${name}.key`);
  openssl([
    'req',
    '-new',
    ...newKeyArgs(spec),
    '-nodes',
    '-keyout',
    key,
    '-out',
    csr,
    '-subj',
    '/CN=evil/O=attacker',
    '-addext',
    'subjectAltName=URI:spiffe://cluster.local/ns/kube-system/sa/admin,DNS:evil.example',
  ]);
  return { csrPem: fs.readFileSync(csr, 'utf8'), keyPem: fs.readFileSync(key, 'utf8') };
}

/**
 * A PKCS#10 CSR for an RSA public key of our choosing (modulus `n`, exponent `e`, big-endian), with
 * the signature `sign` makes over the CertificationRequestInfo. openssl cannot make such keys: this
 * is how an attacker would.
 */
export function rsaCsrWithNumbers(n: Buffer, e: Buffer, sign: (cri: Buffer) => Buffer): string {
  const spki = seq(seq(oid('1.2.840.113549.1.1.1'), tlv(0x05, Buffer.alloc(0))), bits(seq(uint(n), uint(e))));
  const cri = seq(uint(Buffer.from([0])), seq(), spki, ctx(0, true, Buffer.alloc(0)));
  return toPem('CERTIFICATE REQUEST', seq(cri, seq(oid('1.2.840.113549.1.1.11'), tlv(0x05, Buffer.alloc(0))), bits(sign(cri))));
}

/**
 * The "signature" that verifies for any modulus when e = 1: s^1 mod n = s, so s is just the
 * PKCS#1 v1.5 encoding of the SHA-256 digest (RFC 8017 9.2), `bytes` long. No private key needed.
 */
export function forgedSignatureForExponentOne(cri: Buffer, bytes: number): Buffer {
  const digestInfo = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), createHash('sha256').update(cri).digest()]);
  return Buffer.concat([Buffer.from([0x00, 0x01]), Buffer.alloc(bytes - digestInfo.length - 3, 0xff), Buffer.from([0x00]), digestInfo]);
}

/** The modulus of an RSA public key (PEM or KeyObject input), big-endian. */
export function rsaModulus(keyPem: string): Buffer {
  const jwk = createPublicKey(keyPem).export({ format: 'jwk' });
  return Buffer.from(jwk.n as string, 'base64url');
}

/** The same CSR with one byte of its signature changed. */
export function corruptCsrSignature(csrPem: string): string {
  const b64 = csrPem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  const der = Buffer.from(b64, 'base64');
  der[der.length - 1] = (der[der.length - 1] as number) ^ 0x01;
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
}

export interface PluginCa {
  /** The four cacerts files' contents. */
  caCertPem: string;
  caKeyPem: string;
  rootCertPem: string;
  certChainPem: string;
}

/** A root and an intermediate made by openssl, laid out as Istio's `cacerts`. */
export function makePluginCa(dir: string, o: { name: string; intermediateKey: KeySpec }): PluginCa {
  const p = (f: string): string => path.join(dir, `${o.name}-${f}`);
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    p('root-key.pem'),
    '-out',
    p('root-cert.pem'),
    '-days',
    '3650',
    '-subj',
    `/O=${o.name}/CN=${o.name} Root CA`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  openssl(['req', '-new', ...newKeyArgs(o.intermediateKey), '-nodes', '-keyout', p('ca-key.pem'), '-out', p('ca.csr'), '-subj', `/O=${o.name}/CN=${o.name} Intermediate CA`]);
  fs.writeFileSync(
    p('ext.cnf'),
    '[v3_int]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
  );
  openssl([
    'x509',
    '-req',
    '-in',
    p('ca.csr'),
    '-CA',
    p('root-cert.pem'),
    '-CAkey',
    p('root-key.pem'),
    '-CAcreateserial',
    '-days',
    '365',
    '-extfile',
    p('ext.cnf'),
    '-extensions',
    'v3_int',
    '-out',
    p('ca-cert.pem'),
  ]);
  const read = (f: string): string => fs.readFileSync(p(f), 'utf8');
  const caCertPem = read('ca-cert.pem');
  const rootCertPem = read('root-cert.pem');
  return { caCertPem, caKeyPem: read('ca-key.pem'), rootCertPem, certChainPem: caCertPem + rootCertPem };
}

/** Writes cacerts files into `dir` (one by one, as an operator copying them would). */
export function writeCacerts(dir: string, ca: PluginCa): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'ca-cert.pem'), ca.caCertPem);
  fs.writeFileSync(path.join(dir, 'ca-key.pem'), ca.caKeyPem, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'root-cert.pem'), ca.rootCertPem);
  fs.writeFileSync(path.join(dir, 'cert-chain.pem'), ca.certChainPem);
}

/** The body lines of every PEM private key in `pems` (what must never leak). */
export function keyFragments(...pems: string[]): string[] {
  const out: string[] = [];
  for (const pem of pems) {
    for (const line of pem.split('\n')) if (line.length >= 40 && !line.startsWith('-----')) out.push(line.trim());
  }
  return out;
}

/** `openssl x509 -text` of a PEM certificate. */
export function x509Text(dir: string, pem: string): string {
  const p = path.join(dir, 'text.pem');
  fs.writeFileSync(p, pem);
  return openssl(['x509', '-in', p, '-noout', '-text']);
}
