/**
 * `meshd agent` against a CA speaking Istio's CreateCertificate (test/helpers/agent-fake-ca.ts):
 * CSRs that openssl accepts, files that openssl verifies, renewal at half-life with the old
 * certificate kept while the CA fails, mTLS renewals, SDS to an Envoy-like client over a Unix
 * socket, and no private key in any log line.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { type AgentHandle, type AgentOptions, startAgent } from '../src/agent/agent';
import { CaClient } from '../src/agent/ca-client';
import { type CertEvent, CertManager, type Signer, type WorkloadCert } from '../src/agent/cert-manager';
import { generateKeyAndCsr } from '../src/agent/csr';
import { SDS_PATH, SdsServer } from '../src/agent/sds-server';
import { buildBootstrap } from '../src/cli/bootstrap';
import type { DiscoveryRequestMsg, DiscoveryResponseMsg } from '../src/xds/connection';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { FakeCa, type FakeCaAnswer, spkiOf } from './helpers/agent-fake-ca';

const ID = 'spiffe://cluster.local/ns/default/sa/reviews';
const TOKEN = 'reviews-token';
let protos: EnvoyProtos;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-agent-'));
const cleanups: Array<() => unknown> = [];

before(() => {
  protos = new EnvoyProtos();
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function capture(): { log: pino.Logger; text: () => string } {
  const lines: string[] = [];
  return { log: pino({ level: 'trace' }, { write: (l: string) => void lines.push(l) }), text: () => lines.join('') };
}

/** The base64 body of a PEM key: what must never appear in a log. */
const keyBody = (keyPem: string): string[] => keyPem.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'));
function assertNoKeys(logText: string, keys: readonly string[]): void {
  assert.ok(keys.length > 0);
  for (const k of keys) for (const line of keyBody(k)) assert.ok(!logText.includes(line), 'a private key line appears in the log');
}

async function fakeCa(tls = false): Promise<{ ca: FakeCa; port: number }> {
  const ca = new FakeCa();
  ca.tokens.set(TOKEN, ID);
  const port = await ca.listen(tls);
  cleanups.push(() => ca.close());
  return { ca, port };
}

let n = 0;
/**
 * An agent for `reviews` in `default`, with a token file and the fake CA's root as its configured
 * root (`--ca-root-cert`); over TLS when `tls` is set.
 */
async function agent(
  port: number,
  extra: Partial<AgentOptions> & { log: pino.Logger },
  rootPem: string,
  tls = false,
): Promise<{ a: AgentHandle; dir: string; tokenFile: string; events: CertEvent[] }> {
  const dir = path.join(tmp, `a${++n}`);
  fs.mkdirSync(dir);
  const tokenFile = path.join(dir, 'istio-token');
  fs.writeFileSync(tokenFile, `${TOKEN}\n`);
  const rootCertFile = path.join(dir, 'ca-root.pem');
  fs.writeFileSync(rootCertFile, rootPem);
  const caOpts: AgentOptions['ca'] = tls
    ? { address: `127.0.0.1:${port}`, plaintext: false, rootCertFile, serverName: 'istiod.istio-system.svc', tokenFile }
    : { address: `127.0.0.1:${port}`, plaintext: true, rootCertFile, tokenFile, clusterId: 'Kubernetes' };
  const a = await startAgent({
    trustDomain: 'cluster.local',
    namespace: 'default',
    serviceAccount: 'reviews',
    keyType: 'ecdsa',
    ttlSeconds: 3600,
    graceJitter: 0,
    retryInitialMs: 100,
    retryMaxMs: 400,
    ca: caOpts,
    outputDir: path.join(dir, 'certs'),
    protos,
    ...extra,
  });
  cleanups.push(() => a.close());
  const events: CertEvent[] = [];
  a.certs.on((e) => events.push(e));
  return { a, dir, tokenFile, events };
}

/** Resolves at the next rotation event that satisfies `pred`. */
function nextRotation(a: AgentHandle, pred: (c: WorkloadCert) => boolean = () => true): Promise<WorkloadCert> {
  return new Promise((resolve) => {
    const off = a.certs.on((e) => {
      if (e.type === 'rotated' && pred(e.cert)) {
        off();
        resolve(e.cert);
      }
    });
  });
}

/** The versions of every rotation seen so far. */
const rotatedVersions = (events: readonly CertEvent[]): number[] => events.flatMap((e) => (e.type === 'rotated' ? [e.cert.version] : []));

function openssl(args: string[], input?: string): { ok: boolean; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8', input, timeout: 10_000 });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

test('CSRs (ECDSA P-256 and RSA 2048) carry the SPIFFE URI SAN and verify with openssl req -verify', () => {
  for (const [keyType, alg] of [
    ['ecdsa', 'id-ecPublicKey'],
    ['rsa', 'rsaEncryption'],
  ] as const) {
    const { csrPem, keyPem } = generateKeyAndCsr({ spiffeId: ID, keyType });
    const r = openssl(['req', '-verify', '-noout', '-text'], csrPem);
    assert.ok(r.ok, r.out);
    assert.match(r.out, /verify OK/);
    assert.match(r.out, new RegExp(`Public Key Algorithm: ${alg}`));
    assert.match(r.out, /Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews\s/);
    assert.ok(spkiOf(keyPem).length > 0);
    if (keyType === 'rsa') assert.match(r.out, /Public-Key: \(2048 bit\)/);
    else assert.match(r.out, /NIST CURVE: P-256/);
  }
});

test('renewal is due when half the lifetime is left (Istio SECRET_GRACE_PERIOD_RATIO)', () => {
  const m = new CertManager({
    signer: { sign: () => Promise.reject(new Error('unused')) },
    spiffeId: ID,
    keyType: 'ecdsa',
    ttlSeconds: 10,
    graceJitter: 0,
    trustedRootsPem: () => undefined,
    log: pino({ level: 'silent' }),
    now: () => 1000,
  });
  const c = { receivedAt: new Date(0), notAfter: new Date(10_000) } as WorkloadCert;
  assert.equal(m.renewDelayMs(c), 4000); // due at 5 s; now is 1 s
  const j = new CertManager({
    signer: { sign: () => Promise.reject(new Error('unused')) },
    spiffeId: ID,
    keyType: 'ecdsa',
    ttlSeconds: 10,
    graceJitter: 0.01,
    random: () => 1,
    trustedRootsPem: () => undefined,
    log: pino({ level: 'silent' }),
    now: () => 0,
  });
  assert.equal(j.renewDelayMs(c), 4900); // +1 % of the lifetime earlier at most
});

test('files: chain verifies with openssl, key matches and is 0600; gRPC and Envoy bootstraps written', { timeout: 30_000 }, async () => {
  const { ca, port } = await fakeCa();
  const cap = capture();
  const env = { POD_NAME: 'reviews-v1-1', POD_NAMESPACE: 'default', INSTANCE_IP: '10.0.0.9', SERVICE_ACCOUNT: 'reviews' };
  const boot = buildBootstrap({ env, domain: 'cluster.local' }).bootstrap as Record<string, unknown>;
  const node = boot['node'] as { id: string; metadata: Record<string, unknown> };
  const { a, dir } = await agent(
    port,
    {
      log: cap.log,
      keyType: 'rsa',
      grpcBootstrap: { file: path.join(tmp, 'grpc', 'bootstrap.json'), xdsAddress: `127.0.0.1:${port}`, plaintext: true, node },
      envoyBootstrap: { file: path.join(tmp, 'envoy', 'envoy-rev.json'), bootstrap: boot },
    },
    ca.root.pem,
  );
  const cert = await a.ready();
  const certs = path.join(dir, 'certs');
  const chain = fs.readFileSync(path.join(certs, 'cert-chain.pem'), 'utf8');
  const key = fs.readFileSync(path.join(certs, 'key.pem'), 'utf8');
  const root = fs.readFileSync(path.join(certs, 'root-cert.pem'), 'utf8');
  assert.equal(fs.statSync(path.join(certs, 'key.pem')).mode & 0o777, 0o600);
  assert.equal(root, ca.root.pem);
  assert.equal(chain, cert.certChainPem);
  const [leaf, ...rest] = chain.split(/(?<=-----END CERTIFICATE-----\n)/);
  assert.equal(rest.length, 2, 'leaf, intermediate, root');
  fs.writeFileSync(path.join(dir, 'leaf.pem'), leaf as string);
  fs.writeFileSync(path.join(dir, 'untrusted.pem'), rest.join(''));
  const v = openssl(['verify', '-CAfile', path.join(certs, 'root-cert.pem'), '-untrusted', path.join(dir, 'untrusted.pem'), path.join(dir, 'leaf.pem')]);
  assert.ok(v.ok, v.out);
  assert.ok(spkiOf(key).equals(spkiOf(leaf as string)), 'key.pem is the key of the leaf');
  assert.match(openssl(['x509', '-noout', '-ext', 'subjectAltName', '-in', path.join(dir, 'leaf.pem')]).out, /URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews/);
  assert.deepEqual(
    ca.calls.map((c) => [c.via, c.identity, c.ttlSeconds, c.clusterId]),
    [['token', ID, 3600, 'Kubernetes']],
  );
  assert.equal(fs.readdirSync(certs).filter((f) => f.endsWith('.tmp')).length, 0, 'no temporary files left');

  const gb = JSON.parse(fs.readFileSync(path.join(tmp, 'grpc', 'bootstrap.json'), 'utf8'));
  assert.deepEqual(gb.certificate_providers, {
    default: {
      plugin_name: 'file_watcher',
      config: {
        certificate_file: path.join(certs, 'cert-chain.pem'),
        private_key_file: path.join(certs, 'key.pem'),
        ca_certificate_file: path.join(certs, 'root-cert.pem'),
        refresh_interval: '900s',
      },
    },
  });
  assert.deepEqual(gb.xds_servers, [{ server_uri: `127.0.0.1:${port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }]);
  assert.equal(gb.node.id, 'sidecar~10.0.0.9~reviews-v1-1.default~default.svc.cluster.local');
  assert.equal(gb.node.metadata.GENERATOR, 'grpc');
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(tmp, 'envoy', 'envoy-rev.json'), 'utf8')), boot);
  assertNoKeys(cap.text(), [key]);
});

test('rotation at half-life: two rotations, a new key and serial each time, files follow; renewals over TLS prove themselves by mTLS', { timeout: 30_000 }, async () => {
  const { ca, port } = await fakeCa(true);
  const cap = capture();
  const { a, dir, tokenFile, events } = await agent(port, { log: cap.log, ttlSeconds: 4 }, ca.root.pem, true);
  const first = await a.ready();
  // From now on only the current certificate can prove who we are.
  fs.rmSync(tokenFile);
  const third = await nextRotation(a, (c) => c.version === 3);
  const rotated = events.filter((e): e is Extract<CertEvent, { type: 'rotated' }> => e.type === 'rotated' && e.cert.version > 1);
  assert.deepEqual(
    rotated.map((e) => [e.previous?.version, e.cert.version]),
    [
      [1, 2],
      [2, 3],
    ],
  );
  assert.equal(third, rotated[1]?.cert);
  const all = [first, ...rotated.map((e) => e.cert)];
  assert.equal(new Set(all.map((c) => c.serialNumber)).size, 3);
  assert.equal(new Set(all.map((c) => c.keyPem)).size, 3, 'a fresh key per certificate');
  for (let i = 1; i < all.length; i++) {
    const prev = all[i - 1] as WorkloadCert;
    const cur = all[i] as WorkloadCert;
    // Not before half of the previous certificate's lifetime was left (timers never fire early by more than a tick).
    const due = prev.notAfter.getTime() - 0.5 * (prev.notAfter.getTime() - prev.receivedAt.getTime());
    assert.ok(cur.receivedAt.getTime() >= due - 20, `rotation ${cur.version} came before the half-life`);
    // And while the previous one was still valid.
    assert.ok(cur.receivedAt.getTime() < prev.notAfter.getTime() + 1000, `rotation ${cur.version} came after expiry`);
  }
  assert.deepEqual(
    ca.calls.map((c) => [c.via, c.identity, c.ttlSeconds]),
    [
      ['token', ID, 4],
      ['mtls', ID, 4],
      ['mtls', ID, 4],
    ],
  );
  const certs = path.join(dir, 'certs');
  assert.equal(fs.readFileSync(path.join(certs, 'cert-chain.pem'), 'utf8'), third.certChainPem);
  assert.ok(spkiOf(fs.readFileSync(path.join(certs, 'key.pem'), 'utf8')).equals(spkiOf(third.chainPem[0] as string)));
  assertNoKeys(
    cap.text(),
    all.map((c) => c.keyPem),
  );
});

test('a failing CA: the current certificate is kept, requests are retried with backoff, then rotation resumes', { timeout: 30_000 }, async () => {
  const { ca, port } = await fakeCa();
  const cap = capture();
  const { a, dir, events } = await agent(port, { log: cap.log, ttlSeconds: 4 }, ca.root.pem);
  const first = await a.ready();
  ca.failing = true;
  const fails = await new Promise<Extract<CertEvent, { type: 'failed' }>[]>((resolve) => {
    const off = a.certs.on(() => {
      const f = events.filter((e): e is Extract<CertEvent, { type: 'failed' }> => e.type === 'failed');
      if (f.length >= 3) {
        off();
        resolve(f);
      }
    });
  });
  assert.deepEqual(
    fails.map((f) => [f.attempt, f.keptVersion]),
    [
      [1, 1],
      [2, 1],
      [3, 1],
    ],
  );
  assert.deepEqual(
    fails.map((f) => f.retryInMs),
    [100, 200, 400],
  );
  assert.match(fails[0]?.error ?? '', /UNAVAILABLE: CA is down/);
  assert.equal(a.certs.current()?.serialNumber, first.serialNumber, 'the old certificate stays in use');
  assert.equal(fs.readFileSync(path.join(dir, 'certs', 'cert-chain.pem'), 'utf8'), first.certChainPem);
  ca.failing = false;
  const second = await nextRotation(a);
  assert.equal(second.version, 2);
  assert.notEqual(second.serialNumber, first.serialNumber);
  assert.equal(fs.readFileSync(path.join(dir, 'certs', 'cert-chain.pem'), 'utf8'), second.certChainPem);
  assert.ok(ca.failures >= 3);
  assertNoKeys(cap.text(), [first.keyPem, second.keyPem]);
});

test('an answer for another key or another identity is refused, and the error holds no key material', { timeout: 30_000 }, async () => {
  const { ca, port } = await fakeCa();
  const tokenFile = path.join(tmp, 'wrong-token');
  fs.writeFileSync(tokenFile, TOKEN);
  const client = new CaClient({ address: `127.0.0.1:${port}`, plaintext: true, tokenFile });
  const other = generateKeyAndCsr({ spiffeId: ID, keyType: 'ecdsa' });
  ca.tokens.set('ratings-token', 'spiffe://cluster.local/ns/default/sa/ratings');
  const cases: Array<[string, Signer, RegExp]> = [
    // The CA signs a different CSR than the one the agent made.
    ['another key', { sign: (c) => client.sign({ ...c, csrPem: other.csrPem }) }, /certificate for another key/],
    // The CA signs our key for another identity.
    [
      'another identity',
      new CaClient({ address: `127.0.0.1:${port}`, plaintext: true, tokenFile: (fs.writeFileSync(`${tokenFile}2`, 'ratings-token'), `${tokenFile}2`) }),
      /without the identity spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews/,
    ],
  ];
  for (const [what, signer, re] of cases) {
    const cap = capture();
    const keys: string[] = [other.keyPem];
    const m = new CertManager({
      signer: { sign: (c) => (keys.push(c.csrPem), signer.sign(c)) },
      spiffeId: ID,
      keyType: 'ecdsa',
      ttlSeconds: 60,
      retryInitialMs: 60_000,
      trustedRootsPem: () => ca.root.pem,
      log: cap.log,
    });
    const failed = new Promise<Extract<CertEvent, { type: 'failed' }>>((resolve) => m.on((e) => void (e.type === 'failed' && resolve(e))));
    m.start();
    const f = await failed;
    m.stop();
    assert.match(f.error, re, what);
    assert.equal(m.current(), undefined, what);
    assertNoKeys(cap.text() + f.error, [other.keyPem]);
  }
});

test('plaintext: a chain that does not lead to the configured root is refused with a clear log line, and the agent keeps its certificate', { timeout: 30_000 }, async () => {
  const { ca, port } = await fakeCa();
  const cap = capture();
  const { a, dir, events } = await agent(port, { log: cap.log, ttlSeconds: 4 }, ca.root.pem);
  const first = await a.ready();
  const chainFile = path.join(dir, 'certs', 'cert-chain.pem');
  const failures = (): Extract<CertEvent, { type: 'failed' }>[] => events.filter((e): e is Extract<CertEvent, { type: 'failed' }> => e.type === 'failed');
  const cases: Array<[FakeCaAnswer, RegExp]> = [
    // The answer ends in a root of its own: the last certificate is not trusted for being last.
    [
      'foreign-root',
      /^the CA's chain does not verify against the configured root \(--ca-root-cert\): the chain does not lead to a configured root: its last certificate \(subject "O=meshd agent test root".*\) is neither a configured root nor signed by one$/,
    ],
    // The answer ends in the real root, but the foreign intermediate (same name) was not signed by it.
    [
      'claims-our-root',
      /^the CA's chain does not verify against the configured root \(--ca-root-cert\): certificate 2 of the chain \(subject "O=meshd agent test intermediate".*\) is not signed by certificate 3/,
    ],
  ];
  for (const [answer, re] of cases) {
    ca.answer = answer;
    const before = failures().length;
    // Two refusals in a row, or (the defect) a rotation to the foreign certificate.
    await new Promise<void>((resolve) => {
      const off = a.certs.on(() => {
        if (failures().length >= before + 2 || rotatedVersions(events).some((v) => v > 1)) {
          off();
          resolve();
        }
      });
    });
    assert.deepEqual(rotatedVersions(events), [1], `${answer}: the foreign certificate was taken`);
    const f = failures()[before] as Extract<CertEvent, { type: 'failed' }>;
    assert.match(f.error, re, answer);
    assert.equal(f.keptVersion, 1, answer);
    assert.equal(a.certs.current()?.serialNumber, first.serialNumber, `${answer}: the previous certificate stays in use`);
    assert.equal(fs.readFileSync(chainFile, 'utf8'), first.certChainPem, `${answer}: the files keep the previous certificate`);
    assert.equal(fs.readFileSync(path.join(dir, 'certs', 'root-cert.pem'), 'utf8'), ca.root.pem, `${answer}: the trusted root is still the configured one`);
  }
  const refused = cap
    .text()
    .split('\n')
    .filter((l) => l.includes("refused the CA's certificate; keeping the current certificate and retrying"));
  assert.ok(refused.length >= 4, cap.text());
  const line = JSON.parse(refused[0] as string) as Record<string, unknown>;
  assert.equal(line['level'], 50, 'logged as an error');
  assert.equal(line['keptSerial'], first.serialNumber);
  assert.match(String(line['error']), /does not verify against the configured root/);
  assert.ok(
    rotatedVersions(events).every((v) => v === 1),
    'no foreign certificate was ever taken',
  );
  // The real chain again: rotation resumes.
  ca.answer = 'good';
  const second = await nextRotation(a);
  assert.equal(second.version, 2);
  assertNoKeys(cap.text(), [first.keyPem, second.keyPem]);
});

test('the agent refuses to start without a readable root, over plaintext as over TLS', { timeout: 30_000 }, async () => {
  const { port } = await fakeCa();
  const dir = path.join(tmp, 'noroot');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'token'), TOKEN);
  fs.writeFileSync(path.join(dir, 'garbage.pem'), 'not a certificate\n');
  const base = {
    trustDomain: 'cluster.local',
    namespace: 'default',
    serviceAccount: 'reviews',
    keyType: 'ecdsa' as const,
    ttlSeconds: 3600,
    log: pino({ level: 'silent' }),
    protos,
  };
  for (const plaintext of [true, false]) {
    const ca = { address: `127.0.0.1:${port}`, plaintext, tokenFile: path.join(dir, 'token') };
    await assert.rejects(
      startAgent({ ...base, ca }),
      /^Error: no trusted root: --ca-root-cert is required \(the agent verifies every certificate chain the CA returns against it\); mount ConfigMap istio-ca-root-cert there/,
    );
    await assert.rejects(startAgent({ ...base, ca: { ...ca, rootCertFile: path.join(dir, 'missing.pem') } }), /no trusted root: --ca-root-cert .*missing\.pem cannot be read/);
    await assert.rejects(
      startAgent({ ...base, ca: { ...ca, rootCertFile: path.join(dir, 'garbage.pem') } }),
      /no trusted root: --ca-root-cert .*garbage\.pem: the configured root bundle holds no certificate/,
    );
  }
});

test('the SDS socket is 0600 even under umask 000, bound in a private folder first, and serves', { timeout: 30_000 }, async () => {
  const parent = path.join(tmp, 'umask');
  const sock = path.join(parent, 'run', 'socket');
  const previous = process.umask(0);
  let server: SdsServer | undefined;
  try {
    server = new SdsServer({ protos, log: pino({ level: 'silent' }), current: () => undefined });
    await server.listen(sock);
  } finally {
    process.umask(previous);
  }
  cleanups.push(() => server?.close());
  assert.equal(fs.statSync(sock).mode & 0o777, 0o600, 'only the agent user may connect');
  assert.ok(fs.statSync(sock).isSocket());
  assert.equal(fs.statSync(path.dirname(sock)).mode & 0o777, 0o700, 'a folder the agent creates is private too');
  assert.deepEqual(fs.readdirSync(path.dirname(sock)), ['socket'], 'the staging folder is gone');
  // It serves on its final path.
  const client = new grpc.Client(`unix:${sock}`, grpc.credentials.createInsecure());
  cleanups.push(() => client.close());
  await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 5000, (err) => (err ? reject(err) : resolve())));
  await server.close();
  assert.equal(fs.existsSync(sock), false, 'removed on close');
});

/** An Envoy-like SDS stream: send requests, await responses in order. */
function sdsStream(client: grpc.Client): { send: (r: DiscoveryRequestMsg) => void; next: () => Promise<DiscoveryResponseMsg>; received: () => number; end: () => void } {
  const call = client.makeBidiStreamRequest(
    SDS_PATH,
    (v: DiscoveryRequestMsg) => Buffer.from(protos.DiscoveryRequest.encode(protos.DiscoveryRequest.fromObject(v as Record<string, unknown>)).finish()),
    (b: Buffer) => protos.DiscoveryResponse.toObject(protos.DiscoveryResponse.decode(b), { defaults: true }) as DiscoveryResponseMsg,
  );
  const queue: DiscoveryResponseMsg[] = [];
  const waiting: Array<(r: DiscoveryResponseMsg) => void> = [];
  let count = 0;
  call.on('data', (r: DiscoveryResponseMsg) => {
    count++;
    const w = waiting.shift();
    if (w) w(r);
    else queue.push(r);
  });
  call.on('error', () => undefined);
  return {
    send: (r) => call.write(r),
    next: () => {
      const r = queue.shift();
      return r ? Promise.resolve(r) : new Promise((resolve) => waiting.push(resolve));
    },
    received: () => count,
    end: () => call.cancel(),
  };
}

/** The fields of an SDS Secret the test reads. */
interface SdsSecret {
  name: string;
  tls_certificate: { certificate_chain: { inline_bytes: string }; private_key: { inline_bytes: string } };
  validation_context: { trusted_ca: { inline_bytes: string } };
}
const secretOf = (r: DiscoveryResponseMsg, i = 0): SdsSecret => protos.decode(TypeUrl.Secret, (r.resources[i] as { value: Uint8Array }).value) as unknown as SdsSecret;
const pemOf = (b64: string): string => Buffer.from(b64, 'base64').toString('utf8');

test('SDS over a Unix socket: default and ROOTCA, ACKs, and a new default after rotation', { timeout: 30_000 }, async () => {
  const { ca, port } = await fakeCa();
  const cap = capture();
  const sock = path.join(tmp, 'sds', 'socket');
  const { a } = await agent(port, { log: cap.log, ttlSeconds: 4, sdsSocket: sock }, ca.root.pem);
  const client = new grpc.Client(`unix:${sock}`, grpc.credentials.createInsecure());
  cleanups.push(() => client.close());
  const node = { id: 'sidecar~10.0.0.9~reviews-v1-1.default~default.svc.cluster.local' };
  // Envoy opens one stream per secret; it may ask before the first certificate exists.
  const def = sdsStream(client);
  const root = sdsStream(client);
  def.send({ node, type_url: TypeUrl.Secret, resource_names: ['default'] });
  root.send({ node, type_url: TypeUrl.Secret, resource_names: ['ROOTCA'] });
  const r1 = await def.next();
  const first = a.certs.current() as WorkloadCert;
  assert.equal(r1.type_url, TypeUrl.Secret);
  assert.equal(r1.version_info, String(first.version));
  const s1 = secretOf(r1);
  assert.equal(s1.name, 'default');
  assert.equal(pemOf(s1.tls_certificate.certificate_chain.inline_bytes), first.certChainPem);
  assert.ok(spkiOf(pemOf(s1.tls_certificate.private_key.inline_bytes)).equals(spkiOf(first.chainPem[0] as string)), 'the key of the leaf');
  def.send({ node, type_url: TypeUrl.Secret, resource_names: ['default'], version_info: r1.version_info, response_nonce: r1.nonce });
  const rr = await root.next();
  const rs = secretOf(rr);
  assert.equal(rs.name, 'ROOTCA');
  assert.equal(pemOf(rs.validation_context.trusted_ca.inline_bytes), ca.root.pem);
  root.send({ node, type_url: TypeUrl.Secret, resource_names: ['ROOTCA'], version_info: rr.version_info, response_nonce: rr.nonce });

  // Rotation: the default stream gets the new certificate unasked; ROOTCA did not change.
  const r2 = await def.next();
  const second = a.certs.current() as WorkloadCert;
  assert.equal(second.version, first.version + 1);
  assert.equal(r2.version_info, String(second.version));
  assert.notEqual(r2.nonce, r1.nonce);
  assert.equal(pemOf(secretOf(r2).tls_certificate.certificate_chain.inline_bytes), second.certChainPem);
  def.send({ node, type_url: TypeUrl.Secret, resource_names: ['default'], version_info: r2.version_info, response_nonce: r2.nonce });
  assert.equal(root.received(), 1, 'the unchanged root is not pushed again');
  await new Promise((r) => setTimeout(r, 100));
  const states = a.sds?.streamStates() ?? [];
  assert.deepEqual(states.map((s) => [s.names.join(), s.versionAcked]).sort(), [
    ['ROOTCA', '1'],
    ['default', String(second.version)],
  ]);
  // A NACK is recorded, not answered.
  def.send({
    node,
    type_url: TypeUrl.Secret,
    resource_names: ['default'],
    version_info: r1.version_info,
    response_nonce: r2.nonce,
    error_detail: { code: 3, message: 'bad secret (test)' },
  });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(a.sds?.streamStates().find((s) => s.names[0] === 'default')?.lastNack, 'bad secret (test)');
  // One stream may ask for both.
  const both = sdsStream(client);
  both.send({ node, type_url: TypeUrl.Secret, resource_names: ['ROOTCA', 'default'] });
  const rb = await both.next();
  assert.deepEqual([0, 1].map((i) => secretOf(rb, i).name).sort(), ['ROOTCA', 'default']);
  for (const s of [def, root, both]) s.end();
  assertNoKeys(cap.text(), [first.keyPem, second.keyPem]);
});

test('meshd agent (CLI): flags and environment, files written, SIGTERM stops it cleanly, no key in its output', { timeout: 40_000 }, async () => {
  const { ca, port } = await fakeCa();
  const dir = path.join(tmp, 'cli');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'token'), TOKEN);
  fs.writeFileSync(path.join(dir, 'root-cert.pem'), ca.root.pem);
  const sock = path.join(dir, 'sds.sock');
  const args = [
    '--import',
    'tsx',
    path.join(__dirname, '..', 'src', 'main.ts'),
    '--log-level',
    'debug',
    'agent',
    '--plaintext',
    '--ca-address',
    `127.0.0.1:${port}`,
    '--token-file',
    path.join(dir, 'token'),
    '--ca-root-cert',
    path.join(dir, 'root-cert.pem'),
    '--output-dir',
    path.join(dir, 'certs'),
    '--grpc-bootstrap',
    path.join(dir, 'grpc.json'),
    '--sds-socket',
    sock,
    '--cert-ttl',
    '1h30m',
    '--key-type',
    'rsa',
    '--labels-file',
    path.join(dir, 'none'),
  ];
  const child = spawn(process.execPath, args, {
    cwd: path.join(__dirname, '..'),
    env: { ...process.env, POD_NAMESPACE: 'default', SERVICE_ACCOUNT: 'reviews', POD_NAME: 'reviews-v1-1', INSTANCE_IP: '10.0.0.9' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  cleanups.push(() => child.exitCode === null && child.kill('SIGKILL'));
  const chainFile = path.join(dir, 'certs', 'cert-chain.pem');
  while (!fs.existsSync(chainFile) || !fs.existsSync(sock)) {
    if (child.exitCode !== null) assert.fail(`agent exited: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(
    ca.calls.map((c) => [c.via, c.identity, c.ttlSeconds]),
    [['token', ID, 5400]],
  );
  const key = fs.readFileSync(path.join(dir, 'certs', 'key.pem'), 'utf8');
  assert.ok(spkiOf(key).equals(spkiOf(fs.readFileSync(chainFile, 'utf8'))));
  assert.match(key, /PRIVATE KEY/);
  const gb = JSON.parse(fs.readFileSync(path.join(dir, 'grpc.json'), 'utf8'));
  assert.equal(gb.node.id, 'sidecar~10.0.0.9~reviews-v1-1.default~default.svc.cluster.local');
  assert.equal(gb.node.metadata.SERVICE_ACCOUNT, 'reviews');
  child.kill('SIGTERM');
  assert.equal(await exited, 0, out);
  assert.equal(fs.existsSync(sock), false, 'the socket is removed on exit');
  assert.match(out, /workload certificate issued/);
  assertNoKeys(out, [key]);
});
