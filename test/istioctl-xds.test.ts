/**
 * istioctl against meshd: the xDS debug types (`istio.io/debug/syncz`, `istio.io/debug/config_dump`)
 * asked exactly as istioctl asks them, on real gRPC streams, over TLS with a service-account token
 * (istioctl's way) and over plaintext; answered and authorized as istiod answers them.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type CryptoKey, exportJWK, generateKeyPair } from 'jose';
import pino from 'pino';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient } from './helpers/ads-client';
import { askLikeIstioctl, statusRows } from './helpers/istioctl-xds';
import { JWT_AUDIENCE, JWT_ISSUER, mintToken } from './helpers/security-mesh';
import { bearer, tlsChannel } from './helpers/verified-proxy';

const protos = new EnvoyProtos();
const VERSION = (JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
const PRODUCTPAGE = 'sidecar~10.244.0.10~productpage-v1.default~default.svc.cluster.local';
const SHOP = 'sidecar~10.244.9.9~cart-0.shop~shop.svc.cluster.local';
const SYNCZ = 'istio.io/debug/syncz';
const CONFIG_DUMP = 'istio.io/debug/config_dump';
/** A stream that is never answered fails the test instead of hanging it. */
const T = { timeout: 30_000 };

let meshd: MeshdHandle;
let jwtKey: CryptoKey;
let jwksDir: string;
const clients: AdsClient[] = [];

/** istioctl's transport: TLS to 15012 with a bearer token of `namespace`/`sa` (it skips verifying the server; here the root is known). */
async function tls(namespace: string, sa = 'default'): Promise<{ credentials: grpc.ChannelCredentials; channelOptions: grpc.ChannelOptions; metadata: grpc.Metadata }> {
  return { ...tlsChannel(meshd.caRootPem()), metadata: bearer(await mintToken(jwtKey, sa, namespace)) };
}

before(async () => {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  jwtKey = privateKey;
  jwksDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-istioctl-jwks-'));
  fs.writeFileSync(path.join(jwksDir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
  meshd = await startMeshd({
    configDir: path.join(__dirname, '..', 'examples', 'bookinfo'),
    xdsPort: 0,
    secureXdsPort: 0,
    debugPort: 0,
    monitoringPort: 0,
    logger: pino({ level: 'silent' }),
    podName: 'meshd-test-0',
    jwks: path.join(jwksDir, 'jwks.json'),
    jwtIssuer: JWT_ISSUER,
    jwtAudiences: [JWT_AUDIENCE],
  });
  await meshd.caReady();
  const pp = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id: PRODUCTPAGE, metadata: { NAMESPACE: 'default', ISTIO_VERSION: '1.24.0', CLUSTER_ID: 'Kubernetes' } });
  clients.push(pp);
  await pp.subscribe(TypeUrl.Cluster);
  await pp.subscribe(TypeUrl.Listener);
  await pp.subscribe(TypeUrl.Route, ['9080']);
  await pp.subscribe(TypeUrl.Endpoint, ['outbound|9080|v1|reviews.default.svc.cluster.local']);
  const shop = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id: SHOP, metadata: { NAMESPACE: 'shop' } });
  clients.push(shop);
  await shop.subscribe(TypeUrl.Cluster);
});

after(async () => {
  for (const c of clients) c.close();
  await meshd.close();
  fs.rmSync(jwksDir, { recursive: true, force: true });
});

test("proxy-status over TLS as istioctl asks it: a ClientConfig per proxy, istiod's per-type states, the control plane's ID and version", T, async () => {
  const { response, error } = await askLikeIstioctl(protos, `127.0.0.1:${meshd.secureXdsPort}`, { typeUrl: SYNCZ, ...(await tls('istio-system')) });
  assert.equal(error, undefined, error?.message);
  assert.ok(response);
  const cp = JSON.parse(response.control_plane?.identifier ?? '{}') as { Component: string; ID: string; Info: { version: string; tag: string } };
  assert.deepEqual([cp.Component, cp.ID, cp.Info.version, cp.Info.tag], ['istiod', 'meshd-test-0', VERSION, VERSION]);
  const rows = statusRows(protos, response);
  // The debug connection itself is not a proxy: only the two sidecars are listed.
  assert.deepEqual(Object.keys(rows).sort(), [PRODUCTPAGE, SHOP]);
  assert.deepEqual(rows[PRODUCTPAGE], { CLUSTER: 'Kubernetes', CDS: 'SYNCED', LDS: 'SYNCED', EDS: 'SYNCED', RDS: 'SYNCED', ECDS: 'NOT_SENT', ISTIOD: 'meshd-test-0', VERSION });
  assert.deepEqual([rows[SHOP]?.CDS, rows[SHOP]?.LDS], ['SYNCED', 'NOT_SENT']);
  // Not counted as a proxy anywhere.
  const status = JSON.parse(await (await fetch(`http://127.0.0.1:${meshd.debugPort}/debug/push_status`)).text()) as { connected: number };
  assert.equal(status.connected, 2);
});

test('a NACKed response is ERROR with client status NACKED and the proxy message (istiod would say STALE)', T, async () => {
  const id = 'sidecar~10.244.0.11~ratings-v1.default~default.svc.cluster.local';
  const c = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id, metadata: { NAMESPACE: 'default' } });
  clients.push(c);
  await c.subscribe(TypeUrl.Cluster);
  c.send({ type_url: TypeUrl.Listener, resource_names: [] });
  c.nack(await c.next(TypeUrl.Listener), 'listener 0.0.0.0_9080: bad filter');
  // The NACK is on its way; a later request on the same stream is handled after it.
  await c.subscribe(TypeUrl.Route, ['9080']);
  const { response } = await askLikeIstioctl(protos, `127.0.0.1:${meshd.secureXdsPort}`, { typeUrl: SYNCZ, ...(await tls('istio-system')) });
  assert.ok(response);
  const row = statusRows(protos, response)[id];
  assert.deepEqual([row?.CDS, row?.LDS, row?.LDS_client, row?.RDS], ['SYNCED', 'ERROR', 'NACKED', 'SYNCED']);
});

test("config_dump over TLS for the proxy's own namespace: one Any per admin *ConfigDump, with what it was sent", T, async () => {
  const { response, error } = await askLikeIstioctl(protos, `127.0.0.1:${meshd.secureXdsPort}`, {
    typeUrl: CONFIG_DUMP,
    resourceNames: ['productpage-v1.default'],
    namespace: 'default',
    ...(await tls('default')),
  });
  assert.equal(error, undefined, error?.message);
  assert.ok(response);
  assert.deepEqual(
    response.resources.map((r) => r.type_url),
    ['Clusters', 'Listeners', 'Routes', 'Endpoints'].map((k) => `type.googleapis.com/envoy.admin.v3.${k}ConfigDump`),
  );
  const clusters = protos.decode(response.resources[0]?.type_url ?? '', response.resources[0]?.value ?? new Uint8Array()) as {
    dynamic_active_clusters: { cluster: { name: string } }[];
  };
  assert.ok(clusters.dynamic_active_clusters.some((c) => c.cluster.name === 'outbound|9080|v2|reviews.default.svc.cluster.local'));
  // A proxy that is not connected here: an empty answer, as istiod's (it may be on another replica).
  const none = await askLikeIstioctl(protos, `127.0.0.1:${meshd.secureXdsPort}`, {
    typeUrl: CONFIG_DUMP,
    resourceNames: ['nobody.default'],
    namespace: 'default',
    ...(await tls('default')),
  });
  assert.deepEqual(none.response?.resources, []);
});

test("an identity outside the system namespace sees its own namespace's proxies only (istiod's rule)", T, async () => {
  const { response } = await askLikeIstioctl(protos, `127.0.0.1:${meshd.secureXdsPort}`, { typeUrl: SYNCZ, namespace: 'shop', ...(await tls('shop')) });
  assert.ok(response);
  assert.deepEqual(Object.keys(statusRows(protos, response)), [SHOP]);
  const other = await askLikeIstioctl(protos, `127.0.0.1:${meshd.secureXdsPort}`, {
    typeUrl: CONFIG_DUMP,
    resourceNames: ['productpage-v1.default'],
    namespace: 'shop',
    ...(await tls('shop')),
  });
  assert.equal(other.error?.code, grpc.status.PERMISSION_DENIED);
  assert.match(other.error?.details ?? '', /namespace shop only .* "productpage-v1.default" is in namespace default/);
});

test('a token of another namespace than the node claims is refused, as any proxy stream', T, async () => {
  const { error } = await askLikeIstioctl(protos, `127.0.0.1:${meshd.secureXdsPort}`, { typeUrl: SYNCZ, namespace: 'istio-system', ...(await tls('shop')) });
  assert.equal(error?.code, grpc.status.PERMISSION_DENIED);
  assert.match(error?.details ?? '', /do not match/);
});

test('on the plaintext port debug types are refused while debug endpoint auth is on, with how to ask instead', T, async () => {
  const { error } = await askLikeIstioctl(protos, `127.0.0.1:${meshd.xdsPort}`, { typeUrl: SYNCZ });
  assert.equal(error?.code, grpc.status.PERMISSION_DENIED);
  assert.match(error?.details ?? '', /plaintext stream: debug endpoint auth is on.*15012.*--debug-endpoint-auth=false/);
  const bad = await askLikeIstioctl(protos, `127.0.0.1:${meshd.secureXdsPort}`, { typeUrl: CONFIG_DUMP, resourceNames: [], ...(await tls('istio-system')) });
  assert.equal(bad.error?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(bad.error?.details ?? '', /takes exactly one resource name/);
});

test("with --debug-endpoint-auth=false the plaintext port answers, to adsc's node and to a bare debug~ node", T, async () => {
  const open = await startMeshd({
    configDir: path.join(__dirname, '..', 'examples', 'bookinfo'),
    xdsPort: 0,
    debugPort: 0,
    monitoringPort: -1,
    logger: pino({ level: 'silent' }),
    debugEndpointAuth: false,
  });
  const c = new AdsClient(protos, `127.0.0.1:${open.xdsPort}`, { id: PRODUCTPAGE, metadata: { NAMESPACE: 'default' } });
  try {
    await c.subscribe(TypeUrl.Cluster);
    for (const nodeId of [undefined, 'debug~0.0.0.0~istioctl~cluster.local']) {
      const { response, error } = await askLikeIstioctl(protos, `127.0.0.1:${open.xdsPort}`, { typeUrl: SYNCZ, ...(nodeId ? { nodeId } : {}) });
      assert.equal(error, undefined, error?.message);
      assert.ok(response);
      assert.deepEqual(Object.keys(statusRows(protos, response)), [PRODUCTPAGE]);
    }
  } finally {
    c.close();
    await open.close();
  }
});
