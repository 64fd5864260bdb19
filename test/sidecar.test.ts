/**
 * Sidecar: Istio's ValidateSidecar rules with field paths (a table of invalid objects, each one
 * change to a valid base), warnings where Istio warns, and the scope selection istiod's
 * getSidecarScope makes (workloadSelector first, then the namespace's, then the root namespace's).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkObject } from '../src/model/validate';
import type { ConfigObject } from '../src/model/objects';
import { buildSnapshot } from '../src/model/build';
import { parseProxy } from '../src/model/proxy';
import { proxyOutboundTrafficPolicy, proxyServices, proxyVirtualService, sidecarScopeKey } from '../src/model/lookup';

type J = Record<string, unknown>;

function sidecar(spec: unknown, name = 'default', namespace = 'shop', creationTimestamp?: string): ConfigObject {
  const metadata = { name, namespace, labels: {}, annotations: {} };
  const apiVersion = 'networking.istio.io/v1';
  return {
    kind: 'Sidecar',
    apiVersion,
    metadata,
    body: { apiVersion, kind: 'Sidecar', metadata: { ...metadata, ...(creationTimestamp ? { creationTimestamp } : {}) }, spec },
    origin: { source: 'test' },
  };
}

const BASE: J = {
  workloadSelector: { labels: { app: 'orders' } },
  ingress: [{ port: { number: 9080, protocol: 'HTTP', name: 'http' }, defaultEndpoint: '127.0.0.1:8080' }],
  egress: [{ port: { number: 9080, protocol: 'HTTP', name: 'http' }, hosts: ['other/*'] }, { hosts: ['./*', 'istio-system/*'] }],
  outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
};
const ING = (l: J): J => ({ ...BASE, ingress: [{ ...(BASE['ingress'] as J[])[0], ...l }] });
const EGR = (...ls: J[]): J => ({ ...BASE, egress: ls });

test('a full Sidecar is valid', () => {
  assert.deepEqual(checkObject(sidecar(BASE)), { errors: [], warnings: [] });
  assert.deepEqual(checkObject(sidecar({ outboundTrafficPolicy: { mode: 'ALLOW_ANY' } })).errors, []);
  assert.deepEqual(checkObject(sidecar({ egress: [{ port: { number: 0, protocol: 'HTTP', name: 'uds' }, bind: 'unix:///var/run/egress.sock', hosts: ['*/*'] }] })).errors, []);
});

const INVALID: [string, unknown, string, RegExp][] = [
  ['empty', {}, 'spec', /sidecar: empty configuration provided/],
  ['unknown field', { ...BASE, egres: [] }, 'spec.egres', /unknown field/],
  ['bad captureMode', EGR({ hosts: ['*/*'], captureMode: 'SOMETIMES' }), 'spec.egress[0].captureMode', /must be one of DEFAULT, IPTABLES, NONE/],
  ['bad selector label', { ...BASE, workloadSelector: { labels: { 'a*': 'b' } } }, 'spec.workloadSelector.labels["a*"]', /wildcard is not supported in selector/],
  ['ingress without port', { ...BASE, ingress: [{ defaultEndpoint: '127.0.0.1:8080' }] }, 'spec.ingress[0].port', /sidecar: port is required for ingress listeners/],
  ['ingress port out of range', ING({ port: { number: 70000, protocol: 'HTTP', name: 'http' } }), 'spec.ingress[0].port.number', /1\.\.65535/],
  ['ingress protocol', ING({ port: { number: 9080, protocol: 'SMTP', name: 'http' } }), 'spec.ingress[0].port.protocol', /unrecognized protocol "SMTP"/],
  ['ingress port name', ING({ port: { number: 9080, protocol: 'HTTP', name: 'Not_A_Label' } }), 'spec.ingress[0].port.name', /invalid port name: Not_A_Label/],
  ['ingress targetPort', ING({ port: { number: 9080, protocol: 'HTTP', name: 'http', targetPort: 1 } }), 'spec.ingress[0].port.targetPort', /targetPort has no impact on Sidecars/],
  ['ingress bind', ING({ bind: 'not-an-ip' }), 'spec.ingress[0].bind', /./],
  ['defaultEndpoint host', ING({ defaultEndpoint: '10.0.0.1:8080' }), 'spec.ingress[0].defaultEndpoint', /defaultEndpoint must be of form 127\.0\.0\.1:<port>/],
  ['defaultEndpoint port', ING({ defaultEndpoint: '127.0.0.1:http' }), 'spec.ingress[0].defaultEndpoint', /defaultEndpoint port \(http\) is not a number/],
  ['defaultEndpoint without port', ING({ defaultEndpoint: '127.0.0.1' }), 'spec.ingress[0].defaultEndpoint', /missing port in address/],
  ['defaultEndpoint unix', ING({ defaultEndpoint: 'unix://' }), 'spec.ingress[0].defaultEndpoint', /./],
  [
    'duplicate ingress port',
    { ...BASE, ingress: [(BASE['ingress'] as J[])[0], (BASE['ingress'] as J[])[0]] },
    'spec.ingress[1].port.number',
    /sidecar: ports on IP bound listeners must be unique/,
  ],
  [
    'ingress tls on HTTP',
    ING({ tls: { mode: 'SIMPLE', serverCertificate: '/c', privateKey: '/k' } }),
    'spec.ingress[0].tls',
    /server cannot have TLS settings for non HTTPS\/TLS ports/,
  ],
  [
    'ingress tls ISTIO_MUTUAL',
    ING({ port: { number: 9443, protocol: 'HTTPS', name: 'https' }, tls: { mode: 'ISTIO_MUTUAL' } }),
    'spec.ingress[0].tls.mode',
    /cannot set mode to ISTIO_MUTUAL in sidecar ingress tls/,
  ],
  [
    'ingress tls credentialName',
    ING({ port: { number: 9443, protocol: 'HTTPS', name: 'https' }, tls: { mode: 'SIMPLE', credentialName: 'x' } }),
    'spec.ingress[0].tls.credentialName',
    /credentialName is not currently supported/,
  ],
  [
    'ingress tls httpsRedirect',
    ING({ port: { number: 9443, protocol: 'HTTPS', name: 'https' }, tls: { mode: 'SIMPLE', httpsRedirect: true } }),
    'spec.ingress[0].tls.httpsRedirect',
    /httpsRedirect is not supported/,
  ],
  [
    'catch-all not last',
    EGR({ hosts: ['./*'] }, { port: { number: 9080, protocol: 'HTTP', name: 'http' }, hosts: ['other/*'] }),
    'spec.egress[0]',
    /empty port should be the last listener/,
  ],
  [
    'duplicate egress port',
    EGR({ port: { number: 9080, protocol: 'HTTP', name: 'http' }, hosts: ['other/*'] }, { port: { number: 9080, protocol: 'HTTP', name: 'http2' }, hosts: ['a/*'] }),
    'spec.egress[1].port.number',
    /ports on IP bound listeners must be unique/,
  ],
  [
    'port 0 without unix bind',
    EGR({ port: { number: 0, protocol: 'HTTP', name: 'uds' }, hosts: ['*/*'] }),
    'spec.egress[0].bind',
    /ports with 0 value must have a unix domain socket bind address/,
  ],
  [
    'unix listener captureMode',
    EGR({ port: { number: 0, protocol: 'HTTP', name: 'uds' }, bind: 'unix:///a.sock', captureMode: 'IPTABLES', hosts: ['*/*'] }),
    'spec.egress[0].captureMode',
    /captureMode must be DEFAULT\/NONE for unix domain socket listeners/,
  ],
  ['egress bind', EGR({ port: { number: 9080, protocol: 'HTTP', name: 'http' }, bind: '10.0.0.300', hosts: ['*/*'] }), 'spec.egress[0].bind', /./],
  ['egress protocol', EGR({ port: { number: 9080, protocol: '', name: 'http' }, hosts: ['*/*'] }), 'spec.egress[0].port.protocol', /unrecognized protocol ""/],
  ['no hosts', EGR({ hosts: [] }), 'spec.egress[0].hosts', /egress listener must contain at least one host/],
  ['host without namespace', EGR({ hosts: ['reviews.default.svc.cluster.local'] }), 'spec.egress[0].hosts[0]', /host must be of form namespace\/dnsName/],
  ['host empty part', EGR({ hosts: ['/reviews'] }), 'spec.egress[0].hosts[0]', /cannot be empty/],
  ['host namespace', EGR({ hosts: ['Bad_NS/*'] }), 'spec.egress[0].hosts[0]', /invalid namespace value "Bad_NS" in sidecar/],
  ['host name', EGR({ hosts: ['ns/foo..bar'] }), 'spec.egress[0].hosts[0]', /invalid/],
  [
    'egressProxy with REGISTRY_ONLY',
    { ...BASE, outboundTrafficPolicy: { mode: 'REGISTRY_ONLY', egressProxy: { host: 'proxy.example.com' } } },
    'spec.outboundTrafficPolicy.egressProxy',
    /ALLOW_ANY/,
  ],
];

for (const [name, spec, path, message] of INVALID) {
  test(`invalid Sidecar: ${name} → ${path}`, () => {
    const errors = checkObject(sidecar(spec)).errors;
    assert.ok(
      errors.some((e) => e.path === path && message.test(e.message)),
      `want ${path} ${String(message)}, got ${JSON.stringify(errors)}`,
    );
  });
}

test("Istio's warnings: empty selector labels, duplicated hosts, */* beside others", () => {
  const w = (spec: unknown): string[] => checkObject(sidecar(spec)).warnings.map((x) => `${x.path}: ${x.message}`);
  assert.deepEqual(w({ workloadSelector: {}, egress: [{ hosts: ['*/*'] }] }), [
    'spec.workloadSelector: sidecar: workload selector specified without labels, will be applied to all services in namespace',
  ]);
  assert.deepEqual(w({ egress: [{ hosts: ['ns/a.example.com', 'ns/a.example.com'] }] }), ['spec.egress[0].hosts[1]: duplicated egress host: ns/a.example.com']);
  assert.deepEqual(w({ egress: [{ hosts: ['*/*', 'ns/*'] }] }), ['spec.egress[0].hosts: `*/*` host select all resources, no other hosts can be added']);
});

// ---- scope selection ----

const svc = (name: string, namespace: string, port = 8080): ConfigObject => {
  const metadata = { name, namespace, labels: {}, annotations: {} };
  return {
    kind: 'Service',
    apiVersion: 'v1',
    metadata,
    body: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata,
      spec: {
        clusterIP: '10.96.0.1',
        selector: { app: name },
        ports: [
          { name: 'http', port },
          { name: 'tcp-admin', port: 9000 },
        ],
      },
    },
    origin: { source: 'test' },
  };
};
const vs = (name: string, namespace: string, host: string, dest: string): ConfigObject => {
  const metadata = { name, namespace, labels: {}, annotations: {} };
  const apiVersion = 'networking.istio.io/v1';
  return {
    kind: 'VirtualService',
    apiVersion,
    metadata,
    body: { apiVersion, kind: 'VirtualService', metadata, spec: { hosts: [host], http: [{ route: [{ destination: { host: dest } }] }] } },
    origin: { source: 'test' },
  };
};

function snap(objects: ConfigObject[]) {
  return buildSnapshot({ objects, errors: [], sequence: 1, now: new Date(0), domain: 'cluster.local' });
}
const proxy = (ns: string, labels: Record<string, string> = {}) => parseProxy(`sidecar~10.0.0.9~p.${ns}~${ns}.svc.cluster.local`, { NAMESPACE: ns, LABELS: labels });
const hosts = (s: ReturnType<typeof snap>, p: ReturnType<typeof proxy>): string[] => proxyServices(s, p).map((x) => `${x.hostname}:${x.ports.map((q) => q.port).join(',')}`);

const SERVICES = [svc('a', 'shop'), svc('b', 'other'), svc('c', 'istio-system'), svc('d', 'third')];

test('no Sidecar: every exported service; a namespace Sidecar shrinks the list; the root one is the default elsewhere', () => {
  assert.equal(proxyServices(snap(SERVICES), proxy('shop')).length, 4);
  const s = snap([
    ...SERVICES,
    sidecar({ egress: [{ hosts: ['./*', 'istio-system/*'] }] }, 'default', 'istio-system'),
    sidecar({ egress: [{ hosts: ['other/*'] }] }, 'default', 'shop'),
  ]);
  assert.deepEqual(s.errors, []);
  assert.deepEqual(hosts(s, proxy('shop')), ['b.other.svc.cluster.local:8080,9000']);
  // `./` in the root namespace's Sidecar is the proxy's own namespace.
  assert.deepEqual(hosts(s, proxy('third')), ['c.istio-system.svc.cluster.local:8080,9000', 'd.third.svc.cluster.local:8080,9000']);
});

test('a workloadSelector Sidecar wins for the workloads it selects; the oldest selector-less one wins, the other is reported', () => {
  const s = snap([
    ...SERVICES,
    sidecar({ egress: [{ hosts: ['*/*'] }] }, 'newer', 'shop', '2024-02-01T00:00:00Z'),
    sidecar({ egress: [{ hosts: ['./*'] }] }, 'older', 'shop', '2024-01-01T00:00:00Z'),
    sidecar(
      { workloadSelector: { labels: { app: 'a' } }, egress: [{ port: { number: 8080, protocol: 'HTTP', name: 'http' }, hosts: ['third/*'] }, { hosts: ['~/*'] }] },
      'a',
      'shop',
    ),
  ]);
  assert.deepEqual(hosts(s, proxy('shop')), ['a.shop.svc.cluster.local:8080,9000']);
  assert.equal(sidecarScopeKey(s, proxy('shop', { app: 'a' })), 'shop/a');
  // A port-bound egress listener imports that port alone; `~/*` imports nothing.
  assert.deepEqual(hosts(s, proxy('shop', { app: 'a' })), ['d.third.svc.cluster.local:8080']);
  assert.deepEqual(
    s.errors.map((e) => `${e.kind}/${e.namespace}/${e.name}: ${e.errors[0]?.path}`),
    ['Sidecar/shop/newer: spec.workloadSelector'],
  );
});

test("VirtualServices: selected by the egress hosts in their own namespace; their destinations join the scope; the Sidecar's outboundTrafficPolicy wins", () => {
  const s = snap([
    ...SERVICES,
    vs('to-d', 'shop', 'a.shop.svc.cluster.local', 'd.third.svc.cluster.local'),
    vs('on-b', 'other', 'b.other.svc.cluster.local', 'b.other.svc.cluster.local'),
    sidecar({ egress: [{ hosts: ['./*'] }], outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } }, 'default', 'shop'),
  ]);
  const p = proxy('shop');
  assert.equal(proxyVirtualService(s, p, 'a.shop.svc.cluster.local')?.meta.name, 'to-d');
  assert.equal(proxyVirtualService(s, p, 'b.other.svc.cluster.local'), undefined);
  assert.deepEqual(hosts(s, p), ['a.shop.svc.cluster.local:8080,9000', 'd.third.svc.cluster.local:8080,9000']);
  assert.equal(proxyOutboundTrafficPolicy(s, p), 'REGISTRY_ONLY');
  assert.equal(proxyOutboundTrafficPolicy(s, proxy('other')), 'ALLOW_ANY');
  assert.equal(proxyVirtualService(s, proxy('other'), 'b.other.svc.cluster.local')?.meta.name, 'on-b');
});
