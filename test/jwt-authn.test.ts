/**
 * RequestAuthentication → envoy.filters.http.jwt_authn, as istiod's convertToEnvoyJwtConfig
 * builds it: which policies a workload or gateway gets, the providers and requirement, where
 * the keys come from (inline, fetched, istiod's reject-all JWKS), where the filter sits in the
 * HTTP chain (after CUSTOM, before RBAC; never on TCP chains nor for proxyless gRPC servers),
 * and what the snapshot says about JWKS that could not be fetched.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { JWT_AUTHN_TYPE, jwtAuthentication, jwtAuthnFilter, workloadJwtPolicies } from '../src/generate/security/jwt';
import { buildSnapshot } from '../src/model/build';
import { type JwksEntry, fakeJwks, parseJwks } from '../src/model/jwks';
import type { ConfigObject } from '../src/model/objects';
import type { MeshSnapshot } from '../src/model/snapshot';
import { loadText } from '../src/sources/file-source';
import { EnvoyProtos } from '../src/xds/protos';
import { render } from './helpers/render';

type P = Record<string, unknown>;
const protos = new EnvoyProtos();

function keySet(kid: string): string {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  const r = parseJwks(JSON.stringify({ keys: [{ ...jwk, kid, alg: 'ES256' }] }));
  assert.ok('json' in r);
  return r.json;
}
const KEYS_A = keySet('a');
const KEYS_B = keySet('b');

function parse(yaml: string): ConfigObject[] {
  const r = loadText(yaml, 'test.yaml');
  assert.deepEqual(r.errors, []);
  return r.objects;
}

const ra = (ns: string, name: string, spec: string): string =>
  `apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: { name: ${name}, namespace: ${ns} }\nspec: ${spec}\n---\n`;

function snap(objects: ConfigObject[], jwks?: ReadonlyMap<string, JwksEntry>, previous?: MeshSnapshot): MeshSnapshot {
  return buildSnapshot({ objects, errors: [], sequence: 1, now: new Date(0), domain: 'cluster.local', ...(jwks ? { jwks } : {}), ...(previous ? { previous } : {}) });
}

const POLICIES = parse(
  ra('istio-system', 'mesh', '{ jwtRules: [{ issuer: "https://mesh.example" , jwksUri: "https://mesh.example/keys" }] }') +
    ra('istio-system', 'mesh-web', '{ selector: { matchLabels: { app: web } }, jwtRules: [{ issuer: "https://b.example", jwksUri: "https://b.example/keys" }] }') +
    ra(
      'shop',
      'web',
      '{ selector: { matchLabels: { app: web } }, jwtRules: [{ issuer: "https://z.example", jwksUri: "https://z.example/keys" }, { issuer: "https://a.example", jwksUri: "https://a.example/keys" }] }',
    ) +
    ra('shop', 'other', '{ selector: { matchLabels: { app: other } }, jwtRules: [{ issuer: "https://other.example", jwksUri: "https://other.example/keys" }] }') +
    ra(
      'shop',
      'gw-ref',
      '{ targetRefs: [{ group: gateway.networking.k8s.io, kind: Gateway, name: shop-gw }], jwtRules: [{ issuer: "https://gw.example", jwksUri: "https://gw.example/keys" }] }',
    ) +
    ra(
      'istio-system',
      'root-ref',
      '{ targetRef: { group: gateway.networking.k8s.io, kind: Gateway, name: shop-gw }, jwtRules: [{ issuer: "https://never.example", jwksUri: "https://never.example/keys" }] }',
    ) +
    ra('elsewhere', 'web', '{ jwtRules: [{ issuer: "https://elsewhere.example", jwksUri: "https://elsewhere.example/keys" }] }'),
);

const names = (s: MeshSnapshot, ns: string, labels: Record<string, string>): string[] => workloadJwtPolicies(s, ns, labels).map((p) => `${p.meta.namespace}/${p.meta.name}`);

test('selection: own namespace first, then the root namespace; selectors must match; targetRefs only for Gateway API gateways', () => {
  const s = snap(POLICIES);
  assert.deepEqual(names(s, 'shop', { app: 'web' }), ['shop/web', 'istio-system/mesh', 'istio-system/mesh-web']);
  assert.deepEqual(names(s, 'shop', { app: 'api' }), ['istio-system/mesh']);
  // A Gateway API gateway's pods: its Gateway by name in its namespace, and selector policies without targetRef.
  assert.deepEqual(names(s, 'shop', { 'gateway.networking.k8s.io/gateway-name': 'shop-gw' }), ['shop/gw-ref', 'istio-system/mesh']);
  assert.deepEqual(names(s, 'shop', { 'gateway.networking.k8s.io/gateway-name': 'another-gw' }), ['istio-system/mesh']);
  // Root-namespace policies are considered once for a workload in the root namespace.
  assert.deepEqual(names(s, 'istio-system', { app: 'web' }), ['istio-system/mesh', 'istio-system/mesh-web']);
});

test('one provider: {origins-0 OR allow_missing}, payload in metadata, default space-delimited claims; sidecars keep the route cache', () => {
  const s = snap(
    parse(ra('shop', 'one', '{ jwtRules: [{ issuer: "https://a.example", jwksUri: "https://a.example/keys" }] }')),
    new Map([['https://a.example/keys', { keys: KEYS_A }]]),
  );
  assert.deepEqual(jwtAuthentication(s, workloadJwtPolicies(s, 'shop', {}), false), {
    providers: {
      'origins-0': {
        issuer: 'https://a.example',
        payload_in_metadata: 'payload',
        normalize_payload_in_metadata: { space_delimited_claims: ['permission', 'scope'] },
        local_jwks: { inline_string: KEYS_A },
      },
    },
    rules: [{ match: { prefix: '/' }, requires: { requires_any: { requirements: [{ provider_name: 'origins-0' }, { allow_missing: {} }] } } }],
    bypass_cors_preflight: true,
  });
  const gw = jwtAuthentication(s, workloadJwtPolicies(s, 'shop', {}), true) as P;
  assert.equal(((gw['providers'] as P)['origins-0'] as P)['clear_route_cache'], true, 'gateways clear the route cache so routes can match claims');
});

test('several providers: sorted by issuer across policies; any valid provider, and every token present must be valid', () => {
  const s = snap(POLICIES);
  const cfg = jwtAuthentication(s, workloadJwtPolicies(s, 'shop', { app: 'web' }), false) as P;
  const providers = cfg['providers'] as Record<string, P>;
  assert.deepEqual(
    Object.entries(providers).map(([n, p]) => `${n}=${String(p['issuer'])}`),
    ['origins-0=https://a.example', 'origins-1=https://b.example', 'origins-2=https://mesh.example', 'origins-3=https://z.example'],
  );
  const inner = (i: number): P => ({ requires_any: { requirements: [{ provider_name: `origins-${i}` }, { allow_missing: {} }] } });
  assert.deepEqual(cfg['rules'], [
    {
      match: { prefix: '/' },
      requires: {
        requires_any: { requirements: [0, 1, 2, 3].map((i) => ({ provider_name: `origins-${i}` })).concat([{ requires_all: { requirements: [0, 1, 2, 3].map(inner) } } as never]) },
      },
    },
  ]);
  assert.equal(jwtAuthentication(s, [], false), undefined, 'no policy: no filter');
  assert.equal(
    jwtAuthnFilter(snap(parse(ra('shop', 'empty', '{ selector: { matchLabels: { app: web } } }'))), 'shop', { app: 'web' }, false),
    undefined,
    'a policy without rules: no filter',
  );
});

test('every JWTRule field reaches its provider field', () => {
  const s = snap(
    parse(
      ra(
        'shop',
        'all',
        `{ jwtRules: [{ issuer: "https://a.example", jwksUri: "https://a.example/keys", audiences: [x, y],
    fromHeaders: [{ name: x-token, prefix: "Bearer " }, { name: x-raw }], fromParams: [t], fromCookies: [c], outputPayloadToHeader: x-payload,
    outputClaimToHeaders: [{ header: x-sub, claim: sub }], forwardOriginalToken: true, timeout: 1s, spaceDelimitedClaims: [roles, scope] }] }`,
      ),
    ),
  );
  const p = ((jwtAuthentication(s, workloadJwtPolicies(s, 'shop', {}), false) as P)['providers'] as P)['origins-0'] as P;
  assert.deepEqual(
    { ...p, local_jwks: undefined },
    {
      issuer: 'https://a.example',
      audiences: ['x', 'y'],
      forward: true,
      forward_payload_header: 'x-payload',
      payload_in_metadata: 'payload',
      normalize_payload_in_metadata: { space_delimited_claims: ['permission', 'roles', 'scope'] },
      claim_to_headers: [{ header_name: 'x-sub', claim_name: 'sub' }],
      from_headers: [{ name: 'x-token', value_prefix: 'Bearer ' }, { name: 'x-raw' }],
      from_params: ['t'],
      from_cookies: ['c'],
      local_jwks: undefined,
    },
  );
});

test("keys: inline as written; fetched; a source never fetched gets istiod's reject-all JWKS; a failed refresh keeps the old keys", () => {
  const inline = JSON.stringify({ keys: [JSON.parse(KEYS_B).keys[0]] }, null, 1);
  const objs = parse(
    ra(
      'shop',
      'k',
      `{ jwtRules: [
    { issuer: "i1", jwks: '${inline.replace(/\n/g, ' ')}' },
    { issuer: "i2", jwksUri: "https://a.example/keys" },
    { issuer: "i3", jwksUri: "https://down.example/keys" },
    { issuer: "i4", jwksUri: "https://stale.example/keys" },
    { issuer: "https://disco.example" } ] }`,
    ),
  );
  const s = snap(
    objs,
    new Map<string, JwksEntry>([
      ['https://a.example/keys', { keys: KEYS_A }],
      ['https://down.example/keys', { error: 'connect ECONNREFUSED' }],
      ['https://stale.example/keys', { keys: KEYS_B, error: 'status 503' }],
    ]),
  );
  const providers = (jwtAuthentication(s, workloadJwtPolicies(s, 'shop', {}), false) as P)['providers'] as Record<string, P>;
  const jwks = (issuer: string): unknown => (Object.values(providers).find((p) => p['issuer'] === issuer)?.['local_jwks'] as P)['inline_string'];
  assert.equal(jwks('i1'), inline.replace(/\n/g, ' '));
  assert.equal(jwks('i2'), KEYS_A);
  assert.equal(jwks('i3'), fakeJwks('https://down.example/keys'));
  assert.equal(jwks('i4'), KEYS_B);
  // Discovery (no jwksUri) not fetched yet: istiod's fake for an empty URI.
  assert.equal(jwks('https://disco.example'), fakeJwks(''));
  // Each problem is reported on the policy, at the rule's field, and the policy stays in force.
  assert.deepEqual(
    s.errors.map((e) => [e.kind, e.name, e.errors.map((f) => f.path)]),
    [['RequestAuthentication', 'k', ['spec.jwtRules[2].jwksUri', 'spec.jwtRules[3].jwksUri', 'spec.jwtRules[4].issuer']]],
  );
  const messages = s.errors[0]?.errors.map((f) => f.message) ?? [];
  assert.match(messages[0] ?? '', /JWKS https:\/\/down\.example\/keys could not be fetched \(connect ECONNREFUSED\); until it can, a JWKS that rejects every token is served/);
  assert.match(messages[1] ?? '', /could not be refreshed \(status 503\); the keys fetched before are still served/);
  assert.match(messages[2] ?? '', /JWKS https:\/\/disco\.example\/\.well-known\/openid-configuration could not be fetched \(not fetched yet\)/);
  assert.equal(s.requestAuthentications.length, 1);
  // Without a resolver (offline), remote sources are simply not fetched and nothing is reported.
  assert.deepEqual(snap(objs).errors, []);
});

test('snapshots: a refreshed JWKS is a new version and a new jwks entry, while unchanged keys keep the previous objects', () => {
  const objs = parse(ra('shop', 'k', '{ jwtRules: [{ issuer: "i", jwksUri: "https://a.example/keys" }, { issuer: "j", jwksUri: "https://b.example/keys" }] }'));
  const a = snap(
    objs,
    new Map([
      ['https://a.example/keys', { keys: KEYS_A }],
      ['https://b.example/keys', { keys: KEYS_B }],
    ]),
  );
  const same = snap(
    objs,
    new Map([
      ['https://a.example/keys', { keys: KEYS_A }],
      ['https://b.example/keys', { keys: KEYS_B }],
    ]),
    a,
  );
  assert.equal(same.version.split('-')[1], a.version.split('-')[1]);
  assert.equal(same.jwks, a.jwks, 'interned: equal key sets are the previous map');
  assert.equal(same.requestAuthentications, a.requestAuthentications);
  const refreshed = snap(
    objs,
    new Map([
      ['https://a.example/keys', { keys: KEYS_B }],
      ['https://b.example/keys', { keys: KEYS_B }],
    ]),
    a,
  );
  assert.notEqual(refreshed.version.split('-')[1], a.version.split('-')[1]);
  assert.notEqual(refreshed.jwks, a.jwks);
  assert.equal(refreshed.jwks.get('https://b.example/keys'), a.jwks.get('https://b.example/keys'), 'the unchanged source keeps its entry');
  assert.equal(refreshed.security, a.security, 'PeerAuthentication and AuthorizationPolicy are untouched');
});

const MESH = `
apiVersion: v1
kind: Pod
metadata: { name: web-1, namespace: shop, labels: { app: web } }
spec: { serviceAccountName: web }
status: { podIP: 10.0.0.10 }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec: { clusterIP: 10.96.0.10, selector: { app: web }, ports: [{ name: http, port: 8080 }, { name: tcp-db, port: 5432 }, { name: grpc, port: 9090 }] }
---
${ra('shop', 'web', '{ selector: { matchLabels: { app: web } }, jwtRules: [{ issuer: "https://a.example", jwksUri: "https://a.example/keys" }] }')}
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: custom, namespace: shop }
spec: { action: CUSTOM, provider: { name: opa }, rules: [{}] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow, namespace: shop }
spec: { rules: [{ from: [{ source: { requestPrincipals: ["https://a.example/*"] } }] }] }
`;

function chainFilters(l: P): { port: number; names: string[] }[] {
  return (l['filter_chains'] as P[]).map((c) => {
    const port = Number(((c['filter_chain_match'] as P | undefined)?.['destination_port'] as P | undefined)?.['value'] ?? 0);
    const net = c['filters'] as P[];
    const hcm = net.find((f) => f['name'] === 'envoy.filters.network.http_connection_manager');
    const http = hcm ? (((hcm['typed_config'] as P)['http_filters'] as P[]) ?? []).map((f) => String(f['name'])) : [];
    return { port, names: [...net.map((f) => String(f['name'])), ...http] };
  });
}

test('sidecar inbound: jwt_authn after the CUSTOM filter and before RBAC on HTTP chains; TCP chains get none; all of it encodes and passes validate.rules', () => {
  const s = snap(parse(MESH), new Map([['https://a.example/keys', { keys: KEYS_A }]]));
  const out = render(protos, s, 'sidecar~10.0.0.10~web-1.shop~shop.svc.cluster.local', { NAMESPACE: 'shop' });
  assert.deepEqual(out.rejected, []);
  const inbound = (out.byType['LDS'] ?? []).find((l) => l['name'] === 'virtualInbound');
  assert.ok(inbound);
  const byPort = new Map<number, string[]>();
  for (const c of chainFilters(inbound)) byPort.set(c.port, c.names);
  // Metadata exchange first and istio.stats before the router, as istiod orders them (telemetry).
  const http = [
    'envoy.filters.network.http_connection_manager',
    'istio.metadata_exchange',
    'envoy.filters.http.rbac',
    'envoy.filters.http.jwt_authn',
    'envoy.filters.http.rbac',
    'istio.stats',
    'envoy.filters.http.router',
  ];
  assert.deepEqual(byPort.get(8080), http);
  assert.deepEqual(byPort.get(9090), http, 'gRPC is HTTP');
  assert.deepEqual(byPort.get(5432), ['istio.metadata_exchange', 'envoy.filters.network.rbac', 'envoy.filters.network.rbac', 'istio.stats', 'envoy.filters.network.tcp_proxy']);
  const jwt = JSON.stringify(inbound).match(/"@type":"([^"]*JwtAuthentication)"/);
  assert.equal(jwt?.[1], JWT_AUTHN_TYPE);
});

test('proxyless gRPC servers get no jwt_authn (istiod does not send it to them), only RBAC', () => {
  const s = snap(parse(MESH), new Map([['https://a.example/keys', { keys: KEYS_A }]]));
  const name = 'xds.istio.io/grpc/lds/inbound/0.0.0.0:9090';
  const out = render(protos, s, 'sidecar~10.0.0.10~web-1.shop~shop.svc.cluster.local', { NAMESPACE: 'shop', GENERATOR: 'grpc' }, { LDS: [name] });
  const l = (out.byType['LDS'] ?? []).find((x) => x['name'] === name);
  assert.ok(l, 'the server listener is served');
  const text = JSON.stringify(l);
  assert.ok(!text.includes('jwt_authn.v3'), 'no jwt_authn filter');
  assert.ok(text.includes('envoy.filters.http.rbac'), 'RBAC is there');
});
