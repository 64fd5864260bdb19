/**
 * Signing: workload certificates issued by meshd's CA, checked by parties that are not meshd
 * (openssl verify / x509 -text, Node's X509Certificate), for every key workloads may use;
 * refusals for bad CSRs; TTL rules; no private key in any error or log line.
 */
import assert from 'node:assert/strict';
import { X509Certificate, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MeshdAuthority } from '../src/ca/authority';
import { publicKeyFromSpki } from '../src/ca/csr';
import { bits, children, ctx, oid, parseOne, seq, toPem, uint } from '../src/ca/der';
import { FolderRootStore } from '../src/ca/root-store';
import { CaError } from '../src/ca/types';
import {
  type KeySpec,
  corruptCsrSignature,
  forgedSignatureForExponentOne,
  keyFragments,
  makeCsr,
  makePluginCa,
  quietLog,
  rsaCsrWithNumbers,
  rsaModulus,
  tmpDir,
  verify,
  writeCacerts,
  x509Text,
} from './helpers/ca-openssl';
import { captureLog } from './helpers/kube-testing';

const ID = 'spiffe://cluster.local/ns/default/sa/reviews';
const HOUR = 3600;
const DAY = 24 * HOUR;

/** Certificates hold whole seconds: a `now` without milliseconds makes TTL checks exact. */
const wholeSecond = (): Date => new Date(Math.floor(Date.now() / 1000) * 1000);

async function refusal(p: Promise<unknown>): Promise<CaError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof CaError, `expected a CaError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a refusal');
}

describe('CA signing', { timeout: 120_000 }, () => {
  const dir = tmpDir();
  const logs = captureLog('trace');
  const messages: string[] = [];
  const csrKeys: string[] = [];
  let ca: MeshdAuthority;

  before(async () => {
    ca = await MeshdAuthority.start({ mode: 'self-signed', store: new FolderRootStore(path.join(dir, 'store')), log: logs.log, checkIntervalMs: 0 });
  });
  after(() => {
    ca.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const spec of ['rsa:2048', 'rsa:3072', 'rsa:4096', 'P-256', 'P-384'] as KeySpec[]) {
    it(`issues a certificate for a ${spec} CSR that openssl and Node verify, naming only the proven identity`, async () => {
      const { csrPem, keyPem } = makeCsr(dir, spec);
      csrKeys.push(keyPem);
      const now = wholeSecond();
      const { certChainPem } = await ca.sign({ csrPem, identities: [ID], ttlSeconds: HOUR, now });
      assert.equal(certChainPem.length, 2, 'leaf and root');
      const [leafPem, rootPem] = certChainPem as [string, string];
      assert.equal(rootPem, ca.rootBundlePem());

      const [ok, out] = verify(dir, { root: rootPem, leaf: leafPem });
      assert.ok(ok, out);

      const leaf = new X509Certificate(leafPem);
      const root = new X509Certificate(rootPem);
      assert.ok(leaf.checkIssued(root) && !root.checkIssued(leaf), 'root issued leaf');
      assert.ok(leaf.verify(root.publicKey), 'signature verifies with the root key');
      assert.equal(leaf.subjectAltName, `URI:${ID}`, 'exactly the SPIFFE URI, nothing the CSR asked for');
      assert.ok(!leaf.subject, 'empty subject');
      assert.equal(leaf.ca, false);
      const spki = leaf.publicKey.export({ type: 'spki', format: 'der' });
      assert.deepEqual(spki, createPublicKey(keyPem).export({ type: 'spki', format: 'der' }), 'the CSR key is certified');
      // The fast SPKI reader (JWK import) yields exactly the key OpenSSL's decoder reads.
      assert.deepEqual(publicKeyFromSpki(spki).export({ type: 'spki', format: 'der' }), spki);
      // Validity: the TTL from now (second resolution), notBefore slightly in the past.
      assert.equal(Math.round((Date.parse(leaf.validTo) - now.getTime()) / 1000), HOUR);
      assert.ok(Date.parse(leaf.validFrom) < now.getTime());
      assert.ok(now.getTime() - Date.parse(leaf.validFrom) <= 5 * 60_000);
      // Serial: positive, 128 bits of randomness (16 or 17 octets with a sign byte).
      const tbs = children(children(parseOne(leaf.raw).value)[0]!.value);
      const serial = tbs[1]!;
      assert.equal(serial.tag, 0x02);
      assert.ok(serial.value.length <= 17 && serial.value.length >= 8, 'at most 17 octets');
      assert.ok((serial.value[0] as number) < 0x80, 'positive');
      assert.match(leaf.serialNumber, /^[0-9A-F]{16,32}$/);

      const text = x509Text(dir, leafPem);
      assert.match(text, /Key Usage: critical\s+Digital Signature, Key Encipherment\n/);
      assert.match(text, /Extended Key Usage:\s*\n\s+TLS Web Server Authentication, TLS Web Client Authentication\n/);
      assert.match(text, /Basic Constraints: critical\s+CA:FALSE/);
      assert.match(text, /Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews\n/);
      assert.match(text, /Authority Key Identifier/);
      assert.doesNotMatch(text, /evil|attacker|kube-system/);
      assert.match(text, /Signature Algorithm: sha256WithRSAEncryption/);
    });
  }

  it('gives each certificate its own serial and lists several identities in order', async () => {
    const { csrPem } = makeCsr(dir, 'P-256');
    const ids = [ID, 'spiffe://cluster.local/ns/default/sa/ratings'];
    const a = new X509Certificate((await ca.sign({ csrPem, identities: ids, ttlSeconds: HOUR })).certChainPem[0] as string);
    const b = new X509Certificate((await ca.sign({ csrPem, identities: [ID], ttlSeconds: HOUR })).certChainPem[0] as string);
    assert.notEqual(a.serialNumber, b.serialNumber);
    assert.equal(a.subjectAltName, ids.map((u) => `URI:${u}`).join(', '));
    // meshd's own serving certificate also carries DNS names (never taken from a caller's CSR).
    const own = new X509Certificate((await ca.sign({ csrPem, identities: [ID], dnsNames: ['istiod.istio-system.svc'], ttlSeconds: HOUR })).certChainPem[0] as string);
    assert.equal(own.subjectAltName, `URI:${ID}, DNS:istiod.istio-system.svc`);
    const bad = await refusal(ca.sign({ csrPem, identities: [ID], dnsNames: ['bad name'], ttlSeconds: HOUR }));
    assert.equal(bad.reason, 'id_mismatch');
  });

  it('applies the default TTL to 0 or negative requests and caps long ones at the maximum', async () => {
    const { csrPem } = makeCsr(dir, 'P-256');
    const now = wholeSecond();
    const ttlOf = async (ttlSeconds: number, c: MeshdAuthority = ca): Promise<number> => {
      const leaf = new X509Certificate((await c.sign({ csrPem, identities: [ID], ttlSeconds, now })).certChainPem[0] as string);
      return Math.round((Date.parse(leaf.validTo) - now.getTime()) / 1000);
    };
    assert.equal(await ttlOf(0), DAY, '0 → 24 h');
    assert.equal(await ttlOf(-5), DAY, 'negative → 24 h');
    assert.equal(await ttlOf(Number.NaN), DAY, 'NaN → 24 h');
    assert.equal(await ttlOf(7 * DAY), 7 * DAY);
    assert.equal(await ttlOf(365 * DAY), 90 * DAY, 'capped at 90 days');

    const small = await MeshdAuthority.start({
      mode: 'self-signed',
      store: new FolderRootStore(path.join(dir, 'small')),
      log: quietLog,
      checkIntervalMs: 0,
      maxTtlSeconds: 2 * HOUR,
      defaultTtlSeconds: HOUR,
      rootTtlSeconds: 3 * HOUR,
      backdateSeconds: 0,
    });
    try {
      assert.equal(await ttlOf(0, small), HOUR);
      assert.equal(await ttlOf(10 * HOUR, small), 2 * HOUR);
      const late = new Date(now.getTime() + 2 * HOUR * 1000);
      const leaf = new X509Certificate((await small.sign({ csrPem, identities: [ID], ttlSeconds: 2 * HOUR, now: late })).certChainPem[0] as string);
      assert.equal(leaf.validTo, new X509Certificate(small.rootBundlePem()).validTo, 'never outlives the signing CA');
    } finally {
      small.close();
    }
  });

  it('refuses a CSR whose signature does not verify', async () => {
    const { csrPem, keyPem } = makeCsr(dir, 'rsa:2048');
    csrKeys.push(keyPem);
    const e = await refusal(ca.sign({ csrPem: corruptCsrSignature(csrPem), identities: [ID], ttlSeconds: HOUR }));
    assert.equal(e.reason, 'csr_parse_error');
    assert.equal(e.grpcCode, 3);
    assert.match(e.message, /signature/);
    messages.push(e.message);
    const ec = makeCsr(dir, 'P-256');
    csrKeys.push(ec.keyPem);
    messages.push((await refusal(ca.sign({ csrPem: corruptCsrSignature(ec.csrPem), identities: [ID], ttlSeconds: HOUR }))).message);
  });

  it('refuses malformed CSRs, naming the problem without quoting the input', async () => {
    for (const csrPem of ['', 'hello', '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n']) {
      const e = await refusal(ca.sign({ csrPem, identities: [ID], ttlSeconds: HOUR }));
      assert.equal(e.reason, 'csr_parse_error');
      messages.push(e.message);
    }
    // A private key pasted where the CSR belongs.
    const { keyPem } = makeCsr(dir, 'rsa:2048');
    csrKeys.push(keyPem);
    const e = await refusal(ca.sign({ csrPem: keyPem, identities: [ID], ttlSeconds: HOUR }));
    assert.equal(e.reason, 'csr_parse_error');
    messages.push(e.message);
  });

  for (const [spec, why] of [
    ['rsa:1024', /RSA key size 1024/],
    ['P-521', /curve secp521r1/],
    ['secp256k1', /curve secp256k1/],
    ['ed25519', /key type ed25519/],
  ] as const) {
    it(`refuses a ${spec} CSR as an unsupported key`, async () => {
      const { csrPem, keyPem } = makeCsr(dir, spec);
      csrKeys.push(keyPem);
      const e = await refusal(ca.sign({ csrPem, identities: [ID], ttlSeconds: HOUR }));
      assert.equal(e.reason, 'key_type');
      assert.equal(e.grpcCode, 3);
      assert.match(e.message, why);
      messages.push(e.message);
    });
  }

  it('refuses RSA keys no honest workload has: e = 1 (whose CSR anyone can forge), e = 3, even or huge exponents, even or absurd moduli', async () => {
    const { keyPem } = makeCsr(dir, 'rsa:2048');
    csrKeys.push(keyPem);
    const n = rsaModulus(keyPem);
    const F4 = Buffer.from([1, 0, 1]);
    const junk = (): Buffer => Buffer.alloc(256, 0x5a);

    // e = 1: the "signature" is the padded digest itself, made without any private key, and it verifies.
    const one = rsaCsrWithNumbers(n, Buffer.from([1]), (cri) => forgedSignatureForExponentOne(cri, n.length));
    const der = Buffer.from(one.replace(/-----[A-Z ]+-----|\s+/g, ''), 'base64');
    const [cri, , sig] = children(parseOne(der).value) as [{ raw: Buffer }, unknown, { value: Buffer }];
    const eOne = createPublicKey({ key: { kty: 'RSA', n: n.toString('base64url'), e: 'AQ' }, format: 'jwk' });
    assert.ok(cryptoVerify('sha256', cri.raw, eOne, sig.value.subarray(1)), 'the forged CSR signature verifies with e = 1');

    const e3 = makeCsr(dir, 'rsa:2048:e3');
    csrKeys.push(e3.keyPem);
    const odd8192 = Buffer.alloc(1024, 0xc3);
    const evenN = Buffer.from(n);
    evenN[evenN.length - 1] = (evenN[evenN.length - 1] as number) & 0xfe;
    const cases: Array<[string, string, RegExp]> = [
      ['e = 1', one, /public exponent 1 is below 65537/],
      ['e = 3', e3.csrPem, /public exponent 3 is below 65537/],
      ['even e', rsaCsrWithNumbers(n, Buffer.from([1, 0, 2]), junk), /exponent is even/],
      ['e > 2^31-1', rsaCsrWithNumbers(n, Buffer.from([1, 0, 0, 0, 1]), junk), /larger than 2\^31-1/],
      ['even modulus', rsaCsrWithNumbers(evenN, F4, junk), /modulus is even/],
      ['8192-bit modulus', rsaCsrWithNumbers(odd8192, F4, () => Buffer.alloc(1024, 0x5a)), /RSA key size 8192/],
      ['2040-bit modulus', rsaCsrWithNumbers(Buffer.concat([Buffer.from([0xc3]), n.subarray(2)]), F4, junk), /RSA key size 2040/],
    ];
    for (const [what, csrPem, why] of cases) {
      const e = await refusal(ca.sign({ csrPem, identities: [ID], ttlSeconds: HOUR }));
      assert.equal(e.reason, 'key_type', `${what}: ${e.message}`);
      assert.equal(e.grpcCode, 3, what);
      assert.match(e.message, why, what);
      messages.push(e.message);
    }
  });

  it('refuses an ECDSA key whose point is not on its curve', async () => {
    const { keyPem } = makeCsr(dir, 'P-256');
    const spki = createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
    spki[spki.length - 1] = (spki[spki.length - 1] as number) ^ 0x01; // y no longer matches x
    const cri = seq(uint(Buffer.from([0])), seq(), spki, ctx(0, true, Buffer.alloc(0)));
    const csrPem = toPem('CERTIFICATE REQUEST', seq(cri, seq(oid('1.2.840.10045.4.3.2')), bits(Buffer.alloc(72, 1))));
    const e = await refusal(ca.sign({ csrPem, identities: [ID], ttlSeconds: HOUR }));
    assert.equal(e.reason, 'key_type');
    assert.equal(e.grpcCode, 3);
  });

  it('refuses to sign without an authenticated identity, or for one that is not a URI', async () => {
    const { csrPem } = makeCsr(dir, 'P-256');
    const none = await refusal(ca.sign({ csrPem, identities: [], ttlSeconds: HOUR }));
    assert.equal(none.reason, 'authentication_failure');
    const bad = await refusal(ca.sign({ csrPem, identities: ['not a uri'], ttlSeconds: HOUR }));
    assert.equal(bad.reason, 'id_mismatch');
    messages.push(none.message, bad.message);
  });

  it('puts no private key material in any error message or log line', () => {
    const caKey = fs.readFileSync(path.join(dir, 'store', 'ca-key.pem'), 'utf8');
    const fragments = keyFragments(caKey, ...csrKeys);
    assert.ok(fragments.length > 50 && messages.length >= 10);
    const logText = JSON.stringify(logs.records());
    assert.match(logText, /self-signed root ready/, 'the log was captured');
    for (const text of [...messages, logText]) {
      assert.doesNotMatch(text, /PRIVATE KEY/);
      for (const f of fragments) assert.ok(!text.includes(f), 'a private key fragment leaked');
    }
  });
});

describe('CA signing on worker threads (signWorkers)', { timeout: 120_000 }, () => {
  const dir = tmpDir();
  const logs = captureLog('trace');
  const keys: string[] = [];
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('issues what the calling thread issues, for P-256, P-384 and RSA CSRs, many at once', async () => {
    const ca = await MeshdAuthority.start({ mode: 'self-signed', store: new FolderRootStore(path.join(dir, 'store')), log: logs.log, checkIntervalMs: 0, signWorkers: 2 });
    try {
      const csrs = (['P-256', 'P-384', 'rsa:2048'] as KeySpec[]).map((spec, i) => makeCsr(dir, spec, `w${i}`));
      // Right after start the workers are still loading: this thread signs meanwhile, without waiting.
      const early = await ca.sign({ csrPem: (csrs[0] as { csrPem: string }).csrPem, identities: [ID], ttlSeconds: HOUR });
      assert.equal(new X509Certificate(early.certChainPem[0] as string).subjectAltName, `URI:${ID}`);
      await ca.signersReady();
      keys.push(...csrs.map((c) => c.keyPem));
      const root = new X509Certificate(ca.rootBundlePem());
      const issued = await Promise.all(Array.from({ length: 24 }, (_, i) => ca.sign({ csrPem: (csrs[i % 3] as { csrPem: string }).csrPem, identities: [ID], ttlSeconds: HOUR })));
      assert.equal(new Set(issued.map((c) => new X509Certificate(c.certChainPem[0] as string).serialNumber)).size, 24, 'a serial each');
      for (const [i, { certChainPem }] of issued.entries()) {
        const leaf = new X509Certificate(certChainPem[0] as string);
        assert.ok(leaf.checkIssued(root) && leaf.verify(root.publicKey), 'signed by the root');
        assert.equal(leaf.subjectAltName, `URI:${ID}`);
        assert.deepEqual(
          leaf.publicKey.export({ type: 'spki', format: 'der' }),
          createPublicKey((csrs[i % 3] as { keyPem: string }).keyPem).export({ type: 'spki', format: 'der' }),
        );
        assert.equal(certChainPem[1], ca.rootBundlePem());
      }
      const [ok, out] = verify(dir, { root: ca.rootBundlePem(), leaf: issued[1]?.certChainPem[0] as string });
      assert.ok(ok, out);
    } finally {
      ca.close();
    }
  });

  it('refuses as the calling thread does: an RSA key with e = 1, a bad signature, no CSR at all', async () => {
    const ca = await MeshdAuthority.start({ mode: 'self-signed', store: new FolderRootStore(path.join(dir, 'store')), log: logs.log, checkIntervalMs: 0, signWorkers: 1 });
    try {
      await ca.signersReady();
      const { csrPem, keyPem } = makeCsr(dir, 'rsa:2048', 'wbad');
      keys.push(keyPem);
      const n = rsaModulus(keyPem);
      const forged = rsaCsrWithNumbers(n, Buffer.from([1]), (cri) => forgedSignatureForExponentOne(cri, n.length));
      for (const [pem, reason, why] of [
        [forged, 'key_type', /public exponent 1/],
        [corruptCsrSignature(csrPem), 'csr_parse_error', /signature/],
        ['hello', 'csr_parse_error', /no PEM/],
      ] as const) {
        const e = await refusal(ca.sign({ csrPem: pem, identities: [ID], ttlSeconds: HOUR }));
        assert.equal(e.reason, reason);
        assert.equal(e.grpcCode, 3);
        assert.match(e.message, why);
      }
      assert.ok((await ca.sign({ csrPem, identities: [ID], ttlSeconds: HOUR })).certChainPem.length === 2, 'and signs the good one');
    } finally {
      ca.close();
    }
  });

  it('refuses at once past its queue (RESOURCE_EXHAUSTED, ca_busy), and signs again once it drains', async () => {
    const ca = await MeshdAuthority.start({
      mode: 'self-signed',
      store: new FolderRootStore(path.join(dir, 'store')),
      log: logs.log,
      checkIntervalMs: 0,
      signWorkers: 1,
      signQueue: 2,
    });
    try {
      await ca.signersReady();
      const { csrPem } = makeCsr(dir, 'P-256', 'wq');
      const outcomes = await Promise.allSettled(Array.from({ length: 12 }, () => ca.sign({ csrPem, identities: [ID], ttlSeconds: HOUR })));
      const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => o.reason as CaError);
      assert.equal(outcomes.length - refused.length, 2, 'as many as the queue holds are signed');
      for (const e of refused) {
        assert.ok(e instanceof CaError);
        assert.equal(e.reason, 'ca_busy');
        assert.equal(e.grpcCode, 8);
      }
      assert.equal((await ca.sign({ csrPem, identities: [ID], ttlSeconds: HOUR })).certChainPem.length, 2);
    } finally {
      ca.close();
    }
  });

  it('signs with a replaced plug-in CA from the next request on', async () => {
    const a = makePluginCa(dir, { name: 'wa', intermediateKey: 'P-256' });
    const b = makePluginCa(dir, { name: 'wb', intermediateKey: 'rsa:2048' });
    keys.push(a.caKeyPem, b.caKeyPem);
    const folder = path.join(dir, 'cacerts');
    writeCacerts(folder, a);
    const ca = await MeshdAuthority.start({ mode: 'plugin', store: new FolderRootStore(folder, 10_000), log: logs.log, checkIntervalMs: 0, signWorkers: 2 });
    try {
      await ca.signersReady();
      const { csrPem } = makeCsr(dir, 'P-256', 'wr');
      const issuerOf = async (): Promise<string> => new X509Certificate((await ca.sign({ csrPem, identities: [ID], ttlSeconds: HOUR })).certChainPem[0] as string).issuer;
      assert.match(await issuerOf(), /CN=wa Intermediate CA/);
      writeCacerts(folder, b);
      await ca.check();
      const after = await Promise.all([issuerOf(), issuerOf(), issuerOf(), issuerOf()]);
      for (const i of after) assert.match(i, /CN=wb Intermediate CA/);
    } finally {
      ca.close();
    }
  });

  it('puts no private key in any log line', () => {
    const text = JSON.stringify(logs.records());
    assert.doesNotMatch(text, /PRIVATE KEY/);
    for (const f of keyFragments(...keys, fs.readFileSync(path.join(dir, 'store', 'ca-key.pem'), 'utf8'))) assert.ok(!text.includes(f), 'a key fragment was logged');
  });
});
