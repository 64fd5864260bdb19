/**
 * CA signing throughput: certificates per second through MeshdAuthority.sign() (the whole request:
 * parse the CSR, verify its signature, build and sign the certificate) for RSA-2048 and ECDSA P-256
 * CSRs, inline and on signing worker threads, beside what Node's native crypto allows in the same
 * run: bare crypto.verify and crypto.sign loops with the same kinds of keys over buffers of the
 * real sizes, on one thread and on as many threads as the pool has. Every sign() gets a
 * CSR for a key it has not seen in the last 256 requests, as a CA does. Each case runs for
 * BENCH_SECONDS (default 3); BENCH_WORKERS sets the pool size (default: the number of cores).
 * `machineBusyCores` is how many cores the whole machine kept busy during a case (other load
 * included). Prints JSON (and each case on stderr as it finishes).
 *
 *   npm run bench:ca
 */
import { type KeyObject, createPublicKey, generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import * as os from 'node:os';
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import forge from 'node-forge';
import pino from 'pino';
import { MeshdAuthority } from '../src/ca/authority';
import { parseCsr, publicKeyFromSpki } from '../src/ca/csr';
import { bits, bool, ctx, octets, oid, seq, time, tlv, toPem, uint } from '../src/ca/der';
import { type RootMaterial, loadSigningCa } from '../src/ca/roots';
import type { RootStore } from '../src/ca/root-store';
import { leafTbs, signatureAlgorithm, signTbs } from '../src/ca/sign';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const WORKERS = Number(process.env.BENCH_WORKERS ?? os.availableParallelism());
const ID = 'spiffe://cluster.local/ns/default/sa/reviews';
const DISTINCT_CSRS = 256;

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

interface Csr {
  pem: string;
  /** CertificationRequestInfo and its signature, for the bare verify loop. */
  cri: Buffer;
  signature: Buffer;
  spki: Buffer;
}

/** A PKCS#10 CSR for `key` (empty subject, no attributes), written with the CA's DER helpers. */
function csrFor(privateKey: KeyObject, publicKey: KeyObject): Csr {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const cri = seq(uint(Buffer.from([0])), seq(), spki, ctx(0, true, Buffer.alloc(0)));
  const alg = signatureAlgorithm(privateKey);
  if (!alg) throw new Error('unsupported key');
  const signature = cryptoSign(alg.hash, cri, privateKey);
  return { pem: toPem('CERTIFICATE REQUEST', seq(cri, alg.algorithmDer, bits(signature))), cri, signature, spki };
}

const csrsFor = (n: number, make: () => { privateKey: KeyObject; publicKey: KeyObject }): Csr[] =>
  Array.from({ length: n }, () => {
    const k = make();
    return csrFor(k.privateKey, k.publicKey);
  });

interface Result {
  case: string;
  ops: number;
  opsPerSec: number;
  usPerOp: number;
  threads: number;
  /** Cores the whole machine kept busy meanwhile (this benchmark and anything else running). */
  machineBusyCores: number;
}

const results: Result[] = [];

/** Milliseconds of CPU the machine has spent busy, all cores. */
const machineBusyMs = (): number => os.cpus().reduce((a, c) => a + c.times.user + c.times.nice + c.times.sys + c.times.irq, 0);

function record(name: string, ops: number, secs: number, threads: number, busyFrom: number): Result {
  const machineBusyCores = Math.round(((machineBusyMs() - busyFrom) / 1000 / secs) * 100) / 100;
  const r = { case: name, ops, opsPerSec: Math.round(ops / secs), usPerOp: Math.round((secs * 1e6) / ops), threads, machineBusyCores };
  process.stderr.write(`${JSON.stringify(r)}\n`);
  results.push(r);
  return r;
}

/** `fn` back to back on this thread. */
async function run(name: string, fn: (i: number) => unknown): Promise<Result> {
  for (let i = 0; i < 50; i++) await fn(i); // warm up
  const busy = machineBusyMs();
  const start = performance.now();
  const end = start + SECONDS * 1000;
  let ops = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 10; i++) await fn(ops + i);
    ops += 10;
  }
  return record(name, ops, (performance.now() - start) / 1000, 1, busy);
}

/** `fn` with `inflight` calls outstanding at all times (the signing workers' case). */
async function runConcurrent(name: string, fn: (i: number) => Promise<unknown>, inflight: number, threads: number): Promise<Result> {
  await Promise.all(Array.from({ length: inflight }, (_, i) => fn(i))); // warm up (and start the workers)
  let ops = 0;
  const busy = machineBusyMs();
  const start = performance.now();
  const end = start + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (performance.now() < end) await fn(ops++);
    }),
  );
  return record(name, ops, (performance.now() - start) / 1000, threads, busy);
}

/**
 * Bare native loops on `n` threads or processes at once, all starting together: `pair` is a P-256
 * crypto.verify with one key (a CSR-sized buffer) then a crypto.sign (TBS-sized), the per-request
 * floor; `fresh` is a JWK import and first verify of a key not seen in the last 256, what a new CSR
 * key costs. Threads share one OpenSSL; processes have one each.
 */
async function parallelLoops(name: string, n: number, kind: 'threads' | 'processes', loop: 'pair' | 'fresh', tbsBytes: number): Promise<Result> {
  const code = `
    const wt = require('node:worker_threads');
    const send = wt.parentPort ? (m) => wt.parentPort.postMessage(m) : (m) => process.send(m);
    const once = wt.parentPort ? (f) => wt.parentPort.once('message', f) : (f) => process.once('message', f);
    const c = require('node:crypto');
    const k = c.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const cri = Buffer.alloc(200, 1), tbs = Buffer.alloc(${tbsBytes}, 2);
    const sig = c.sign('sha256', cri, k.privateKey);
    const fresh = Array.from({ length: 256 }, () => { const x = c.generateKeyPairSync('ec', { namedCurve: 'P-256' }); return { jwk: x.publicKey.export({ format: 'jwk' }), s: c.sign('sha256', cri, x.privateKey) }; });
    const op = ${JSON.stringify(loop)} === 'pair'
      ? () => { c.verify('sha256', cri, k.publicKey, sig); c.sign('sha256', tbs, k.privateKey); }
      : (i) => { const f = fresh[i % 256]; c.verify('sha256', cri, c.createPublicKey({ key: f.jwk, format: 'jwk' }), f.s); };
    for (let i = 0; i < 300; i++) op(i);
    once((startAt) => {
      while (Date.now() < startAt) {}
      const end = startAt + ${SECONDS * 1000}; let m = 0;
      while (Date.now() < end) { for (let i = 0; i < 10; i++) op(m + i); m += 10; }
      send(m);
      if (!wt.parentPort) process.disconnect();
    });
    send('ready');`;
  interface Runner {
    next(): Promise<unknown>;
    post(m: number): void;
    stop(): Promise<unknown>;
  }
  const runners: Runner[] = Array.from({ length: n }, () => {
    if (kind === 'threads') {
      const w = new Worker(code, { eval: true });
      return { next: () => new Promise((r) => w.once('message', r)), post: (m) => w.postMessage(m), stop: () => w.terminate() };
    }
    const p = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    return { next: () => new Promise((r) => p.once('message', r)), post: (m) => p.send(m), stop: () => new Promise((r) => (p.exitCode !== null ? r(0) : p.once('exit', r))) };
  });
  await Promise.all(runners.map((r) => r.next()));
  const startAt = Date.now() + 100;
  const busy = machineBusyMs();
  const counts = (await Promise.all(
    runners.map((r) => {
      const done = r.next();
      r.post(startAt);
      return done;
    }),
  )) as number[];
  const result = record(
    name,
    counts.reduce((a, b) => a + b, 0),
    SECONDS + 0.1,
    n,
    busy,
  );
  await Promise.all(runners.map((r) => r.stop()));
  return result;
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

const ratio = (a: Result, perSec: number): number => Math.round((a.opsPerSec / perSec) * 100) / 100;

async function main(): Promise<void> {
  const log = pino({ level: 'silent' });
  const rsaStore = new MemoryStore();
  const ecMaterial = ecCa();
  const rsaCa = await MeshdAuthority.start({ mode: 'self-signed', store: rsaStore, log, checkIntervalMs: 0 });
  const ecdsaCa = await MeshdAuthority.start({ mode: 'plugin', store: new MemoryStore(ecMaterial), log, checkIntervalMs: 0 });
  const pooled = await MeshdAuthority.start({ mode: 'plugin', store: new MemoryStore(ecMaterial), log, checkIntervalMs: 0, signWorkers: WORKERS, signQueue: 4096 });
  await pooled.signersReady();
  const rsaCsrs = csrsFor(32, () => generateKeyPairSync('rsa', { modulusLength: 2048 }));
  const ecCsrs = csrsFor(DISTINCT_CSRS, () => generateKeyPairSync('ec', { namedCurve: 'P-256' }));
  const req = (c: Csr): { csrPem: string; identities: string[]; ttlSeconds: number } => ({ csrPem: c.pem, identities: [ID], ttlSeconds: 86_400 });
  const rsaReq = (i: number): ReturnType<typeof req> => req(rsaCsrs[i % rsaCsrs.length] as Csr);
  const ecReq = (i: number): ReturnType<typeof req> => req(ecCsrs[i % ecCsrs.length] as Csr);

  // Bare signatures over a buffer the size of a real TBSCertificate, with the CAs' own keys.
  const issuer = loadSigningCa(rsaStore.m as RootMaterial).issuer;
  const rsaCaKey: KeyObject = issuer.key;
  const ecCaKey: KeyObject = loadSigningCa(ecMaterial).issuer.key;
  const leafOpts = { spki: (ecCsrs[0] as Csr).spki, uris: [ID], notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000) };
  const tbs = leafTbs(issuer, leafOpts);
  const first = ecCsrs[0] as Csr;
  const firstKey = publicKeyFromSpki(first.spki);

  // node-forge doing the same job (RSA only: forge cannot handle ECDSA keys).
  const forgeCaKey = forge.pki.privateKeyFromPem(rsaCaKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  const forgeLeafKey = forge.pki.publicKeyFromPem(
    publicKeyFromSpki((rsaCsrs[0] as Csr).spki)
      .export({ type: 'spki', format: 'pem' })
      .toString(),
  );
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

  await run('sign() RSA-2048 CSR, RSA-2048 CA', (i) => rsaCa.sign(rsaReq(i)));
  await run('sign() P-256 CSR, RSA-2048 CA', (i) => rsaCa.sign(ecReq(i)));
  await run('bare crypto.sign RSA-2048 (sha256, TBS-sized)', () => cryptoSign('sha256', tbs, rsaCaKey));
  await run('sign() RSA-2048 CSR, P-256 CA', (i) => ecdsaCa.sign(rsaReq(i)));
  await run('parseCsr RSA-2048 (parse + verify)', (i) => parseCsr((rsaCsrs[i % rsaCsrs.length] as Csr).pem));
  await run('TBS build + crypto.sign RSA-2048 (no CSR parsing)', () => signTbs(issuer, leafTbs(issuer, leafOpts)));
  await run('node-forge cert.sign RSA-2048 (same certificate)', forgeSign);

  // P-256 CSR, P-256 CA: the whole request against the native ceiling.
  const bareVerify = await run('bare crypto.verify P-256 (one key, CSR-sized)', () => cryptoVerify('sha256', first.cri, firstKey, first.signature));
  const bareSign = await run('bare crypto.sign P-256 (sha256, TBS-sized)', () => cryptoSign('sha256', tbs, ecCaKey));
  const freshVerify = await run('P-256 key import + first verify (a new key each time)', (i) => {
    const c = ecCsrs[i % ecCsrs.length] as Csr;
    return cryptoVerify('sha256', c.cri, publicKeyFromSpki(c.spki), c.signature);
  });
  await run('parseCsr P-256 (parse + verify)', (i) => parseCsr((ecCsrs[i % ecCsrs.length] as Csr).pem));
  const inline = await run('sign() P-256 CSR, P-256 CA, inline (one thread)', (i) => ecdsaCa.sign(ecReq(i)));
  const pool = await runConcurrent(`sign() P-256 CSR, P-256 CA, ${WORKERS} signing workers`, (i) => pooled.sign(ecReq(i)), 32 * WORKERS, WORKERS);
  const parallel = await parallelLoops(`bare P-256 verify + sign pairs on ${WORKERS} threads at once`, WORKERS, 'threads', 'pair', tbs.length);
  // The dominant cost of a request scales with threads too (and as it does with processes).
  await parallelLoops(`P-256 key import + first verify on ${WORKERS} threads at once`, WORKERS, 'threads', 'fresh', tbs.length);
  await parallelLoops(`P-256 key import + first verify on ${WORKERS} processes at once`, WORKERS, 'processes', 'fresh', tbs.length);

  rsaCa.close();
  ecdsaCa.close();
  pooled.close();
  // What one thread of native crypto allows per request: one verify and one sign.
  const ceiling = 1 / (1 / bareVerify.opsPerSec + 1 / bareSign.opsPerSec);
  // The same with the verify a CA really does: a key it has never seen (imported, then used once).
  const perCsrFloor = 1 / (1 / freshVerify.opsPerSec + 1 / bareSign.opsPerSec);
  const summary = {
    inlinePerSec: inline.opsPerSec,
    workersPerSec: pool.opsPerSec,
    nativeCeilingPerThread: Math.round(ceiling),
    nativeCeilingOnWorkers: parallel.opsPerSec,
    newKeyFloorPerThread: Math.round(perCsrFloor),
    inlineOfNewKeyFloor: ratio(inline, perCsrFloor),
    inlineOfCeiling: ratio(inline, ceiling),
    workersOfCeiling: ratio(pool, ceiling),
    workersOfParallelCeiling: ratio(pool, parallel.opsPerSec),
    workersMachineBusyCores: pool.machineBusyCores,
  };
  process.stderr.write(`${JSON.stringify(summary)}\n`);
  const cpu = os.cpus()[0]?.model;
  process.stdout.write(
    `${JSON.stringify({ node: process.version, cpus: os.cpus().length, cpu, secondsPerCase: SECONDS, workers: WORKERS, tbsBytes: tbs.length, results, summary }, null, 2)}\n`,
  );
}

void main();
