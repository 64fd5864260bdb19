/**
 * A Gateway API Gateway terminating TLS, over a real ADS stream: meshd serves a Gateway of class
 * istio whose HTTPS listener names a Secret by certificateRefs; its proxy (a `router~` node in
 * the Gateway's namespace whose pod is labelled gateway.networking.k8s.io/gateway-name, connected over TLS
 * with the workload certificate of that namespace, as istio-agent connects) gets the listener
 * with `kubernetes://<secret>` over SDS, and the served certificate and key complete a real TLS
 * handshake on 127.0.0.1. Replacing the certificateRef moves the listener to the new Secret; a
 * Secret of another namespace is served (as `kubernetes-gateway://<ns>/<name>`) only once a
 * ReferenceGrant there permits it.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as tls from 'node:tls';
import { type CryptoKey, exportJWK, generateKeyPair } from 'jose';
import pino from 'pino';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient, type Response } from './helpers/ads-client';
import { JWT_AUDIENCE, JWT_ISSUER, mintToken } from './helpers/security-mesh';
import { tlsChannel, workloadCert } from './helpers/verified-proxy';
import { issue, makeCa, tlsSecretYaml } from './helpers/certs';

const NS = 'gws';
const GW_ID = `router~10.244.0.60~web-gw-istio-7c9d5b6f8-k2x4p.${NS}~${NS}.svc.cluster.local`;
const protos = new EnvoyProtos();
type J = Record<string, unknown>;

const ca = makeCa();
const certA = issue(ca, ['secure.example.com']);
const certB = issue(ca, ['secure.example.com']);
const certShared = issue(ca, ['secure.example.com']);

let dir: string;
let jwksDir: string;
let meshd: MeshdHandle;
let jwtKey: CryptoKey;
const clients: AdsClient[] = [];

function gatewayYaml(secret: string, secretNamespace?: string): string {
  return `
# The gateway's pod: its labels (read by the proxy's pod name) select it for the Gateway.
apiVersion: v1
kind: Pod
metadata: { name: web-gw-istio-7c9d5b6f8-k2x4p, namespace: ${NS}, labels: { gateway.networking.k8s.io/gateway-name: web-gw } }
spec: { serviceAccountName: web-gw-istio }
status: { phase: Running, podIP: 10.244.0.60 }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: web-gw, namespace: ${NS} }
spec:
  gatewayClassName: istio
  listeners:
  - name: https
    port: 443
    protocol: HTTPS
    hostname: secure.example.com
    tls: { mode: Terminate, certificateRefs: [{ name: ${secret}${secretNamespace ? `, namespace: ${secretNamespace}` : ''} }] }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: apps }
spec: { clusterIP: 10.96.1.1, ports: [{ name: http, port: 8080 }] }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: web, namespace: ${NS} }
spec:
  parentRefs: [{ name: web-gw }]
  rules: [{ backendRefs: [{ name: web, namespace: apps, port: 8080 }] }]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: { name: gws-routes, namespace: apps }
spec:
  from: [{ group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: ${NS} }]
  to: [{ group: "", kind: Service }]
`;
}

function write(file: string, text: string): void {
  const p = path.join(dir, file);
  fs.writeFileSync(`${p}.tmp`, text);
  fs.renameSync(`${p}.tmp`, p);
}

async function gatewayClient(): Promise<AdsClient> {
  const token = await mintToken(jwtKey, 'web-gw-istio', NS);
  const cert = await workloadCert({ address: `127.0.0.1:${meshd.secureXdsPort}`, rootPem: meshd.caRootPem(), token, spiffeId: `spiffe://cluster.local/ns/${NS}/sa/web-gw-istio` });
  const c = new AdsClient(protos, `127.0.0.1:${meshd.secureXdsPort}`, { id: GW_ID, metadata: { NAMESPACE: NS } }, 'full', tlsChannel(meshd.caRootPem(), cert));
  clients.push(c);
  return c;
}

const pemOf = (ds: unknown): string => Buffer.from(String((ds as J).inline_bytes), 'base64').toString('utf8');

function served(r: Response, name: string): { chain: string; key: string } {
  const s = r.resources.find((x) => x.name === name) as J | undefined;
  assert.ok(s, `${name} is served`);
  const t = s.tls_certificate as J;
  return { chain: pemOf(t.certificate_chain), key: pemOf(t.private_key) };
}

async function handshake(server: tls.TlsOptions, clientOpts: tls.ConnectionOptions): Promise<{ ok: boolean; peer?: string }> {
  const srv = tls.createServer(server, (s) => s.end());
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  try {
    return await new Promise((resolve) => {
      const sock = tls.connect({ host: '127.0.0.1', port, ...clientOpts }, () => {
        const peer = sock.getPeerX509Certificate()?.fingerprint256;
        sock.on('close', () => resolve({ ok: sock.authorized, peer }));
        sock.end();
      });
      sock.on('error', () => resolve({ ok: false }));
      sock.setTimeout(5000, () => sock.destroy());
    });
  } finally {
    await new Promise((r) => srv.close(r));
  }
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-gwapi-tls-'));
  write(
    'secrets.yaml',
    `${tlsSecretYaml(NS, 'cert-a', certA)}\n---\n${tlsSecretYaml(NS, 'cert-b', certB)}\n---\n${tlsSecretYaml('certs', 'shared-cert', certShared)}\n---\n${tlsSecretYaml('certs', 'other-cert', certB)}\n`,
  );
  write('gateway.yaml', gatewayYaml('cert-a'));
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  jwtKey = privateKey;
  jwksDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-gwapi-tls-jwks-'));
  fs.writeFileSync(path.join(jwksDir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
  meshd = await startMeshd({
    configDir: dir,
    xdsPort: 0,
    secureXdsPort: 0,
    debugPort: 0,
    monitoringPort: -1,
    logger: pino({ level: 'silent' }),
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

test('an HTTPS listener with certificateRefs terminates TLS with the Secret served over SDS', async () => {
  const c = await gatewayClient();
  const lds = await c.subscribe(TypeUrl.Listener);
  assert.deepEqual(lds.names, ['0.0.0.0_443']);
  const listener = JSON.stringify(lds.resources[0]);
  for (const s of ['secure.example.com', 'kubernetes://cert-a', 'envoy.transport_sockets.tls']) assert.ok(listener.includes(s), `the listener names ${s}`);

  const sds = await c.subscribe(TypeUrl.Secret, ['kubernetes://cert-a']);
  const got = served(sds, 'kubernetes://cert-a');
  assert.equal(new X509Certificate(got.chain).fingerprint256, new X509Certificate(certA.cert).fingerprint256);
  const hs = await handshake({ cert: got.chain, key: got.key }, { servername: 'secure.example.com', ca: ca.cert });
  assert.equal(hs.ok, true, 'a client trusting the CA completes the handshake');
  assert.equal(hs.peer, new X509Certificate(certA.cert).fingerprint256);

  // The route reaches its backend in another namespace (permitted by the ReferenceGrant).
  const routeName = /"route_config_name":"([^"]+)"/.exec(listener)?.[1];
  assert.equal(routeName, `https.443.default.web-gw-istio-autogenerated-k8s-gateway-https.${NS}`, 'the HTTPS server route, named as for any Istio Gateway server');
  const rds = await c.subscribe(TypeUrl.Route, [routeName]);
  assert.ok(JSON.stringify(rds.resources).includes('outbound|8080||web.apps.svc.cluster.local'));
});

test('changing the certificateRef moves the listener to the other Secret, which terminates TLS in turn', async () => {
  const c = await gatewayClient();
  await c.subscribe(TypeUrl.Listener);
  write('gateway.yaml', gatewayYaml('cert-b'));
  const lds = await c.next(TypeUrl.Listener);
  assert.ok(JSON.stringify(lds.resources).includes('kubernetes://cert-b'), 'the listener names the new Secret');
  const sds = await c.subscribe(TypeUrl.Secret, ['kubernetes://cert-b']);
  const got = served(sds, 'kubernetes://cert-b');
  const hs = await handshake({ cert: got.chain, key: got.key }, { servername: 'secure.example.com', ca: ca.cert });
  assert.equal(hs.ok, true);
  assert.equal(hs.peer, new X509Certificate(certB.cert).fingerprint256);
});

test('a certificateRef to another namespace is served only once a ReferenceGrant permits it', async () => {
  const c = await gatewayClient();
  await c.subscribe(TypeUrl.Listener);
  write('gateway.yaml', gatewayYaml('shared-cert', 'certs'));
  // Not permitted: the listener is not programmed, so the gateway serves no 443 at all.
  const refused = await c.next(TypeUrl.Listener);
  assert.deepEqual(refused.names, []);
  // Nor does SDS serve the Secret to a gateway that asks for it by name.
  const early = await (await gatewayClient()).subscribe(TypeUrl.Secret, ['kubernetes-gateway://certs/shared-cert', 'kubernetes://cert-a']);
  assert.deepEqual(early.names, ['kubernetes://cert-a'], 'no ReferenceGrant: not served');
  write(
    'grant.yaml',
    `apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: { name: gws-certs, namespace: certs }
spec:
  from: [{ group: gateway.networking.k8s.io, kind: Gateway, namespace: ${NS} }]
  to: [{ group: "", kind: Secret, name: shared-cert }]
`,
  );
  const lds = await c.next(TypeUrl.Listener);
  assert.ok(JSON.stringify(lds.resources).includes('kubernetes-gateway://certs/shared-cert'), "the listener names the Secret in istiod's cross-namespace form");
  const sds = await (await gatewayClient()).subscribe(TypeUrl.Secret, ['kubernetes-gateway://certs/shared-cert', 'kubernetes-gateway://certs/other-cert']);
  assert.deepEqual(sds.names, ['kubernetes-gateway://certs/shared-cert'], 'only the Secret the grant and the Gateway name');
  const got = served(sds, 'kubernetes-gateway://certs/shared-cert');
  const hs = await handshake({ cert: got.chain, key: got.key }, { servername: 'secure.example.com', ca: ca.cert });
  assert.equal(hs.ok, true);
  assert.equal(hs.peer, new X509Certificate(certShared.cert).fingerprint256);
});
