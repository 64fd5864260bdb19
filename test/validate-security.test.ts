/**
 * PeerAuthentication and AuthorizationPolicy validation: a table of invalid objects, each one
 * change to a valid base, with the exact field path and Istio's message; and valid objects
 * (including the golden inputs' shapes) that must pass.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConfigObject, Kind } from '../src/model/objects';
import { validateObject } from '../src/model/validate';
import { parseDocuments } from '../src/sources/parse';

type J = Record<string, unknown>;

function object(kind: Kind, spec: unknown, namespace = 'shop', apiVersion = 'security.istio.io/v1'): ConfigObject {
  const metadata = { name: 'p', namespace, labels: {}, annotations: {} };
  const body: J = { apiVersion, kind, metadata };
  if (spec !== undefined) body['spec'] = spec;
  return { kind, apiVersion, metadata, body, origin: { source: 'test' } };
}
const pa = (spec: unknown): ConfigObject => object('PeerAuthentication', spec);
const ap = (spec: unknown): ConfigObject => object('AuthorizationPolicy', spec);
const SEL = { matchLabels: { app: 'web' } };
const rule = (r: J): ConfigObject => ap({ selector: SEL, rules: [r] });
const from = (source: J): ConfigObject => rule({ from: [{ source }] });
const to = (operation: J): ConfigObject => rule({ to: [{ operation }] });
const when = (c: J): ConfigObject => rule({ when: [c] });

interface Case {
  name: string;
  obj: ConfigObject;
  path: string;
  message: string;
}

const INVALID: Case[] = [
  // ---- PeerAuthentication ----
  { name: 'unknown mTLS mode', obj: pa({ mtls: { mode: 'ON' } }), path: 'spec.mtls.mode', message: 'must be one of UNSET, DISABLE, PERMISSIVE, STRICT (got "ON")' },
  { name: 'misspelt field', obj: pa({ mtl: { mode: 'STRICT' } }), path: 'spec.mtl', message: 'unknown field "mtl" (did you mean "mtls"?)' },
  {
    name: 'portLevelMtls without a selector',
    obj: pa({ portLevelMtls: { '8080': { mode: 'DISABLE' } } }),
    path: 'spec.portLevelMtls',
    message: 'mesh/namespace peer authentication cannot have port level mTLS',
  },
  {
    name: 'portLevelMtls with empty matchLabels',
    obj: pa({ selector: { matchLabels: {} }, portLevelMtls: { '8080': { mode: 'DISABLE' } } }),
    path: 'spec.portLevelMtls',
    message: 'mesh/namespace peer authentication cannot have port level mTLS',
  },
  {
    name: 'empty portLevelMtls',
    obj: pa({ selector: SEL, portLevelMtls: {} }),
    path: 'spec.portLevelMtls',
    message: 'port level mTLS, if defined, must have at least one element',
  },
  { name: 'port 0', obj: pa({ selector: SEL, portLevelMtls: { '0': { mode: 'DISABLE' } } }), path: 'spec.portLevelMtls.0', message: 'port must be in range 1..65535 (got "0")' },
  { name: 'port 70000', obj: pa({ selector: SEL, portLevelMtls: { '70000': { mode: 'DISABLE' } } }), path: 'spec.portLevelMtls.70000', message: 'port must be in range 1..65535' },
  {
    name: 'port name instead of number',
    obj: pa({ selector: SEL, portLevelMtls: { http: { mode: 'DISABLE' } } }),
    path: 'spec.portLevelMtls.http',
    message: 'port must be in range 1..65535 (got "http")',
  },
  {
    name: 'port-level mode unknown',
    obj: pa({ selector: SEL, portLevelMtls: { '8080': { mode: 'OFF' } } }),
    path: 'spec.portLevelMtls.8080.mode',
    message: 'must be one of UNSET, DISABLE, PERMISSIVE, STRICT',
  },
  {
    name: 'wildcard selector value',
    obj: pa({ selector: { matchLabels: { app: 'web-*' } } }),
    path: 'spec.selector.matchLabels.app',
    message: 'wildcard is not supported in selector',
  },
  { name: 'selector matchLabels not a map', obj: pa({ selector: { matchLabels: ['app'] } }), path: 'spec.selector.matchLabels', message: 'must be a map (got array)' },
  // ---- AuthorizationPolicy: top level ----
  { name: 'unknown action', obj: ap({ action: 'REJECT', rules: [{}] }), path: 'spec.action', message: 'must be one of ALLOW, DENY, AUDIT, CUSTOM (got "REJECT")' },
  {
    name: 'DENY without rules',
    obj: ap({ action: 'DENY' }),
    path: 'spec.rules',
    message: 'DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request',
  },
  { name: 'CUSTOM without rules', obj: ap({ action: 'CUSTOM', provider: { name: 'opa' } }), path: 'spec.rules', message: 'CUSTOM action without `rules` is meaningless' },
  { name: 'CUSTOM without provider', obj: ap({ action: 'CUSTOM', rules: [{}] }), path: 'spec.provider.name', message: '`provider.name` must not be empty' },
  {
    name: 'provider with ALLOW',
    obj: ap({ provider: { name: 'opa' }, rules: [{}] }),
    path: 'spec.provider',
    message: '`provider` must not be with non CUSTOM action, found ALLOW',
  },
  {
    name: 'selector and targetRefs',
    obj: ap({ selector: SEL, targetRefs: [{ kind: 'Service', group: '', name: 'web' }], rules: [{}] }),
    path: 'spec',
    message: 'only one of targetRefs or workloadSelector can be set',
  },
  { name: 'targetRef without name', obj: ap({ targetRef: { kind: 'Service', group: '' }, rules: [{}] }), path: 'spec.targetRef.name', message: 'targetRef name must be set' },
  {
    name: 'targetRef across namespaces',
    obj: ap({ targetRef: { kind: 'Service', group: '', name: 'web', namespace: 'other' }, rules: [{}] }),
    path: 'spec.targetRef.namespace',
    message: 'targetRef namespace must not be set; cross namespace referencing is not supported',
  },
  {
    name: 'targetRefs to a Pod',
    obj: ap({ targetRefs: [{ kind: 'Pod', group: '', name: 'web' }], rules: [{}] }),
    path: 'spec.targetRefs[0]',
    message: 'targetRef must be to a Service, ServiceEntry, Gateway or GatewayClass but was /Pod',
  },
  {
    name: 'wildcard in selector key',
    obj: ap({ selector: { matchLabels: { 'app*': 'web' } } }),
    path: 'spec.selector.matchLabels["app*"]',
    message: 'wildcard is not supported in selector',
  },
  { name: 'null rule', obj: ap({ rules: [null] }), path: 'spec.rules[0]', message: 'must not be null' },
  { name: 'unknown rule field', obj: rule({ fro: [] }), path: 'spec.rules[0].fro', message: 'unknown field "fro" (did you mean "from"?)' },
  // ---- from ----
  { name: 'empty from', obj: rule({ from: [] }), path: 'spec.rules[0].from', message: '`from` must not be empty, found at rule 0' },
  { name: 'from without source', obj: rule({ from: [{}] }), path: 'spec.rules[0].from[0].source', message: '`from.source` must not be nil, found at rule 0' },
  { name: 'empty source', obj: from({}), path: 'spec.rules[0].from[0].source', message: '`from.source` must not be empty, found at rule 0' },
  {
    name: 'serviceAccounts with namespaces',
    obj: from({ serviceAccounts: ['a'], namespaces: ['b'] }),
    path: 'spec.rules[0].from[0].source',
    message: 'cannot set serviceAccounts with namespaces or principals, found at rule 0',
  },
  { name: 'bad IP block', obj: from({ ipBlocks: ['10.0.0.300'] }), path: 'spec.rules[0].from[0].source.ipBlocks[0]', message: 'bad IP address (10.0.0.300)' },
  { name: 'bad CIDR', obj: from({ notIpBlocks: ['10.0.0.0/33'] }), path: 'spec.rules[0].from[0].source.notIpBlocks[0]', message: 'bad CIDR range (10.0.0.0/33)' },
  { name: 'bad remote IP', obj: from({ remoteIpBlocks: ['example.com'] }), path: 'spec.rules[0].from[0].source.remoteIpBlocks[0]', message: 'bad IP address (example.com)' },
  { name: 'empty principal', obj: from({ principals: [''] }), path: 'spec.rules[0].from[0].source.principals[0]', message: 'empty value not allowed, found in Principals' },
  {
    name: 'empty namespace',
    obj: from({ notNamespaces: [''] }),
    path: 'spec.rules[0].from[0].source.notNamespaces[0]',
    message: 'empty value not allowed, found in NotNamespaces',
  },
  { name: 'principals not a list', obj: from({ principals: 'cluster.local/ns/a/sa/b' }), path: 'spec.rules[0].from[0].source.principals', message: 'must be a list (got string' },
  {
    name: 'unknown source field',
    obj: from({ principal: ['a'] }),
    path: 'spec.rules[0].from[0].source.principal',
    message: 'unknown field "principal" (did you mean "principals"?)',
  },
  // ---- to ----
  { name: 'empty to', obj: rule({ to: [] }), path: 'spec.rules[0].to', message: '`to` must not be empty, found at rule 0' },
  { name: 'to without operation', obj: rule({ to: [{}] }), path: 'spec.rules[0].to[0].operation', message: '`to.operation` must not be nil, found at rule 0' },
  { name: 'empty operation', obj: to({}), path: 'spec.rules[0].to[0].operation', message: '`to.operation` must not be empty, found at rule 0' },
  { name: 'port out of range', obj: to({ ports: ['65536'] }), path: 'spec.rules[0].to[0].operation.ports[0]', message: 'bad port (65536)' },
  { name: 'port name', obj: to({ notPorts: ['http'] }), path: 'spec.rules[0].to[0].operation.notPorts[0]', message: 'bad port (http)' },
  { name: 'port as a number', obj: to({ ports: [8080] }), path: 'spec.rules[0].to[0].operation.ports[0]', message: 'must be a string (got number 8080)' },
  { name: 'empty method', obj: to({ methods: [''] }), path: 'spec.rules[0].to[0].operation.methods[0]', message: 'empty value not allowed, found in Methods' },
  { name: 'empty path', obj: to({ notPaths: [''] }), path: 'spec.rules[0].to[0].operation.notPaths[0]', message: 'empty value not allowed, found in NotPaths' },
  // ---- when ----
  { name: 'condition without key', obj: when({ values: ['a'] }), path: 'spec.rules[0].when[0].key', message: '`key` must not be empty' },
  {
    name: 'condition without values',
    obj: when({ key: 'source.ip' }),
    path: 'spec.rules[0].when[0]',
    message: 'at least one of `values` or `notValues` must be set for key source.ip',
  },
  {
    name: 'unknown condition key',
    obj: when({ key: 'source.user', values: ['a'] }),
    path: 'spec.rules[0].when[0].values',
    message: 'invalid `value` for `key` source.user: unknown attribute: source.user',
  },
  {
    name: 'header key without brackets',
    obj: when({ key: 'request.headers', values: ['a'] }),
    path: 'spec.rules[0].when[0].values',
    message: 'invalid `value` for `key` request.headers: bad key (request.headers): should have format a[b]',
  },
  {
    name: 'bad source.ip',
    obj: when({ key: 'source.ip', notValues: ['1.2.3'] }),
    path: 'spec.rules[0].when[0].notValues',
    message: 'invalid `notValue` for `key` source.ip: bad IP address (1.2.3)',
  },
  {
    name: 'bad destination.port',
    obj: when({ key: 'destination.port', values: ['99999'] }),
    path: 'spec.rules[0].when[0].values',
    message: 'invalid `value` for `key` destination.port: bad port (99999)',
  },
  {
    name: 'empty condition value',
    obj: when({ key: 'source.namespace', values: [''] }),
    path: 'spec.rules[0].when[0].values',
    message: 'invalid `value` for `key` source.namespace: empty value not allowed, found in source.namespace',
  },
  {
    name: 'destination.namespace',
    obj: when({ key: 'destination.namespace', values: ['a'] }),
    path: 'spec.rules[0].when[0].values',
    message: 'attribute destination.namespace is replaced by the metadata.namespace',
  },
  {
    name: 'destination.labels',
    obj: when({ key: 'destination.labels[app]', values: ['a'] }),
    path: 'spec.rules[0].when[0].values',
    message: 'attribute destination.labels[app] is replaced by the workload selector',
  },
  {
    name: 'v1alpha1 attribute',
    obj: when({ key: 'destination.user', values: ['a'] }),
    path: 'spec.rules[0].when[0].values',
    message: 'deprecated attribute destination.user: only supported in v1alpha1',
  },
];

for (const c of INVALID) {
  test(`invalid: ${c.obj.kind} ${c.name}`, () => {
    const errors = validateObject(c.obj);
    const hit = errors.find((e) => e.path === c.path && e.message.includes(c.message));
    assert.ok(hit, `want ${c.path}: ${c.message}\ngot ${JSON.stringify(errors, null, 1)}`);
  });
}

const VALID: Array<[string, ConfigObject]> = [
  ['empty PeerAuthentication (inherit)', pa(undefined)],
  ['mesh STRICT in the root namespace', object('PeerAuthentication', { mtls: { mode: 'STRICT' } }, 'istio-system')],
  [
    'workload port-level, v1beta1',
    object('PeerAuthentication', { selector: SEL, mtls: { mode: 'UNSET' }, portLevelMtls: { '8080': { mode: 'DISABLE' }, '9090': {} } }, 'shop', 'security.istio.io/v1beta1'),
  ],
  ['empty AuthorizationPolicy (deny all)', ap(undefined)],
  ['ALLOW nothing', ap({ selector: SEL })],
  ['DENY everything', ap({ action: 'DENY', rules: [{}] })],
  ['AUDIT', ap({ action: 'AUDIT', rules: [{ to: [{ operation: { methods: ['POST'] } }] }] })],
  ['CUSTOM with provider', ap({ action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] })],
  ['targetRefs to a Service', ap({ targetRefs: [{ kind: 'Service', group: '', name: 'web' }], rules: [{}] })],
  [
    'every field',
    rule({
      from: [
        {
          source: {
            principals: ['*'],
            notPrincipals: ['a/b'],
            requestPrincipals: ['iss/sub'],
            notRequestPrincipals: ['*'],
            namespaces: ['x'],
            notNamespaces: ['y'],
            ipBlocks: ['10.0.0.0/8', '::1'],
            notIpBlocks: ['1.1.1.1'],
            remoteIpBlocks: ['2001:db8::/32'],
            notRemoteIpBlocks: ['8.8.8.8'],
          },
        },
      ],
      to: [{ operation: { hosts: ['*.x'], notHosts: ['y'], ports: ['80'], notPorts: ['0'], methods: ['GET'], notMethods: ['PUT'], paths: ['/a/*'], notPaths: ['*/b'] } }],
      when: [
        { key: 'request.headers[x-a]', values: ['1'] },
        { key: 'source.ip', values: ['1.2.3.4'] },
        { key: 'remote.ip', notValues: ['1.2.3.0/24'] },
        { key: 'source.namespace', values: ['n'] },
        { key: 'source.principal', values: ['p'] },
        { key: 'request.auth.principal', values: ['r'] },
        { key: 'request.auth.audiences', values: ['a'] },
        { key: 'request.auth.presenter', values: ['p'] },
        { key: 'request.auth.claims[groups]', values: ['g'] },
        { key: 'destination.ip', values: ['10.0.0.1'] },
        { key: 'destination.port', values: ['443'] },
        { key: 'connection.sni', values: ['s'] },
        { key: 'experimental.envoy.filters.a.b[c]', values: ['v'] },
      ],
    }),
  ],
];

for (const [name, obj] of VALID) {
  test(`valid: ${name}`, () => assert.deepEqual(validateObject(obj), []));
}

test('security.istio.io v1 and v1beta1 parse; v1alpha1 and the wrong group are refused', () => {
  const doc = (apiVersion: string): string =>
    `apiVersion: ${apiVersion}\nkind: PeerAuthentication\nmetadata: { name: default, namespace: shop }\nspec: { mtls: { mode: STRICT } }\n`;
  for (const v of ['security.istio.io/v1', 'security.istio.io/v1beta1']) {
    const r = parseDocuments(doc(v), 'f.yaml');
    assert.equal(r.objects.length, 1, v);
  }
  for (const v of ['security.istio.io/v1alpha1', 'networking.istio.io/v1']) {
    const r = parseDocuments(doc(v), 'f.yaml');
    assert.equal(r.objects.length, 0, v);
    assert.match(r.errors[0]?.errors[0]?.message ?? '', /unsupported apiVersion .* for kind PeerAuthentication \(want security\.istio\.io\/v1 or security\.istio\.io\/v1beta1\)/);
  }
});
