/**
 * The certificate service end to end: a real grpc-js client calls
 * `istio.v1.auth.IstioCertificateService/CreateCertificate` on a running meshd over TLS (15012)
 * with CSRs made by openssl. A JWT from a JWKS the test makes yields a chain whose leaf carries
 * exactly the caller's SPIFFE ID and verifies to the root with `openssl verify`; other identities,
 * missing, forged, expired and misaddressed tokens are refused, and so is an RSA key with e = 1;
 * renewal over mTLS works with an issued certificate, and an expired or foreign one is refused
 * for what it is; ADS is served on 15012 too; the plaintext port (15010) has no CA unless
 * `plaintextCa` is set; the Kubernetes TokenReview path works against the fake API server; every
 * outcome is counted in istiod's metrics; no token, CSR or key text reaches the log.
 */
import assert from 'node:assert/strict';
import { X509Certificate, createPublicKey } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import pino from 'pino';
import { MtlsAuthenticator } from '../src/ca/authn';
import { loadCaProto } from '../src/ca/service';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { EnvoyProtos } from '../src/xds/protos';
import { ADS_PATH } from '../src/xds/server';
import { TypeUrl } from '../src/xds/protos';
import { forgedSignatureForExponentOne, keyFragments, openssl, rsaCsrWithNumbers, rsaModulus, tmpDir, verify } from './helpers/ca-openssl';
import { startKubeApiServer, type KubeApiServer } from './helpers/kube-api-server';
import { closeInOrder } from './helpers/teardown';

const T = { timeout: 60_000 };
const ISSUER = 'https://issuer.meshd.test';
const AUDIENCE = 'istio-ca';
const REVIEWS = 'spiffe://cluster.local/ns/default/sa/reviews';
const SERVER_NAME = 'istiod.istio-system.svc';

type Client = grpc.Client & {
  CreateCertificate(req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { cert_chain: string[] }) => void): void;
};
const Ctor = (loadCaProto() as unknown as { istio: { v1: { auth: { IstioCertificateService: grpc.ServiceClientConstructor } } } }).istio.v1.auth.IstioCertificateService;

/** Captures meshd's log lines (debug level) to check they never hold secrets. */
function captureLog(): { logger: pino.Logger; text: () => string } {
  const chunks: string[] = [];
  const sink = new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c.toString()), cb()) });
  return { logger: pino({ level: 'debug' }, sink), text: () => chunks.join('') };
}

function call(address: string, req: object, o: { token?: string; creds?: grpc.ChannelCredentials; md?: Record<string, string> } = {}): Promise<string[]> {
  const md = new grpc.Metadata();
  if (o.token) md.set('authorization', `Bearer ${o.token}`);
  for (const [k, v] of Object.entries(o.md ?? {})) md.set(k, v);
  const client = new Ctor(address, o.creds ?? grpc.credentials.createInsecure(), { 'grpc.ssl_target_name_override': SERVER_NAME }) as unknown as Client;
  return new Promise<string[]>((resolve, reject) => {
    client.CreateCertificate(req, md, { deadline: Date.now() + 10_000 }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res?.cert_chain ?? []);
    });
  });
}

/** A gRPC error (ServiceError) or a CaError, with its code and text. */
async function refused(p: Promise<unknown>, code: grpc.status, text: RegExp): Promise<string> {
  const err = (await p.then(
    () => assert.fail('expected a refusal'),
    (e: unknown) => e,
  )) as { code?: number; grpcCode?: number; details?: string; message: string };
  const got = err.code ?? err.grpcCode ?? -1;
  const details = err.details ?? err.message;
  assert.equal(got, code, `${grpc.status[got]}: ${details}`);
  assert.match(details, text);
  return details;
}

/** A P-256 key and CSR made by openssl, optionally asking for a SPIFFE URI. */
function csr(dir: string, name: string, uri?: string): { csrPem: string; keyPem: string } {
  const ext = uri ? ['-addext', `subjectAltName=URI:${uri}`] : [];
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/O=workload', ...ext], dir);
  return { csrPem: fs.readFileSync(path.join(dir, `${name}.csr`), 'utf8'), keyPem: fs.readFileSync(path.join(dir, `${name}.key`), 'utf8') };
}

async function metricsText(h: MeshdHandle): Promise<string> {
  return (await fetch(`http://127.0.0.1:${h.debugPort}/metrics`)).text();
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** The first CDS response on an ADS stream to `address` (with `token` as its bearer credential). */
async function firstCds(address: string, creds: grpc.ChannelCredentials, token?: string): Promise<{ type_url: string; resources: unknown[] }> {
  const protos = new EnvoyProtos();
  const def = {
    ads: {
      path: ADS_PATH,
      requestStream: true,
      responseStream: true,
      requestSerialize: (v: object) => Buffer.from(protos.DiscoveryRequest.encode(protos.DiscoveryRequest.fromObject(v as Record<string, unknown>)).finish()),
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (v: Buffer) => v,
      responseDeserialize: (b: Buffer) => protos.DiscoveryResponse.decode(b) as unknown as { type_url: string; resources: unknown[] },
    },
  };
  const AdsCtor = grpc.makeGenericClientConstructor(def, 'ADS');
  const client = new AdsCtor(address, creds, { 'grpc.ssl_target_name_override': SERVER_NAME });
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  const stream = (client as unknown as { ads: (md: grpc.Metadata) => grpc.ClientDuplexStream<object, { type_url: string; resources: unknown[] }> }).ads(md);
  const first = new Promise<{ type_url: string; resources: unknown[] }>((resolve, reject) => {
    stream.once('data', resolve);
    stream.once('error', reject);
  });
  stream.write({
    node: { id: 'sidecar~10.0.0.9~reviews-v1-1.default~default.svc.cluster.local', metadata: { fields: { NAMESPACE: { string_value: 'default' } } } },
    type_url: TypeUrl.Cluster,
  });
  try {
    return await first;
  } finally {
    stream.cancel();
    client.close();
  }
}

function leafChecks(dir: string, chain: string[], root: string, keyPem: string, identity: string): X509Certificate {
  assert.ok(chain.length >= 2, 'leaf and root');
  for (const c of chain) assert.equal(c.match(/BEGIN CERTIFICATE/g)?.length, 1, 'one certificate per element');
  const leaf = new X509Certificate(chain[0] as string);
  assert.equal(leaf.subjectAltName, `URI:${identity}`, 'exactly the caller identity');
  assert.equal(leaf.publicKey.export({ type: 'spki', format: 'pem' }), createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }), 'the CSR key');
  assert.equal(chain[chain.length - 1]?.trim(), root.trim(), 'ends with the root');
  const [ok, out] = verify(dir, { root, leaf: chain[0] as string, untrusted: chain.slice(1, -1).join('') || undefined });
  assert.ok(ok, out);
  return leaf;
}

describe('CreateCertificate with JWT and mTLS', () => {
  const dir = tmpDir('meshd-ca-service-');
  const log = captureLog();
  const secrets: string[] = [];
  let meshd: MeshdHandle;
  let sign: (claims: Record<string, unknown>, o?: { exp?: string | number; iss?: string; aud?: string }) => Promise<string>;
  let forge: () => Promise<string>;
  let xds: string;
  let xdsTls: string;
  let root: string;
  let issued: { chain: string[]; keyPem: string } | undefined;
  const mtlsAuthenticator = (): MtlsAuthenticator => new MtlsAuthenticator({ trustDomain: 'cluster.local', roots: () => root });
  /** CreateCertificate on 15012, with TLS against meshd's root (and no client certificate unless `creds` says so). */
  const caCall = (req: object, o: Parameters<typeof call>[2] = {}): Promise<string[]> => call(xdsTls, req, { creds: grpc.credentials.createSsl(Buffer.from(root)), ...o });

  before(async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    fs.writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
    sign = async (claims, o = {}) => {
      const t = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer(o.iss ?? ISSUER)
        .setAudience(o.aud ?? AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(o.exp ?? '1h')
        .sign(privateKey);
      secrets.push(t);
      return t;
    };
    const other = await generateKeyPair('ES256');
    forge = async () => {
      const t = await new SignJWT({ sub: REVIEWS })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setExpirationTime('1h')
        .sign(other.privateKey);
      secrets.push(t);
      return t;
    };
    meshd = await startMeshd({
      configDir: path.join(__dirname, '..', 'examples', 'bookinfo'),
      xdsPort: 0,
      secureXdsPort: 0,
      debugPort: 0,
      monitoringPort: -1,
      caDir: path.join(dir, 'ca'),
      jwks: path.join(dir, 'jwks.json'),
      jwtIssuer: ISSUER,
      jwtAudiences: [AUDIENCE],
      maxWorkloadCertTtlSeconds: 2 * 86400,
      logger: log.logger,
    });
    await meshd.caReady();
    xds = `127.0.0.1:${meshd.xdsPort}`;
    xdsTls = `127.0.0.1:${meshd.secureXdsPort}`;
    root = meshd.caRootPem();
    assert.match(root, /BEGIN CERTIFICATE/);
  });
  after(async () => {
    await meshd?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a valid JWT gets a chain for exactly its SPIFFE ID, verified to the root by openssl', T, async () => {
    const r = csr(dir, 'reviews', REVIEWS);
    secrets.push(...keyFragments(r.keyPem));
    const chain = await caCall({ csr: r.csrPem, validity_duration: 3600 }, { token: await sign({ sub: REVIEWS }) });
    const leaf = leafChecks(dir, chain, root, r.keyPem, REVIEWS);
    const life = (Date.parse(leaf.validTo) - Date.now()) / 1000;
    assert.ok(life > 3500 && life <= 3600, `asked 1 h, got ${life}s`);
    issued = { chain, keyPem: r.keyPem };
  });

  test('identity from kubernetes.io claims or a service-account sub; a CSR without SAN; TTL capped at the maximum', T, async () => {
    const r = csr(dir, 'nosan');
    const token = await sign({ sub: 'someone', 'kubernetes.io': { namespace: 'bookinfo', serviceaccount: { name: 'ratings' } } });
    const chain = await caCall({ csr: r.csrPem, validity_duration: 365 * 86400 }, { token });
    const leaf = leafChecks(dir, chain, root, r.keyPem, 'spiffe://cluster.local/ns/bookinfo/sa/ratings');
    const life = (Date.parse(leaf.validTo) - Date.now()) / 1000;
    assert.ok(life > 2 * 86400 - 60 && life <= 2 * 86400, `capped at 2 d, got ${life}s`);
    const sa = await caCall({ csr: r.csrPem }, { token: await sign({ sub: 'system:serviceaccount:default:details' }) });
    assert.equal(new X509Certificate(sa[0] as string).subjectAltName, 'URI:spiffe://cluster.local/ns/default/sa/details');
  });

  test('a CSR or ImpersonatedIdentity for another identity is refused (PERMISSION_DENIED)', T, async () => {
    const token = await sign({ sub: REVIEWS });
    const admin = csr(dir, 'admin', 'spiffe://cluster.local/ns/kube-system/sa/admin');
    await refused(
      caCall({ csr: admin.csrPem }, { token }),
      grpc.status.PERMISSION_DENIED,
      /asks for spiffe:\/\/cluster.local\/ns\/kube-system\/sa\/admin.*proved spiffe:\/\/cluster.local\/ns\/default\/sa\/reviews/,
    );
    const plain = csr(dir, 'plain');
    const req = { csr: plain.csrPem, metadata: { fields: { ImpersonatedIdentity: { stringValue: 'spiffe://cluster.local/ns/kube-system/sa/admin' } } } };
    await refused(caCall(req, { token }), grpc.status.PERMISSION_DENIED, /ImpersonatedIdentity/);
  });

  test('missing, forged, expired and misaddressed tokens are refused (UNAUTHENTICATED)', T, async () => {
    const r = csr(dir, 'anon', REVIEWS);
    await refused(caCall({ csr: r.csrPem }), grpc.status.UNAUTHENTICATED, /no credential/);
    await refused(caCall({ csr: r.csrPem }, { token: await forge() }), grpc.status.UNAUTHENTICATED, /signature does not verify/);
    await refused(caCall({ csr: r.csrPem }, { token: await sign({ sub: REVIEWS }, { exp: Math.floor(Date.now() / 1000) - 3600 }) }), grpc.status.UNAUTHENTICATED, /expired/);
    await refused(caCall({ csr: r.csrPem }, { token: await sign({ sub: REVIEWS }, { aud: 'someone-else' }) }), grpc.status.UNAUTHENTICATED, /"aud" claim/);
    await refused(caCall({ csr: r.csrPem }, { token: await sign({ sub: REVIEWS }, { iss: 'https://evil' }) }), grpc.status.UNAUTHENTICATED, /"iss" claim/);
    await refused(
      caCall({ csr: r.csrPem }, { token: await sign({ sub: 'spiffe://other.domain/ns/default/sa/reviews' }) }),
      grpc.status.UNAUTHENTICATED,
      /trust domain other.domain/,
    );
    await refused(caCall({ csr: r.csrPem }, { token: 'not-a-jwt-at-all' }), grpc.status.UNAUTHENTICATED, /not a valid signed JWT/);
  });

  test('a malformed CSR is refused (INVALID_ARGUMENT)', T, async () => {
    const token = await sign({ sub: REVIEWS });
    await refused(caCall({ csr: 'hello' }, { token }), grpc.status.INVALID_ARGUMENT, /CSR parsing error/);
  });

  test('a CSR for an RSA key with public exponent 1 (its signature forged without a private key) is refused (INVALID_ARGUMENT)', T, async () => {
    // Any RSA modulus will do (an attacker needs no key for it); this one is openssl's.
    openssl(['genrsa', '-out', 'e1.key', '2048'], dir);
    const keyPem = fs.readFileSync(path.join(dir, 'e1.key'), 'utf8');
    secrets.push(...keyFragments(keyPem));
    const n = rsaModulus(keyPem);
    const forged = rsaCsrWithNumbers(n, Buffer.from([1]), (cri) => forgedSignatureForExponentOne(cri, n.length));
    await refused(caCall({ csr: forged }, { token: await sign({ sub: REVIEWS }) }), grpc.status.INVALID_ARGUMENT, /public exponent 1 is below 65537/);
  });

  test('the plaintext port (15010) does not serve the CA: UNIMPLEMENTED, as from a server without the service; ADS still answers there', T, async () => {
    const r = csr(dir, 'plain15010', REVIEWS);
    await refused(call(xds, { csr: r.csrPem }, { token: await sign({ sub: REVIEWS }) }), grpc.status.UNIMPLEMENTED, /CreateCertificate/);
    const res = await firstCds(xds, grpc.credentials.createInsecure());
    assert.equal(res.type_url, TypeUrl.Cluster);
    assert.doesNotMatch(log.text(), /plaintext-ca/, 'no plaintext CA warning without the flag');
  });

  test('15012: the serving certificate is for istiod and chains to the root; ADS is served there too, to a caller that proves who it is', T, async () => {
    const creds = grpc.credentials.createSsl(Buffer.from(root));
    // The serving certificate: istiod's names and identity, from meshd's CA.
    const served = await new Promise<X509Certificate>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: meshd.secureXdsPort, servername: SERVER_NAME, ca: root, ALPNProtocols: ['h2'] }, () => {
        const raw = s.getPeerCertificate().raw;
        s.destroy();
        resolve(new X509Certificate(raw));
      });
      s.once('error', reject);
    });
    assert.equal(tls.checkServerIdentity(SERVER_NAME, { subject: {}, subjectaltname: served.subjectAltName } as tls.PeerCertificate), undefined);
    assert.match(served.subjectAltName ?? '', /URI:spiffe:\/\/cluster.local\/ns\/istio-system\/sa\/istiod/);
    assert.match(served.subjectAltName ?? '', /DNS:istiod.istio-system.svc.cluster.local/);
    // CreateCertificate over TLS with a token.
    const r = csr(dir, 'tls', REVIEWS);
    const chain = await call(xdsTls, { csr: r.csrPem }, { token: await sign({ sub: REVIEWS }), creds });
    leafChecks(dir, chain, root, r.keyPem, REVIEWS);
    // ADS over TLS: a CDS request is answered with bookinfo's clusters.
    // Over TLS a stream must prove who it is, as to istiod: here with the same token in its metadata.
    const res = await firstCds(xdsTls, creds, await sign({ sub: REVIEWS }));
    assert.equal(res.type_url, TypeUrl.Cluster);
    assert.ok(res.resources.length > 0);
  });

  test('renewal over mTLS on 15012 with the issued certificate; an expired or foreign certificate is refused as such', T, async () => {
    assert.ok(issued, 'the first test issued a certificate');
    const renew = csr(dir, 'renew', REVIEWS);
    const mtls = (certChain: string, keyPem: string): grpc.ChannelCredentials => grpc.credentials.createSsl(Buffer.from(root), Buffer.from(keyPem), Buffer.from(certChain));
    const chain = await call(xdsTls, { csr: renew.csrPem }, { creds: mtls(issued.chain.slice(0, -1).join(''), issued.keyPem) });
    leafChecks(dir, chain, root, renew.keyPem, REVIEWS);
    // The renewed certificate is valid for another identity only if proven: asking for admin is refused.
    const admin = csr(dir, 'admin2', 'spiffe://cluster.local/ns/kube-system/sa/admin');
    await refused(call(xdsTls, { csr: admin.csrPem }, { creds: mtls(issued.chain[0] as string, issued.keyPem) }), grpc.status.PERMISSION_DENIED, /asks for/);

    // A certificate that expires within a second.
    const short = csr(dir, 'short', REVIEWS);
    const shortChain = await caCall({ csr: short.csrPem, validity_duration: 1 }, { token: await sign({ sub: REVIEWS }) });
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(new X509Certificate(shortChain[0] as string).validTo) - Date.now()) + 1200));
    // The service sees the certificate TLS could not verify, and says why it is refused.
    const expiredAt = new Date(new X509Certificate(shortChain[0] as string).validTo).toISOString();
    await refused(
      call(xdsTls, { csr: renew.csrPem }, { creds: mtls(shortChain[0] as string, short.keyPem) }),
      grpc.status.UNAUTHENTICATED,
      new RegExp(`mtls: the client certificate expired at ${expiredAt.replace(/[.]/g, '\\.')}`),
    );
    await refused(mtlsAuthenticator().authenticate({ metadata: {}, peerCertificatePem: shortChain[0] }), grpc.status.UNAUTHENTICATED, /expired at/);
    // A valid token still wins over an expired certificate (the authenticators are tried in turn).
    leafChecks(
      dir,
      await call(xdsTls, { csr: renew.csrPem }, { creds: mtls(shortChain[0] as string, short.keyPem), token: await sign({ sub: REVIEWS }) }),
      root,
      renew.keyPem,
      REVIEWS,
    );

    // The same SPIFFE ID from a CA meshd does not trust.
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        'evil-ca.key',
        '-out',
        'evil-ca.pem',
        '-days',
        '1',
        '-subj',
        '/CN=evil',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
      ],
      dir,
    );
    fs.writeFileSync(path.join(dir, 'ext.cnf'), `subjectAltName=URI:${REVIEWS}\nextendedKeyUsage=clientAuth,serverAuth\n`);
    openssl(
      ['x509', '-req', '-in', 'renew.csr', '-CA', 'evil-ca.pem', '-CAkey', 'evil-ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'ext.cnf', '-out', 'evil-leaf.pem'],
      dir,
    );
    const evil = fs.readFileSync(path.join(dir, 'evil-leaf.pem'), 'utf8');
    await refused(
      call(xdsTls, { csr: renew.csrPem }, { creds: mtls(evil, renew.keyPem) }),
      grpc.status.UNAUTHENTICATED,
      /mtls: the client certificate does not chain to the mesh's root certificate/,
    );
    await refused(mtlsAuthenticator().authenticate({ metadata: {}, peerCertificatePem: evil }), grpc.status.UNAUTHENTICATED, /does not chain to the mesh's root/);
    const refusals = log
      .text()
      .split('\n')
      .filter((l) => l.includes('authentication failed'))
      .map((l) => JSON.parse(l) as { reason: string; error: string });
    assert.deepEqual(
      refusals.slice(-2).map((r) => r.reason),
      ['expired_certificate', 'untrusted_certificate'],
      'logged as what they are',
    );
    const ok = await mtlsAuthenticator().authenticate({ metadata: {}, peerCertificatePem: issued.chain[0] });
    assert.deepEqual(ok, { identities: [REVIEWS], via: 'mtls' });
    secrets.push(...keyFragments(short.keyPem, renew.keyPem, fs.readFileSync(path.join(dir, 'evil-ca.key'), 'utf8')));
  });

  test('every outcome is counted under istiod metric names', T, async () => {
    const m = await metricsText(meshd);
    const get = (name: string): number => metric(m, name);
    const reason = (r: string): number =>
      Number(/ (\S+)$/.exec(m.split('\n').find((l) => l.startsWith(`citadel_server_authentication_failure_count{reason="${r}"}`)) ?? ' 0')?.[1]);
    // Successes: 1 + 2 + 1 (TLS) + 1 (renewal) + 1 (short) + 1 (token beside an expired certificate) = 7.
    assert.equal(get('citadel_server_success_cert_issuance_count'), 7, m);
    assert.equal(reason('id_mismatch'), 3);
    assert.equal(reason('no_credential'), 1); // no token, no certificate
    assert.equal(reason('expired_certificate'), 1);
    assert.equal(reason('untrusted_certificate'), 1); // the foreign CA's certificate
    assert.equal(reason('invalid_token'), 5); // forged, aud, iss, trust domain, garbage
    assert.equal(reason('expired_token'), 1);
    assert.equal(get('citadel_server_csr_parsing_err_count'), 1);
    assert.match(m, /citadel_server_csr_sign_err_count\{error="CSR_ERROR"\} 1\n/, 'the e = 1 key');
    // The UNIMPLEMENTED call on 15010 never reached the service.
    // 7 issued, 3 id_mismatch, 1 no_credential, 5 invalid_token, 1 expired_token, 1 parse error, 1 e = 1 key, 1 expired and 1 foreign certificate.
    assert.equal(get('citadel_server_csr_count'), 7 + 3 + 1 + 5 + 1 + 1 + 1 + 1 + 1);
  });

  test('no token, CSR or private key text in the log', T, () => {
    const text = log.text();
    assert.match(text, /certificate issued/);
    assert.match(text, /authentication failed/);
    for (const s of secrets) assert.ok(!text.includes(s), 'a secret leaked into the log');
    for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.csr'))) {
      for (const line of fs
        .readFileSync(path.join(dir, f), 'utf8')
        .split('\n')
        .filter((l) => l.length >= 40))
        assert.ok(!text.includes(line), `CSR ${f} leaked`);
    }
    const caKey = fs.readFileSync(path.join(dir, 'ca', 'ca-key.pem'), 'utf8');
    for (const frag of keyFragments(caKey)) assert.ok(!text.includes(frag), 'the CA key leaked');
  });
});

describe('CreateCertificate with a Kubernetes service-account token (TokenReview)', () => {
  const dir = tmpDir('meshd-ca-kube-');
  const GOOD = 'kube-token-for-ratings-0123456789abcdef';
  const reviews: Array<{ audiences?: string[] }> = [];
  let api: KubeApiServer;
  let meshd: MeshdHandle;
  const log = captureLog();

  before(async () => {
    api = await startKubeApiServer({
      handlers: [
        {
          method: 'POST',
          path: '/apis/authentication.k8s.io/v1/tokenreviews',
          handle: (body) => {
            const spec = (body as { spec?: { token?: string; audiences?: string[] } }).spec ?? {};
            reviews.push({ audiences: spec.audiences });
            const ok = spec.token === GOOD;
            const status = ok
              ? { authenticated: true, user: { username: 'system:serviceaccount:bookinfo:ratings' }, audiences: spec.audiences }
              : { authenticated: false, error: '[invalid bearer token, token lookup failed]' };
            return { status: 201, body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec, status } };
          },
        },
      ],
    });
    for (const name of ['istio-system', 'bookinfo']) api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    meshd = await startMeshd({
      kubeconfig: api.kubeconfigPath,
      xdsPort: 0,
      debugPort: 0,
      monitoringPort: -1,
      secureXdsPort: 0,
      servingCertTtlSeconds: 4,
      logger: log.logger,
      kube: { backoffInitialMs: 50, backoffMaxMs: 200 },
      leaseTimings: { leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 100 },
    });
    await meshd.caReady();
  });
  after(async () => {
    await closeInOrder([() => meshd?.close(), () => api?.close()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a reviewed token gets its service account identity; the root is kept in istio-ca-secret and published', T, async () => {
    const r = csr(dir, 'ratings', 'spiffe://cluster.local/ns/bookinfo/sa/ratings');
    const chain = await call(`127.0.0.1:${meshd.secureXdsPort}`, { csr: r.csrPem }, { token: GOOD, creds: grpc.credentials.createSsl(Buffer.from(meshd.caRootPem())) });
    leafChecks(dir, chain, meshd.caRootPem(), r.keyPem, 'spiffe://cluster.local/ns/bookinfo/sa/ratings');
    assert.deepEqual(reviews.at(-1)?.audiences, ['istio-ca']);
    assert.ok(api.store.get('v1', 'Secret', 'istio-system', 'istio-ca-secret'), 'the self-signed root is kept in istio-ca-secret');
    const deadline = Date.now() + 10_000;
    const published = (): unknown => (api.store.get('v1', 'ConfigMap', 'bookinfo', 'istio-ca-root-cert') as { data?: Record<string, string> } | undefined)?.data?.['root-cert.pem'];
    while (published() !== meshd.caRootPem() && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    assert.equal(published(), meshd.caRootPem(), 'the leader publishes the root as istio-ca-root-cert');
  });

  test('15012 in Kubernetes: the serving certificate is re-issued before it expires and new connections get it', T, async () => {
    const servedSerial = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: meshd.secureXdsPort, servername: SERVER_NAME, ca: meshd.caRootPem(), ALPNProtocols: ['h2'] }, () => {
          const c = s.getPeerCertificate();
          s.destroy();
          resolve(c.serialNumber);
        });
        s.once('error', reject);
      });
    const first = await servedSerial();
    const deadline = Date.now() + 15_000;
    let next = first;
    while (next === first && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      next = await servedSerial();
    }
    assert.notEqual(next, first, 'a 4 s certificate is replaced (at about 2 s)');
  });

  test('a token the API server rejects is refused without echoing it', T, async () => {
    const r = csr(dir, 'bad', 'spiffe://cluster.local/ns/bookinfo/sa/ratings');
    const bad = 'kube-token-stolen-9876543210fedcba';
    const tlsCreds = grpc.credentials.createSsl(Buffer.from(meshd.caRootPem()));
    const details = await refused(
      call(`127.0.0.1:${meshd.secureXdsPort}`, { csr: r.csrPem }, { token: bad, creds: tlsCreds }),
      grpc.status.UNAUTHENTICATED,
      /did not accept the token/,
    );
    assert.ok(!details.includes(bad));
    assert.ok(!log.text().includes(bad) && !log.text().includes(GOOD), 'no token in the log');
  });
});

describe('plaintextCa (--plaintext-ca): the CA on the plaintext port too, for development', () => {
  const dir = tmpDir('meshd-ca-plain-');
  const log = captureLog();
  let meshd: MeshdHandle;
  let token: string;

  before(async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    fs.writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
    token = await new SignJWT({ sub: REVIEWS }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('1h').sign(privateKey);
    meshd = await startMeshd({
      configDir: path.join(__dirname, '..', 'examples', 'bookinfo'),
      xdsPort: 0,
      secureXdsPort: -1,
      plaintextCa: true,
      caSignWorkers: 1,
      debugPort: 0,
      monitoringPort: -1,
      jwks: path.join(dir, 'jwks.json'),
      jwtIssuer: ISSUER,
      jwtAudiences: [AUDIENCE],
      logger: log.logger,
    });
    await meshd.caReady();
  });
  after(async () => {
    await meshd?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('CreateCertificate answers on 15010 with a token (signed on a worker thread), and meshd warned at start that tokens cross in clear', T, async () => {
    const r = csr(dir, 'plain', REVIEWS);
    const chain = await call(`127.0.0.1:${meshd.xdsPort}`, { csr: r.csrPem }, { token });
    leafChecks(dir, chain, meshd.caRootPem(), r.keyPem, REVIEWS);
    const warning = log
      .text()
      .split('\n')
      .filter((l) => l.includes('--plaintext-ca'))
      .map((l) => JSON.parse(l) as { level: number; port: number });
    assert.equal(warning.length, 1, 'one warning, at start');
    assert.equal(warning[0]?.level, 40);
    assert.equal(warning[0]?.port, meshd.xdsPort);
    assert.ok(!log.text().includes(token), 'no token in the log');
    assert.match(log.text(), /"workers":1,.*CSRs are verified and signed on worker threads/);
  });
});
