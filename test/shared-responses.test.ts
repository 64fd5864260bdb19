/**
 * Responses shared by a class of proxies: serialised once with their gRPC frame, written as the
 * same bytes to every stream, with one nonce (never repeated on one stream).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import type { EncodedResource } from '../src/xds/cache';
import { installFramedResponses } from '../src/xds/grpc-frames';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { FRAMED, SharedResponses } from '../src/xds/shared-responses';
import { WireCache, sotwBytes } from '../src/xds/wire';
import { AdsClient, type Response } from './helpers/ads-client';

const protos = new EnvoyProtos();

function resource(name: string): EncodedResource {
  const bytes = protos.type('envoy.config.cluster.v3.Cluster').encode({ name }).finish();
  return { name, bytes, hash: name };
}

test('a response is framed once per version and resources; the second request keeps its bytes; one nonce for all', () => {
  const wire = new WireCache();
  const shared = new SharedResponses({ maxBytes: 1 << 20 });
  const rs = [resource('a'), resource('b')];
  const anys = rs.map((r) => wire.any(r, TypeUrl.Cluster));
  const body = (version: string, as: typeof anys) => (nonce: string) => sotwBytes({ version_info: version, resources: as, type_url: TypeUrl.Cluster, nonce });
  const first = shared.response('v1', 'sotw', TypeUrl.Cluster, rs, [], body('v1', anys));
  const second = shared.response('v1', 'sotw', TypeUrl.Cluster, rs, [], body('v1', anys));
  const third = shared.response('v1', 'sotw', TypeUrl.Cluster, rs, [], body('v1', anys));
  assert.ok(first && second && third);
  assert.equal(second.nonce, first.nonce, 'the first response already carries the shared nonce');
  assert.equal(third.framed, second.framed, 'kept from the second request on: the very same buffer');
  assert.deepEqual(shared.stats().responses, 1);
  // The frame: flag 0, the length, then exactly the response as serialised on its own.
  const alone = sotwBytes({ version_info: 'v1', resources: anys, type_url: TypeUrl.Cluster, nonce: first.nonce });
  assert.ok(alone);
  assert.equal(first.framed[0], 0);
  assert.equal(first.framed.readUInt32BE(1), alone.length);
  assert.deepEqual(first.framed.subarray(5), alone);

  const other = shared.response('v1', 'sotw', TypeUrl.Cluster, [rs[0] as EncodedResource], [], body('v1', [anys[0] as (typeof anys)[number]]));
  assert.notEqual(other?.nonce, first.nonce, 'other resources: another response');
  const asDelta = shared.response('v1', 'delta', TypeUrl.Cluster, rs, [], body('v1', anys));
  assert.notEqual(asDelta?.nonce, first.nonce, 'another kind of response: another response');
  const next = shared.response('v2', 'sotw', TypeUrl.Cluster, rs, [], body('v2', anys));
  assert.notEqual(next?.nonce, first.nonce, 'another version: another response');
  assert.equal(shared.stats().responses, 0, 'a new version forgets the old responses');
  shared.clear();
  assert.equal(new SharedResponses({ maxBytes: 0 }).response('v1', 'sotw', TypeUrl.Cluster, rs, [], body('v1', anys)), undefined, 'sharing off');
});

test('grpc-js writes a framed response as it is, and frames every other message itself', () => {
  assert.equal(installFramedResponses(), true, 'the hook finds grpc-js server calls');
  assert.equal(installFramedResponses(), true, 'installing twice is harmless');
  const req = createRequire(require.resolve('@grpc/grpc-js'));
  const { BaseServerInterceptingCall } = req('./server-interceptors') as { BaseServerInterceptingCall: { prototype: { serializeMessage(v: unknown): Buffer } } };
  const framed = Buffer.from([0, 0, 0, 0, 1, 42]);
  const fakeCall = { handler: { serialize: (v: unknown) => Buffer.from(JSON.stringify(v)) } };
  assert.equal(BaseServerInterceptingCall.prototype.serializeMessage.call(fakeCall, { [FRAMED]: framed }), framed, 'no copy');
  const plain = BaseServerInterceptingCall.prototype.serializeMessage.call(fakeCall, { a: 1 });
  assert.equal(plain.readUInt32BE(1), 7);
  assert.equal(plain.subarray(5).toString(), '{"a":1}');
});

let dir: string;
let meshd: MeshdHandle;
const open: AdsClient[] = [];

const MESH = `
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
kind: Service
metadata: { name: local, namespace: default, annotations: { networking.istio.io/exportTo: "." } }
spec:
  ports: [{ name: http, port: 9090 }]
`;

const dr = (max: number): string =>
  `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: reviews, namespace: default }\nspec:\n  host: reviews\n  trafficPolicy: { connectionPool: { tcp: { maxConnections: ${max} } } }\n`;

function write(file: string, text: string): void {
  fs.writeFileSync(path.join(dir, `${file}.tmp`), text);
  fs.renameSync(path.join(dir, `${file}.tmp`), path.join(dir, file));
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-shared-'));
  write('mesh-objects.yaml', MESH);
  write('dr.yaml', dr(10));
  meshd = await startMeshd({ configDir: dir, host: '127.0.0.1', xdsPort: 0, debugPort: 0, monitoringPort: -1, logger: pino({ level: 'silent' }) });
});

after(async () => {
  for (const c of open) c.close();
  await meshd.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function client(pod: string, ns = 'default'): AdsClient {
  const c = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id: `sidecar~10.1.0.9~${pod}.${ns}~${ns}.svc.cluster.local`, metadata: { NAMESPACE: ns } });
  open.push(c);
  return c;
}

const maxConnections = (r: Response): unknown =>
  (r.resources.find((c) => c.name === 'outbound|9080||reviews.default.svc.cluster.local') as { circuit_breakers?: { thresholds?: { max_connections?: unknown }[] } } | undefined)
    ?.circuit_breakers?.thresholds?.[0]?.max_connections;

test('proxies of one class get one response: the same nonce and content; a change is shared again; nonces never repeat on a stream', async () => {
  const clients = ['a', 'b', 'c'].map((p) => client(p));
  const nonces = new Map<AdsClient, string[]>(clients.map((c) => [c, []]));
  const first: Response[] = [];
  for (const c of clients) {
    const r = await c.subscribe(TypeUrl.Cluster);
    nonces.get(c)?.push(r.nonce);
    first.push(r);
  }
  assert.equal(new Set(first.map((r) => r.nonce)).size, 1, `one shared response: ${first.map((r) => r.nonce).join(' ')}`);
  for (const r of first.slice(1)) assert.deepEqual(r.resources, first[0]?.resources);

  write('dr.yaml', dr(20));
  const pushed: Response[] = [];
  for (const c of clients) {
    const r = await c.next(TypeUrl.Cluster);
    assert.deepEqual(maxConnections(r), { value: 20 }, 'the change arrived');
    c.ack(r);
    nonces.get(c)?.push(r.nonce);
    pushed.push(r);
  }
  assert.equal(new Set(pushed.map((r) => r.nonce)).size, 1, 'the push is one shared response too');
  assert.notEqual(pushed[0]?.nonce, first[0]?.nonce);
  for (const [c, ns] of nonces) assert.equal(new Set(ns).size, ns.length, `${c.node.id}: no nonce twice`);

  // Every stream's ACK of the shared nonce counts: all three are in sync.
  const syncz = (await (await fetch(`http://127.0.0.1:${meshd.debugPort}/debug/syncz`)).json()) as { proxy: string; types: Record<string, { status?: string }> }[];
  for (const c of clients) assert.equal(syncz.find((s) => s.proxy === c.node.id)?.types.CDS?.status, 'SYNCED', c.node.id);

  // A proxy of another class (it does not see the namespace-local service) gets its own response.
  const other = await client('x', 'other').subscribe(TypeUrl.Cluster);
  assert.ok(!other.names.includes('outbound|9090||local.default.svc.cluster.local'));
  assert.notEqual(other.nonce, pushed[0]?.nonce);
});

test('a stream never gets a nonce twice for a type, even when the same response comes round again', async () => {
  const c = client('d');
  const reviews = 'outbound|9080||reviews.default.svc.cluster.local';
  const ratings = 'outbound|9080||ratings.default.svc.cluster.local';
  const nonces: string[] = [];
  const ask = async (names: string[], expect: string[]): Promise<void> => {
    c.send({ type_url: TypeUrl.Endpoint, resource_names: names, response_nonce: nonces[nonces.length - 1] ?? '' });
    const r = await c.next(TypeUrl.Endpoint);
    assert.deepEqual(r.names, expect);
    nonces.push(r.nonce);
  };
  await ask([reviews], [reviews]);
  await ask([reviews, ratings], [ratings]);
  // Unsubscribed, so forgotten: subscribing again brings the very same response again.
  c.send({ type_url: TypeUrl.Endpoint, resource_names: [reviews], response_nonce: nonces[nonces.length - 1] });
  await ask([reviews, ratings], [ratings]);
  assert.equal(new Set(nonces).size, nonces.length, `no nonce twice: ${nonces.join(' ')}`);
});
