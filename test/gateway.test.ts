/**
 * Gateways over a real ADS stream: meshd serves examples/bookinfo plus examples/bookinfo-gateway
 * (and a few extra objects) from a temporary folder, and a raw ADS client with a `router~` node
 * ID gets the gateway's CDS/EDS/LDS/RDS, then its `credentialName` certificates over SDS.
 * The certificates served are checked by parsing them (fingerprints) and by real TLS handshakes
 * on 127.0.0.1 with the served bytes: the SIMPLE server's chain and key, and the MUTUAL server's
 * CA bundle accepting a client certificate it signed and refusing one it did not. A proxy reads
 * only Secrets of its own namespace; a replaced Secret file is pushed (SDS only); a certificate
 * with a key that is not its pair is withheld with the reason in /debug/configz; and no private
 * key appears in any debug endpoint or log line.
 */
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as tls from 'node:tls';
import { type CryptoKey, exportJWK, generateKeyPair } from 'jose';
import pino from 'pino';
import YAML from 'yaml';
import { secretResources } from '../src/generate/secrets';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { parseProxy } from '../src/model/proxy';
import { ConfigEngine } from '../src/xds/engine';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { ResourceValidator } from '../src/xds/validate-rules';
import { AdsClient, type Response } from './helpers/ads-client';
import { DeltaAdsClient } from './helpers/delta-client';
import { JWT_AUDIENCE, JWT_ISSUER, mintToken } from './helpers/security-mesh';
import { type WorkloadCert, bearer, tlsChannel, workloadCert } from './helpers/verified-proxy';
import { type Pem, issue, makeCa, tlsSecretYaml } from './helpers/certs';

const ROOT = path.join(__dirname, '..');
const GW_ID = 'router~10.244.0.50~istio-ingressgateway-5d8f7c9b6-x2k4q.istio-system~istio-system.svc.cluster.local';
const CLUSTER = 'outbound|9080||productpage.default.svc.cluster.local';
const HTTPS_ROUTE = 'https.443.https.bookinfo-gateway.default';
const protos = new EnvoyProtos();

type J = Record<string, unknown>;

let dir: string;
let meshd: MeshdHandle;
let jwtKey: CryptoKey;
let jwksDir: string;
const logs: string[] = [];
const clients: AdsClient[] = [];

// Test-time material: a CA, two server certificates in turn for bookinfo.example.com, a client
// certificate it signs, and certificates of a second CA for what must be refused.
const ca = makeCa();
const serverA = issue(ca, ['bookinfo.example.com']);
const serverB = issue(ca, ['bookinfo.example.com']);
const clientCert = issue(ca, [], 'client');
const stranger = makeCa('stranger CA');
const strangerClient = issue(stranger, [], 'stranger');
const otherNs = issue(ca, ['bookinfo.example.com']);
const mtlsServer = issue(ca, ['mtls.example.com']);
const shopCert = issue(ca, ['shop.example.com']);
const GATEWAY_SA = 'istio-ingressgateway-service-account';
const INTRUDER_ID = 'router~10.9.9.9~intruder-0.shop~shop.svc.cluster.local';
const exampleSecret = YAML.parse(fs.readFileSync(path.join(ROOT, 'examples', 'bookinfo-gateway', 'bookinfo-credential.yaml'), 'utf8')) as { stringData: Record<string, string> };
const example: Pem = { cert: exampleSecret.stringData['tls.crt'] ?? '', key: exampleSecret.stringData['tls.key'] ?? '' };

/** A MUTUAL server for mtls.example.com on the example's gateway, and the extra Secrets. */
const EXTRA = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: mtls-gateway, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 443, name: https-mtls, protocol: HTTPS }
    hosts: [mtls.example.com]
    tls: { mode: MUTUAL, credentialName: mtls-credential }
---
${tlsSecretYaml('istio-system', 'mtls-credential', { ...mtlsServer, ca: ca.cert })}
---
${tlsSecretYaml('istio-system', 'broken-credential', { cert: serverA.cert, key: serverB.key })}
---
${tlsSecretYaml('default', 'bookinfo-credential', otherNs)}
---
${tlsSecretYaml('shop', 'shop-gw-cert', shopCert)}
`;

function write(file: string, text: string): void {
  const p = path.join(dir, file);
  fs.writeFileSync(`${p}.tmp`, text);
  fs.renameSync(`${p}.tmp`, p);
}

async function http(p: string): Promise<string> {
  return (await fetch(`http://127.0.0.1:${meshd.debugPort}${p}`)).text();
}

/** The workload certificate of `namespace`'s gateway service account, from meshd's CA (one per namespace). */
const certs = new Map<string, Promise<WorkloadCert>>();
function gatewayCert(namespace: string, sa = GATEWAY_SA): Promise<WorkloadCert> {
  const key = `${namespace}/${sa}`;
  let c = certs.get(key);
  if (!c) {
    c = mintToken(jwtKey, sa, namespace).then((token) =>
      workloadCert({ address: `127.0.0.1:${meshd.secureXdsPort}`, rootPem: meshd.caRootPem(), token, spiffeId: `spiffe://cluster.local/ns/${namespace}/sa/${sa}` }),
    );
    certs.set(key, c);
  }
  return c;
}

function track(c: AdsClient): AdsClient {
  clients.push(c);
  return c;
}

/** A proxy as istio-agent connects it: a gateway over TLS with its workload certificate, a sidecar in plaintext. */
async function client(id: string, namespace: string): Promise<AdsClient> {
  if (!id.startsWith('router~')) return track(new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id, metadata: { NAMESPACE: namespace } }));
  const tlsOpts = tlsChannel(meshd.caRootPem(), await gatewayCert(namespace));
  return track(new AdsClient(protos, `127.0.0.1:${meshd.secureXdsPort}`, { id, metadata: { NAMESPACE: namespace } }, 'full', tlsOpts));
}

const pemOf = (ds: unknown): string => Buffer.from(String((ds as J).inline_bytes), 'base64').toString('utf8');
const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;

function tlsCert(r: Response, name: string): { chain: string; key: string } {
  const s = r.resources.find((x) => x.name === name) as J | undefined;
  assert.ok(s, `${name} is served`);
  const t = s.tls_certificate as J;
  return { chain: pemOf(t.certificate_chain), key: pemOf(t.private_key) };
}

/** A TLS server on 127.0.0.1 with the given material; returns what each handshake saw. */
async function handshake(server: tls.TlsOptions, clientOpts: tls.ConnectionOptions): Promise<{ clientOk: boolean; peer?: string; serverAuthorized?: boolean }> {
  const seen: boolean[] = [];
  const srv = tls.createServer(server, (s) => {
    seen.push(s.authorized);
    s.end();
  });
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  try {
    return await new Promise((resolve) => {
      const sock = tls.connect({ host: '127.0.0.1', port, ...clientOpts }, () => {
        const peer = sock.getPeerX509Certificate()?.fingerprint256;
        sock.on('close', () => resolve({ clientOk: sock.authorized, peer, serverAuthorized: seen[0] }));
        sock.end();
      });
      sock.on('error', () => resolve({ clientOk: false }));
      sock.setTimeout(5000, () => sock.destroy());
    });
  } finally {
    await new Promise((r) => srv.close(r));
  }
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-gateway-'));
  for (const ex of ['bookinfo', 'bookinfo-gateway']) {
    const from = path.join(ROOT, 'examples', ex);
    for (const f of fs.readdirSync(from)) fs.copyFileSync(path.join(from, f), path.join(dir, f));
  }
  write('extra.yaml', EXTRA);
  // Every log line meshd writes, at every level, to check that no key material is logged.
  const logger = pino({ level: 'trace' }, { write: (line: string) => void logs.push(line) });
  // Gateways prove who they are as istio-agent does: a service-account token (a JWT here) for a
  // workload certificate, then that certificate on xDS over TLS.
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  jwtKey = privateKey;
  jwksDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-gateway-jwks-'));
  fs.writeFileSync(path.join(jwksDir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
  meshd = await startMeshd({
    configDir: dir,
    xdsPort: 0,
    secureXdsPort: 0,
    debugPort: 0,
    monitoringPort: -1,
    logger,
    jwks: path.join(jwksDir, 'jwks.json'),
    jwtIssuer: JWT_ISSUER,
    jwtAudiences: [JWT_AUDIENCE],
  });
  await meshd.caReady();
});

after(async () => {
  for (const c of clients) c.close();
  await meshd.close();
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(jwksDir, { recursive: true, force: true });
});

test('a router proxy gets its Gateways as listeners and routes, outbound clusters and endpoints', async () => {
  const c = await client(GW_ID, 'istio-system');
  const cds = await c.subscribe(TypeUrl.Cluster);
  assert.ok(cds.names.includes(CLUSTER) && cds.names.includes('BlackHoleCluster'));
  assert.ok(!cds.names.some((n) => n.startsWith('inbound|') || n === 'PassthroughCluster'), 'no inbound or passthrough clusters on a gateway');
  const eds = await c.subscribe(TypeUrl.Endpoint, [CLUSTER]);
  assert.ok(JSON.stringify(eds.resources).includes('10.244.0.10'));

  const lds = await c.subscribe(TypeUrl.Listener);
  // 8080 as written (no Service port 8080); 443 → the Service's targetPort 8443, as istiod binds it.
  assert.deepEqual(lds.names.sort(), ['0.0.0.0_8080', '0.0.0.0_8443']);
  const https = JSON.stringify(lds.resources.find((l) => l.name === '0.0.0.0_8443'));
  for (const s of ['bookinfo.example.com', 'mtls.example.com', 'kubernetes://bookinfo-credential', 'kubernetes://mtls-credential-cacert', HTTPS_ROUTE]) {
    assert.ok(https.includes(s), `the 8443 listener names ${s}`);
  }

  const rds = await c.subscribe(TypeUrl.Route, ['http.8080', HTTPS_ROUTE]);
  const http8080 = rds.resources.find((r) => r.name === 'http.8080') as J;
  const vh = (http8080.virtual_hosts as J[])[0] as J;
  assert.deepEqual(vh.domains, ['*']);
  const paths = (vh.routes as J[]).map((r) => JSON.stringify(r.match));
  assert.ok(paths[0]?.includes('/productpage') && paths.length === 5, 'the five bookinfo matches');
  assert.ok(JSON.stringify(vh.routes).includes(CLUSTER));
  const secure = rds.resources.find((r) => r.name === HTTPS_ROUTE) as J;
  assert.deepEqual(((secure.virtual_hosts as J[])[0] as J).domains, ['bookinfo.example.com']);
});

test("SDS serves kubernetes://<credentialName> with the Secret's certificate and key, and they terminate TLS", async () => {
  const c = await client(GW_ID, 'istio-system');
  const r = await c.subscribe(TypeUrl.Secret, ['kubernetes://bookinfo-credential']);
  assert.deepEqual(r.names, ['kubernetes://bookinfo-credential']);
  const got = tlsCert(r, 'kubernetes://bookinfo-credential');
  assert.equal(fingerprint(got.chain), fingerprint(example.cert), 'the certificate of istio-system/bookinfo-credential');
  assert.ok(new X509Certificate(got.chain).checkPrivateKey(createPrivateKey(got.key)), 'its private key');
  // The example's certificate is self-signed: trusting it, a client completes a handshake by SNI.
  const hs = await handshake({ cert: got.chain, key: got.key }, { servername: 'bookinfo.example.com', ca: example.cert });
  assert.equal(hs.clientOk, true);
  assert.equal(hs.peer, fingerprint(example.cert));
});

test('a proxy reads only Secrets of its own namespace; sidecars get no SDS', async () => {
  const gw = await client(GW_ID, 'istio-system');
  const r = await gw.subscribe(TypeUrl.Secret, ['kubernetes://default/bookinfo-credential', 'kubernetes://bookinfo-credential', 'kubernetes://istio-system/mtls-credential']);
  assert.deepEqual(r.names.sort(), ['kubernetes://bookinfo-credential', 'kubernetes://istio-system/mtls-credential'], 'default/bookinfo-credential is refused');
  // A gateway in `default` resolves the short name in its own namespace: another certificate.
  const other = await client('router~10.244.0.60~own-gateway-1.default~default.svc.cluster.local', 'default');
  const o = await other.subscribe(TypeUrl.Secret, ['kubernetes://bookinfo-credential', 'kubernetes://istio-system/bookinfo-credential']);
  assert.deepEqual(o.names, ['kubernetes://bookinfo-credential']);
  assert.equal(fingerprint(tlsCert(o, 'kubernetes://bookinfo-credential').chain), fingerprint(otherNs.cert));
  const sidecar = await client('sidecar~10.244.0.10~productpage-v1.default~default.svc.cluster.local', 'default');
  const s = await sidecar.subscribe(TypeUrl.Secret, ['kubernetes://bookinfo-credential']);
  assert.deepEqual(s.names, []);
});

test('MUTUAL: the -cacert bundle admits a client certificate it signed and not one it did not', async () => {
  const c = await client(GW_ID, 'istio-system');
  const r = await c.subscribe(TypeUrl.Secret, ['kubernetes://mtls-credential', 'kubernetes://mtls-credential-cacert']);
  const got = tlsCert(r, 'kubernetes://mtls-credential');
  const caRes = r.resources.find((x) => x.name === 'kubernetes://mtls-credential-cacert') as J;
  const trusted = pemOf((caRes.validation_context as J).trusted_ca);
  assert.equal(fingerprint(trusted), fingerprint(ca.cert), 'ca.crt of istio-system/mtls-credential');
  const server = { cert: got.chain, key: got.key, ca: trusted, requestCert: true, rejectUnauthorized: false };
  const good = await handshake(server, { servername: 'mtls.example.com', ca: ca.cert, cert: clientCert.cert, key: clientCert.key });
  assert.equal(good.clientOk, true);
  assert.equal(good.serverAuthorized, true, 'a client certificate signed by the served CA is accepted');
  const bad = await handshake(server, { servername: 'mtls.example.com', ca: ca.cert, cert: strangerClient.cert, key: strangerClient.key });
  assert.equal(bad.serverAuthorized, false, 'a client certificate from another CA is not');
});

test('replacing the Secret file pushes the new certificate over SDS, and nothing else', async () => {
  const c = await client(GW_ID, 'istio-system');
  for (const t of [TypeUrl.Cluster, TypeUrl.Listener]) await c.subscribe(t);
  await c.subscribe(TypeUrl.Route, ['http.8080', HTTPS_ROUTE]);
  const first = await c.subscribe(TypeUrl.Secret, ['kubernetes://bookinfo-credential']);
  await c.drain(200);
  write('bookinfo-credential.yaml', tlsSecretYaml('istio-system', 'bookinfo-credential', serverA));
  const pushed = await c.next(undefined, 5000);
  assert.equal(pushed.type_url, TypeUrl.Secret, 'only SDS changed');
  assert.notEqual(pushed.version_info, first.version_info);
  const got = tlsCert(pushed, 'kubernetes://bookinfo-credential');
  assert.equal(fingerprint(got.chain), fingerprint(serverA.cert));
  c.ack(pushed, ['kubernetes://bookinfo-credential']);
  assert.deepEqual(
    (await c.drain(400)).map((x) => x.type_url),
    [],
  );
  const hs = await handshake({ cert: got.chain, key: got.key }, { servername: 'bookinfo.example.com', ca: ca.cert });
  assert.equal(hs.clientOk, true);
  assert.equal(hs.peer, fingerprint(serverA.cert));
});

test('a certificate whose key is not its pair is not served; configz and push_status say why', async () => {
  const c = await client(GW_ID, 'istio-system');
  const r = await c.subscribe(TypeUrl.Secret, ['kubernetes://broken-credential', 'kubernetes://mtls-credential']);
  assert.deepEqual(r.names, ['kubernetes://mtls-credential']);
  const configz = JSON.parse(await http('/debug/configz')) as { secrets: Array<{ namespace: string; name: string; problems: string[] }> };
  const broken = configz.secrets.find((s) => s.namespace === 'istio-system' && s.name === 'broken-credential');
  assert.ok(
    broken?.problems.some((p) => p.includes('not a key pair')),
    JSON.stringify(broken),
  );
  assert.deepEqual(configz.secrets.find((s) => s.name === 'mtls-credential')?.problems, []);
  const status = JSON.parse(await http('/debug/push_status')) as { rejected_resources: Array<{ name: string; errors: Array<{ message: string }> }> };
  const withheld = status.rejected_resources.find((x) => x.name === 'kubernetes://broken-credential');
  assert.ok(withheld?.errors[0]?.message.includes('not a key pair'));
});

test("config_dump shows a gateway's secrets with the private key redacted, and no key appears in any debug output or log", async () => {
  // Its own pod name, so config_dump finds this stream and not an earlier one (labels come from the pod IP).
  const id = 'router~10.244.0.50~istio-ingressgateway-dump.istio-system~istio-system.svc.cluster.local';
  const c = await client(id, 'istio-system');
  await c.subscribe(TypeUrl.Listener);
  await c.subscribe(TypeUrl.Secret, ['kubernetes://bookinfo-credential', 'kubernetes://mtls-credential', 'kubernetes://broken-credential']);
  const dump = await http(`/debug/config_dump?proxyID=${encodeURIComponent(id)}`);
  assert.ok(dump.includes('0.0.0.0_8443'), "the gateway's listeners are in the dump");
  const secrets = (JSON.parse(dump) as { configs: J[] }).configs.find((x) => x['@type'] === 'type.googleapis.com/envoy.admin.v3.SecretsConfigDump');
  // Proto3 JSON, as Envoy's admin prints it: lowerCamelCase names, bytes in base64.
  const active = (secrets?.dynamicActiveSecrets ?? []) as J[];
  assert.deepEqual(active.map((s) => s.name).sort(), ['kubernetes://bookinfo-credential', 'kubernetes://mtls-credential']);
  const inline = (ds: unknown): string => Buffer.from(String((ds as J).inlineBytes), 'base64').toString('utf8');
  for (const s of active) {
    const t = (s.secret as J).tlsCertificate as J;
    assert.equal(inline(t.privateKey), '[redacted]', "Envoy's redaction");
    assert.ok(inline(t.certificateChain).includes('BEGIN CERTIFICATE'), 'certificates are public and shown');
  }
  const everything = [dump, await http('/debug/configz'), await http('/debug/push_status'), await http('/debug/syncz'), await http('/debug/registryz'), ...logs].join('\n');
  assert.ok(logs.length > 0, 'log lines were captured');
  for (const [what, key] of Object.entries({ example: example.key, serverA: serverA.key, serverB: serverB.key, mtls: mtlsServer.key, otherNs: otherNs.key })) {
    const body = key.split('\n').slice(1, -2).join('');
    const b64 = Buffer.from(key).toString('base64');
    for (const probe of [body.slice(100, 160), b64.slice(200, 260)]) assert.ok(!everything.includes(probe), `no part of the ${what} key in debug output or logs`);
  }
});

test('every Secret resource passes Envoy validate.rules, and SDS is never wildcard', () => {
  const snap = meshd.snapshot();
  assert.ok(snap);
  const proxy = { ...parseProxy(GW_ID, { NAMESPACE: 'istio-system' }), credentialNamespace: 'istio-system' };
  const engine = new ConfigEngine({ protos, checker: new ResourceValidator(protos) });
  engine.setSnapshot(snap);
  const names = new Set(['kubernetes://bookinfo-credential', 'kubernetes://mtls-credential', 'kubernetes://mtls-credential-cacert']);
  const enc = engine.resources(engine.attach(proxy), TypeUrl.Secret, names).resources;
  assert.equal(enc.size, 3);
  assert.deepEqual(engine.currentRejections(), []);
  assert.deepEqual(secretResources({ snap, proxy }), [], 'no names asked, no secrets sent');
});

/** What /debug/syncz says about the stream of `proxyId`. */
async function synczOf(proxyId: string): Promise<J | undefined> {
  return (JSON.parse(await http('/debug/syncz')) as J[]).find((x) => x.proxy === proxyId);
}

const SHOP_SECRET = 'kubernetes://shop-gw-cert';

test('a plaintext client that claims a namespace gets no credential; syncz and the log say why', async () => {
  const c = track(new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id: INTRUDER_ID, metadata: { NAMESPACE: 'shop' } }));
  const r = await c.subscribe(TypeUrl.Secret, [SHOP_SECRET, 'kubernetes://shop/shop-gw-cert']);
  assert.deepEqual(r.names, [], 'no Secret over plaintext');
  assert.ok(!JSON.stringify(r.resources).includes('private_key'));
  const s = await synczOf(INTRUDER_ID);
  assert.equal(s?.identity, null);
  assert.match(String(s?.credentials_denied), /plaintext/);
  assert.match(String((s?.secrets_denied as J)[SHOP_SECRET]), /plaintext/);
  const line = logs.find((l) => l.includes('credential not served') && l.includes(INTRUDER_ID));
  assert.ok(line, 'the refusal is logged');
  assert.match(line, /plaintext/);
});

test('over TLS without a credential, the stream is refused', async () => {
  const c = track(new AdsClient(protos, `127.0.0.1:${meshd.secureXdsPort}`, { id: INTRUDER_ID, metadata: { NAMESPACE: 'shop' } }, 'full', tlsChannel(meshd.caRootPem())));
  await assert.rejects(c.subscribe(TypeUrl.Secret, [SHOP_SECRET]));
  assert.equal(c.error?.code, 16 /* UNAUTHENTICATED */, c.error?.details);
  assert.match(c.error?.details ?? '', /no credential/);
});

test('over TLS with a certificate of another namespace, a proxy that claims `shop` is refused', async () => {
  const c = track(
    new AdsClient(
      protos,
      `127.0.0.1:${meshd.secureXdsPort}`,
      { id: INTRUDER_ID, metadata: { NAMESPACE: 'shop' } },
      'full',
      tlsChannel(meshd.caRootPem(), await gatewayCert('default', 'sleep')),
    ),
  );
  await assert.rejects(c.subscribe(TypeUrl.Secret, [SHOP_SECRET]));
  assert.equal(c.error?.code, 7 /* PERMISSION_DENIED */, c.error?.details);
  assert.match(c.error?.details ?? '', /spiffe:\/\/cluster.local\/ns\/default\/sa\/sleep.*do not match/);
});

test('the shop gateway, verified by its certificate, gets its credential; by a token in the stream metadata too', async () => {
  const id = 'router~10.9.9.10~shop-gateway-0.shop~shop.svc.cluster.local';
  const c = await client(id, 'shop');
  const r = await c.subscribe(TypeUrl.Secret, [SHOP_SECRET, 'kubernetes://istio-system/bookinfo-credential']);
  assert.deepEqual(r.names, [SHOP_SECRET], 'its own namespace only');
  assert.equal(fingerprint(tlsCert(r, SHOP_SECRET).chain), fingerprint(shopCert.cert));
  const s = await synczOf(id);
  assert.deepEqual(s?.identity, { id: `spiffe://cluster.local/ns/shop/sa/${GATEWAY_SA}`, via: 'mtls' });
  assert.match(String((s?.secrets_denied as J)['kubernetes://istio-system/bookinfo-credential']), /outside the verified identity's namespace shop/);

  const byToken = 'router~10.9.9.11~shop-gateway-1.shop~shop.svc.cluster.local';
  const { credentials, channelOptions } = tlsChannel(meshd.caRootPem());
  const t = track(
    new AdsClient(protos, `127.0.0.1:${meshd.secureXdsPort}`, { id: byToken, metadata: { NAMESPACE: 'shop' } }, 'full', {
      credentials,
      channelOptions,
      metadata: bearer(await mintToken(jwtKey, GATEWAY_SA, 'shop')),
    }),
  );
  const rt = await t.subscribe(TypeUrl.Secret, [SHOP_SECRET]);
  assert.deepEqual(rt.names, [SHOP_SECRET]);
  assert.equal((await synczOf(byToken))?.identity && ((await synczOf(byToken))?.identity as J).via, 'jwt');
});

test('a gateway on a delta stream that subscribes to one more route name gets it (a changed subscription is a new set)', async () => {
  const c = new DeltaAdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id: GW_ID, metadata: { NAMESPACE: 'istio-system' } });
  try {
    const first = await c.subscribe(TypeUrl.Route, ['http.8080']);
    assert.deepEqual(first.names, ['http.8080']);
    c.ack(first);
    const more = await c.subscribe(TypeUrl.Route, [HTTPS_ROUTE]);
    assert.deepEqual(more.names, [HTTPS_ROUTE], 'the newly subscribed route, and only it');
    c.ack(more);
    c.send({ type_url: TypeUrl.Route, unsubscribe: ['http.8080'] });
    c.send({ type_url: TypeUrl.Route, subscribe: ['http.8080'] });
    const again = await c.next(TypeUrl.Route);
    assert.deepEqual(again.names, ['http.8080'], 'subscribing again sends it again');
  } finally {
    c.close();
  }
});
