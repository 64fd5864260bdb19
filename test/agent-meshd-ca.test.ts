/**
 * `meshd agent` against meshd's own CA (started with startMeshd, JWTs checked against a JWKS made
 * with jose): a first certificate over TLS 15012 with a bearer token, then renewals proved by mTLS
 * alone, with chains that openssl verifies against meshd's root. The plaintext port has no CA
 * (as istiod): an agent sent there is refused and retries.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import pino from 'pino';
import { type AgentHandle, startAgent } from '../src/agent/agent';
import type { CertEvent, WorkloadCert } from '../src/agent/cert-manager';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { spkiOf } from './helpers/agent-fake-ca';

const ID = 'spiffe://cluster.local/ns/default/sa/reviews';
const ISSUER = 'https://issuer.agent.test';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-agent-ca-'));
const lines: string[] = [];
const log = pino({ level: 'debug' }, { write: (l: string) => void lines.push(l) });
let meshd: MeshdHandle;
let tokenFile: string;
const agents: AgentHandle[] = [];

before(async () => {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  fs.writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
  const jwt = await new SignJWT({ sub: 'system:serviceaccount:default:reviews' })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(ISSUER)
    .setAudience('istio-ca')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(privateKey);
  tokenFile = path.join(dir, 'istio-token');
  fs.writeFileSync(tokenFile, jwt);
  meshd = await startMeshd({
    configDir: path.join(__dirname, '..', 'examples', 'bookinfo'),
    xdsPort: 0,
    secureXdsPort: 0,
    debugPort: 0,
    monitoringPort: -1,
    caDir: path.join(dir, 'ca'),
    jwks: path.join(dir, 'jwks.json'),
    jwtIssuer: ISSUER,
    jwtAudiences: ['istio-ca'],
    logger: log.child({ app: 'meshd' }),
  });
  await meshd.caReady();
  fs.writeFileSync(path.join(dir, 'root.pem'), meshd.caRootPem());
});
after(async () => {
  for (const a of agents) await a.close();
  await meshd?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** openssl verifies the chain to meshd's root, as of when the certificate arrived (short-lived ones may have expired since). */
function verifies(cert: WorkloadCert, name: string): void {
  const leaf = path.join(dir, `${name}-leaf.pem`);
  const untrusted = path.join(dir, `${name}-untrusted.pem`);
  fs.writeFileSync(leaf, cert.chainPem[0] as string);
  fs.writeFileSync(untrusted, cert.chainPem.slice(1).join('') || (cert.chainPem[0] as string));
  const r = spawnSync(
    'openssl',
    ['verify', '-attime', String(Math.floor(cert.receivedAt.getTime() / 1000)), '-CAfile', path.join(dir, 'root.pem'), '-untrusted', untrusted, leaf],
    { encoding: 'utf8', timeout: 10_000 },
  );
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.equal(cert.rootPem, meshd.caRootPem());
}

test('first certificate over 15012 with a JWT: files, chain to meshd root, key matches', { timeout: 30_000 }, async () => {
  const a = await startAgent({
    trustDomain: 'cluster.local',
    namespace: 'default',
    serviceAccount: 'reviews',
    keyType: 'ecdsa',
    ttlSeconds: 3600,
    log: log.child({ app: 'agent' }),
    ca: { address: `127.0.0.1:${meshd.secureXdsPort}`, plaintext: false, rootCertFile: path.join(dir, 'root.pem'), serverName: 'istiod.istio-system.svc', tokenFile },
    outputDir: path.join(dir, 'certs'),
  });
  agents.push(a);
  const c = await a.ready();
  verifies(c, 'first');
  assert.ok(spkiOf(fs.readFileSync(path.join(dir, 'certs', 'key.pem'), 'utf8')).equals(spkiOf(c.chainPem[0] as string)));
  assert.equal(fs.statSync(path.join(dir, 'certs', 'key.pem')).mode & 0o777, 0o600);
  const lifetime = c.notAfter.getTime() - c.notBefore.getTime();
  assert.ok(lifetime <= 3600_000 + 120_000 && lifetime >= 3600_000 - 120_000, `lifetime ${lifetime} ms`);
});

test('the plaintext port 15010 has no CA: an agent sent there is refused (UNIMPLEMENTED) and keeps retrying', { timeout: 30_000 }, async () => {
  const a = await startAgent({
    trustDomain: 'cluster.local',
    namespace: 'default',
    serviceAccount: 'reviews',
    keyType: 'ecdsa',
    ttlSeconds: 3600,
    retryInitialMs: 100,
    retryMaxMs: 200,
    log: log.child({ app: 'agent' }),
    ca: { address: `127.0.0.1:${meshd.xdsPort}`, plaintext: true, rootCertFile: path.join(dir, 'root.pem'), tokenFile },
  });
  agents.push(a);
  const failures: string[] = [];
  await new Promise<void>((resolve) => a.certs.on((e) => void (e.type === 'failed' && failures.push(e.error) >= 2 && resolve())));
  await a.close();
  for (const f of failures) assert.match(f, /UNIMPLEMENTED/);
  assert.equal(a.certs.current(), undefined, 'no certificate over plaintext');
});

test('over 15012: token first, then two renewals by mTLS alone; no agent key in any log', { timeout: 40_000 }, async () => {
  const own = path.join(dir, 'token-tls');
  fs.copyFileSync(tokenFile, own);
  const a = await startAgent({
    trustDomain: 'cluster.local',
    namespace: 'default',
    serviceAccount: 'reviews',
    keyType: 'rsa',
    ttlSeconds: 4,
    graceJitter: 0,
    retryInitialMs: 200,
    retryMaxMs: 1000,
    log: log.child({ app: 'agent' }),
    ca: { address: `127.0.0.1:${meshd.secureXdsPort}`, plaintext: false, rootCertFile: path.join(dir, 'root.pem'), serverName: 'istiod.istio-system.svc', tokenFile: own },
  });
  agents.push(a);
  const events: CertEvent[] = [];
  a.certs.on((e) => events.push(e));
  const first = await a.ready();
  fs.rmSync(own);
  const third = await new Promise<WorkloadCert>((resolve) => a.certs.on((e) => void (e.type === 'rotated' && e.cert.version === 3 && resolve(e.cert))));
  const second = events.find((e): e is Extract<CertEvent, { type: 'rotated' }> => e.type === 'rotated' && e.cert.version === 2)?.cert as WorkloadCert;
  for (const [c, n] of [
    [first, 'v1'],
    [second, 'v2'],
    [third, 'v3'],
  ] as const) {
    verifies(c, n);
    assert.match(new X509Certificate(c.chainPem[0] as string).subjectAltName ?? '', new RegExp(`URI:${ID}`));
  }
  assert.equal(new Set([first, second, third].map((c) => c.serialNumber)).size, 3);
  const text = lines.join('');
  for (const c of [first, second, third])
    for (const l of c.keyPem.split('\n').filter((x) => x.length > 20 && !x.startsWith('-----'))) assert.ok(!text.includes(l), 'key text in a log');
});
