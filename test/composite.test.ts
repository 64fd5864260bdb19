/**
 * Composite resources: a RouteConfiguration assembled from its separately encoded virtual hosts
 * decodes to exactly the message encoded whole, and a changed VirtualService rebuilds the one
 * virtual host it routes, not the port's whole table.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildSnapshot } from '../src/model/build';
import { parseProxy } from '../src/model/proxy';
import { loadText } from '../src/sources/file-source';
import { concatRepeated } from '../src/xds/composite';
import { ConfigEngine } from '../src/xds/engine';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { ResourceValidator } from '../src/xds/validate-rules';
import type { EncodedResource } from '../src/xds/cache';
import { RequestDecoder, WireCache, deltaBytes, sotwBytes } from '../src/xds/wire';

const protos = new EnvoyProtos();
const VH = 'type.googleapis.com/envoy.config.route.v3.VirtualHost';

test('head + separately encoded entries of a repeated field decode as the whole message', () => {
  const hosts = Array.from({ length: 300 }, (_, i) => ({
    name: `h${i}`,
    domains: [`h${i}.example`, `h${i}.example:80`],
    routes: [{ match: { prefix: '/' }, route: { cluster: `c${i}` } }],
  }));
  const head = { name: '80', validate_clusters: { value: false }, ignore_port_in_host_matching: true };
  const whole = protos.decode(TypeUrl.Route, protos.encode(TypeUrl.Route, { ...head, virtual_hosts: hosts }));
  const joined = concatRepeated(
    protos.encode(TypeUrl.Route, head),
    2,
    hosts.map((h) => protos.encode(VH, h)),
  );
  assert.deepEqual(protos.decode(TypeUrl.Route, joined), whole);
  // Lengths past one varint byte (>127) and past two (>16383) are framed right.
  const big = { name: 'big', domains: ['x'.repeat(20_000)] };
  assert.deepEqual(
    protos.decode(TypeUrl.Route, concatRepeated(protos.encode(TypeUrl.Route, head), 2, [protos.encode(VH, big)])),
    protos.decode(TypeUrl.Route, protos.encode(TypeUrl.Route, { ...head, virtual_hosts: [big] })),
  );
});

function mesh(weight: number): string {
  const svc = (i: number): string =>
    `apiVersion: v1\nkind: Service\nmetadata: { name: s${i}, namespace: default }\nspec: { clusterIP: 10.96.0.${i + 1}, ports: [{ name: http, port: 8080 }] }\n`;
  const vs = `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: s0, namespace: default }\nspec:\n  hosts: [s0]\n  http:\n  - route: [{ destination: { host: s0 }, weight: ${weight} }, { destination: { host: s1 }, weight: ${100 - weight} }]\n`;
  return [...Array.from({ length: 40 }, (_, i) => svc(i)), vs].join('---\n');
}

test('a VirtualService change rebuilds one virtual host of the shared route table', () => {
  const engine = new ConfigEngine({ protos, checker: new ResourceValidator(protos) });
  const load = (w: number, previous?: ReturnType<typeof buildSnapshot>): ReturnType<typeof buildSnapshot> => {
    const r = loadText(mesh(w), 'm.yaml');
    assert.deepEqual(r.errors, []);
    return buildSnapshot({ objects: r.objects, errors: [], sequence: 1, now: new Date(0), domain: 'cluster.local', previous });
  };
  const s1 = load(90);
  engine.setSnapshot(s1);
  const h = engine.attach(parseProxy('sidecar~10.0.0.9~app-1.default~default.svc.cluster.local', { NAMESPACE: 'default' }));
  const route = (): Record<string, unknown> => {
    const r = engine.resources(h, TypeUrl.Route, new Set(['8080'])).resources.get('8080');
    assert.ok(r);
    return protos.decode(TypeUrl.Route, r.bytes);
  };
  const before = route();
  const items = engine.stats().items.computed;
  assert.ok(items >= 41, `every virtual host built once (${items})`);
  engine.setSnapshot(load(70, s1));
  const after = route();
  assert.equal(engine.stats().items.computed - items, 1, 'only the changed host was built again');
  assert.notDeepEqual(after, before);
  const hosts = (rc: Record<string, unknown>): string[] => (rc.virtual_hosts as { name: string }[]).map((v) => v.name);
  assert.deepEqual(hosts(after), hosts(before), 'same hosts, same order');
  assert.match(JSON.stringify(after), /"weight":\{"value":70\}/);
});

test('responses joined from cached wrappers decode as protobufjs encodes them', () => {
  const wire = new WireCache();
  const enc = (name: string): EncodedResource => {
    const bytes = protos.encode(TypeUrl.Cluster, { name, type: 'EDS' });
    return { name, bytes, hash: `h-${name}` };
  };
  const rs = [enc('a'), enc('b'.repeat(300))];
  const sotw = { version_info: '7-abc', resources: rs.map((r) => wire.any(r, TypeUrl.Cluster)), type_url: TypeUrl.Cluster, nonce: 'c1-3' };
  const raw = sotwBytes(sotw);
  assert.ok(raw);
  assert.deepEqual(raw, Buffer.from(protos.DiscoveryResponse.encode(protos.DiscoveryResponse.fromObject(sotw)).finish()));
  const delta = {
    system_version_info: '7-abc',
    resources: rs.map((r) => wire.delta(r, TypeUrl.Cluster)),
    type_url: TypeUrl.Cluster,
    removed_resources: ['gone', 'also'],
    nonce: 'c2-1',
  };
  const dt = protos.type('envoy.service.discovery.v3.DeltaDiscoveryResponse');
  const draw = deltaBytes(delta);
  assert.ok(draw);
  const opts = { defaults: false, arrays: true, longs: Number, bytes: String };
  assert.deepEqual(dt.toObject(dt.decode(draw), opts), dt.toObject(dt.decode(dt.encode(dt.fromObject(delta)).finish()), opts));
  assert.equal(wire.any(rs[0] as EncodedResource, TypeUrl.Cluster), sotw.resources[0], 'one wrapper per resource and type');
});

test('requests decode as protobufjs decodes them, and equal name lists come back as one shared array', () => {
  const decoder = new RequestDecoder(protos.root);
  const req = {
    version_info: '3-abc',
    node: { id: 'sidecar~10.0.0.1~a.default~default.svc.cluster.local', metadata: { fields: { NAMESPACE: { string_value: 'default' } } }, locality: { region: 'r1' } },
    resource_names: Array.from({ length: 500 }, (_, i) => `outbound|80||svc-${i}.default.svc.cluster.local`),
    type_url: TypeUrl.Endpoint,
    response_nonce: 'c1-2',
    error_detail: { code: 3, message: 'rejected: bad' },
  };
  const bytes = protos.DiscoveryRequest.encode(protos.DiscoveryRequest.fromObject(req)).finish();
  const opts = { defaults: false, arrays: true, longs: Number };
  const mine = decoder.decode(bytes);
  const theirs = protos.DiscoveryRequest.decode(bytes);
  assert.deepEqual(
    JSON.parse(JSON.stringify(protos.DiscoveryRequest.toObject(protos.DiscoveryRequest.fromObject(mine), opts))),
    JSON.parse(JSON.stringify(protos.DiscoveryRequest.toObject(theirs, opts))),
  );
  const again = decoder.decode(protos.DiscoveryRequest.encode(protos.DiscoveryRequest.fromObject({ ...req, response_nonce: 'c9-9' })).finish());
  assert.equal(again.resource_names, mine.resource_names, 'the same subscription is the same array');
  const other = decoder.decode(protos.DiscoveryRequest.encode(protos.DiscoveryRequest.fromObject({ ...req, resource_names: req.resource_names.slice(1) })).finish());
  assert.notEqual(other.resource_names, mine.resource_names);
  assert.equal((other.resource_names as string[]).length, 499);
  // The same length and the same sampled bytes, one byte apart in the middle: found by its bytes, not its fingerprint.
  const names = [...req.resource_names];
  names[250] = (names[250] as string).replace('svc-250', 'svc-25x');
  const near = decoder.decode(protos.DiscoveryRequest.encode(protos.DiscoveryRequest.fromObject({ ...req, resource_names: names })).finish());
  assert.notEqual(near.resource_names, mine.resource_names);
  assert.deepEqual(near.resource_names, names);
  // Names split by another field (protobuf allows it): still every name, in order.
  const split = Buffer.concat([
    protos.DiscoveryRequest.encode(protos.DiscoveryRequest.fromObject({ resource_names: ['a', 'b'], type_url: TypeUrl.Endpoint })).finish(),
    protos.DiscoveryRequest.encode(protos.DiscoveryRequest.fromObject({ resource_names: ['c'] })).finish(),
  ]);
  assert.deepEqual(decoder.decode(split).resource_names, ['a', 'b', 'c']);
  assert.equal(decoder.decode(Buffer.from(split)).resource_names, decoder.decode(split).resource_names);
});
