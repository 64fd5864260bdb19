/**
 * CA signing throughput: certificates per second through MeshdAuthority.sign() for RSA-2048 and
 * ECDSA P-256 CSRs, beside the bare signature (Node's crypto.sign over a buffer the size of a
 * workload TBSCertificate) with the same CA key in the same run, CSR parsing alone, and node-forge
 * signing the same kind of certificate. Each case runs for BENCH_SECONDS (default 3). Prints JSON.
 *
 *   npm run bench:ca
 */
import { type KeyObject, createPublicKey, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import * as os from 'node:os';
import forge from 'node-forge';
import pino from 'pino';
import { MeshdAuthority } from '../src/ca/authority';
import { parseCsr } from '../src/ca/csr';
import { bits, bool, ctx, octets, oid, seq, time, tlv, toPem, uint } from '../src/ca/der';
import { type RootMaterial, loadSigningCa } from '../src/ca/roots';
import type { RootStore } from '../src/ca/root-store';
import { leafTbs, signatureAlgorithm, signTbs } from '../src/ca/sign';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ID = 'spiffe://cluster.local/ns/default/sa/reviews';

class MemoryStore implements RootStore {
  readonly description = 'memory';
  constructor(public m?: RootMaterial) {}
  async load(): Promise<RootMaterial | undefined> {
    return this.m;
  }
  async save(m: RootMaterial): Promise<void> {
    this.m = m;
  }
}

/** A PKCS#10 CSR for `key` (empty subject, no attributes), written with the CA's DER helpers. */
function csrFor(privateKey: KeyObject, publicKey: KeyObject): string {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const cri = seq(uint(Buffer.from([0])), seq(), spki, ctx(0, true, Buffer.alloc(0)));
  const alg = signatureAlgorithm(privateKey);
  if (!alg) throw new Error('unsupported key');
  return toPem('CERTIFICATE REQUEST', seq(cri, alg.algorithmDer, bits(cryptoSign(alg.hash, cri, privateKey))));
}

interface Result {
  case: string;
  ops: number;
  opsPerSec: number;
  usPerOp: number;
}

async function run(name: string, fn: () => unknown): Promise<Result> {
  for (let i = 0; i < 20; i++) await fn(); // warm up
  const end = performance.now() + SECONDS * 1000;
  const start = performance.now();
  let ops = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 10; i++) await fn();
    ops += 10;
  }
  const secs = (performance.now() - start) / 1000;
  const r = { case: name, ops, opsPerSec: Math.round(ops / secs), usPerOp: Math.round((secs * 1e6) / ops) };
  process.stderr.write(`${JSON.stringify(r)}\n`);
  return r;
}

/** A self-signed P-256 CA (plug-in style material for the ECDSA-CA rows), written with the DER helpers. */
function ecCa(): RootMaterial {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const alg = signatureAlgorithm(privateKey);
  if (!alg) throw new Error('unsupported key');
  const name = seq(tlv(0x31, seq(oid('2.5.4.10'), tlv(0x0c, Buffer.from('cluster.local')))));
  const ext = (id: string, v: Buffer): Buffer => seq(oid(id), bool(true), octets(v));
  const now = Date.now();
  const tbs = seq(
    ctx(0, true, uint(Buffer.from([2]))),
    uint(Buffer.from([1, 2, 3, 4])),
    alg.algorithmDer,
    name,
    seq(time(new Date(now - 60_000)), time(new Date(now + 365 * 86_400_000))),
    name,
    createPublicKey(privateKey).export({ type: 'spki', format: 'der' }),
    ctx(3, true, seq(ext('2.5.29.19', seq(bool(true))), ext('2.5.29.15', Buffer.from([0x03, 0x02, 0x01, 0x06])))),
  );
  const certPem = toPem('CERTIFICATE', seq(tbs, alg.algorithmDer, bits(cryptoSign(alg.hash, tbs, privateKey))));
  return { caCertPem: certPem, caKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), rootCertPem: certPem, certChainPem: '' };
}

async function main(): Promise<void> {
  const log = pino({ level: 'silent' });
  const rsaStore = new MemoryStore();
  const ecStore = new MemoryStore(ecCa());
  const rsaCa = await MeshdAuthority.start({ mode: 'self-signed', store: rsaStore, log, checkIntervalMs: 0 });
  const ecdsaCa = await MeshdAuthority.start({ mode: 'plugin', store: ecStore, log, checkIntervalMs: 0 });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsaCsr = csrFor(rsa.privateKey, rsa.publicKey);
  const ecCsr = csrFor(ec.privateKey, ec.publicKey);
  const req = (csrPem: string): { csrPem: string; identities: string[]; ttlSeconds: number } => ({ csrPem, identities: [ID], ttlSeconds: 86_400 });

  // The bare signature over a buffer the size of a real TBSCertificate, with the CAs' own keys.
  const issuer = loadSigningCa(rsaStore.m as RootMaterial).issuer;
  const rsaCaKey: KeyObject = issuer.key;
  const ecCaKey: KeyObject = loadSigningCa(ecStore.m as RootMaterial).issuer.key;
  const leafSpki = parseCsr(rsaCsr).spki;
  const leafOpts = { spki: leafSpki, uris: [ID], notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000) };
  const tbs = leafTbs(issuer, leafOpts);

  // node-forge doing the same job (RSA only: forge cannot handle ECDSA keys).
  const forgeCaKey = forge.pki.privateKeyFromPem(rsaCaKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  const forgeLeafKey = forge.pki.publicKeyFromPem(rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const forgeIssuer = forge.pki.certificateFromPem(rsaCa.signingCertPem());
  const forgeSign = (): void => {
    const c = forge.pki.createCertificate();
    c.publicKey = forgeLeafKey;
    c.serialNumber = '01';
    c.validity.notBefore = new Date();
    c.validity.notAfter = new Date(Date.now() + 86_400_000);
    c.setIssuer(forgeIssuer.subject.attributes);
    c.setExtensions([
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { name: 'subjectAltName', critical: true, altNames: [{ type: 6, value: ID }] },
    ]);
    c.sign(forgeCaKey, forge.md.sha256.create());
  };

  const results: Result[] = [];
  results.push(await run('sign() RSA-2048 CSR, RSA-2048 CA', () => rsaCa.sign(req(rsaCsr))));
  results.push(await run('sign() P-256 CSR, RSA-2048 CA', () => rsaCa.sign(req(ecCsr))));
  results.push(await run('bare crypto.sign RSA-2048 (sha256, TBS-sized)', () => cryptoSign('sha256', tbs, rsaCaKey)));
  results.push(await run('sign() RSA-2048 CSR, P-256 CA', () => ecdsaCa.sign(req(rsaCsr))));
  results.push(await run('sign() P-256 CSR, P-256 CA', () => ecdsaCa.sign(req(ecCsr))));
  results.push(await run('bare crypto.sign P-256 (sha256, TBS-sized)', () => cryptoSign('sha256', tbs, ecCaKey)));
  results.push(await run('parseCsr RSA-2048 (parse + verify)', () => parseCsr(rsaCsr)));
  results.push(await run('parseCsr P-256 (parse + verify)', () => parseCsr(ecCsr)));
  results.push(await run('TBS build + crypto.sign RSA-2048 (no CSR parsing)', () => signTbs(issuer, leafTbs(issuer, leafOpts))));
  results.push(await run('node-forge cert.sign RSA-2048 (same certificate)', forgeSign));
  rsaCa.close();
  ecdsaCa.close();
  process.stdout.write(`${JSON.stringify({ node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model, secondsPerCase: SECONDS, tbsBytes: tbs.length, results }, null, 2)}\n`);
}

void main();
