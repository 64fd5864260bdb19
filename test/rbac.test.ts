/**
 * AuthorizationPolicy → Envoy RBAC, field by field, as istiod's authz builder translates them;
 * and which policies select a workload, in which filter order, with what empty-list semantics.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuthzRule, ConfigObject } from '../src/model/objects';
import { buildSnapshot } from '../src/model/build';
import { rbacHttpFilters, rbacNetworkFilters, rbacRules, workloadPolicies } from '../src/generate/security/authz';
import { policyName, rulePolicy } from '../src/generate/security/rbac';
import { quoteMeta } from '../src/generate/security/matchers';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { ResourceValidator } from '../src/xds/validate-rules';
import { meshGraph } from '../src/debug/ui-model';

type P = Record<string, unknown>;
const and = (...rules: P[]): P => ({ and_rules: { rules } });
const or = (...rules: P[]): P => ({ or_rules: { rules } });
const andIds = (...ids: P[]): P => ({ and_ids: { ids } });
const orIds = (...ids: P[]): P => ({ or_ids: { ids } });
const ANY_PERM = and({ any: true });
const ANY_PRINC = andIds({ any: true });

/** One rule's policy on HTTP with ALLOW. */
const http = (rule: AuthzRule, action: 'ALLOW' | 'DENY' | 'LOG' = 'ALLOW'): P | undefined => rulePolicy(rule, 'ns1', false, action) as P | undefined;
const tcp = (rule: AuthzRule, action: 'ALLOW' | 'DENY' | 'LOG' = 'ALLOW'): P | undefined => rulePolicy(rule, 'ns1', true, action) as P | undefined;
const principal = (rule: AuthzRule): P => (http(rule)?.['principals'] as P[])[0] as P;
const permission = (rule: AuthzRule): P => (http(rule)?.['permissions'] as P[])[0] as P;

test('an empty rule matches everything: any permission, any principal', () => {
  assert.deepEqual(http({}), { permissions: [ANY_PERM], principals: [ANY_PRINC] });
});

test('principals: spiffe:// added; exact, prefix, suffix and * as istiod converts them', () => {
  const auth = (m: P): P => ({ authenticated: { principal_name: m } });
  assert.deepEqual(
    principal({ from: [{ source: { principals: ['cluster.local/ns/x/sa/y', 'cluster.local/ns/x/*', '*/sa/admin', '*'] } }] }),
    andIds(
      orIds(
        auth({ exact: 'spiffe://cluster.local/ns/x/sa/y' }),
        auth({ prefix: 'spiffe://cluster.local/ns/x/' }),
        auth({ safe_regex: { regex: 'spiffe://.*/sa/admin' } }),
        auth({ safe_regex: { regex: '.+' } }),
      ),
    ),
  );
  assert.deepEqual(
    principal({ from: [{ source: { notPrincipals: ['cluster.local/ns/x/sa/y'] } }] }),
    andIds({ not_id: orIds(auth({ exact: 'spiffe://cluster.local/ns/x/sa/y' })) }),
  );
});

test('quoteMeta escapes regex metacharacters as Go does', () => {
  assert.equal(quoteMeta('a.b*c+(d)|[e]{f}^$?\\'), 'a\\.b\\*c\\+\\(d\\)\\|\\[e\\]\\{f\\}\\^\\$\\?\\\\');
});

test('namespaces and serviceAccounts become regexes over the authenticated principal', () => {
  const auth = (regex: string): P => ({ authenticated: { principal_name: { safe_regex: { regex } } } });
  assert.deepEqual(
    principal({ from: [{ source: { namespaces: ['prod', 'team-*'], notNamespaces: ['kube-system'] } }] }),
    andIds(orIds(auth('.*/ns/prod/.*'), auth('.*/ns/team-.*/.*')), { not_id: orIds(auth('.*/ns/kube-system/.*')) }),
  );
  assert.deepEqual(
    principal({ from: [{ source: { serviceAccounts: ['other/builder', 'local-sa'] } }] }),
    andIds(orIds(auth('spiffe://.+/ns/other/(.+/|)sa/builder(/.+)?'), auth('spiffe://.+/ns/ns1/(.+/|)sa/local-sa(/.+)?'))),
  );
});

test('ipBlocks → direct_remote_ip, remoteIpBlocks → remote_ip, with CIDR prefix lengths (plain IPs /32, /128)', () => {
  assert.deepEqual(
    principal({
      from: [{ source: { ipBlocks: ['10.0.0.0/8', '192.168.1.7'], notIpBlocks: ['10.1.0.0/16'], remoteIpBlocks: ['2001:db8::1'], notRemoteIpBlocks: ['2001:db8::/32'] } }],
    }),
    andIds(
      orIds({ remote_ip: { address_prefix: '2001:db8::1', prefix_len: { value: 128 } } }),
      { not_id: orIds({ remote_ip: { address_prefix: '2001:db8::', prefix_len: { value: 32 } } }) },
      orIds({ direct_remote_ip: { address_prefix: '10.0.0.0', prefix_len: { value: 8 } } }, { direct_remote_ip: { address_prefix: '192.168.1.7', prefix_len: { value: 32 } } }),
      { not_id: orIds({ direct_remote_ip: { address_prefix: '10.1.0.0', prefix_len: { value: 16 } } }) },
    ),
  );
});

// The JWT payload Envoy's jwt_authn filter leaves in dynamic metadata, as istiod matches it.
const claim = (path: string[], value: P): P => ({ metadata: { filter: 'envoy.filters.http.jwt_authn', path: ['payload', ...path].map((key) => ({ key })), value } });
const iss = (m: P): P => claim(['iss'], { string_match: m });
const sub = (m: P): P => claim(['sub'], { string_match: m });
const ANY = { safe_regex: { regex: '.+' } };
/** A claim matching a value whether it is a string or a list (istiod's MetadataListValueMatcherForJWTClaims). */
const listOrValue = (path: string[], v: P): P => claim(path, { or_match: { value_matchers: [{ list_match: { one_of: v } }, v] } });

test('requestPrincipals → iss AND sub on the jwt_authn payload, split at the last "/", wildcards as istiod', () => {
  const one = (v: string): P => principal({ from: [{ source: { requestPrincipals: [v] } }] });
  assert.deepEqual(one('https://accounts.example.com/user-1'), andIds(andIds(iss({ exact: 'https://accounts.example.com' }), sub({ exact: 'user-1' }))));
  assert.deepEqual(one('*'), andIds(andIds(iss(ANY), sub(ANY))));
  assert.deepEqual(one('https://accounts.example.com/*'), andIds(andIds(iss({ exact: 'https://accounts.example.com' }), sub(ANY))));
  assert.deepEqual(one('https://accounts.example.com/team-*'), andIds(andIds(iss({ exact: 'https://accounts.example.com' }), sub({ prefix: 'team-' }))));
  assert.deepEqual(one('*.example.com/admin'), andIds(andIds(iss({ suffix: '.example.com' }), sub({ exact: 'admin' }))));
  assert.deepEqual(one('*/admin'), andIds(andIds(iss(ANY), sub({ exact: 'admin' }))));
  // No "/": a leading * matches the subject's end under any issuer, a trailing * the issuer's start.
  assert.deepEqual(one('*@example.com'), andIds(andIds(iss(ANY), sub({ suffix: '@example.com' }))));
  assert.deepEqual(one('issuer-*'), andIds(andIds(iss({ prefix: 'issuer-' }), sub(ANY))));
  // A URL issuer always has a "/": its last segment is taken for the subject, as istiod does.
  assert.deepEqual(one('https://acc*'), andIds(andIds(iss({ exact: 'https:/' }), sub({ prefix: 'acc' }))));
  assert.deepEqual(one('issuer-only'), andIds(andIds(iss({ exact: 'issuer-only' }), sub({ exact: '' }))));
});

test('several requestPrincipals are ORed; notRequestPrincipals is one not_id of all of them', () => {
  const p = principal({ from: [{ source: { requestPrincipals: ['a/x', 'b/y'], notRequestPrincipals: ['c/z'] } }] });
  assert.deepEqual(
    p,
    andIds(orIds(andIds(iss({ exact: 'a' }), sub({ exact: 'x' })), andIds(iss({ exact: 'b' }), sub({ exact: 'y' }))), { not_id: andIds(iss({ exact: 'c' }), sub({ exact: 'z' })) }),
  );
  // request.auth.principal in `when` is the same generator, after the from fields.
  const w = principal({ when: [{ key: 'request.auth.principal', values: ['a/x'], notValues: ['*'] }] });
  assert.deepEqual(w, andIds(andIds(iss({ exact: 'a' }), sub({ exact: 'x' })), { not_id: andIds(iss(ANY), sub(ANY)) }));
});

test('request.auth.claims (nested), audiences and presenter match a string or any list element', () => {
  const when = (key: string, values?: string[], notValues?: string[]): P => principal({ when: [{ key, ...(values ? { values } : {}), ...(notValues ? { notValues } : {}) }] });
  assert.deepEqual(when('request.auth.claims[groups]', ['admin']), andIds(listOrValue(['groups'], { string_match: { exact: 'admin' } })));
  assert.deepEqual(
    when('request.auth.claims[realm_access][roles]', ['ops', 'dev-*']),
    andIds(listOrValue(['realm_access', 'roles'], { or_match: { value_matchers: [{ string_match: { exact: 'ops' } }, { string_match: { prefix: 'dev-' } }] } })),
  );
  // One bracketed name with a dot is one claim (the name as written), not a path.
  assert.deepEqual(when('request.auth.claims[example.com/tier]', ['gold']), andIds(listOrValue(['example.com/tier'], { string_match: { exact: 'gold' } })));
  assert.deepEqual(
    when('request.auth.audiences', ['api', '*.example.com']),
    andIds(listOrValue(['aud'], { or_match: { value_matchers: [{ string_match: { exact: 'api' } }, { string_match: { suffix: '.example.com' } }] } })),
  );
  assert.deepEqual(when('request.auth.presenter', undefined, ['untrusted-client']), andIds({ not_id: listOrValue(['azp'], { string_match: { exact: 'untrusted-client' } }) }));
});

test('hosts (case-insensitive :authority), methods (:method), paths (exact, prefix /x/*, suffix */x, *), ports', () => {
  assert.deepEqual(
    permission({ to: [{ operation: { hosts: ['a.example.com', '*.example.com', 'api.*'], notHosts: ['*'] } }] }),
    and(
      or(
        { header: { name: ':authority', string_match: { exact: 'a.example.com', ignore_case: true } } },
        { header: { name: ':authority', string_match: { suffix: '.example.com', ignore_case: true } } },
        { header: { name: ':authority', string_match: { prefix: 'api.', ignore_case: true } } },
      ),
      { not_rule: or({ header: { name: ':authority', present_match: true } }) },
    ),
  );
  assert.deepEqual(
    permission({ to: [{ operation: { methods: ['GET'], notMethods: ['DELETE'] } }] }),
    and(or({ header: { name: ':method', string_match: { exact: 'GET' } } }), { not_rule: or({ header: { name: ':method', string_match: { exact: 'DELETE' } } }) }),
  );
  assert.deepEqual(
    permission({ to: [{ operation: { paths: ['/exact', '/x/*', '*/x', '*'] } }] }),
    and(
      or(
        { url_path: { path: { exact: '/exact' } } },
        { url_path: { path: { prefix: '/x/' } } },
        { url_path: { path: { suffix: '/x' } } },
        { url_path: { path: { safe_regex: { regex: '.+' } } } },
      ),
    ),
  );
  assert.deepEqual(permission({ to: [{ operation: { ports: ['8080'], notPorts: ['9090'] } }] }), and(or({ destination_port: 8080 }), { not_rule: or({ destination_port: 9090 }) }));
});

test('operation fields are ANDed in istiod order (hosts, methods, paths, ports), then conditions', () => {
  const p = permission({ to: [{ operation: { ports: ['1'], paths: ['/p'], methods: ['GET'], hosts: ['h'] } }], when: [{ key: 'destination.port', values: ['2'] }] });
  const kinds = ((p['and_rules'] as P)['rules'] as P[]).map((r) => Object.keys(((r['or_rules'] as P)['rules'] as P[])[0] as P)[0]);
  assert.deepEqual(kinds, ['header', 'header', 'url_path', 'destination_port', 'destination_port']);
});

test('when conditions: each key to its permission or principal, values ORed, notValues negated', () => {
  const rule: AuthzRule = {
    when: [
      { key: 'request.headers[x-user]', values: ['alice', 'bob*'] },
      { key: 'source.ip', notValues: ['10.0.0.1'] },
      { key: 'source.namespace', values: ['prod'] },
      { key: 'source.principal', values: ['cluster.local/ns/a/sa/b'] },
      { key: 'remote.ip', values: ['1.2.3.0/24'] },
      { key: 'request.auth.claims[groups][admin]', values: ['yes'] },
      { key: 'destination.ip', values: ['10.9.0.0/16'] },
      { key: 'destination.port', values: ['443'] },
      { key: 'connection.sni', values: ['*.example.com'] },
    ],
  };
  const p = http(rule) as P;
  assert.deepEqual(p['principals'], [
    andIds(
      orIds({ header: { name: 'x-user', string_match: { exact: 'alice' } } }, { header: { name: 'x-user', string_match: { prefix: 'bob' } } }),
      { not_id: orIds({ direct_remote_ip: { address_prefix: '10.0.0.1', prefix_len: { value: 32 } } }) },
      orIds({ authenticated: { principal_name: { safe_regex: { regex: '.*/ns/prod/.*' } } } }),
      orIds({ authenticated: { principal_name: { exact: 'spiffe://cluster.local/ns/a/sa/b' } } }),
      orIds({ remote_ip: { address_prefix: '1.2.3.0', prefix_len: { value: 24 } } }),
      listOrValue(['groups', 'admin'], { string_match: { exact: 'yes' } }),
    ),
  ]);
  assert.deepEqual(p['permissions'], [
    and(
      or({ destination_ip: { address_prefix: '10.9.0.0', prefix_len: { value: 16 } } }),
      or({ destination_port: 443 }),
      or({ requested_server_name: { suffix: '.example.com' } }),
    ),
  ]);
});

test('several from / to entries: one principal / permission each (ORed by Envoy)', () => {
  const p = http({ from: [{ source: { namespaces: ['a'] } }, { source: { namespaces: ['b'] } }], to: [{ operation: { ports: ['1'] } }, { operation: { ports: ['2'] } }] }) as P;
  assert.equal((p['principals'] as P[]).length, 2);
  assert.equal((p['permissions'] as P[]).length, 2);
});

test('TCP: an HTTP-only field drops an ALLOW rule, and is dropped from a DENY or AUDIT rule', () => {
  for (const rule of [
    { to: [{ operation: { methods: ['GET'], ports: ['9000'] } }] },
    { to: [{ operation: { paths: ['/x'] } }] },
    { to: [{ operation: { hosts: ['h'] } }] },
    { from: [{ source: { requestPrincipals: ['*'] } }] },
    { when: [{ key: 'request.headers[x]', values: ['y'] }] },
  ] as AuthzRule[]) {
    assert.equal(tcp(rule, 'ALLOW'), undefined, JSON.stringify(rule));
    assert.ok(http(rule, 'ALLOW'), 'the same rule applies on HTTP');
  }
  // DENY keeps the TCP-valid part (deny more): ports stay, methods go.
  assert.deepEqual(tcp({ to: [{ operation: { methods: ['GET'], ports: ['9000'] } }] }, 'DENY'), { permissions: [and(or({ destination_port: 9000 }))], principals: [ANY_PRINC] });
  // Nothing TCP-valid left: the rule matches every connection.
  assert.deepEqual(tcp({ to: [{ operation: { paths: ['/admin'] } }] }, 'LOG'), { permissions: [ANY_PERM], principals: [ANY_PRINC] });
  // TCP-valid fields translate the same on TCP and HTTP.
  const rule: AuthzRule = { from: [{ source: { principals: ['a/b'], ipBlocks: ['1.1.1.1'] } }], to: [{ operation: { ports: ['1'] } }] };
  assert.deepEqual(tcp(rule), http(rule));
});

test("policy names follow istiod's ns[<ns>]-policy[<name>]-rule[<i>]", () => {
  assert.equal(policyName('foo', 'bar', 2), 'ns[foo]-policy[bar]-rule[2]');
});

// ---- selection and filters on a snapshot ----

function ap(name: string, namespace: string, spec: Record<string, unknown>): ConfigObject {
  const metadata = { name, namespace, labels: {}, annotations: {} };
  return { kind: 'AuthorizationPolicy', apiVersion: 'security.istio.io/v1', metadata, body: { spec }, origin: { source: 'test' } };
}

function snap(objects: ConfigObject[]): ReturnType<typeof buildSnapshot> {
  return buildSnapshot({ objects, errors: [], sequence: 1, now: new Date(0), domain: 'cluster.local' });
}

test('selection: root namespace and own namespace, selector must match, targetRef never applies to sidecars', () => {
  const s = snap([
    ap('mesh', 'istio-system', { action: 'DENY', rules: [{}] }),
    ap('mesh-selected', 'istio-system', { selector: { matchLabels: { app: 'web' } }, action: 'AUDIT', rules: [{}] }),
    ap('ns-wide', 'shop', { rules: [{}] }),
    ap('web-only', 'shop', { selector: { matchLabels: { app: 'web' } }, rules: [{}] }),
    ap('other-ns', 'other', { action: 'DENY', rules: [{}] }),
    ap('waypoint', 'shop', { targetRefs: [{ kind: 'Service', group: '', name: 'web' }], action: 'DENY', rules: [{}] }),
  ]);
  const names = (p: ReturnType<typeof workloadPolicies>): Record<string, string[]> =>
    Object.fromEntries(Object.entries(p).map(([k, v]) => [k, (v as readonly { meta: { name: string } }[]).map((x) => x.meta.name)]));
  assert.deepEqual(names(workloadPolicies(s, 'shop', { app: 'web' })), { custom: [], audit: ['mesh-selected'], deny: ['mesh'], allow: ['ns-wide', 'web-only'] });
  assert.deepEqual(names(workloadPolicies(s, 'shop', { app: 'db' })), { custom: [], audit: [], deny: ['mesh'], allow: ['ns-wide'] });
  assert.deepEqual(names(workloadPolicies(s, 'other', {})), { custom: [], audit: [], deny: ['mesh', 'other-ns'], allow: [] });
});

test('filter order AUDIT, DENY, ALLOW; no ALLOW policy → no ALLOW filter; ALLOW policies without surviving rules deny all', () => {
  const s = snap([
    ap('allow-get', 'shop', { rules: [{ to: [{ operation: { methods: ['GET'] } }] }] }),
    ap('deny', 'shop', { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['bad'] } }] }] }),
    ap('audit', 'shop', { action: 'AUDIT', rules: [{}] }),
  ]);
  const p = workloadPolicies(s, 'shop', {});
  const actions = (fs: Record<string, unknown>[]): unknown[] => fs.map((f) => ((f['typed_config'] as P)['rules'] as P)['action']);
  assert.deepEqual(actions(rbacHttpFilters(p)), ['LOG', 'DENY', 'ALLOW']);
  assert.deepEqual(actions(rbacHttpFilters(p, true)), ['DENY', 'ALLOW'], 'gRPC servers get no AUDIT (LOG) filter');
  // On TCP the GET rule cannot apply: the ALLOW filter stays, with no policies (deny all).
  const tcpAllow = rbacNetworkFilters(p)[2] as P;
  assert.deepEqual(tcpAllow, {
    name: 'envoy.filters.network.rbac',
    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC', rules: { action: 'ALLOW' }, stat_prefix: 'tcp.' },
  });
  assert.deepEqual(rbacHttpFilters(workloadPolicies(snap([]), 'shop', {})), [], 'no policies: no filters (allow all)');
  assert.deepEqual(rbacRules([], 'ALLOW', false), { action: 'ALLOW' });
});

const EXT_MESH = `extensionProviders:
- name: ext-http
  envoyExtAuthzHttp:
    service: authz.auth.svc.cluster.local
    port: 8000
    timeout: 0.5s
    pathPrefix: /check
    failOpen: true
    statusOnError: "503"
    includeRequestHeadersInCheck: [x-user, "x-ext-*", "*-id"]
    includeAdditionalHeadersInCheck: { x-b: "2", x-a: "1" }
    headersToUpstreamOnAllow: [x-authz-user]
    headersToDownstreamOnDeny: [x-reason]
    headersToDownstreamOnAllow: [set-cookie]
    includeRequestBodyInCheck: { maxRequestBytes: 4096, packAsBytes: true }
- name: ext-grpc
  envoyExtAuthzGrpc:
    service: auth/authz.auth.svc.cluster.local
    port: "9000"
    clearRouteCache: true
- name: ext-nowhere
  envoyExtAuthzGrpc:
    service: missing.auth.svc.cluster.local
    port: 9000
`;

function svc(name: string, namespace: string): ConfigObject {
  const metadata = { name, namespace, labels: {}, annotations: {} };
  const spec = {
    clusterIP: '10.96.0.50',
    ports: [
      { name: 'http', port: 8000 },
      { name: 'grpc', port: 9000 },
    ],
  };
  return { kind: 'Service', apiVersion: 'v1', metadata, body: { spec }, origin: { source: 'test' } };
}

function meshSnap(objects: ConfigObject[], text = EXT_MESH): ReturnType<typeof buildSnapshot> {
  return buildSnapshot({ objects: [svc('authz', 'auth'), ...objects], errors: [], sequence: 1, now: new Date(0), domain: 'cluster.local', mesh: { source: 'mesh.yaml', text } });
}

const filterNames = (fs: Record<string, unknown>[]): unknown[] => fs.map((f) => f['name']);
const cfgOf = (f: Record<string, unknown> | undefined): P => (f?.['typed_config'] ?? {}) as P;
const DENY_ALL = { action: 'DENY', policies: { 'default-deny-all-due-to-bad-CUSTOM-action': { permissions: [{ any: true }], principals: [{ any: true }] } } };

test('CUSTOM with an HTTP provider: shadow RBAC marking istio-ext-authz-… then ext_authz enabled by that metadata, before the other RBAC filters', () => {
  const s = meshSnap([
    ap('ext', 'shop', { action: 'CUSTOM', provider: { name: 'ext-http' }, rules: [{ to: [{ operation: { paths: ['/admin/*'] } }] }] }),
    ap('allow', 'shop', { rules: [{}] }),
  ]);
  assert.deepEqual(s.errors, []);
  const p = workloadPolicies(s, 'shop', {});
  const filters = rbacHttpFilters(p);
  assert.deepEqual(filterNames(filters), ['envoy.filters.http.rbac', 'envoy.filters.http.ext_authz', 'envoy.filters.http.rbac']);
  const shadow = cfgOf(filters[0]);
  assert.equal(shadow['rules'], undefined, 'the CUSTOM RBAC filter never enforces');
  assert.equal(shadow['shadow_rules_stat_prefix'], 'istio_ext_authz_');
  assert.deepEqual(Object.keys((shadow['shadow_rules'] as P)['policies'] as P), ['istio-ext-authz-ns[shop]-policy[ext]-rule[0]']);
  assert.equal((shadow['shadow_rules'] as P)['action'], 'DENY');
  const ext = cfgOf(filters[1]);
  assert.deepEqual(ext, {
    '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
    status_on_error: { code: 503 },
    failure_mode_allow: true,
    transport_api_version: 'V3',
    http_service: {
      server_uri: { uri: 'http://authz.auth.svc.cluster.local', cluster: 'outbound|8000||authz.auth.svc.cluster.local', timeout: { seconds: 0, nanos: 500000000 } },
      path_prefix: '/check',
      authorization_request: {
        allowed_headers: {
          patterns: [
            { exact: 'x-user', ignore_case: true },
            { prefix: 'x-ext-', ignore_case: true },
            { suffix: '-id', ignore_case: true },
          ],
        },
        headers_to_add: [
          { key: 'x-a', value: '1' },
          { key: 'x-b', value: '2' },
        ],
      },
      authorization_response: {
        allowed_upstream_headers: { patterns: [{ exact: 'x-authz-user', ignore_case: true }] },
        allowed_client_headers: { patterns: [{ exact: 'x-reason', ignore_case: true }] },
        allowed_client_headers_on_success: { patterns: [{ exact: 'set-cookie', ignore_case: true }] },
      },
    },
    filter_enabled_metadata: {
      filter: 'envoy.filters.http.rbac',
      path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }],
      value: { string_match: { prefix: 'istio-ext-authz' } },
    },
    with_request_body: { max_request_bytes: 4096, pack_as_bytes: true },
  });
  assert.deepEqual(
    rbacNetworkFilters(p).map((f) => f['name']),
    ['envoy.filters.network.rbac'],
    'an HTTP provider adds nothing to TCP chains (istiod ignores it there)',
  );
  assert.deepEqual(cfgOf(rbacHttpFilters(p, true)[0])['rules'], DENY_ALL, 'proxyless gRPC servers: no CUSTOM, deny all');
});

test('CUSTOM with a gRPC provider: gRPC service (timeout 600s default, authority) on HTTP, and the network pair on TCP', () => {
  const s = meshSnap([ap('ext', 'shop', { action: 'CUSTOM', provider: { name: 'ext-grpc' }, rules: [{ to: [{ operation: { ports: ['7000'], paths: ['/x'] } }] }] })]);
  assert.deepEqual(s.errors, []);
  const p = workloadPolicies(s, 'shop', {});
  const grpcService = {
    envoy_grpc: { cluster_name: 'outbound|9000||authz.auth.svc.cluster.local', authority: 'outbound_.9000_._.authz.auth.svc.cluster.local' },
    timeout: { seconds: 600, nanos: 0 },
  };
  const http = rbacHttpFilters(p);
  assert.deepEqual(filterNames(http), ['envoy.filters.http.rbac', 'envoy.filters.http.ext_authz']);
  assert.deepEqual(cfgOf(http[1])['grpc_service'], grpcService);
  assert.equal(cfgOf(http[1])['clear_route_cache'], true);
  const tcp = rbacNetworkFilters(p);
  assert.deepEqual(filterNames(tcp), ['envoy.filters.network.rbac', 'envoy.filters.network.ext_authz']);
  const shadow = cfgOf(tcp[0]);
  assert.equal(shadow['stat_prefix'], 'tcp.');
  assert.equal(shadow['shadow_rules_stat_prefix'], 'istio_ext_authz_');
  // DENY semantics on TCP: the HTTP-only path is dropped, the port stays (the rule matches more).
  const rule = ((shadow['shadow_rules'] as P)['policies'] as P)['istio-ext-authz-ns[shop]-policy[ext]-rule[0]'] as P;
  assert.deepEqual(rule['permissions'], [and(or({ destination_port: 7000 }))]);
  assert.deepEqual(cfgOf(tcp[1]), {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.ext_authz.v3.ExtAuthz',
    stat_prefix: 'tcp.',
    grpc_service: grpcService,
    transport_api_version: 'V3',
    filter_enabled_metadata: {
      filter: 'envoy.filters.network.rbac',
      path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }],
      value: { string_match: { prefix: 'istio-ext-authz' } },
    },
  });
});

test('CUSTOM that cannot be served denies everything and is reported at spec.provider.name: unknown, unresolvable, none, two providers', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['unknown', { provider: { name: 'opa' } }, /available providers are \[ext-http ext-grpc ext-nowhere\] but found "opa"/],
    ['no-service', { provider: { name: 'ext-nowhere' } }, /found errors in provider ext-nowhere: could not find service missing\.auth\.svc\.cluster\.local/],
    ['no-provider', {}, /no provider specified/],
    ['telemetry-provider', { provider: { name: 'prometheus' } }, /but found "prometheus"/],
  ];
  for (const [name, extra, message] of cases) {
    const s = meshSnap([ap(name, 'shop', { action: 'CUSTOM', rules: [{}], ...extra }), ap('allow', 'shop', { rules: [{}] })]);
    const filters = rbacHttpFilters(workloadPolicies(s, 'shop', {}));
    assert.deepEqual(filterNames(filters), ['envoy.filters.http.rbac', 'envoy.filters.http.rbac'], name);
    assert.deepEqual(cfgOf(filters[0])['rules'], DENY_ALL, name);
    assert.deepEqual(cfgOf(rbacNetworkFilters(workloadPolicies(s, 'shop', {}))[0])['rules'], DENY_ALL, name);
    assert.equal(s.errors.length, 1, name);
    assert.equal(s.errors[0]?.name, name);
    assert.equal(s.errors[0]?.errors[0]?.path, 'spec.provider.name');
    assert.match(s.errors[0]?.errors[0]?.message ?? '', message);
    assert.match(s.errors[0]?.errors[0]?.message ?? '', /deny every request \(default-deny-all-due-to-bad-CUSTOM-action\)/);
  }
  // Two providers for one workload (istiod allows one): the workload denies all; the policies of
  // another workload keep their provider.
  const s = meshSnap([
    ap('a-http', 'shop', { action: 'CUSTOM', provider: { name: 'ext-http' }, rules: [{}] }),
    ap('b-grpc', 'shop', { selector: { matchLabels: { app: 'web' } }, action: 'CUSTOM', provider: { name: 'ext-grpc' }, rules: [{}] }),
    ap('c-grpc', 'other', { action: 'CUSTOM', provider: { name: 'ext-grpc' }, rules: [{}] }),
  ]);
  assert.deepEqual(cfgOf(rbacHttpFilters(workloadPolicies(s, 'shop', { app: 'web' }))[0])['rules'], DENY_ALL);
  assert.deepEqual(filterNames(rbacHttpFilters(workloadPolicies(s, 'shop', { app: 'db' }))), ['envoy.filters.http.rbac', 'envoy.filters.http.ext_authz']);
  assert.deepEqual(filterNames(rbacHttpFilters(workloadPolicies(s, 'other', {}))), ['envoy.filters.http.rbac', 'envoy.filters.http.ext_authz']);
  assert.equal(s.errors.length, 1);
  assert.equal(s.errors[0]?.name, 'b-grpc');
  assert.match(s.errors[0]?.errors[0]?.message ?? '', /only 1 provider can be used per workload: .*shop\/a-http \(provider ext-http\)/);
});

test('ext_authz providers are validated as istiod validates the MeshConfig, with field paths', () => {
  const bad = `extensionProviders:
- name: bad-http
  envoyExtAuthzHttp:
    service: not a host
    port: 70000
    statusOnError: "999"
    pathPrefix: check
- name: bad-grpc
  envoyExtAuthzGrpc:
    service: ""
    port: 9000
    statusOnError: abc
    timeout: -1s
    failOpen: "yes"
- name: bad-lists
  envoyExtAuthzHttp:
    service: authz.auth.svc.cluster.local
    port: 8000
    headersToUpstreamOnAllow: x-user
    includeAdditionalHeadersInCheck: { x-n: 1 }
`;
  const s = meshSnap([], bad);
  const paths = s.errors.flatMap((e) => e.errors.map((f) => f.path)).sort();
  assert.deepEqual(paths, [
    '',
    'extensionProviders[0].envoyExtAuthzHttp.pathPrefix',
    'extensionProviders[0].envoyExtAuthzHttp.port',
    'extensionProviders[0].envoyExtAuthzHttp.service',
    'extensionProviders[0].envoyExtAuthzHttp.statusOnError',
    'extensionProviders[1].envoyExtAuthzGrpc.failOpen',
    'extensionProviders[1].envoyExtAuthzGrpc.service',
    'extensionProviders[1].envoyExtAuthzGrpc.statusOnError',
    'extensionProviders[1].envoyExtAuthzGrpc.timeout',
    'extensionProviders[2].envoyExtAuthzHttp.headersToUpstreamOnAllow',
    'extensionProviders[2].envoyExtAuthzHttp.includeAdditionalHeadersInCheck',
  ]);
  assert.equal(s.meshStatus.keptLastGood, true, 'istiod rejects such a MeshConfig');
  const messages = s.errors.flatMap((e) => e.errors.map((f) => f.message)).join('\n');
  assert.match(messages, /invalid extension provider bad-http: port must be in the range \[1, 65535\], found: 70000/);
  assert.match(messages, /unsupported statusOnError value 999/);
  assert.match(messages, /pathPrefix should begin with `\/`/);
  assert.match(messages, /invalid extension provider bad-grpc: service must not be empty/);
  assert.match(messages, /invalid extension provider bad-lists: headersToUpstreamOnAllow must be a list of strings/);
  // A lone "*" header and a zero body buffer: warnings, and the provider cannot be used.
  const warned = `extensionProviders:
- name: star
  envoyExtAuthzHttp:
    service: authz.auth.svc.cluster.local
    port: 8000
    includeRequestHeadersInCheck: ["*"]
- name: body
  envoyExtAuthzGrpc:
    service: authz.auth.svc.cluster.local
    port: 9000
    includeRequestBodyInCheck: { allowPartialMessage: true }
`;
  const w = meshSnap(
    [ap('star', 'shop', { action: 'CUSTOM', provider: { name: 'star' }, rules: [{}] }), ap('body', 'other', { action: 'CUSTOM', provider: { name: 'body' }, rules: [{}] })],
    warned,
  );
  assert.deepEqual(
    w.meshStatus.warnings.map((e) => e.path),
    ['extensionProviders[0].envoyExtAuthzHttp.includeRequestHeadersInCheck[0]', 'extensionProviders[1].envoyExtAuthzGrpc.includeRequestBodyInCheck.maxRequestBytes'],
  );
  assert.deepEqual(cfgOf(rbacHttpFilters(workloadPolicies(w, 'shop', {}))[0])['rules'], DENY_ALL);
  assert.deepEqual(cfgOf(rbacHttpFilters(workloadPolicies(w, 'other', {}))[0])['rules'], DENY_ALL);
  assert.match(w.errors.map((e) => e.errors[0]?.message).join('\n'), /a single wildcard \("\*"\) is not supported/);
});

test('every translated filter encodes and passes validate.rules (HTTP and network RBAC)', () => {
  const protos = new EnvoyProtos();
  const validator = new ResourceValidator(protos);
  const rule: AuthzRule = {
    from: [{ source: { principals: ['*'], namespaces: ['a'], ipBlocks: ['1.2.3.4'], requestPrincipals: ['x/*'] } }],
    to: [{ operation: { hosts: ['*.h'], methods: ['GET'], paths: ['/p/*'], ports: ['80'] } }],
    when: [
      { key: 'request.headers[x]', values: ['*'] },
      { key: 'connection.sni', values: ['s'] },
      { key: 'request.auth.claims[a][b]', values: ['x', 'y*'] },
      { key: 'request.auth.audiences', notValues: ['z'] },
      { key: 'request.auth.principal', values: ['*', 'i/s'] },
    ],
  };
  const s = snap([ap('all', 'shop', { action: 'DENY', rules: [rule] }), ap('allow', 'shop', { rules: [rule] })]);
  const p = workloadPolicies(s, 'shop', {});
  const listener = {
    name: 'l',
    address: { socket_address: { address: '0.0.0.0', port_value: 1 } },
    filter_chains: [
      {
        filters: [
          ...rbacNetworkFilters(p),
          {
            name: 'envoy.filters.network.tcp_proxy',
            typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: 's', cluster: 'c' },
          },
        ],
      },
      {
        filter_chain_match: { destination_port: { value: 2 } },
        filters: [
          {
            name: 'hcm',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: 's',
              rds: { config_source: { ads: {} }, route_config_name: 'r' },
              http_filters: [
                ...rbacHttpFilters(p),
                { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
              ],
            },
          },
        ],
      },
    ],
  };
  assert.deepEqual(validator.validate(TypeUrl.Listener, listener), []);
  const decoded = protos.decode(TypeUrl.Listener, protos.encode(TypeUrl.Listener, listener));
  assert.equal(JSON.stringify(decoded).includes('"destination_port":80'), true, 'the port survives encoding');
});

test('the CUSTOM filters (HTTP and gRPC providers, HTTP and network) encode and pass validate.rules', () => {
  const protos = new EnvoyProtos();
  const validator = new ResourceValidator(protos);
  const s = meshSnap([
    ap('ext-http', 'shop', { action: 'CUSTOM', provider: { name: 'ext-http' }, rules: [{ to: [{ operation: { paths: ['/admin/*'] } }] }] }),
    ap('ext-grpc', 'other', { action: 'CUSTOM', provider: { name: 'ext-grpc' }, rules: [{ to: [{ operation: { ports: ['7000'] } }] }] }),
  ]);
  for (const ns of ['shop', 'other']) {
    const p = workloadPolicies(s, ns, {});
    const tcpProxy = {
      name: 'envoy.filters.network.tcp_proxy',
      typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: 's', cluster: 'c' },
    };
    const hcm = {
      name: 'hcm',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
        stat_prefix: 's',
        rds: { config_source: { ads: {} }, route_config_name: 'r' },
        http_filters: [
          ...rbacHttpFilters(p),
          { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
        ],
      },
    };
    const listener = {
      name: 'l',
      address: { socket_address: { address: '0.0.0.0', port_value: 1 } },
      filter_chains: [{ filters: [...rbacNetworkFilters(p), tcpProxy] }, { filter_chain_match: { destination_port: { value: 2 } }, filters: [hcm] }],
    };
    assert.deepEqual(validator.validate(TypeUrl.Listener, listener), [], ns);
    const decoded = JSON.stringify(protos.decode(TypeUrl.Listener, protos.encode(TypeUrl.Listener, listener)));
    assert.ok(decoded.includes('istio_ext_authz_shadow_effective_policy_id'), `${ns}: the ext_authz filter survives encoding`);
    if (ns === 'other') assert.ok(decoded.includes('envoy.extensions.filters.network.ext_authz.v3.ExtAuthz'), 'the network ext_authz filter is encoded');
  }
});

test('the access matrix: CUSTOM with a usable provider is conditional (its authorizer decides); without one, deny', () => {
  const obj = (kind: ConfigObject['kind'], name: string, labels: Record<string, string>, body: Record<string, unknown>): ConfigObject => ({
    kind,
    apiVersion: 'v1',
    metadata: { name, namespace: 'shop', labels, annotations: {} },
    body,
    origin: { source: 'test' },
  });
  const workloads = ['web', 'client'].flatMap((app, i) => [
    obj('Pod', `${app}-1`, { app }, { spec: { serviceAccountName: app }, status: { podIP: `10.60.0.${i + 1}` } }),
    obj('Service', app, {}, { spec: { clusterIP: `10.96.60.${i + 1}`, selector: { app }, ports: [{ name: 'http', port: 8080 }] } }),
    obj(
      'EndpointSlice',
      `${app}-abc`,
      { 'kubernetes.io/service-name': app },
      {
        addressType: 'IPv4',
        ports: [{ name: 'http', port: 8080 }],
        endpoints: [{ addresses: [`10.60.0.${i + 1}`], targetRef: { kind: 'Pod', name: `${app}-1`, namespace: 'shop' } }],
      },
    ),
  ]);
  const edge = (provider: string): { decision: string; reason: string } | undefined => {
    const s = meshSnap([...workloads, ap('ext', 'shop', { selector: { matchLabels: { app: 'web' } }, action: 'CUSTOM', provider: { name: provider }, rules: [{}] })]);
    return meshGraph(s).access.find((a) => a.from === 'client.shop.svc.cluster.local' && a.to === 'web.shop.svc.cluster.local');
  };
  assert.deepEqual(edge('ext-http'), {
    from: 'client.shop.svc.cluster.local',
    to: 'web.shop.svc.cluster.local',
    decision: 'conditional',
    reason: 'shop/ext (CUSTOM): decided by the external authorizer ext-http',
  });
  assert.equal(edge('opa')?.decision, 'deny');
});
