/**
 * Gateway config edge cases, rendered as the server would send them (every resource checked
 * against Envoy's validate.rules): TLS contexts for each server mode, istiod's merge rules
 * (conflicting servers skipped, duplicate SNI hosts skipped, unprivileged ports), binds, host
 * intersection, 404 and redirect-only virtual hosts, cache keys shared between replicas, and
 * config_dump's redaction of sensitive fields.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { redactSensitive } from '../src/debug/redact';
import { parseProxy } from '../src/model/proxy';
import { ConfigEngine } from '../src/xds/engine';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { ResourceValidator } from '../src/xds/validate-rules';
import { render, snapshotFromDir } from './helpers/render';

const protos = new EnvoyProtos();
const ID = 'router~10.0.0.5~gw-1.gw~gw.svc.cluster.local';
const META = { NAMESPACE: 'gw', LABELS: { istio: 'ingressgateway' } };
const dirs: string[] = [];

type J = Record<string, unknown>;

const BACKEND = `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: gw }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 80 }]
---
apiVersion: v1
kind: Service
metadata: { name: web2, namespace: gw }
spec:
  selector: { app: web2 }
  ports: [{ name: tcp, port: 9000 }]
`;

function gateway(servers: string): string {
  return `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: gw }
spec:
  selector: { istio: ingressgateway }
  servers:
${servers}`;
}

const VS = `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: gw }
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - route:
    - destination: { host: web }
`;

function renderGateway(yaml: string, meta: Record<string, unknown> = META): { lds: J[]; rds: J[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-gwcfg-'));
  dirs.push(dir);
  fs.writeFileSync(path.join(dir, 'all.yaml'), BACKEND + yaml);
  const snap = snapshotFromDir(dir);
  assert.deepEqual(snap.errors, [], 'inputs are valid');
  const out = render(protos, snap, ID, meta);
  assert.deepEqual(out.rejected, [], 'every resource passes validate.rules');
  return { lds: out.byType.LDS ?? [], rds: out.byType.RDS ?? [] };
}

after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tlsContext(l: J, chain = 0): J {
  const fc = (l.filter_chains as J[])[chain] as J;
  return ((fc.transport_socket as J).typed_config as J).common_tls_context as J;
}

test('ISTIO_MUTUAL and file-mounted certificates come from istio-agent (sds-grpc); credentialName from the control plane', () => {
  const { lds } = renderGateway(
    gateway(`  - port: { number: 443, name: https-istio, protocol: HTTPS }
    hosts: [a.example.com]
    tls: { mode: ISTIO_MUTUAL, subjectAltNames: [spiffe://cluster.local/ns/x/sa/y] }
  - port: { number: 443, name: https-files, protocol: HTTPS }
    hosts: [b.example.com]
    tls: { mode: MUTUAL, serverCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem, caCertificates: /etc/certs/ca.pem, minProtocolVersion: TLSV1_2, cipherSuites: [ECDHE-RSA-AES256-GCM-SHA384] }
  - port: { number: 443, name: https-optional, protocol: HTTPS }
    hosts: [c.example.com]
    tls: { mode: OPTIONAL_MUTUAL, credentialName: c-cred }
  - port: { number: 9443, name: tls-istio, protocol: TLS }
    hosts: [d.example.com]
    tls: { mode: ISTIO_MUTUAL }
`) +
      VS +
      `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: tcp, namespace: gw }
spec:
  hosts: [d.example.com]
  gateways: [gw]
  tcp:
  - route:
    - destination: { host: web, port: { number: 80 } }
      weight: 70
    - destination: { host: web2 }
      weight: 30
`,
  );
  const l443 = lds.find((l) => l.name === '0.0.0.0_443') as J;
  const istio = tlsContext(l443, 0);
  assert.equal(((istio.tls_certificate_sds_secret_configs as J[])[0] as J).name, 'default');
  assert.ok(JSON.stringify(istio).includes('"cluster_name":"sds-grpc"'));
  const cvc = istio.combined_validation_context as J;
  assert.equal((cvc.validation_context_sds_secret_config as J).name, 'ROOTCA');
  assert.deepEqual((cvc.default_validation_context as J).match_subject_alt_names, [{ exact: 'spiffe://cluster.local/ns/x/sa/y' }]);
  const files = tlsContext(l443, 1);
  assert.equal(((files.tls_certificate_sds_secret_configs as J[])[0] as J).name, 'file-cert:/etc/certs/cert.pem~/etc/certs/key.pem');
  assert.equal(((files.combined_validation_context as J).validation_context_sds_secret_config as J).name, 'file-root:/etc/certs/ca.pem');
  assert.deepEqual(files.tls_params, { tls_minimum_protocol_version: 'TLSv1_2', cipher_suites: ['ECDHE-RSA-AES256-GCM-SHA384'] });
  const optional = tlsContext(l443, 2);
  assert.equal(((optional.combined_validation_context as J).validation_context_sds_secret_config as J).name, 'kubernetes://c-cred-cacert');
  const optionalFc = (l443.filter_chains as J[])[2] as J;
  assert.deepEqual(
    ((optionalFc.transport_socket as J).typed_config as J).require_client_certificate,
    { value: false },
    'OPTIONAL_MUTUAL asks for, but does not require, a client certificate',
  );
  // ISTIO_MUTUAL on a TCP server also offers Istio's metadata-exchange ALPN, then forwards by its
  // `tcp` route: weighted clusters, stat prefix `<vs name>.<vs namespace>` as istiod names it.
  const l9443 = lds.find((l) => l.name === '0.0.0.0_9443') as J;
  assert.deepEqual(tlsContext(l9443).alpn_protocols, ['istio-peer-exchange', 'h2', 'http/1.1']);
  const proxy = (((l9443.filter_chains as J[])[0] as J).filters as J[]).find((f) => f.name === 'envoy.filters.network.tcp_proxy') as J;
  assert.deepEqual(proxy.typed_config, {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
    stat_prefix: 'tcp.gw',
    weighted_clusters: {
      clusters: [
        { name: 'outbound|80||web.gw.svc.cluster.local', weight: 70 },
        { name: 'outbound|9000||web2.gw.svc.cluster.local', weight: 30 },
      ],
    },
  });
});

test('merge: a TCP server on an HTTP port, and a second server for the same SNI host, are skipped', () => {
  const { lds, rds } = renderGateway(
    gateway(`  - port: { number: 8080, name: http, protocol: HTTP }
    hosts: ["*"]
  - port: { number: 8080, name: tcp, protocol: TCP }
    hosts: ["*"]
  - port: { number: 443, name: https-a, protocol: HTTPS }
    hosts: [a.example.com]
    tls: { mode: SIMPLE, credentialName: a }
  - port: { number: 443, name: https-b, protocol: HTTPS }
    hosts: [a.example.com]
    tls: { mode: SIMPLE, credentialName: b }
`) + VS,
  );
  const l8080 = lds.find((l) => l.name === '0.0.0.0_8080') as J;
  assert.equal((l8080.filter_chains as J[]).length, 1, 'one HCM; the TCP server is skipped');
  const l443 = lds.find((l) => l.name === '0.0.0.0_443') as J;
  assert.equal((l443.filter_chains as J[]).length, 1, 'a.example.com once: Envoy rejects duplicate filter chain matches');
  assert.ok(JSON.stringify(l443).includes('kubernetes://a"'));
  assert.deepEqual(rds.map((r) => r.name).sort(), ['http.8080', 'https.443.https-a.gw.gw']);
});

test('unprivileged pods skip ports below 1024; a bind address names the listener and its routes', () => {
  const servers = gateway(`  - port: { number: 80, name: http, protocol: HTTP }
    hosts: ["*"]
  - port: { number: 8081, name: http-bound, protocol: HTTP }
    bind: 127.0.0.2
    hosts: ["*"]
`);
  const unpriv = renderGateway(servers + VS, { ...META, UNPRIVILEGED_POD: 'true' });
  assert.deepEqual(
    unpriv.lds.map((l) => l.name),
    ['127.0.0.2_8081'],
  );
  assert.deepEqual(((unpriv.lds[0] as J).address as J).socket_address, { address: '127.0.0.2', port_value: 8081 });
  assert.deepEqual(
    unpriv.rds.map((r) => r.name),
    ['http.8081.127.0.0.2'],
  );
  const priv = renderGateway(servers + VS);
  assert.deepEqual(priv.lds.map((l) => l.name).sort(), ['0.0.0.0_80', '127.0.0.2_8081']);
});

test('a server with no VirtualService answers 404 from a blackhole virtual host; an httpsRedirect server still redirects', () => {
  const { rds } = renderGateway(
    gateway(`  - port: { number: 8080, name: http, protocol: HTTP }
    hosts: [none.example.com]
  - port: { number: 8081, name: http-redirect, protocol: HTTP }
    hosts: [gw/secure.example.com]
    tls: { httpsRedirect: true }
`),
  );
  const empty = rds.find((r) => r.name === 'http.8080') as J;
  assert.deepEqual(empty.virtual_hosts, [{ name: 'blackhole:8080', domains: ['*'] }]);
  const redirect = rds.find((r) => r.name === 'http.8081') as J;
  assert.deepEqual(redirect.virtual_hosts, [{ name: 'secure.example.com:8081', domains: ['secure.example.com'], require_tls: 'ALL', include_request_attempt_count: true }]);
});

test('VirtualService hosts meet server hosts as istiod intersects them: the more specific name, namespace restrictions honoured', () => {
  const { rds } = renderGateway(
    gateway(`  - port: { number: 8080, name: http, protocol: HTTP }
    hosts: ["*.example.com", "other/*.example.org"]
`) +
      `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: named, namespace: gw }
spec:
  hosts: [a.example.com, b.example.com, x.example.org]
  gateways: [gw]
  http:
  - route:
    - destination: { host: web }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: wildcard, namespace: gw }
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - route:
    - destination: { host: web }
`,
  );
  const rc = rds.find((r) => r.name === 'http.8080') as J;
  // a and b share routes (one VirtualService): one virtual host with both domains. `*` narrows to
  // the server's *.example.com; *.example.org is only for VirtualServices in namespace `other`.
  assert.deepEqual(
    (rc.virtual_hosts as J[]).map((v) => [v.name, v.domains]),
    [
      ['*.example.com:8080', ['*.example.com']],
      ['a.example.com:8080', ['a.example.com', 'b.example.com']],
    ],
  );
});

test('cache keys: gateway replicas share encoded bytes; a proxy selected by other Gateways, or in another namespace, does not', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-gwcfg-'));
  dirs.push(dir);
  const gw = (name: string, app: string, host: string): string => `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: ${name}, namespace: gw }
spec:
  selector: { app: ${app} }
  servers:
  - port: { number: 8080, name: http, protocol: HTTP }
    hosts: [${host}]
`;
  fs.writeFileSync(
    path.join(dir, 'all.yaml'),
    BACKEND + gw('one', 'one', 'one.example.com') + gw('two', 'two', 'two.example.com') + VS.replace('gateways: [gw]', 'gateways: [one, two]\n  exportTo: [.]'),
  );
  const snap = snapshotFromDir(dir);
  assert.deepEqual(snap.errors, []);
  const engine = new ConfigEngine({ protos, checker: new ResourceValidator(protos) });
  engine.setSnapshot(snap);
  const computed = (): number => engine.stats().resources.computed + engine.stats().parts.computed;
  const rds = (id: string, ns: string, app: string): string => {
    const proxy = parseProxy(id, { NAMESPACE: ns, LABELS: { app } });
    const r = engine.resources(engine.attach(proxy), TypeUrl.Route, new Set(['http.8080'])).resources.get('http.8080');
    return JSON.stringify(protos.decode(TypeUrl.Route, r?.bytes ?? new Uint8Array()));
  };
  const a1 = rds('router~10.0.0.1~one-a.gw~gw.svc.cluster.local', 'gw', 'one');
  const before = computed();
  const a2 = rds('router~10.0.0.2~one-b.gw~gw.svc.cluster.local', 'gw', 'one');
  assert.equal(a2, a1);
  assert.equal(computed(), before, 'the second replica reuses what was computed for the first');
  const b = rds('router~10.0.0.3~two-a.gw~gw.svc.cluster.local', 'gw', 'two');
  assert.ok(a1.includes('one.example.com') && b.includes('two.example.com') && !b.includes('one.example.com'));
  // Same labels in another namespace: the VirtualService is exported to its own namespace only,
  // so this proxy must get the 404 host, not the bytes cached for the first one.
  const other = rds('router~10.0.0.4~one-c.other~other.svc.cluster.local', 'other', 'one');
  assert.ok(other.includes('blackhole:8080') && !other.includes('one.example.com'));
});

test("config_dump redaction follows Envoy's `sensitive` annotations in any resource, through Any and maps", () => {
  const url = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
  const cluster = {
    name: 'c',
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
        common_tls_context: {
          tls_certificates: [
            { certificate_chain: { inline_string: 'CERT' }, private_key: { inline_string: 'KEY' }, password: { inline_bytes: Buffer.from('pw').toString('base64') } },
          ],
        },
      },
    },
  };
  const out = JSON.stringify(redactSensitive(protos, url, protos.decode(url, protos.encode(url, cluster))));
  assert.ok(out.includes('"certificate_chain":{"inline_string":"CERT"}'), 'certificates stay readable');
  assert.ok(out.includes('"private_key":{"inline_string":"[redacted]"}'));
  assert.ok(out.includes(`"password":{"inline_bytes":"${Buffer.from('[redacted]').toString('base64')}"}`));
  assert.ok(!out.includes('KEY') && !out.includes(Buffer.from('pw').toString('base64')));
});
