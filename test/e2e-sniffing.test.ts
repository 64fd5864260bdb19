/**
 * End to end: a Service port without a protocol (unnamed), routed by a VirtualService on a
 * header, with real gRPC traffic.
 *
 * 1. A proxyless grpc-js-xds client calls through the unnamed port and reaches the subset the
 *    VirtualService picks: the port's api listener, routes and clusters are served as for a
 *    declared port (istiod's grpcgen does not read the protocol either).
 * 2. A sidecar: no Envoy binary runs here, so the sidecar half is proven on the config a sidecar
 *    receives over a real ADS stream. The first bytes a real grpc-js client writes on a real
 *    socket are classified as Envoy's http_inspector does (the HTTP/2 preface is `h2c`, an
 *    HTTP/1 request line `http/1.x`, anything else nothing); that result and the connection's
 *    destination (the service VIP and port) select a filter chain of the served listener as
 *    Envoy's filter chain match does; the chain's HTTP connection manager names a route
 *    configuration, fetched over the same stream, whose routes are matched with the call's path
 *    and headers. What is not checked: Envoy's own implementation of these steps.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { MeshdHandle } from '../src/main';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient } from './helpers/ads-client';
import { type BackendSet, WHO_METHOD, startBackends } from './helpers/backends';
import { only, startE2eMeshd } from './helpers/e2e';
import { FQDN, NAMESPACE, SERVICE, SERVICE_PORT, createMeshFixture, headerRoute, type MeshFixture } from './helpers/mesh-fixture';
import { closeInOrder } from './helpers/teardown';
import { type XdsClient, runUntil, startGrpcJsXdsClient } from './helpers/xds-clients';

const V1 = 'reviews-v1';
const V2 = 'reviews-v2';
const VIP = '10.96.90.80';
const protos = new EnvoyProtos();

interface Env {
  backends: BackendSet;
  fixture: MeshFixture;
  meshd: MeshdHandle;
}
const env: Partial<Env> = {};
const clients: XdsClient[] = [];
const ads: AdsClient[] = [];

function ready(): Env {
  assert.ok(env.backends && env.fixture && env.meshd, 'setup did not complete');
  return env as Env;
}

before(async () => {
  env.backends = await startBackends([V1, V2]);
  const ports = { v1: env.backends.get(V1).port, v2: env.backends.get(V2).port };
  env.fixture = await createMeshFixture({ ports, http: headerRoute('x-version', 'v2', 'v2', 'v1') });
  // The same service and endpoints with the port's name taken away: its protocol is undeclared.
  await env.fixture.writeObjects('service-reviews.yaml', [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: SERVICE, namespace: NAMESPACE },
      spec: { selector: { app: SERVICE }, clusterIP: VIP, ports: [{ port: SERVICE_PORT, targetPort: SERVICE_PORT, protocol: 'TCP' }] },
    },
  ]);
  await env.fixture.writeObjects(
    'endpointslices-reviews.yaml',
    Object.entries(ports).map(([version, port]) => ({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${SERVICE}-${version}`, namespace: NAMESPACE, labels: { 'kubernetes.io/service-name': SERVICE } },
      addressType: 'IPv4',
      ports: [{ port, protocol: 'TCP' }],
      endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: `${SERVICE}-${version}`, namespace: NAMESPACE } }],
    })),
  );
  env.meshd = await startE2eMeshd(env.fixture.configDir);
});

after(async () => {
  await closeInOrder([
    ...clients.map((c) => () => c.close()),
    ...ads.map((c) => () => Promise.resolve(c.close())),
    () => env.meshd?.close(),
    () => env.backends?.close(),
    () => env.fixture?.cleanup(),
  ]);
});

test('proxyless grpc-js: a call through a port without a protocol is routed by the VirtualService header match', async () => {
  const e = ready();
  const client = await startGrpcJsXdsClient({ xdsPort: e.meshd.xdsPort, namespace: NAMESPACE });
  clients.push(client);
  await runUntil(client, { calls: 20, metadata: { 'x-version': 'v2' }, waitForReady: true }, only(V2), { what: 'x-version v2 → v2' });
  await runUntil(client, { calls: 20, waitForReady: true }, only(V1), { what: 'no header → v1' });
  const before = e.backends.counts();
  const r = await client.run({ calls: 10, metadata: { 'x-version': 'v2' } });
  assert.deepEqual(r.counts, { [V2]: 10 });
  assert.equal(e.backends.counts()[V2], (before[V2] ?? 0) + 10, 'the v2 backend saw every call');
});

// ---- the sidecar side: Envoy's selection steps over the served config ----

type Obj = Record<string, unknown>;

/** What Envoy's http_inspector reports for a connection's first bytes. */
function httpInspector(first: Buffer): string | undefined {
  if (first.subarray(0, 24).toString('latin1') === 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n') return 'h2c';
  const line = /^[A-Z]+ \S+ HTTP\/1\.([01])\r\n/.exec(first.toString('latin1'));
  return line ? `http/1.${line[1]}` : undefined;
}

/** Envoy's filter chain match for a plaintext connection to `ip:port` with this ALPN (of these fields, what the listener uses). */
function selectChain(listener: Obj, ip: string, port: number, alpn: string | undefined): Obj {
  const sa = (listener.address as Obj).socket_address as Obj;
  assert.equal(`${String(sa.address)}:${String(sa.port_value)}`, `${ip}:${port}`, 'the listener binds the destination');
  const chains = (listener.filter_chains as Obj[] | undefined) ?? [];
  const fits = (m: Obj | undefined): boolean => {
    if (!m) return true;
    if (m.transport_protocol !== undefined && m.transport_protocol !== 'raw_buffer') return false;
    const aps = m.application_protocols as string[] | undefined;
    return !aps || aps.length === 0 || (alpn !== undefined && aps.includes(alpn));
  };
  return chains.find((c) => fits(c.filter_chain_match as Obj | undefined)) ?? (listener.default_filter_chain as Obj);
}

/** A route's match against a request (the matchers this VirtualService produces: prefix, exact headers). */
function routeMatches(match: Obj, path: string, headers: Record<string, string>): boolean {
  if (typeof match.prefix === 'string' && !path.startsWith(match.prefix)) return false;
  for (const h of (match.headers as Obj[] | undefined) ?? []) {
    const sm = h.string_match as Obj | undefined;
    const want = sm?.exact;
    if (typeof want !== 'string') throw new Error(`unexpected header matcher ${JSON.stringify(h)}`);
    if (headers[String(h.name)] !== want) return false;
  }
  return true;
}

/** The first bytes a real grpc-js client writes for a unary call, read on a real socket. */
async function firstBytesOfGrpcCall(): Promise<Buffer> {
  const got: Buffer[] = [];
  let resolveBytes: (b: Buffer) => void = () => undefined;
  const bytes = new Promise<Buffer>((r) => (resolveBytes = r));
  const server = net.createServer((sock) => {
    sock.on('data', (d: Buffer) => {
      got.push(d);
      const all = Buffer.concat(got);
      if (all.length >= 24) {
        resolveBytes(all);
        sock.destroy();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('x-version', 'v2');
  const call = new Promise<void>((r) =>
    client.makeUnaryRequest(
      WHO_METHOD,
      (x: Buffer) => x,
      (x: Buffer) => x,
      Buffer.alloc(0),
      md,
      { deadline: Date.now() + 5000 },
      () => r(),
    ),
  );
  const first = await bytes;
  await call;
  client.close();
  await new Promise<void>((r) => server.close(() => r()));
  return first;
}

test('sidecar: the served listener sends a real gRPC call to HTTP routing by the VirtualService, other bytes to tcp_proxy', async () => {
  const e = ready();
  const c = new AdsClient(protos, `127.0.0.1:${e.meshd.xdsPort}`, { id: `sidecar~10.0.9.1~client-1.${NAMESPACE}~${NAMESPACE}.svc.cluster.local`, metadata: { NAMESPACE } });
  ads.push(c);
  const lds = await c.subscribe(TypeUrl.Listener);
  const listener = lds.resources.find((l) => l.name === `${VIP}_${SERVICE_PORT}`);
  assert.ok(listener, `listener ${VIP}_${SERVICE_PORT} served (got ${lds.names.join(', ')})`);
  const filters = (listener.listener_filters as Obj[] | undefined)?.map((f) => f.name);
  assert.deepEqual(filters, ['envoy.filters.listener.tls_inspector', 'envoy.filters.listener.http_inspector'], 'the HTTP inspector runs on this listener');
  assert.equal(listener.continue_on_listener_filters_timeout, true);

  // A real grpc-js call's first bytes are the HTTP/2 preface: h2c → the HTTP chain.
  const first = await firstBytesOfGrpcCall();
  const alpn = httpInspector(first);
  assert.equal(alpn, 'h2c');
  const chain = selectChain(listener, VIP, SERVICE_PORT, alpn);
  const hcm = ((chain.filters as Obj[])[0] as Obj).typed_config as Obj;
  assert.match(String(hcm['@type']), /HttpConnectionManager$/, 'a gRPC call reaches the HTTP connection manager');
  const rdsName = String((hcm.rds as Obj).route_config_name);
  assert.equal(rdsName, `${FQDN}:${SERVICE_PORT}`);

  const rds = await c.subscribe(TypeUrl.Route, [rdsName]);
  const rc = rds.resources.find((r) => r.name === rdsName);
  assert.ok(rc, `route configuration ${rdsName} served`);
  const [vhost] = rc.virtual_hosts as Obj[];
  assert.ok(vhost);
  assert.deepEqual(vhost.domains, ['*']);
  const clusterFor = (headers: Record<string, string>): string => {
    const route = (vhost.routes as Obj[]).find((r) => routeMatches(r.match as Obj, WHO_METHOD, headers));
    assert.ok(route, `a route matches ${JSON.stringify(headers)}`);
    return String((route.route as Obj).cluster);
  };
  assert.equal(clusterFor({ 'x-version': 'v2', 'content-type': 'application/grpc' }), `outbound|${SERVICE_PORT}|v2|${FQDN}`);
  assert.equal(clusterFor({ 'content-type': 'application/grpc' }), `outbound|${SERVICE_PORT}|v1|${FQDN}`);

  // An HTTP/1.1 request line is HTTP too; bytes that are neither go to the port's tcp_proxy.
  assert.equal(selectChain(listener, VIP, SERVICE_PORT, httpInspector(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))), chain);
  const tcp = selectChain(listener, VIP, SERVICE_PORT, httpInspector(Buffer.from('*1\r\n$4\r\nPING\r\n')));
  const tcpProxy = ((tcp.filters as Obj[]).find((f) => f.name === 'envoy.filters.network.tcp_proxy') as Obj).typed_config as Obj;
  assert.match(String(tcpProxy['@type']), /TcpProxy$/);
  assert.equal(tcpProxy.cluster, `outbound|${SERVICE_PORT}||${FQDN}`);

  // Upstream, the cluster speaks what came in (HTTP/2 for this call).
  const cds = await c.subscribe(TypeUrl.Cluster);
  const v2 = cds.resources.find((x) => x.name === `outbound|${SERVICE_PORT}|v2|${FQDN}`);
  const opts = (v2?.typed_extension_protocol_options as Obj | undefined)?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'] as Obj | undefined;
  assert.ok(opts?.use_downstream_protocol_config, 'use_downstream_protocol_config on the sniffed port’s clusters');
});
