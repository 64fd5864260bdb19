/** The model builder: protocol selection, endpoints through pods, one owner per host, duplicates. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildSnapshot } from '../src/model/build';
import { protocolOf, serviceEntryProtocol } from '../src/model/protocol';
import { parseProxy } from '../src/model/proxy';
import { loadText } from '../src/sources/file-source';

function snap(yaml: string) {
  const r = loadText(yaml, 'in.yaml');
  assert.deepEqual(r.errors, []);
  return buildSnapshot({ objects: r.objects, errors: [], sequence: 1, now: new Date(0), domain: 'cluster.local' });
}

test('protocol: appProtocol, else the name prefix; anything else is sniffed, as istiod', () => {
  assert.equal(protocolOf({ name: 'http-web' }), 'HTTP');
  assert.equal(protocolOf({ name: 'grpc-web' }), 'GRPC-Web');
  assert.equal(protocolOf({ name: 'grpc-web-x' }), 'GRPC-Web');
  assert.equal(protocolOf({ name: 'grpc' }), 'GRPC');
  assert.equal(protocolOf({ name: 'http2-x' }), 'HTTP2');
  assert.equal(protocolOf({ name: 'tcp-db', appProtocol: 'http' }), 'HTTP');
  assert.equal(protocolOf({ name: 'http', appProtocol: 'kubernetes.io/h2c' }), 'HTTP2');
  assert.equal(protocolOf({ name: 'dns', protocol: 'UDP' }), 'UDP');
  // Unnamed, unknown prefixes, unknown appProtocol (the name is then not read): istiod's "auto".
  assert.equal(protocolOf({ name: 'web' }), 'UnsupportedProtocol');
  assert.equal(protocolOf({}), 'UnsupportedProtocol');
  assert.equal(protocolOf({ name: 'http-web', appProtocol: 'custom' }), 'UnsupportedProtocol');
  // A `udp` name does not make a TCP port UDP.
  assert.equal(protocolOf({ name: 'udp-x' }), 'TCP');
  // Server-first well-known ports are never sniffed.
  for (const port of [25, 53, 3306, 27017]) assert.equal(protocolOf({ port }), 'TCP');
  assert.equal(protocolOf({ port: 3307 }), 'UnsupportedProtocol');
  // ServiceEntry ports: the protocol field alone.
  assert.equal(serviceEntryProtocol('HTTP'), 'HTTP');
  assert.equal(serviceEntryProtocol('tls'), 'TLS');
  assert.equal(serviceEntryProtocol(undefined), 'UnsupportedProtocol');
});

const BASE = `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec: { clusterIP: 10.96.0.5, ports: [{ name: http, port: 80, targetPort: 8080 }] }
---
apiVersion: v1
kind: Pod
metadata: { name: web-a, namespace: shop, labels: { app: web, version: a } }
status: { podIP: 10.0.0.1 }
---
apiVersion: v1
kind: Pod
metadata: { name: web-b, namespace: shop, labels: { app: web, version: b } }
status: { podIP: 10.0.0.2 }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-1, namespace: shop, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints:
- addresses: [10.0.0.1]
  targetRef: { kind: Pod, name: web-a }
  zone: z1
- addresses: [10.0.0.2]
  zone: z2
- addresses: [10.0.0.3]
  conditions: { ready: false }
`;

test('endpoints carry pod labels through targetRef, or through the pod IP without one', () => {
  const s = snap(BASE);
  const eps = s.endpoints.get('web.shop.svc.cluster.local')?.get(80) ?? [];
  assert.deepEqual(
    eps.map((e) => [e.address, e.port, e.ready, e.labels.version, e.pod, e.locality.zone]),
    [
      ['10.0.0.1', 8080, true, 'a', 'shop/web-a', 'z1'],
      ['10.0.0.2', 8080, true, 'b', 'shop/web-b', 'z2'],
      ['10.0.0.3', 8080, false, undefined, undefined, undefined],
    ],
  );
});

test('one VirtualService owns a host; a second one for it is reported with its field path', () => {
  const vs = (name: string) =>
    `---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: ${name}, namespace: shop }\nspec:\n  hosts: [web]\n  http: [{ route: [{ destination: { host: web } }] }]\n`;
  const s = snap(BASE + vs('b-second') + vs('a-first'));
  assert.equal(s.meshVirtualServicesIn.get('shop')?.get('web.shop.svc.cluster.local')?.meta.name, 'a-first');
  assert.equal(s.errors.length, 1);
  assert.equal(s.errors[0]?.name, 'b-second');
  assert.equal(s.errors[0]?.errors[0]?.path, 'spec.hosts[0]');
  assert.match(s.errors[0]?.errors[0]?.message ?? '', /already routed by VirtualService shop\/a-first/);
});

test('snapshots are frozen and their version changes only with content', () => {
  const a = snap(BASE);
  const b = snap(BASE);
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a.services) && Object.isFrozen(a.services[0]));
  assert.equal(a.version, b.version);
  assert.notEqual(snap(BASE.replace('10.0.0.3', '10.0.0.4')).version, a.version);
});

test('proxy: node ID and metadata', () => {
  const p = parseProxy('sidecar~10.0.0.1~web-a.shop~shop.svc.cluster.local', { NAMESPACE: 'shop', GENERATOR: 'grpc', LABELS: { app: 'web' }, INSTANCE_IPS: '10.0.0.1,fd00::1' });
  assert.deepEqual([p.type, p.generator, p.podName, p.namespace, p.ips, p.labels], ['sidecar', 'grpc', 'web-a', 'shop', ['10.0.0.1', 'fd00::1'], { app: 'web' }]);
  const r = parseProxy('router~10.0.0.9~gw-1.istio-system~istio-system.svc.cluster.local', {});
  assert.deepEqual([r.type, r.generator, r.namespace], ['router', 'envoy', 'istio-system']);
  assert.throws(() => parseProxy('envoy-1', {}), /<type>~<ip>~<pod>\.<namespace>~<domain>/);
  assert.throws(() => parseProxy('waypoint~1~a.b~c', {}), /sidecar or router/);
});
