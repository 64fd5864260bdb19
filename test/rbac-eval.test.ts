/**
 * The RBAC evaluator's semantics (Envoy's config.rbac.v3), one table row per kind of Permission
 * and Principal, plus not/and/or nesting, the three-valued "undecidable", and the filter order:
 * a DENY filter before an ALLOW one, ALLOW with no match denies, LOG decides nothing; then the RBAC
 * step over hand-written dumps: which proxy at an address decides, and who the caller is.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type RbacFilter, type RbacRequest, describeRbac, evaluateRbac, inboundRbac, permissionMatches, principalMatches } from '../src/cli/rbac-eval';
import { obj } from '../src/cli/proxy-config';
import { simulateRbac } from '../src/cli/route-rbac';
import { simulateRoute } from '../src/cli/route-sim';

type Json = Record<string, unknown>;

const REQ: RbacRequest = {
  principal: 'spiffe://cluster.local/ns/default/sa/sleep',
  sourceIp: '10.1.2.3',
  destinationIp: '10.9.0.7',
  destinationPort: 8080,
  http: { path: '/api/v1?q=1', method: 'GET', authority: 'echo.default.svc.cluster.local:8080', headers: { 'x-user': 'jason' } },
};
const PLAINTEXT: RbacRequest = { ...REQ, principal: undefined };
const TCP: RbacRequest = { ...REQ, http: undefined };

const exact = (v: string): Json => ({ exact: v });
const hdr = (name: string, m: Json): Json => ({ header: { name, stringMatch: m } });
const cidr = (p: string, len: number): Json => ({ addressPrefix: p, prefixLen: len });

const PERMISSIONS: [string, Json, RbacRequest, boolean | 'unknown'][] = [
  ['any', { any: true }, REQ, true],
  ['header :method exact', hdr(':method', exact('GET')), REQ, true],
  ['header :method other', hdr(':method', exact('POST')), REQ, false],
  ['header present', { header: { name: 'x-user', presentMatch: true } }, REQ, true],
  ['header on a TCP chain', hdr(':method', exact('GET')), TCP, false],
  ['header :authority prefix, ignoring case', hdr(':authority', { prefix: 'ECHO.', ignoreCase: true }), REQ, true],
  ['url_path exact (query not part of it)', { urlPath: { path: exact('/api/v1') } }, REQ, true],
  ['url_path prefix', { urlPath: { path: { prefix: '/api/' } } }, REQ, true],
  ['url_path other', { urlPath: { path: exact('/admin') } }, REQ, false],
  ['url_path regex', { urlPath: { path: { safeRegex: { regex: '/api/v[0-9]+' } } } }, REQ, true],
  ['destination_port', { destinationPort: 8080 }, REQ, true],
  ['destination_port other', { destinationPort: 9090 }, REQ, false],
  ['destination_port_range', { destinationPortRange: { start: 8000, end: 8081 } }, REQ, true],
  ['destination_port_range end exclusive', { destinationPortRange: { start: 8000, end: 8080 } }, REQ, false],
  ['destination_ip in /16', { destinationIp: cidr('10.9.0.0', 16) }, REQ, true],
  ['destination_ip other /32', { destinationIp: cidr('10.9.0.8', 32) }, REQ, false],
  ['metadata (JWT claim)', { metadata: { filter: 'envoy.filters.http.jwt_authn', path: [{ key: 'payload' }, { key: 'aud' }], value: {} } }, REQ, 'unknown'],
  ['requested_server_name', { requestedServerName: exact('x') }, REQ, 'unknown'],
  ['not_rule of a match', { notRule: hdr(':method', exact('GET')) }, REQ, false],
  ['not_rule of a miss', { notRule: hdr(':method', exact('POST')) }, REQ, true],
  ['not_rule of unknown stays unknown', { notRule: { requestedServerName: exact('x') } }, REQ, 'unknown'],
  ['and_rules all match', { andRules: { rules: [{ destinationPort: 8080 }, hdr(':method', exact('GET'))] } }, REQ, true],
  ['and_rules one misses', { andRules: { rules: [{ destinationPort: 8080 }, hdr(':method', exact('PUT'))] } }, REQ, false],
  ['and_rules: a miss beats unknown', { andRules: { rules: [{ requestedServerName: exact('x') }, { destinationPort: 1 }] } }, REQ, false],
  ['or_rules one matches', { orRules: { rules: [{ destinationPort: 1 }, { urlPath: { path: { prefix: '/api' } } }] } }, REQ, true],
  ['or_rules none', { orRules: { rules: [{ destinationPort: 1 }, { destinationPort: 2 }] } }, REQ, false],
  ['or_rules: a match beats unknown', { orRules: { rules: [{ requestedServerName: exact('x') }, { destinationPort: 8080 }] } }, REQ, true],
  [
    'nested: and(or(methods), not(or(paths)))',
    { andRules: { rules: [{ orRules: { rules: [hdr(':method', exact('GET'))] } }, { notRule: { orRules: { rules: [{ urlPath: { path: { prefix: '/admin' } } }] } } }] } },
    REQ,
    true,
  ],
];

const PRINCIPALS: [string, Json, RbacRequest, boolean | 'unknown'][] = [
  ['any', { any: true }, PLAINTEXT, true],
  ['authenticated exact', { authenticated: { principalName: exact('spiffe://cluster.local/ns/default/sa/sleep') } }, REQ, true],
  ['authenticated other', { authenticated: { principalName: exact('spiffe://cluster.local/ns/default/sa/other') } }, REQ, false],
  ['authenticated regex (namespace)', { authenticated: { principalName: { safeRegex: { regex: '.*/ns/default/.*' } } } }, REQ, true],
  ['authenticated without principal_name: any TLS peer', { authenticated: {} }, REQ, true],
  ['authenticated on plaintext never matches', { authenticated: { principalName: { safeRegex: { regex: '.*' } } } }, PLAINTEXT, false],
  ['not_id of authenticated on plaintext', { notId: { authenticated: { principalName: { safeRegex: { regex: '.*' } } } } }, PLAINTEXT, true],
  ['header', hdr('x-user', exact('jason')), REQ, true],
  ['header missing', hdr('x-other', exact('jason')), REQ, false],
  ['url_path', { urlPath: { path: { prefix: '/api' } } }, REQ, true],
  ['direct_remote_ip', { directRemoteIp: cidr('10.1.0.0', 16) }, REQ, true],
  ['direct_remote_ip other', { directRemoteIp: cidr('10.2.0.0', 16) }, REQ, false],
  ['remote_ip', { remoteIp: cidr('10.1.2.3', 32) }, REQ, true],
  ['source_ip', { sourceIp: cidr('10.1.2.0', 24) }, REQ, true],
  ['an IPv6 range never matches an IPv4 caller', { directRemoteIp: cidr('::', 0) }, REQ, false],
  ['metadata (JWT iss)', { metadata: { filter: 'envoy.filters.http.jwt_authn', path: [{ key: 'payload' }, { key: 'iss' }], value: {} } }, REQ, 'unknown'],
  ['filter_state', { filterState: { key: 'x' } }, REQ, 'unknown'],
  ['and_ids', { andIds: { ids: [{ directRemoteIp: cidr('10.0.0.0', 8) }, hdr('x-user', exact('jason'))] } }, REQ, true],
  ['and_ids one misses', { andIds: { ids: [{ directRemoteIp: cidr('10.0.0.0', 8) }, hdr('x-user', exact('bob'))] } }, REQ, false],
  ['or_ids', { orIds: { ids: [hdr('x-user', exact('bob')), hdr('x-user', { suffix: 'son' })] } }, REQ, true],
  ['not_id', { notId: hdr('x-user', exact('bob')) }, REQ, true],
];

const norm = (t: unknown): boolean | 'unknown' => (typeof t === 'object' ? 'unknown' : (t as boolean));

test('every Permission kind, not_rule and and/or nesting (three-valued)', () => {
  for (const [what, p, req, want] of PERMISSIONS) assert.equal(norm(permissionMatches(p, req)), want, what);
});

test('every Principal kind, not_id and and/or nesting (three-valued)', () => {
  for (const [what, p, req, want] of PRINCIPALS) assert.equal(norm(principalMatches(p, req)), want, what);
});

const policy = (permissions: Json[], principals: Json[]): Json => ({ permissions, principals });
const GET_ONLY = policy([hdr(':method', exact('GET'))], [{ any: true }]);
const FROM_SLEEP = policy([{ any: true }], [{ authenticated: { principalName: exact('spiffe://cluster.local/ns/default/sa/sleep') } }]);
const ADMIN_PATH = policy([{ urlPath: { path: { prefix: '/admin' } } }], [{ any: true }]);
const F = 'envoy.filters.http.rbac';
const filter = (action: string | undefined, policies: Record<string, Json>): RbacFilter => ({ name: F, rules: { ...(action ? { action } : {}), policies } });

test('a policy needs a permission AND a principal', () => {
  const allow = filter('ALLOW', { p: policy([hdr(':method', exact('GET'))], [{ authenticated: { principalName: exact('spiffe://x/ns/a/sa/b') } }]) });
  assert.deepEqual(evaluateRbac([allow], REQ), { decision: 'DENY', filter: F, reason: 'no ALLOW policy matched' });
  assert.deepEqual(evaluateRbac([filter('ALLOW', { p: GET_ONLY })], REQ), { decision: 'ALLOW', policy: 'p', filter: F });
});

test('DENY filters run before ALLOW ones; the first denial decides', () => {
  const deny = filter('DENY', { 'ns[default]-policy[deny-get]-rule[0]': GET_ONLY });
  const allow = filter('ALLOW', { 'ns[default]-policy[from-sleep]-rule[0]': FROM_SLEEP });
  assert.deepEqual(evaluateRbac([deny, allow], REQ), { decision: 'DENY', policy: 'ns[default]-policy[deny-get]-rule[0]', filter: F, reason: 'a DENY policy matched' });
  const post: RbacRequest = { ...REQ, http: { ...(REQ.http as NonNullable<RbacRequest['http']>), method: 'POST' } };
  assert.deepEqual(evaluateRbac([deny, allow], post), { decision: 'ALLOW', policy: 'ns[default]-policy[from-sleep]-rule[0]', filter: F });
  assert.equal(describeRbac(evaluateRbac([deny, allow], post)), `ALLOW by ns[default]-policy[from-sleep]-rule[0] (${F})`);
});

test('ALLOW with no matching policy denies; ALLOW filters with no policies deny everything; the action defaults to ALLOW', () => {
  assert.equal(describeRbac(evaluateRbac([filter('ALLOW', { p: ADMIN_PATH })], REQ)), `DENY: no ALLOW policy matched (${F})`);
  assert.equal(evaluateRbac([{ name: F, rules: {} }], REQ).decision, 'DENY');
  assert.equal(evaluateRbac([filter(undefined, { p: GET_ONLY })], REQ).decision, 'ALLOW');
  // Plaintext callers never match an identity: FROM_SLEEP denies them.
  assert.equal(evaluateRbac([filter('ALLOW', { p: FROM_SLEEP })], PLAINTEXT).decision, 'DENY');
});

test('no filters, only unmatched DENY, LOG, or filters without rules: no policy decides (allowed)', () => {
  assert.deepEqual(evaluateRbac([], REQ), { decision: 'NO_POLICY' });
  assert.deepEqual(evaluateRbac([filter('DENY', { p: ADMIN_PATH })], REQ), { decision: 'NO_POLICY' });
  assert.deepEqual(evaluateRbac([filter('LOG', { p: GET_ONLY })], REQ), { decision: 'NO_POLICY' });
  assert.deepEqual(evaluateRbac([{ name: F }], REQ), { decision: 'NO_POLICY' });
  assert.equal(describeRbac({ decision: 'NO_POLICY' }), 'no policy (allowed)');
  // shadow rules decide nothing.
  assert.deepEqual(evaluateRbac([{ name: F, rules: undefined }, { name: 'shadow-only' }], REQ), { decision: 'NO_POLICY' });
});

test('a decision that hangs on a JWT claim is undecidable and names the policy; a definite one is not', () => {
  const jwt = policy([{ any: true }], [{ metadata: { filter: 'envoy.filters.http.jwt_authn', path: [{ key: 'payload' }, { key: 'groups' }], value: {} } }]);
  const d = evaluateRbac([filter('ALLOW', { 'ns[default]-policy[jwt]-rule[0]': jwt })], REQ);
  assert.equal(d.decision, 'UNDECIDABLE');
  assert.match(describeRbac(d), /^undecidable: ns\[default\]-policy\[jwt\]-rule\[0\] needs the request's JWT claims \(groups\)/);
  // Another policy that allows makes it decidable.
  assert.equal(evaluateRbac([filter('ALLOW', { jwt, get: GET_ONLY })], REQ).decision, 'ALLOW');
  // A DENY that may match is undecidable; a DENY that surely matches wins over it.
  assert.equal(evaluateRbac([filter('DENY', { jwt })], REQ).decision, 'UNDECIDABLE');
  assert.equal(evaluateRbac([filter('DENY', { jwt, get: GET_ONLY })], REQ).decision, 'DENY');
  // A JWT rule whose permission cannot match is decided: it does not apply.
  assert.equal(evaluateRbac([filter('DENY', { p: policy([{ destinationPort: 1 }], jwt['principals'] as Json[]) })], REQ).decision, 'NO_POLICY');
});

test('network RBAC on a TCP chain: ports and identities decide, HTTP fields never match', () => {
  const tcpAllow: RbacFilter = {
    name: 'envoy.filters.network.rbac',
    rules: {
      policies: { p: policy([{ andRules: { rules: [{ destinationPort: 8080 }] } }], [{ andIds: { ids: [{ authenticated: { principalName: { suffix: '/sa/sleep' } } }] } }]) },
    },
  };
  assert.equal(evaluateRbac([tcpAllow], TCP).decision, 'ALLOW');
  assert.equal(evaluateRbac([tcpAllow], { ...TCP, principal: undefined }).decision, 'DENY');
  assert.equal(evaluateRbac([{ name: 'envoy.filters.network.rbac', rules: { policies: { p: GET_ONLY } } }], TCP).decision, 'DENY');
});

// ---- the RBAC step over dumps (route-rbac.ts), with hand-written proto3 JSON dumps ----

const ADMIN = 'type.googleapis.com/envoy.admin.v3.';
const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const RBAC_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
const CLUSTER = 'outbound|7070||echo.default.svc.cluster.local';

function dump(listeners: Json[], clusters: Json[] = [], cla: Json[] = []): Json {
  return {
    configs: [
      { '@type': `${ADMIN}ClustersConfigDump`, dynamicActiveClusters: clusters.map((c) => ({ cluster: c })) },
      { '@type': `${ADMIN}ListenersConfigDump`, dynamicListeners: listeners.map((l) => ({ name: l['name'], activeState: { listener: l } })) },
      { '@type': `${ADMIN}EndpointsConfigDump`, dynamicEndpointConfigs: cla.map((e) => ({ endpointConfig: e })) },
    ],
  };
}

/** A proxyless client: API listener → cluster with grpcgen's ISTIO_MUTUAL (certificate provider `default`). */
const CLIENT_DUMP = dump(
  [
    {
      name: 'echo.default.svc.cluster.local:7070',
      apiListener: {
        apiListener: {
          '@type': HCM_TYPE,
          routeConfig: { name: 'r', virtualHosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: CLUSTER } }] }] },
        },
      },
    },
  ],
  [
    {
      name: CLUSTER,
      type: 'EDS',
      transportSocket: { name: 'tls', typedConfig: { commonTlsContext: { tlsCertificateProviderInstance: { instanceName: 'default', certificateName: 'default' } } } },
    },
  ],
  [{ clusterName: CLUSTER, endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: 7443 } } }, healthStatus: 'HEALTHY' }] }] }],
);

const serverDump = (port: number, policies: Record<string, Json>): Json =>
  dump([
    {
      name: `xds.istio.io/grpc/lds/inbound/127.0.0.1:${port}`,
      filterChains: [
        {
          name: 'inbound-mtls',
          filters: [
            { name: 'hcm', typedConfig: { '@type': HCM_TYPE, httpFilters: [{ name: 'envoy.filters.http.rbac', typedConfig: { '@type': RBAC_TYPE, rules: { policies } } }] } },
          ],
        },
      ],
    },
  ]);

test('the RBAC step: a proxyless ISTIO_MUTUAL caller is authenticated; of two proxies at one address, the one serving the port decides', async () => {
  const sim = simulateRoute(CLIENT_DUMP, { host: 'echo.default.svc.cluster.local', port: 7070, path: '/pkg.Echo/Who', method: 'POST', headers: {} });
  assert.equal(sim.action.type === 'forward' && sim.action.clusters[0]?.tls, 'ISTIO_MUTUAL');
  const proxies = [
    { id: 'sidecar~127.0.0.1~sleep-0.default~default.svc.cluster.local', namespace: 'default', serviceAccount: 'sleep', ips: ['127.0.0.1'] },
    { id: 'sidecar~127.0.0.1~other-0.default~default.svc.cluster.local', namespace: 'default', ips: ['127.0.0.1'] },
    { id: 'sidecar~127.0.0.1~echo-0.default~default.svc.cluster.local', namespace: 'default', ips: ['127.0.0.1'] },
  ];
  const dumps: Record<string, Json> = {
    [proxies[0]?.id as string]: CLIENT_DUMP,
    [proxies[1]?.id as string]: serverDump(9999, { wrong: { permissions: [{ any: true }], principals: [{ any: true }] } }),
    [proxies[2]?.id as string]: serverDump(7443, { 'default-from-sleep-0': FROM_SLEEP }),
  };
  const dir = { proxies, dump: (id: string) => Promise.resolve(dumps[id]) };
  const [r] = await simulateRbac(sim, 'sleep-0.default', dir, { trustDomain: 'cluster.local' });
  assert.equal(r?.proxy, proxies[2]?.id);
  assert.equal(r?.principal, 'spiffe://cluster.local/ns/default/sa/sleep');
  assert.deepEqual(r?.decision, { decision: 'ALLOW', policy: 'default-from-sleep-0', filter: F });
  const [other] = await simulateRbac(sim, 'sleep-0.default', dir, { trustDomain: 'cluster.local', principal: 'spiffe://cluster.local/ns/default/sa/x' });
  assert.equal(other?.decision.decision, 'DENY');
  const [gone] = await simulateRbac(sim, 'sleep-0.default', { proxies: proxies.slice(0, 2), dump: dir.dump }, { trustDomain: 'cluster.local' });
  assert.deepEqual([gone?.decision.decision, gone?.note], ['NOT_CONNECTED', 'no connected proxy at 127.0.0.1 has an inbound listener for port 7443']);
  // A dump that cannot be read (the asker may not see that namespace) is said so, not taken for "not connected".
  const refusing = { proxies, dump: (id: string) => (id === proxies[2]?.id ? Promise.reject(new Error('PERMISSION_DENIED')) : dir.dump(id)) };
  const [unknown] = await simulateRbac(sim, 'sleep-0.default', refusing, { trustDomain: 'cluster.local' });
  assert.deepEqual(unknown?.decision, { decision: 'UNKNOWN', reason: `could not read the config of ${proxies[2]?.id}: PERMISSION_DENIED` });
});

test("a sidecar's virtualInbound: the chain by port and transport, STRICT refusing plaintext, the passthrough chain for other ports", () => {
  const rbacHcm = (policies: Record<string, Json>): Json => ({
    name: 'envoy.filters.network.http_connection_manager',
    typedConfig: { '@type': HCM_TYPE, httpFilters: [{ name: F, typedConfig: { '@type': RBAC_TYPE, rules: { policies } } }, { name: 'envoy.filters.http.router' }] },
  });
  const vi = dump([
    {
      name: 'virtualInbound',
      filterChains: [
        {
          name: '0.0.0.0_9080',
          filterChainMatch: { destinationPort: 9080, transportProtocol: 'tls', applicationProtocols: ['istio-http/1.1'] },
          filters: [rbacHcm({ http: GET_ONLY })],
        },
        { name: '0.0.0.0_9080', filterChainMatch: { destinationPort: 9080, transportProtocol: 'tls' }, filters: [{ name: 'envoy.filters.network.tcp_proxy', typedConfig: {} }] },
      ],
      defaultFilterChain: { name: 'InboundPassthroughFilterChain', filters: [{ name: 'envoy.filters.network.tcp_proxy', typedConfig: {} }] },
    },
  ]);
  const tls = inboundRbac(vi, 9080, true, true);
  assert.deepEqual(
    tls?.filters.map((f) => Object.keys(obj(f.rules?.['policies']))),
    [['http']],
  );
  assert.equal(tls?.portMatched, true);
  // A TCP request takes the TCP chain (no RBAC filters there in this dump).
  assert.deepEqual(inboundRbac(vi, 9080, true, false)?.filters, []);
  const plain = inboundRbac(vi, 9080, false, true);
  assert.match(plain?.refused ?? '', /^port 9080 accepts only mTLS \(PeerAuthentication STRICT\)/);
  const other = inboundRbac(vi, 8000, false, true);
  assert.deepEqual([other?.portMatched, other?.filterChain, other?.filters], [false, 'InboundPassthroughFilterChain', []]);
  assert.equal(inboundRbac(dump([]), 9080, true, true), undefined);
});
