/**
 * What real xDS clients make of meshd's security config, checked with @grpc/grpc-js-xds's own
 * decoders and validators (its RBAC filter is experimental: GRPC_XDS_EXPERIMENTAL_RBAC=true):
 * the proxyless server listener (mTLS + RBAC) is accepted; Struct metadata (auto-mTLS endpoint
 * and transport-socket-match labels) reads back through an independent decoder.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { ConfigEngine } from '../src/xds/engine';
import type { Proxy } from '../src/model/proxy';
import type { MeshSnapshot } from '../src/model/snapshot';
import { toStruct } from '../src/generate/security/struct';
import { parseProxy } from '../src/model/proxy';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { type PbStruct, structToJs } from '../src/xds/struct';
import { snapshotFromDir } from './helpers/render';

process.env['GRPC_XDS_EXPERIMENTAL_RBAC'] = 'true';
// Loaded after the variable is set: grpc-js-xds reads it when its modules load.
/* eslint-disable @typescript-eslint/no-require-imports */
const xds = require('@grpc/grpc-js-xds') as { register: () => void };
const { ListenerResourceType } = require('@grpc/grpc-js-xds/build/src/xds-resource-type/listener-resource-type') as { ListenerResourceType: { get: () => Decoder } };
const { decodeSingleResource } = require('@grpc/grpc-js-xds/build/src/resources') as { decodeSingleResource: (url: string, bytes: Buffer) => Record<string, unknown> };
xds.register();

interface Decoder {
  decode: (ctx: unknown, res: { type_url: string; value: Buffer }) => { name: string; value?: unknown; error?: string };
}

const ROOT = path.join(__dirname, '..');
const protos = new EnvoyProtos();

/** The bytes the server would send a proxy for one resource, as it subscribes to it by name. */
function servedBytes(snap: MeshSnapshot, proxy: Proxy, typeUrl: TypeUrl, name: string): Buffer {
  const engine = new ConfigEngine({ protos });
  engine.setSnapshot(snap);
  const r = engine.resources(engine.attach(proxy), typeUrl, new Set([name])).resources.get(name);
  assert.ok(r, `no ${typeUrl} ${name}`);
  return Buffer.from(r.bytes);
}

function listenerBytes(dir: string, id: string, metadata: Record<string, unknown>, name: string): Buffer {
  return servedBytes(snapshotFromDir(path.join(ROOT, dir)), parseProxy(id, metadata), TypeUrl.Listener, name);
}

function decodeListener(bytes: Buffer, providers: Record<string, unknown>): { name: string; error?: string } {
  const ctx = { server: {}, bootstrap: { certificateProviders: providers } };
  return ListenerResourceType.get().decode(ctx, { type_url: TypeUrl.Listener, value: bytes });
}

const ECHO = { id: 'sidecar~10.50.0.10~echo-1.grpc-apps~grpc-apps.svc.cluster.local', metadata: { NAMESPACE: 'grpc-apps', GENERATOR: 'grpc' } };
const GRPC_CASE = 'test/golden/security-grpc-server/in';
const PROVIDER = { default: { plugin_name: 'file_watcher', config: {} } };

test('grpc-js-xds accepts the STRICT server listener with its RBAC filters (and checks the provider name)', () => {
  for (const name of ['xds.istio.io/grpc/lds/inbound/0.0.0.0:7070', 'xds.istio.io/grpc/lds/inbound/[::]:7070']) {
    const bytes = listenerBytes(GRPC_CASE, ECHO.id, ECHO.metadata, name);
    const ok = decodeListener(bytes, PROVIDER);
    assert.equal(ok.error, undefined, ok.error);
    assert.equal(ok.name, name);
    // The same listener for a server whose bootstrap lacks the provider is refused: the check is real.
    const bad = decodeListener(bytes, {});
    assert.match(bad.error ?? '', /Unmatched .*instance_name: default/);
  }
});

test('grpc-js-xds accepts the plaintext server listener', () => {
  const bytes = listenerBytes(GRPC_CASE, 'sidecar~10.50.0.20~plain-1.grpc-apps~grpc-apps.svc.cluster.local', ECHO.metadata, 'xds.istio.io/grpc/lds/inbound/127.0.0.1:7080');
  const r = decodeListener(bytes, {});
  assert.equal(r.error, undefined, r.error);
});

test('an AUDIT (LOG) RBAC filter would be refused by grpc-js-xds, which is why gRPC servers never get one', () => {
  const l = protos.decode(TypeUrl.Listener, listenerBytes(GRPC_CASE, ECHO.id, ECHO.metadata, 'xds.istio.io/grpc/lds/inbound/0.0.0.0:7070')) as Record<string, unknown>;
  const json = JSON.stringify(l);
  assert.ok(!json.includes('"LOG"'), 'no LOG action in the gRPC listener');
  // Put a LOG filter in front and grpc-js-xds refuses the listener.
  const hcm = ((l['filter_chains'] as Record<string, unknown>[])[0]?.['filters'] as Record<string, unknown>[])[0]?.['typed_config'] as Record<string, unknown>;
  (hcm['http_filters'] as unknown[]).unshift({
    name: 'audit',
    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC', rules: { action: 'LOG' } },
  });
  const r = decodeListener(Buffer.from(protos.encode(TypeUrl.Listener, l)), PROVIDER);
  assert.match(r.error ?? '', /filter validation failed/);
});

test('Struct metadata round-trips: auto-mTLS endpoint metadata and socket matches, through meshd and grpc-js-xds decoders', () => {
  const snap = snapshotFromDir(path.join(ROOT, 'test/golden/security-mtls/in'));
  const proxy = parseProxy('sidecar~10.30.0.10~web-1.web~web.svc.cluster.local', { NAMESPACE: 'web' });
  const bytes = servedBytes(snap, proxy, TypeUrl.Endpoint, 'outbound|8080||cart.shop.svc.cluster.local');
  // grpc-js-xds's decoder (its own proto loader; Struct is camelCase there too): the value is on the wire.
  const theirs = decodeSingleResource(TypeUrl.Endpoint, bytes) as {
    endpoints: { lb_endpoints: { metadata: { filter_metadata: Record<string, { fields: Record<string, { stringValue: string }> }> } }[] }[];
  };
  const md = theirs.endpoints[0]?.lb_endpoints[0]?.metadata.filter_metadata['envoy.transport_socket_match'];
  assert.equal(md?.fields['tlsMode']?.stringValue, 'istio');
  // And the bytes hold field 1 (fields map) with key and string value: not an empty Struct.
  assert.ok(bytes.includes(Buffer.from('tlsMode')) && bytes.includes(Buffer.from('istio')));
  // meshd's own decode and Struct reader agree.
  const ours = protos.decode(TypeUrl.Endpoint, bytes) as { endpoints: { lb_endpoints: { metadata: { filter_metadata: Record<string, PbStruct> } }[] }[] };
  assert.deepEqual(structToJs(ours.endpoints[0]?.lb_endpoints[0]?.metadata.filter_metadata['envoy.transport_socket_match']), { tlsMode: 'istio' });
  // The cluster's match criteria read back the same.
  const cluster = protos.decode(TypeUrl.Cluster, servedBytes(snap, proxy, TypeUrl.Cluster, 'outbound|8080||cart.shop.svc.cluster.local')) as {
    transport_socket_matches: { name: string; match: PbStruct }[];
  };
  assert.deepEqual(
    cluster.transport_socket_matches.map((m) => [m.name, structToJs(m.match)]),
    [
      ['tlsMode-istio', { tlsMode: 'istio' }],
      ['tlsMode-disabled', {}],
    ],
  );
});

test('toStruct encodes every JSON kind; snake_case Value fields would be dropped silently', () => {
  const value = { s: 'x', n: 1.5, b: true, z: null, l: ['a', 2, false], o: { inner: 'y' } };
  const lb = (metadata: unknown): Record<string, unknown> => ({
    cluster_name: 'c',
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '1.1.1.1', port_value: 1 } } }, metadata }] }],
  });
  const roundTrip = (metadata: unknown): unknown => {
    const d = protos.decode(TypeUrl.Endpoint, protos.encode(TypeUrl.Endpoint, lb(metadata))) as {
      endpoints: { lb_endpoints: { metadata: { filter_metadata: Record<string, PbStruct> } }[] }[];
    };
    return structToJs(d.endpoints[0]?.lb_endpoints[0]?.metadata.filter_metadata['k']);
  };
  assert.deepEqual(roundTrip({ filter_metadata: { k: toStruct(value) } }), value);
  assert.deepEqual(roundTrip({ filter_metadata: { k: { fields: { tlsMode: { string_value: 'istio' } } } } }), { tlsMode: null }, 'the spelling toStruct avoids');
});
