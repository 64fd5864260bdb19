/**
 * Validation parity with Istio (pkg/config/validation, its agent package, and the CRD test
 * inputs under pkg/config/validation/testdata): objects Istio accepts that meshd used to refuse,
 * objects Istio refuses that meshd used to accept, and Istio's warnings, which are reported
 * (admission `warnings`, `meshd validate` output) without refusing the object. Objects are read
 * from YAML text through the folder source's parser, as a user's files are.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { validateFiles } from '../src/cli/validate';
import { rulePolicy } from '../src/generate/security/rbac';
import type { AuthzRule, ConfigObject } from '../src/model/objects';
import { checkObject } from '../src/model/validate';
import { parseDocuments } from '../src/sources/parse';
import { admitValidation } from '../src/webhook/admission';

const ROOT = path.join(__dirname, '..');

/** The one object of a YAML text, read as the folder source reads it (fast and careful readers agree). */
function read(yaml: string): ConfigObject {
  const fast = parseDocuments(yaml, 'test.yaml');
  const careful = parseDocuments(yaml, 'test.yaml', { careful: true });
  assert.deepEqual(fast.errors, [], 'parse errors');
  assert.deepEqual(
    fast.objects.map((o) => o.body),
    careful.objects.map((o) => o.body),
    'the fast and careful readers differ',
  );
  const [o] = fast.objects;
  assert.ok(o, 'no object');
  return o;
}

const meta = (kind: string, group: string, extra = ''): string => `apiVersion: ${group}\nkind: ${kind}\nmetadata:\n  name: p\n  namespace: shop\n${extra}`;
const ap = (spec: string, annotations = ''): ConfigObject => read(`${meta('AuthorizationPolicy', 'security.istio.io/v1', annotations)}spec:\n${spec}`);
const dr = (spec: string): ConfigObject => read(`${meta('DestinationRule', 'networking.istio.io/v1')}spec:\n  host: ratings.prod.svc.cluster.local\n${spec}`);
const vs = (spec: string, annotations = ''): ConfigObject => read(`${meta('VirtualService', 'networking.istio.io/v1', annotations)}spec:\n${spec}`);
const se = (spec: string): ConfigObject => read(`${meta('ServiceEntry', 'networking.istio.io/v1')}spec:\n${spec}`);
const gw = (annotations: string): ConfigObject =>
  read(`${meta('Gateway', 'networking.istio.io/v1', annotations)}spec:\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ["*"]\n`);
const annotation = (key: string, value: string): string => `  annotations:\n    ${key}: ${JSON.stringify(value)}\n`;
const clientTls = (tls: string): ConfigObject => dr(`  trafficPolicy:\n    tls:\n${tls}`);
const TLS_ROUTE = '    route:\n    - destination: {host: secure.example.com, port: {number: 443}}\n';

/** Istio accepts these: meshd must too, without an error. */
const ACCEPTED: Array<{ name: string; obj: () => ConfigObject }> = [
  {
    name: 'AuthorizationPolicy trustDomains and notTrustDomains (exact, prefix, suffix, presence)',
    obj: () => ap('  rules:\n  - from:\n    - source:\n        trustDomains: ["cluster.local", "td-*", "*.example.org", "*"]\n        notTrustDomains: ["legacy.example.org"]\n'),
  },
  { name: 'AuthorizationPolicy source of trustDomains only is not empty', obj: () => ap('  rules:\n  - from:\n    - source:\n        notTrustDomains: ["other.example.org"]\n') },
  {
    name: 'AuthorizationPolicy condition key source.trustDomain',
    obj: () => ap('  rules:\n  - when:\n    - key: source.trustDomain\n      values: ["cluster.local"]\n      notValues: ["*.evil.example"]\n'),
  },
  {
    name: 'DestinationRule connectionPool.http.http2KeepAlive',
    obj: () => dr('  trafficPolicy:\n    connectionPool:\n      http:\n        http2KeepAlive:\n          interval: 15s\n          timeout: 5s\n'),
  },
  {
    name: 'DestinationRule warmup within range',
    obj: () => dr('  trafficPolicy:\n    loadBalancer:\n      warmup:\n        duration: 300s\n        minimumPercent: 5.0\n        aggression: 5.0\n'),
  },
  {
    name: 'ServiceEntry addresses with 001:db8:: in a flow sequence',
    obj: () =>
      se('  hosts: ["example.com"]\n  addresses: [1.2.3.4, 001:db8::]\n  location: MESH_EXTERNAL\n  ports:\n  - {name: foo, protocol: HTTP, number: 1234}\n  resolution: DNS\n'),
  },
  {
    name: 'gateway-bound TLS route matching the auto-generated SNI outbound_.<port>_._.<host>',
    obj: () =>
      vs(
        `  hosts: ["outbound_.443_._.secure.example.com"]\n  gateways: [istio-system/cross-network]\n  tls:\n  - match:\n    - sniHosts: ["outbound_.443_._.secure.example.com"]\n${TLS_ROUTE}`,
      ),
  },
  {
    name: 'the auto-generated SNI form within a wildcard host',
    obj: () => vs(`  hosts: ["*.example.com"]\n  gateways: [cross-network]\n  tls:\n  - match:\n    - sniHosts: ["outbound_.8443_._.secure.example.com"]\n${TLS_ROUTE}`),
  },
  {
    name: 'an IP address as TLS SNI host (Istio warns only)',
    obj: () => vs(`  hosts: ["secure.example.com"]\n  gateways: [mesh]\n  tls:\n  - match:\n    - sniHosts: ["192.168.1.10"]\n${TLS_ROUTE}`),
  },
  { name: 'istio.io/dry-run "true" on an ALLOW policy', obj: () => ap('  rules:\n  - {}\n', annotation('istio.io/dry-run', 'true')) },
  {
    name: 'istio.io/dry-run "False" on a DENY policy (Go\'s ParseBool)',
    obj: () => ap('  action: DENY\n  rules:\n  - to:\n    - operation: {ports: ["8080"]}\n', annotation('istio.io/dry-run', 'False')),
  },
  {
    name: 'insecureSkipVerify with MUTUAL and credentialName (it carries the client certificate)',
    obj: () => clientTls('      mode: MUTUAL\n      credentialName: client-cred\n      insecureSkipVerify: true\n'),
  },
  { name: 'insecureSkipVerify with SIMPLE and nothing that verifies', obj: () => clientTls('      mode: SIMPLE\n      sni: api.example.com\n      insecureSkipVerify: true\n') },
];

/** Istio refuses these: meshd must too, at this path, saying this. */
const REFUSED: Array<{ name: string; obj: () => ConfigObject; path: string; message: RegExp }> = [
  {
    name: 'warmup minimumPercent above 100',
    obj: () => dr('  trafficPolicy:\n    loadBalancer:\n      warmup:\n        duration: 300s\n        minimumPercent: 150.0\n'),
    path: 'spec.trafficPolicy.loadBalancer.warmup.minimumPercent',
    message: /less than or equal to 100/,
  },
  {
    name: 'warmup aggression below 1',
    obj: () => dr('  trafficPolicy:\n    loadBalancer:\n      warmup:\n        duration: 300s\n        aggression: 0.3\n'),
    path: 'spec.trafficPolicy.loadBalancer.warmup.aggression',
    message: /greater than or equal to 1/,
  },
  {
    name: 'warmup without duration',
    obj: () => dr('  trafficPolicy:\n    loadBalancer:\n      warmup:\n        minimumPercent: 5.0\n'),
    path: 'spec.trafficPolicy.loadBalancer.warmup.duration',
    message: /duration is required/,
  },
  {
    name: 'http2KeepAlive interval that is not a duration',
    obj: () => dr('  trafficPolicy:\n    connectionPool:\n      http:\n        http2KeepAlive:\n          interval: soon\n'),
    path: 'spec.trafficPolicy.connectionPool.http.http2KeepAlive.interval',
    message: /duration/,
  },
  {
    name: 'http2KeepAlive unknown field',
    obj: () => dr('  trafficPolicy:\n    connectionPool:\n      http:\n        http2KeepAlive:\n          intervall: 15s\n'),
    path: 'spec.trafficPolicy.connectionPool.http.http2KeepAlive.intervall',
    message: /unknown field/,
  },
  {
    name: 'istio.io/dry-run that is not a boolean',
    obj: () => ap('  rules:\n  - {}\n', annotation('istio.io/dry-run', 'maybe')),
    path: 'metadata.annotations["istio.io/dry-run"]',
    message: /shop\/p has annotation istio\.io\/dry-run with invalid value \(maybe\)/,
  },
  {
    name: 'istio.io/dry-run on an AUDIT policy',
    obj: () => ap('  action: AUDIT\n  rules:\n  - {}\n', annotation('istio.io/dry-run', 'true')),
    path: 'metadata.annotations["istio.io/dry-run"]',
    message: /only supports action ALLOW\/DENY, found action AUDIT/,
  },
  {
    name: 'istio.io/dry-run on a VirtualService',
    obj: () => vs('  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n', annotation('istio.io/dry-run', 'true')),
    path: 'metadata.annotations["istio.io/dry-run"]',
    message: /unsupported annotation istio\.io\/dry-run/,
  },
  {
    name: 'internal.istio.io/webhook-always-reject on any Istio object',
    obj: () => gw(annotation('internal.istio.io/webhook-always-reject', 'true')),
    path: 'metadata.annotations["internal.istio.io/webhook-always-reject"]',
    message: /annotation found, rejecting/,
  },
  {
    name: 'insecureSkipVerify with credentialName (SIMPLE)',
    obj: () => clientTls('      mode: SIMPLE\n      credentialName: ca-cred\n      insecureSkipVerify: true\n'),
    path: 'spec.trafficPolicy.tls.insecureSkipVerify',
    message: /cannot set credentialName when insecureSkipVerify is true/,
  },
  {
    name: 'insecureSkipVerify with subjectAltNames (MUTUAL)',
    obj: () =>
      clientTls('      mode: MUTUAL\n      clientCertificate: /c.pem\n      privateKey: /k.pem\n      subjectAltNames: [api.example.com]\n      insecureSkipVerify: true\n'),
    path: 'spec.trafficPolicy.tls.insecureSkipVerify',
    message: /cannot set subjectAltNames when insecureSkipVerify is true/,
  },
  {
    name: 'insecureSkipVerify with caCertificates (SIMPLE)',
    obj: () => clientTls('      mode: SIMPLE\n      caCertificates: /ca.pem\n      insecureSkipVerify: true\n'),
    path: 'spec.trafficPolicy.tls.insecureSkipVerify',
    message: /cannot set caCertificates when insecureSkipVerify is true/,
  },
  {
    name: 'an empty trust domain',
    obj: () => ap('  rules:\n  - from:\n    - source:\n        trustDomains: [""]\n'),
    path: 'spec.rules[0].from[0].source.trustDomains[0]',
    message: /empty value not allowed, found in TrustDomains/,
  },
  {
    name: 'an empty source.trustDomain value',
    obj: () => ap('  rules:\n  - when:\n    - key: source.trustDomain\n      values: [""]\n'),
    path: 'spec.rules[0].when[0].values',
    message: /empty value not allowed/,
  },
  {
    name: 'the auto-generated SNI form without a port number',
    obj: () => vs(`  hosts: ["*.example.com"]\n  gateways: [cross-network]\n  tls:\n  - match:\n    - sniHosts: ["outbound_.https_._.secure.example.com"]\n${TLS_ROUTE}`),
    path: 'spec.tls[0].match[0].sniHosts[0]',
    message: /should follow outbound_\.<PORT>_\._\.<HOSTNAME> format/,
  },
  {
    name: 'the auto-generated SNI form on a mesh-bound VirtualService',
    obj: () => vs(`  hosts: ["*.example.com"]\n  gateways: [mesh]\n  tls:\n  - match:\n    - sniHosts: ["outbound_.443_._.secure.example.com"]\n${TLS_ROUTE}`),
    path: 'spec.tls[0].match[0].sniHosts[0]',
    message: /invalid/,
  },
];

/** Istio warns of these: meshd keeps the object and reports the warning at this path. */
const WARNED: Array<{ name: string; obj: () => ConfigObject; path: string; message: RegExp }> = [
  {
    name: 'an IP address as SNI',
    obj: () => vs(`  hosts: ["secure.example.com"]\n  gateways: [mesh]\n  tls:\n  - match:\n    - sniHosts: ["192.168.1.10"]\n${TLS_ROUTE}`),
    path: 'spec.tls[0].match[0].sniHosts[0]',
    message: /using an IP address \("192\.168\.1\.10"\) goes against SNI spec/,
  },
  {
    name: 'a DENY rule of HTTP attributes only',
    obj: () => ap('  action: DENY\n  rules:\n  - to:\n    - operation: {paths: ["/admin*"]}\n'),
    path: 'spec.rules[0]',
    message: /will deny all traffic to TCP ports under its scope/,
  },
  {
    name: 'deprecated outlier consecutiveErrors',
    obj: () => dr('  trafficPolicy:\n    outlierDetection:\n      consecutiveErrors: 5\n'),
    path: 'spec.trafficPolicy.outlierDetection.consecutiveErrors',
    message: /deprecated/,
  },
  {
    name: 'deprecated consistentHash minimumRingSize',
    obj: () => dr('  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n        httpHeaderName: x-user\n        minimumRingSize: 1024\n'),
    path: 'spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize',
    message: /deprecated/,
  },
];

for (const c of ACCEPTED) {
  test(`accepted as Istio does: ${c.name}`, () => {
    assert.deepEqual(checkObject(c.obj()).errors, []);
  });
}

for (const c of REFUSED) {
  test(`refused as Istio does: ${c.name}`, () => {
    const { errors } = checkObject(c.obj());
    const hit = errors.find((e) => e.path === c.path);
    assert.ok(hit, `no error at ${c.path}; got ${JSON.stringify(errors)}`);
    assert.match(hit.message, c.message);
  });
}

for (const c of WARNED) {
  test(`warned as Istio does, not refused: ${c.name}`, () => {
    const { errors, warnings } = checkObject(c.obj());
    assert.deepEqual(errors, []);
    const hit = warnings.find((w) => w.path === c.path);
    assert.ok(hit, `no warning at ${c.path}; got ${JSON.stringify(warnings)}`);
    assert.match(hit.message, c.message);
  });
}

test('a plain DENY with ports, and the valid bases, carry no warning', () => {
  assert.deepEqual(checkObject(ap('  action: DENY\n  rules:\n  - to:\n    - operation: {ports: ["8080"], paths: ["/admin*"]}\n')).warnings, []);
  assert.deepEqual(checkObject(dr('  trafficPolicy:\n    loadBalancer: {simple: ROUND_ROBIN}\n')).warnings, []);
});

test('YAML flow sequences read as Kubernetes reads them: a colon before `]` or `,` stays in the scalar', () => {
  const spec = (yaml: string): unknown => read(`${meta('ServiceEntry', 'networking.istio.io/v1')}spec:\n${yaml}`).body['spec'];
  assert.deepEqual(spec('  addresses: [1.2.3.4, 001:db8::]\n  hosts: [a:, b]\n'), { addresses: ['1.2.3.4', '001:db8::'], hosts: ['a:', 'b'] });
  assert.deepEqual(spec('  x: {a: 001:db8::, b: 2}\n'), { x: { a: '001:db8::', b: 2 } });
  // `: ` is still a mapping in a flow sequence, and a block sequence item ending in `:` is a key, as go-yaml reads them.
  assert.deepEqual(spec('  x: [a: b]\n  y:\n  - "001:db8::"\n'), { x: [{ a: 'b' }], y: ['001:db8::'] });
  // Positions in errors still point at the text as written.
  const bad = parseDocuments('a: [001:db8::, {b: 1]\n', 'bad.yaml');
  assert.match(bad.errors[0]?.errors[0]?.message ?? '', /line 1, column \d+/);
});

test('the admission webhook returns warnings with an admitted object, and with a denied one', () => {
  const review = (obj: ConfigObject): ReturnType<typeof admitValidation> => admitValidation({ uid: 'u1', operation: 'CREATE', namespace: 'shop', object: obj.body }, checkObject);
  const warned = review(vs(`  hosts: ["secure.example.com"]\n  gateways: [mesh]\n  tls:\n  - match:\n    - sniHosts: ["192.168.1.10"]\n${TLS_ROUTE}`));
  assert.equal(warned.allowed, true);
  assert.deepEqual(warned.warnings, ['spec.tls[0].match[0].sniHosts[0]: using an IP address ("192.168.1.10") goes against SNI spec and most clients do not support this']);
  const denied = review(ap('  action: DENY\n  rules:\n  - to:\n    - operation: {paths: [""]}\n'));
  assert.equal(denied.allowed, false);
  assert.match(denied.status?.message ?? '', /empty value not allowed/);
  assert.equal(denied.warnings?.length, 1);
  const rejected = review(gw(annotation('internal.istio.io/webhook-always-reject', 'true')));
  assert.equal(rejected.allowed, false);
  assert.equal(review(ap('  rules:\n  - {}\n')).warnings, undefined, 'no warnings field without warnings');
});

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-parity-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const write = (name: string, text: string): string => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
};

test('meshd validate prints warnings and passes; non-Istio kinds are skipped with a note', () => {
  const f = write(
    'mixed.yaml',
    [
      `${meta('VirtualService', 'networking.istio.io/v1')}spec:\n  hosts: ["secure.example.com"]\n  gateways: [mesh]\n  tls:\n  - match:\n    - sniHosts: ["192.168.1.10"]\n${TLS_ROUTE}`,
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec: {template: {spec: {containers: [{name: web, image: nginx}]}}}\n',
      'apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: edge, namespace: shop}\nspec: {gatewayClassName: istio, listeners: [{name: http, port: 80, protocol: HTTP}]}\n',
      'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: settings, namespace: shop}\n',
    ].join('---\n'),
  );
  const r = validateFiles([f]);
  assert.equal(r.ok, true, r.output);
  assert.match(r.output, /mixed\.yaml: VirtualService shop\/p: warning: spec\.tls\[0\]\.match\[0\]\.sniHosts\[0\]: using an IP address/);
  assert.match(r.output, /mixed\.yaml: Deployment shop\/web: skipped: apps\/v1 Deployment is not an Istio kind/);
  // The Gateway API's Gateway is read (and validated) by meshd.
  assert.doesNotMatch(r.output, /Gateway shop\/edge/);
  assert.match(r.output, /mixed\.yaml: ServiceAccount shop\/settings: skipped: v1 ServiceAccount is not an Istio kind/);
  assert.match(r.output, /^2 object\(s\) valid; 2 skipped \(not Istio\), 1 warning\(s\)$/m);
});

test('meshd validate still fails an Istio object it cannot read, or a meshd kind in a version it does not read', () => {
  const f = write(
    'istio-unknown.yaml',
    'apiVersion: networking.istio.io/v1\nkind: Sidecarr\nmetadata: {name: s, namespace: shop}\nspec: {}\n---\napiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\nmetadata: {name: e, namespace: shop}\naddressType: IPv4\n',
  );
  const r = validateFiles([f]);
  assert.equal(r.ok, false, r.output);
  assert.match(r.output, /kind: unsupported kind "Sidecarr"/);
  assert.match(r.output, /EndpointSlice shop\/e: apiVersion: unsupported apiVersion/);
});

test('meshctl validate exits 0 on a plain Deployment, with a note', () => {
  const f = write('deployment.yaml', 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {template: {spec: {containers: [{name: web, image: nginx}]}}}\n');
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'cli', 'meshctl.ts'), 'validate', '-f', f], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /Deployment default\/web: skipped/);
});

// ---- trustDomains in the RBAC generator, evaluated against SPIFFE IDs as Envoy would ----

type P = Record<string, unknown>;

/** Envoy's StringMatcher on a string (exact, prefix, suffix, safe_regex full match). */
function stringMatches(m: P, s: string): boolean {
  if (typeof m['exact'] === 'string') return s === m['exact'];
  if (typeof m['prefix'] === 'string') return s.startsWith(m['prefix']);
  if (typeof m['suffix'] === 'string') return s.endsWith(m['suffix']);
  const re = (m['safe_regex'] as P | undefined)?.['regex'];
  if (typeof re === 'string') return new RegExp(`^(?:${re})$`).test(s);
  throw new Error(`matcher ${JSON.stringify(m)}`);
}

/** Envoy's RBAC Principal on a peer whose certificate carries `spiffeId` (authenticated ids and and/or/not). */
function principalMatches(p: P, spiffeId: string): boolean {
  if (p['any'] === true) return true;
  if (p['and_ids']) return ((p['and_ids'] as P)['ids'] as P[]).every((x) => principalMatches(x, spiffeId));
  if (p['or_ids']) return ((p['or_ids'] as P)['ids'] as P[]).some((x) => principalMatches(x, spiffeId));
  if (p['not_id']) return !principalMatches(p['not_id'] as P, spiffeId);
  const auth = p['authenticated'] as P | undefined;
  if (auth) return stringMatches(auth['principal_name'] as P, spiffeId);
  throw new Error(`principal ${JSON.stringify(p)}`);
}

function allows(rule: AuthzRule, spiffeId: string): boolean {
  const policy = rulePolicy(rule, 'shop', false, 'ALLOW') as P;
  return (policy['principals'] as P[]).some((p) => principalMatches(p, spiffeId));
}

test('trustDomains, notTrustDomains and source.trustDomain match the trust domain of the peer identity', () => {
  const id = (td: string): string => `spiffe://${td}/ns/shop/sa/web`;
  const src = (s: P): AuthzRule => ({ from: [{ source: s }] });
  assert.equal(allows(src({ trustDomains: ['cluster.local'] }), id('cluster.local')), true);
  assert.equal(allows(src({ trustDomains: ['cluster.local'] }), id('cluster.local.evil')), false, 'exact means the whole trust domain');
  assert.equal(allows(src({ trustDomains: ['cluster.local'] }), 'spiffe://other/ns/cluster.local/sa/x'), false);
  assert.equal(allows(src({ trustDomains: ['prod-*'] }), id('prod-eu.example')), true);
  assert.equal(allows(src({ trustDomains: ['prod-*'] }), id('dev.example')), false);
  assert.equal(allows(src({ trustDomains: ['*.example.org'] }), id('a.example.org')), true);
  assert.equal(allows(src({ trustDomains: ['*.example.org'] }), 'spiffe://evil.test/ns/x.example.org/sa/y'), false, 'a suffix is matched on the trust domain, not the path');
  assert.equal(allows(src({ trustDomains: ['*'] }), id('anything')), true);
  assert.equal(allows(src({ notTrustDomains: ['legacy.example'] }), id('legacy.example')), false);
  assert.equal(allows(src({ notTrustDomains: ['legacy.example'] }), id('cluster.local')), true);
  const cond = (values: string[], notValues: string[] = []): AuthzRule => ({ when: [{ key: 'source.trustDomain', values, notValues }] });
  assert.equal(allows(cond(['cluster.local']), id('cluster.local')), true);
  assert.equal(allows(cond(['cluster.local']), id('foreign.example')), false);
  assert.equal(allows(cond(['*'], ['foreign.example']), id('foreign.example')), false);
  // The trust domain is TCP-level (the peer certificate): an ALLOW rule survives on a TCP chain.
  assert.ok(rulePolicy(src({ trustDomains: ['cluster.local'] }), 'shop', true, 'ALLOW'));
});
