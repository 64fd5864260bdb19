/**
 * The CA's JWT authenticator, tightened: a remote JWKS only over https (refused at option
 * validation, naming the flag), `exp` required, `iat` not in the future beyond the clock skew, a
 * bounded lifetime (exp − iat, or exp − now without `iat`), asymmetric algorithms only, and a
 * remote JWKS whose size is bounded. Tokens and JWKS are real (jose); the remote JWKS is served
 * over real HTTPS on 127.0.0.1; the lifetime bound is also checked through a running meshd's
 * CreateCertificate over TLS.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type CryptoKey, type JWTPayload, SignJWT, exportJWK, generateKeyPair, generateSecret } from 'jose';
import pino from 'pino';
import { CaClient } from '../src/agent/ca-client';
import { generateKeyAndCsr } from '../src/agent/csr';
import { JWT_DEFAULTS, JwtAuthenticator, type JwksFetch } from '../src/ca/authn';
import { CaError } from '../src/ca/types';
import { withDefaults } from '../src/config/options';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { issue, makeCa } from './helpers/certs';
import { portArgs } from './helpers/meshd-process';

const ISSUER = 'https://issuer.jwt.test';
const AUDIENCE = 'istio-ca';
const SUB = 'system:serviceaccount:default:reviews';
const ID = 'spiffe://cluster.local/ns/default/sa/reviews';
const NOW = new Date('2030-01-01T00:00:00Z');
const T = Math.floor(NOW.getTime() / 1000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-ca-jwt-'));
let privateKey: CryptoKey;
let jwksFile: string;
let jwksJson: string;

before(async () => {
  const kp = await generateKeyPair('ES256');
  privateKey = kp.privateKey;
  jwksJson = JSON.stringify({ keys: [{ ...(await exportJWK(kp.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] });
  jwksFile = path.join(dir, 'jwks.json');
  fs.writeFileSync(jwksFile, jwksJson);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A token with exactly these time claims (undefined: left out). */
function token(times: { iat?: number; exp?: number; nbf?: number }, claims: JWTPayload = { sub: SUB }): Promise<string> {
  return new SignJWT({ ...claims, ...times }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(ISSUER).setAudience(AUDIENCE).sign(privateKey);
}

function authenticator(o: { maxLifetimeSeconds?: number; jwks?: string; fetch?: JwksFetch } = {}): JwtAuthenticator {
  return new JwtAuthenticator({ jwks: o.jwks ?? jwksFile, issuer: ISSUER, audiences: [AUDIENCE], trustDomain: 'cluster.local', now: () => NOW, ...o });
}

async function outcome(a: JwtAuthenticator, t: string): Promise<string> {
  try {
    const c = await a.authenticate({ metadata: { authorization: [`Bearer ${t}`] } });
    return `ok ${c?.identities.join(',')}`;
  } catch (err) {
    assert.ok(err instanceof CaError, String(err));
    assert.ok(!err.message.includes(t), 'the token is never quoted');
    return `${err.reason}: ${err.message}`;
  }
}

describe('JWKS location', () => {
  test('an http:// JWKS is refused at option validation with an error naming --jwks; https:// and files pass', () => {
    const base = { configDir: 'examples/bookinfo', jwtIssuer: ISSUER, jwtAudiences: [AUDIENCE] };
    assert.throws(
      () => withDefaults({ ...base, jwks: 'http://keys.example.com/jwks.json' }),
      /^Error: --jwks http:\/\/keys\.example\.com\/jwks\.json: a remote JWKS must be fetched over https:\/\//,
    );
    assert.throws(() => withDefaults({ ...base, jwks: 'HTTP://keys.example.com/jwks.json' }), /--jwks .*https:\/\//);
    assert.throws(() => withDefaults({ ...base, jwks: 'ftp://keys.example.com/jwks.json' }), /--jwks .*over ftp:\/\//);
    assert.equal(withDefaults({ ...base, jwks: 'https://keys.example.com/jwks.json' }).jwks, 'https://keys.example.com/jwks.json');
    assert.equal(withDefaults({ ...base, jwks: jwksFile }).jwks, jwksFile);
    // Embedders that build the authenticator themselves get the same refusal.
    assert.throws(() => authenticator({ jwks: 'http://127.0.0.1:1/jwks.json' }), /--jwks http:\/\/127\.0\.0\.1:1\/jwks\.json: a remote JWKS must be fetched over https/);
    assert.equal(withDefaults(base).jwtMaxLifetimeSeconds, 24 * 3600);
    assert.throws(() => withDefaults({ ...base, jwtMaxLifetimeSeconds: 0 }), /--jwt-max-lifetime/);
  });

  test('the command line refuses --jwks http://… before serving anything', { timeout: 30_000 }, () => {
    const root = path.join(__dirname, '..');
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(root, 'src', 'main.ts'),
        '--config-dir',
        'examples/bookinfo',
        ...portArgs(),
        '--jwks',
        'http://127.0.0.1:1/jwks.json',
        '--jwt-issuer',
        ISSUER,
        '--jwt-audience',
        AUDIENCE,
      ],
      { cwd: root, encoding: 'utf8', timeout: 25_000 },
    );
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /--jwks http:\/\/127\.0\.0\.1:1\/jwks\.json: a remote JWKS must be fetched over https:\/\//);
    assert.doesNotMatch(r.stdout, /meshd listening/);
  });
});

describe('token times', () => {
  test(`exp required; iat in the future refused beyond the ${JWT_DEFAULTS.clockSkewSeconds}s skew; lifetime bounded (default 24 h)`, async () => {
    const a = authenticator();
    const day = 24 * 3600;
    const cases: Array<[string, { iat?: number; exp?: number }, RegExp]> = [
      ['an ordinary token', { iat: T - 60, exp: T + 3600 }, /^ok spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews$/],
      ['iat just ahead, within the skew', { iat: T + 50, exp: T + 3600 }, /^ok /],
      [
        'iat in the future beyond the skew',
        { iat: T + 120, exp: T + 3600 },
        /^invalid_token: jwt: the token's "iat" is 120s in the future \(more than the 60s clock skew allowed\)$/,
      ],
      ['iat a day ahead', { iat: T + day, exp: T + day + 3600 }, /"iat" is 86400s in the future/],
      ['a lifetime of exactly 24 h', { iat: T, exp: T + day }, /^ok /],
      ['a lifetime one second over 24 h', { iat: T, exp: T + day + 1 }, /^invalid_token: jwt: the token's lifetime \(exp − iat\) is 86401s, longer than the 86400s allowed$/],
      ['a lifetime of years', { iat: T - 3600, exp: T + 3 * 365 * day }, /lifetime \(exp − iat\) is \d+s, longer than the 86400s allowed/],
      ['no iat, expiring within 24 h', { exp: T + 3600 }, /^ok /],
      ['no iat, expiring in 25 h', { exp: T + 25 * 3600 }, /^invalid_token: jwt: the token has no "iat" and expires in 90000s, later than the 86400s allowed$/],
      ['no exp', { iat: T }, /^invalid_token: jwt: the token has no "exp" claim$/],
      ['expired beyond the skew', { iat: T - 7200, exp: T - 120 }, /^expired_token: jwt: the token has expired$/],
      ['expired within the skew', { iat: T - 7200, exp: T - 30 }, /^ok /],
    ];
    for (const [what, times, expected] of cases) assert.match(await outcome(a, await token(times)), expected, what);
  });

  test('the maximum lifetime is an option', async () => {
    const a = authenticator({ maxLifetimeSeconds: 3600 });
    assert.match(await outcome(a, await token({ iat: T, exp: T + 3600 })), /^ok /);
    assert.match(await outcome(a, await token({ iat: T, exp: T + 7200 })), /lifetime \(exp − iat\) is 7200s, longer than the 3600s allowed/);
  });

  test('an HMAC token is refused even when the JWKS holds a matching shared key', async () => {
    const secret = (await generateSecret('HS256', { extractable: true })) as CryptoKey;
    const file = path.join(dir, 'jwks-oct.json');
    fs.writeFileSync(file, JSON.stringify({ keys: [{ ...(await exportJWK(secret)), kid: 'h1', alg: 'HS256' }] }));
    const t = await new SignJWT({ sub: SUB, iat: T, exp: T + 60 }).setProtectedHeader({ alg: 'HS256', kid: 'h1' }).setIssuer(ISSUER).setAudience(AUDIENCE).sign(secret);
    assert.match(await outcome(authenticator({ jwks: file }), t), /^invalid_token: jwt: the token signature algorithm is not allowed$/);
  });
});

describe('remote JWKS over HTTPS', () => {
  let server: https.Server;
  let url: string;
  let body = '';
  let served = 0;
  let fetchCa = '';
  /** The transport: Node's https with the test CA (the global fetch trusts only public roots). */
  const fetchWithCa: JwksFetch = (u, init) =>
    new Promise<Response>((resolve, reject) => {
      const req = https.get(u, { ca: fetchCa, headers: Object.fromEntries(init.headers), signal: init.signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 0, headers: { 'content-type': String(res.headers['content-type'] ?? '') } })));
        res.on('error', reject);
      });
      req.on('error', reject);
    });

  before(async () => {
    const ca = makeCa();
    const cert = issue(ca, ['localhost']);
    fetchCa = ca.cert;
    server = https.createServer({ key: cert.key, cert: cert.cert }, (_req, res) => {
      served++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://localhost:${(server.address() as AddressInfo).port}/jwks.json`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test('keys fetched over https verify tokens and are cached; an oversized JWKS is refused as unavailable', async () => {
    body = jwksJson;
    const a = authenticator({ jwks: url.replace('localhost', '127.0.0.1'), fetch: (u, init) => fetchWithCa(u.replace('127.0.0.1', 'localhost'), init) });
    assert.match(await outcome(a, await token({ iat: T, exp: T + 3600 })), /^ok /);
    assert.match(await outcome(a, await token({ iat: T, exp: T + 1800 })), /^ok /);
    assert.equal(served, 1, 'fetched once, then cached');
    // Not trusted: the default transport does not know the test CA, so nothing verifies.
    assert.match(await outcome(authenticator({ jwks: url }), await token({ iat: T, exp: T + 3600 })), /^jwks_unavailable: jwt: the JWKS could not be fetched$/);
    body = JSON.stringify({ keys: [JSON.parse(jwksJson).keys[0]], padding: 'x'.repeat(JWT_DEFAULTS.jwksMaxBytes) });
    const big = authenticator({ jwks: url, fetch: fetchWithCa });
    assert.match(await outcome(big, await token({ iat: T, exp: T + 3600 })), /^jwks_unavailable: jwt: the JWKS could not be fetched$/);
  });
});

describe('through CreateCertificate', () => {
  let meshd: MeshdHandle;
  before(async () => {
    meshd = await startMeshd({
      configDir: path.join(__dirname, '..', 'examples', 'bookinfo'),
      xdsPort: 0,
      secureXdsPort: 0,
      debugPort: 0,
      monitoringPort: -1,
      caDir: path.join(dir, 'ca'),
      jwks: jwksFile,
      jwtIssuer: ISSUER,
      jwtAudiences: [AUDIENCE],
      jwtMaxLifetimeSeconds: 2 * 3600,
      logger: pino({ level: 'silent' }),
    });
    await meshd.caReady();
  });
  after(async () => {
    await meshd?.close();
  });

  test('--jwt-max-lifetime reaches the CA: a 3 h token is refused (UNAUTHENTICATED), a 1 h one is signed', { timeout: 30_000 }, async () => {
    const now = Math.floor(Date.now() / 1000);
    const sign = async (lifetime: number): Promise<string[]> => {
      const file = path.join(dir, `token-${lifetime}`);
      fs.writeFileSync(file, await token({ iat: now, exp: now + lifetime }));
      const client = new CaClient({
        address: `127.0.0.1:${meshd.secureXdsPort}`,
        plaintext: false,
        rootCertPem: () => meshd.caRootPem(),
        serverName: 'istiod.istio-system.svc',
        tokenFile: file,
      });
      return client.sign({ csrPem: generateKeyAndCsr({ spiffeId: ID, keyType: 'ecdsa' }).csrPem, ttlSeconds: 600 });
    };
    await assert.rejects(sign(3 * 3600), /UNAUTHENTICATED: .*lifetime \(exp − iat\) is 10800s, longer than the 7200s allowed/);
    assert.ok((await sign(3600)).length >= 2);
  });
});
