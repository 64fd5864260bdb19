/** Debug HTTP endpoints and metrics against a running meshd serving the bookinfo example. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient } from './helpers/ads-client';
import { parseBack, requireProto3JsonChecker } from './helpers/proto3-json';

const protos = new EnvoyProtos();
const VERSION = (JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
const PRODUCTPAGE = 'sidecar~10.244.0.10~productpage-v1.default~default.svc.cluster.local';
let meshd: MeshdHandle;
let client: AdsClient;

async function get(p: string, port = meshd.debugPort): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}${p}`);
  return { status: r.status, body: await r.text() };
}

before(async () => {
  meshd = await startMeshd({ configDir: path.join(__dirname, '..', 'examples', 'bookinfo'), xdsPort: 0, debugPort: 0, monitoringPort: 0, logger: pino({ level: 'silent' }) });
  client = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id: PRODUCTPAGE, metadata: { NAMESPACE: 'default', ISTIO_VERSION: '1.24.0' } });
  await client.subscribe(TypeUrl.Cluster);
  await client.subscribe(TypeUrl.Listener);
  await client.subscribe(TypeUrl.Route, ['9080']);
  await client.subscribe(TypeUrl.Endpoint, ['outbound|9080|v1|reviews.default.svc.cluster.local']);
});

after(async () => {
  client.close();
  await meshd.close();
});

test('/version answers on both HTTP ports as istiod does: <version>-<revision>-<status>', async () => {
  for (const port of [meshd.debugPort, meshd.monitoringPort]) {
    const r = await get('/version', port);
    assert.equal(r.status, 200);
    assert.equal(r.body, `${VERSION}-unknown-unknown`);
  }
});

test('the debug views are on the monitoring port too, where Kiali reads them', async () => {
  const s = JSON.parse((await get('/debug/syncz', meshd.monitoringPort)).body) as { proxy: string }[];
  assert.ok(s.some((x) => x.proxy === PRODUCTPAGE));
  assert.equal((await get(`/debug/config_dump?proxyID=${encodeURIComponent(PRODUCTPAGE)}`, meshd.monitoringPort)).status, 200);
});

test('/ready answers 200 once config is loaded and the servers listen', async () => {
  const r = await get('/ready');
  assert.equal(r.status, 200);
});

test("/debug/config_dump has Envoy's ConfigDump shape with what the proxy was sent", async () => {
  const r = await get(`/debug/config_dump?proxyID=${encodeURIComponent(PRODUCTPAGE)}`);
  assert.equal(r.status, 200);
  const dump = JSON.parse(r.body) as { configs: Record<string, unknown>[] };
  const byType = new Map(dump.configs.map((c) => [c['@type'], c]));
  const clusters = byType.get('type.googleapis.com/envoy.admin.v3.ClustersConfigDump') as { dynamicActiveClusters: { cluster: { name: string; '@type': string } }[] };
  assert.ok(clusters.dynamicActiveClusters.some((c) => c.cluster.name === 'outbound|9080|v2|reviews.default.svc.cluster.local'));
  assert.equal(clusters.dynamicActiveClusters[0]?.cluster['@type'], TypeUrl.Cluster);
  const listeners = byType.get('type.googleapis.com/envoy.admin.v3.ListenersConfigDump') as { dynamicListeners: { name: string; activeState: { listener: { name: string } } }[] };
  assert.deepEqual(listeners.dynamicListeners.map((l) => l.name).sort(), ['0.0.0.0_9080', 'virtualInbound', 'virtualOutbound']);
  const routes = byType.get('type.googleapis.com/envoy.admin.v3.RoutesConfigDump') as {
    dynamicRouteConfigs: { routeConfig: { name: string; virtualHosts: { name: string; routes: unknown[] }[] } }[];
  };
  assert.equal(routes.dynamicRouteConfigs.length, 1);
  const reviews = routes.dynamicRouteConfigs[0]?.routeConfig.virtualHosts.find((v) => v.name === 'reviews.default.svc.cluster.local:9080');
  assert.ok(JSON.stringify(reviews?.routes).includes('"exact":"jason"'), 'the jason header route is in the dump');
  const eds = byType.get('type.googleapis.com/envoy.admin.v3.EndpointsConfigDump') as { dynamicEndpointConfigs: { endpointConfig: { clusterName: string } }[] };
  assert.deepEqual(
    eds.dynamicEndpointConfigs.map((e) => e.endpointConfig.clusterName),
    ['outbound|9080|v1|reviews.default.svc.cluster.local'],
  );
  // Istio's short form <pod>.<namespace> works too.
  assert.equal((await get('/debug/config_dump?proxyID=productpage-v1.default')).status, 200);
});

test("/debug/config_dump is canonical proto3 JSON: what Google's own parser reads and prints back unchanged", async (t) => {
  if (!requireProto3JsonChecker(t)) return;
  const dump = JSON.parse((await get(`/debug/config_dump?proxyID=${encodeURIComponent(PRODUCTPAGE)}`)).body) as { configs: Record<string, unknown>[] };
  assert.deepEqual(parseBack('envoy.admin.v3.ConfigDump', dump), dump);
  // The well-known types in their JSON forms (not protobufjs's object forms).
  const text = JSON.stringify(dump);
  assert.match(text, /"connectTimeout":"10s"/, 'Duration as "10s"');
  assert.match(text, /"lastUpdated":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z"/, 'Timestamp in RFC 3339');
  assert.match(text, /"match":\{"tlsMode":"istio"\}/, 'Struct as a plain JSON object');
  assert.match(text, /"type":"EDS"/, 'enums by name');
  assert.match(
    text,
    /"typedConfig":\{"@type":"type.googleapis.com\/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"/,
    'Any with @type and fields',
  );
  assert.ok(!/"seconds"|"nanos"|"fields":|"stringValue"|"type_url"/.test(text), 'no protobufjs object forms left');
});

test('/debug/config_dump explains a missing or unknown proxyID', async () => {
  const none = await get('/debug/config_dump');
  assert.equal(none.status, 400);
  assert.match(none.body, /proxyID is required/);
  const unknown = await get('/debug/config_dump?proxyID=nobody.default');
  assert.equal(unknown.status, 404);
  assert.match(unknown.body, /not connected/);
});

test('/debug/syncz lists the proxy with per-type sent and acked state', async () => {
  const s = JSON.parse((await get('/debug/syncz')).body) as { proxy: string; istio_version: string; types: Record<string, { status: string; resources: number }> }[];
  const me = s.find((x) => x.proxy === PRODUCTPAGE);
  assert.ok(me);
  assert.equal(me.istio_version, '1.24.0');
  for (const t of ['CDS', 'EDS', 'LDS', 'RDS']) assert.equal(me.types[t]?.status, 'SYNCED', t);
  assert.equal(me.types.EDS?.resources, 1);
});

test('/debug/registryz shows services, ports with protocols, and endpoints with pod labels', async () => {
  const reg = JSON.parse((await get('/debug/registryz')).body) as {
    hostname: string;
    ports: { port: number; protocol: string }[];
    endpoints: Record<string, { address: string; labels: Record<string, string>; pod: string }[]>;
  }[];
  const reviews = reg.find((s) => s.hostname === 'reviews.default.svc.cluster.local');
  assert.ok(reviews);
  assert.deepEqual(
    reviews.ports.map((p) => [p.port, p.protocol]),
    [[9080, 'HTTP']],
  );
  const eps = reviews.endpoints['9080'] ?? [];
  assert.equal(eps.length, 3);
  assert.deepEqual(eps.map((e) => e.labels.version).sort(), ['v1', 'v2', 'v3']);
  assert.ok(eps.every((e) => e.pod.startsWith('default/reviews-')));
});

test('/debug/configz lists accepted config and no errors for the example', async () => {
  const c = JSON.parse((await get('/debug/configz')).body) as { counts: Record<string, number>; errors: unknown[]; virtual_services: { name: string }[] };
  assert.equal(c.counts.VirtualService, 4);
  assert.equal(c.counts.DestinationRule, 4);
  assert.deepEqual(c.errors, []);
});

test("/metrics (debug port and monitoring port) uses Istio's metric names", async () => {
  for (const port of [meshd.debugPort, meshd.monitoringPort]) {
    const m = (await get('/metrics', port)).body;
    // Connected proxies by their ISTIO_VERSION, and meshd's own build, as istiod labels them.
    assert.match(m, /^pilot_xds\{version="1.24.0"\} 1$/m);
    assert.match(m, new RegExp(`^istio_build\\{component="pilot",tag="${VERSION.replace(/\./g, '\\.')}"\\} 1$`, 'm'));
    assert.match(m, /^pilot_xds_pushes\{type="cds"\} [1-9]/m);
    assert.match(m, /^pilot_xds_pushes\{type="rds"\} [1-9]/m);
    assert.match(m, /^# TYPE pilot_total_xds_rejects counter$/m);
    assert.match(m, /^# TYPE pilot_proxy_convergence_time histogram$/m);
    // The push pipeline's own timings, as istiod names them; a snapshot was built, a push sent.
    assert.match(m, /^pilot_pushcontext_init_seconds_count [1-9]/m);
    assert.match(m, /^pilot_xds_send_time_count [1-9]/m);
    assert.match(m, /^pilot_xds_push_time_count\{type="cds"\} [1-9]/m);
    assert.match(m, /^# TYPE pilot_debounce_time histogram$/m);
  }
});
