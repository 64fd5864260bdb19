/**
 * ADS state-of-the-world protocol over a real gRPC stream: ACK, NACK (last good kept, NACK in
 * syncz and metrics, other proxies unaffected), stale nonce ignored, named subscriptions,
 * push order, reconnect, and pushes only when a proxy's resources changed.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient } from './helpers/ads-client';

const protos = new EnvoyProtos();
let dir: string;
let meshd: MeshdHandle;
const clients: AdsClient[] = [];

const SERVICES = `
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec:
  selector: { app: reviews }
  ports: [{ name: http, port: 9080 }]
---
apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: default }
spec:
  selector: { app: ratings }
  ports: [{ name: http, port: 9080 }]
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-v1, namespace: default, labels: { app: reviews, version: v1 } }
spec: { serviceAccountName: reviews }
status: { podIP: 10.1.0.1 }
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-v2, namespace: default, labels: { app: reviews, version: v2 } }
spec: { serviceAccountName: reviews }
status: { podIP: 10.1.0.2 }
`;

function slice(name: string, svc: string, ips: string[]): string {
  return `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ${name}, namespace: default, labels: { kubernetes.io/service-name: ${svc} } }
addressType: IPv4
ports: [{ name: http, port: 9080 }]
endpoints:
${ips.map((ip) => `  - addresses: ["${ip}"]\n    conditions: { ready: true }`).join('\n')}
`;
}

const DR = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec:
  host: reviews
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
`;

function vs(subset: string): string {
  return `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: { host: reviews, subset: ${subset} }
`;
}

function write(file: string, text: string): void {
  const p = path.join(dir, file);
  fs.writeFileSync(`${p}.tmp`, text);
  fs.renameSync(`${p}.tmp`, p);
}

async function http(p: string): Promise<{ status: number; text: string }> {
  const r = await fetch(`http://127.0.0.1:${meshd.debugPort}${p}`);
  return { status: r.status, text: await r.text() };
}

async function syncz(): Promise<Array<Record<string, unknown> & { proxy: string; types: Record<string, Record<string, unknown>> }>> {
  return JSON.parse((await http('/debug/syncz')).text);
}

async function metric(name: string, labels: string): Promise<number> {
  const text = (await http('/metrics')).text;
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`) || (labels === '' && l.startsWith(`${name} `)));
  return line ? Number(line.split(' ').pop()) : 0;
}

function client(pod: string, generator?: string): AdsClient {
  const c = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, {
    id: `sidecar~10.1.0.9~${pod}.default~default.svc.cluster.local`,
    metadata: { NAMESPACE: 'default', ...(generator ? { GENERATOR: generator } : {}) },
  });
  clients.push(c);
  return c;
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-ads-'));
  write('services.yaml', SERVICES);
  write('slices.yaml', slice('reviews-1', 'reviews', ['10.1.0.1', '10.1.0.2']) + '---' + slice('ratings-1', 'ratings', ['10.1.0.3']));
  write('dr.yaml', DR);
  write('vs.yaml', vs('v1'));
  meshd = await startMeshd({ configDir: dir, xdsPort: 0, debugPort: 0, monitoringPort: -1, logger: pino({ level: 'silent' }) });
});

after(async () => {
  for (const c of clients) c.close();
  await meshd.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('wildcard CDS: response, ACK recorded in syncz, no resend without change', async () => {
  const c = client('app-a');
  c.send({ type_url: TypeUrl.Cluster });
  const r = await c.next(TypeUrl.Cluster);
  assert.ok(r.nonce);
  assert.ok(r.version_info);
  assert.ok(r.names.includes('outbound|9080|v1|reviews.default.svc.cluster.local'));
  assert.ok(r.names.includes('outbound|9080||ratings.default.svc.cluster.local'));
  assert.ok(r.names.includes('BlackHoleCluster') && r.names.includes('PassthroughCluster'));
  c.ack(r);
  assert.deepEqual(await c.drain(300), [], 'an ACK does not trigger another response');
  const me = (await syncz()).find((s) => s.proxy === c.node.id);
  assert.ok(me);
  assert.equal(me.types.CDS?.acked_nonce, r.nonce);
  assert.equal(me.types.CDS?.status, 'SYNCED');
  assert.equal(me.cluster_acked, r.nonce);
});

test('named EDS subscription returns exactly the names asked; a changed name set is answered with what the client lacks', async () => {
  const c = client('app-b');
  const v1 = 'outbound|9080|v1|reviews.default.svc.cluster.local';
  const v2 = 'outbound|9080|v2|reviews.default.svc.cluster.local';
  c.send({ type_url: TypeUrl.Endpoint, resource_names: [v1] });
  const r1 = await c.next(TypeUrl.Endpoint);
  assert.deepEqual(r1.names, [v1]);
  const eps = JSON.stringify(r1.resources[0]);
  assert.ok(eps.includes('10.1.0.1') && !eps.includes('10.1.0.2'), 'subset v1 selects only the v1 pod by its labels');
  c.ack(r1, [v1, v2]);
  // EDS is not a full-state type: the client keeps v1, so only the newly subscribed v2 is sent.
  const r2 = await c.next(TypeUrl.Endpoint);
  assert.deepEqual(r2.names, [v2]);
  assert.ok(JSON.stringify(r2.resources).includes('10.1.0.2'));
  // Dropping v1 and asking for it again sends it again: unsubscribed names are forgotten.
  c.ack(r2, [v2]);
  assert.deepEqual(await c.drain(200), [], 'an unsubscription alone needs no answer');
  c.send({ type_url: TypeUrl.Endpoint, resource_names: [v1, v2], response_nonce: r2.nonce, version_info: r2.version_info });
  const r3 = await c.next(TypeUrl.Endpoint);
  assert.deepEqual(r3.names, [v1]);
});

test('NACK: recorded in syncz and metrics, not resent; other proxies unaffected; next change still pushed', async () => {
  const bad = client('app-nack');
  const good = client('app-good');
  for (const c of [bad, good]) c.send({ type_url: TypeUrl.Listener });
  const rb = await bad.next(TypeUrl.Listener);
  const rg = await good.next(TypeUrl.Listener);
  const before = await metric('pilot_total_xds_rejects', 'type="lds"');
  bad.nack(rb, 'listener 0.0.0.0_9080: rejected for the test');
  good.ack(rg);
  assert.deepEqual(await bad.drain(300), [], 'a NACK is not answered with the same config');
  const s = await syncz();
  const sb = s.find((x) => x.proxy === bad.node.id);
  const sg = s.find((x) => x.proxy === good.node.id);
  assert.equal(sb?.types.LDS?.status, 'NACKED');
  assert.equal((sb?.types.LDS?.last_nack as { message: string }).message, 'listener 0.0.0.0_9080: rejected for the test');
  assert.equal((sb?.types.LDS?.last_nack as { version: string }).version, rb.version_info);
  assert.equal(sg?.types.LDS?.status, 'SYNCED');
  assert.equal(await metric('pilot_total_xds_rejects', 'type="lds"'), before + 1);

  // A later config change that alters listeners reaches both.
  write('services2.yaml', `apiVersion: v1\nkind: Service\nmetadata: { name: details, namespace: default }\nspec:\n  ports: [{ name: http, port: 9081 }]\n`);
  const nb = await bad.next(TypeUrl.Listener, 5000);
  const ng = await good.next(TypeUrl.Listener, 5000);
  assert.notEqual(nb.version_info, rb.version_info);
  assert.ok(nb.names.includes('0.0.0.0_9081') && ng.names.includes('0.0.0.0_9081'));
  bad.ack(nb);
  good.ack(ng);
  fs.rmSync(path.join(dir, 'services2.yaml'));
  const gone = await good.next(TypeUrl.Listener, 5000);
  assert.ok(!gone.names.includes('0.0.0.0_9081'), 'a removed file removes its listener');
  good.ack(gone);
});

test('stale nonce is ignored and counted', async () => {
  const c = client('app-stale', 'grpc');
  const host = 'reviews.default.svc.cluster.local:9080';
  c.send({ type_url: TypeUrl.Route, resource_names: [host] });
  const r1 = await c.next(TypeUrl.Route);
  assert.deepEqual(r1.names, [host]);
  // Do not ACK r1; change routing so a second response (new nonce) is sent.
  write('vs.yaml', vs('v2'));
  const r2 = await c.next(TypeUrl.Route, 5000);
  assert.notEqual(r2.nonce, r1.nonce);
  assert.ok(JSON.stringify(r2.resources).includes('outbound|9080|v2|reviews'));
  const expiredBefore = await metric('pilot_xds_expired_nonce', 'type="rds"');
  c.ack(r1); // stale
  await c.drain(200);
  const me = (await syncz()).find((s) => s.proxy === c.node.id);
  assert.equal(me?.types.RDS?.acked_nonce, undefined, 'a stale ACK is not recorded');
  assert.equal(await metric('pilot_xds_expired_nonce', 'type="rds"'), expiredBefore + 1);
  c.ack(r2);
  await c.drain(200);
  const me2 = (await syncz()).find((s) => s.proxy === c.node.id);
  assert.equal(me2?.types.RDS?.acked_nonce, r2.nonce);
  write('vs.yaml', vs('v1'));
  c.ack(await c.next(TypeUrl.Route, 5000));
});

test('push order CDS → EDS → LDS → RDS, and only the types that changed are pushed', async () => {
  const c = client('app-order');
  await c.subscribe(TypeUrl.Cluster);
  await c.subscribe(TypeUrl.Listener);
  await c.subscribe(TypeUrl.Route, ['9080']);
  await c.subscribe(TypeUrl.Endpoint, ['outbound|9080||reviews.default.svc.cluster.local']);
  await c.drain(200);

  // A new HTTP service on a new port changes clusters, listeners and routes.
  write('svc3.yaml', `apiVersion: v1\nkind: Service\nmetadata: { name: extra, namespace: default }\nspec:\n  ports: [{ name: http, port: 9090 }]\n`);
  const order: string[] = [];
  for (let i = 0; i < 2; i++) order.push((await c.next(undefined, 5000)).type_url);
  const more = await c.drain(500);
  order.push(...more.map((r) => r.type_url));
  assert.deepEqual(order, [TypeUrl.Cluster, TypeUrl.Listener], 'CDS then LDS; EDS and RDS "9080" unchanged, so not pushed');

  // An endpoint-only change pushes EDS alone.
  write('slices.yaml', slice('reviews-1', 'reviews', ['10.1.0.1', '10.1.0.2', '10.1.0.7']) + '---' + slice('ratings-1', 'ratings', ['10.1.0.3']));
  const eds = await c.next(undefined, 5000);
  assert.equal(eds.type_url, TypeUrl.Endpoint);
  assert.ok(JSON.stringify(eds.resources).includes('10.1.0.7'));
  assert.deepEqual(await c.drain(400), []);
  fs.rmSync(path.join(dir, 'svc3.yaml'));
});

test('reconnect: a new stream carrying an old version and nonce gets full config', async () => {
  const c1 = client('app-re');
  const r1 = await c1.subscribe(TypeUrl.Cluster);
  c1.close();
  const c2 = client('app-re');
  c2.send({ type_url: TypeUrl.Cluster, version_info: r1.version_info, response_nonce: r1.nonce });
  const r2 = await c2.next(TypeUrl.Cluster);
  assert.ok(r2.names.length > 0 && r2.names.includes('outbound|9080||reviews.default.svc.cluster.local'));
  c2.ack(r2);
  await c2.drain(200);
  const entries = (await syncz()).filter((s) => s.proxy === c2.node.id);
  assert.equal(entries.length, 1, 'the closed stream is gone from syncz');
});

test('a first request without node.id is refused with INVALID_ARGUMENT', async () => {
  const c = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id: '' });
  clients.push(c);
  c.send({ type_url: TypeUrl.Cluster });
  await assert.rejects(c.next(TypeUrl.Cluster, 3000), /node\.id/);
});

test('an invalid object is reported with its field path and the rest keeps being served', async () => {
  write(
    'bad.yaml',
    `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: broken, namespace: default }\nspec:\n  hosts: [ratings]\n  http:\n  - route:\n    - destination: { host: ratings }\n      weight: -5\n`,
  );
  const deadline = Date.now() + 5000;
  let errs: Array<{ name?: string; source: string; errors: { path: string; message: string }[] }> = [];
  while (Date.now() < deadline) {
    errs = JSON.parse((await http('/debug/configz')).text).errors;
    if (errs.some((e) => e.name === 'broken')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const e = errs.find((x) => x.name === 'broken');
  assert.ok(e, 'the invalid VirtualService is listed in /debug/configz');
  assert.equal(e.source, 'bad.yaml');
  assert.ok(
    e.errors.some((f) => f.path === 'spec.http[0].route[0].weight'),
    JSON.stringify(e.errors),
  );
  const c = client('app-after-bad');
  c.send({ type_url: TypeUrl.Cluster });
  const r = await c.next(TypeUrl.Cluster);
  assert.ok(r.names.includes('outbound|9080||ratings.default.svc.cluster.local'));
  fs.rmSync(path.join(dir, 'bad.yaml'));
});
