/**
 * RequestAuthentication validation: a table of invalid objects, each one change to a valid base,
 * with the exact field path and Istio's message (meshd's own where it is stricter); valid objects
 * that must pass; the JWKS document check on its own; and both API versions through the parser.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { fakeJwks, parseJwks } from '../src/model/jwks';
import type { ConfigObject } from '../src/model/objects';
import { validateObject } from '../src/model/validate';
import { parseDocuments } from '../src/sources/parse';

type J = Record<string, unknown>;

function ra(spec: unknown, apiVersion = 'security.istio.io/v1'): ConfigObject {
  const metadata = { name: 'jwt', namespace: 'shop', labels: {}, annotations: {} };
  const body: J = { apiVersion, kind: 'RequestAuthentication', metadata };
  if (spec !== undefined) body['spec'] = spec;
  return { kind: 'RequestAuthentication', apiVersion, metadata, body, origin: { source: 'test' } };
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
const JWKS = JSON.stringify({ keys: [{ ...rsa, kid: 'k1', alg: 'RS256', use: 'sig' }] });
const SEL = { matchLabels: { app: 'web' } };
const BASE: J = { issuer: 'https://idp.example.com', jwksUri: 'https://idp.example.com/jwks.json' };
/** The base policy with one rule changed. */
const rule = (changes: J): ConfigObject => ra({ selector: SEL, jwtRules: [{ ...BASE, ...changes }] });

interface Case {
  name: string;
  obj: ConfigObject;
  path: string;
  message: string;
}

const INVALID: Case[] = [
  // ---- selection ----
  {
    name: 'selector and targetRef',
    obj: ra({ selector: SEL, targetRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' } }),
    path: 'spec',
    message: 'only one of targetRefs or workloadSelector can be set',
  },
  {
    name: 'targetRef and targetRefs',
    obj: ra({ targetRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'a' }, targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'b' }] }),
    path: 'spec',
    message: 'only one of targetRefs or workloadSelector can be set',
  },
  {
    name: 'targetRef to a Pod',
    obj: ra({ targetRefs: [{ group: '', kind: 'Pod', name: 'web' }] }),
    path: 'spec.targetRefs[0]',
    message: 'targetRef must be to a Service, ServiceEntry, Gateway or GatewayClass but was /Pod',
  },
  {
    name: 'targetRef without a name',
    obj: ra({ targetRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway' } }),
    path: 'spec.targetRef.name',
    message: 'targetRef name must be set',
  },
  {
    name: 'targetRef across namespaces',
    obj: ra({ targetRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw', namespace: 'other' } }),
    path: 'spec.targetRef.namespace',
    message: 'cross namespace referencing is not supported',
  },
  { name: 'wildcard selector', obj: ra({ selector: { matchLabels: { app: 'web-*' } } }), path: 'spec.selector.matchLabels.app', message: 'wildcard is not supported in selector' },
  { name: 'unknown top-level field', obj: ra({ jwtRule: [] }), path: 'spec.jwtRule', message: 'unknown field "jwtRule" (did you mean "jwtRules"?)' },
  { name: 'null rule', obj: ra({ jwtRules: [null] }), path: 'spec.jwtRules[0]', message: 'must not be null' },
  // ---- issuer and keys ----
  { name: 'no issuer and no jwksUri', obj: rule({ issuer: '', jwksUri: '' }), path: 'spec.jwtRules[0]', message: 'issuer or jwksUri must be non-empty string' },
  {
    name: 'jwksUri over http',
    obj: rule({ jwksUri: 'http://idp.example.com/jwks.json' }),
    path: 'spec.jwtRules[0].jwksUri',
    message: 'jwksUri "http://idp.example.com/jwks.json" uses http: meshd fetches JWKS only over https',
  },
  {
    name: 'jwks_uri (the CRD spelling) over http',
    obj: rule({ jwksUri: undefined, jwks_uri: 'http://idp.example.com/jwks.json' }),
    path: 'spec.jwtRules[0].jwks_uri',
    message: 'uses http',
  },
  {
    name: 'jwksUri and jwks_uri',
    obj: rule({ jwks_uri: 'https://idp.example.com/other' }),
    path: 'spec.jwtRules[0].jwks_uri',
    message: 'jwks_uri is another spelling of jwksUri: set one of them',
  },
  { name: 'jwksUri of another scheme', obj: rule({ jwksUri: 'ftp://idp.example.com/jwks.json' }), path: 'spec.jwtRules[0].jwksUri', message: 'URI scheme "ftp" is not supported' },
  { name: 'jwksUri not a URI', obj: rule({ jwksUri: 'idp.example.com/jwks.json' }), path: 'spec.jwtRules[0].jwksUri', message: 'invalid URI "idp.example.com/jwks.json"' },
  { name: 'jwks and jwksUri', obj: rule({ jwks: JWKS }), path: 'spec.jwtRules[0]', message: 'only one of jwksUri or jwks can be set' },
  { name: 'jwks not JSON', obj: rule({ jwksUri: undefined, jwks: '{keys:' }), path: 'spec.jwtRules[0].jwks', message: 'jwks parse error: not JSON' },
  { name: 'jwks without keys', obj: rule({ jwksUri: undefined, jwks: '{"kty":"RSA"}' }), path: 'spec.jwtRules[0].jwks', message: 'jwks parse error: no "keys" list' },
  {
    name: 'jwks with an empty key list',
    obj: rule({ jwksUri: undefined, jwks: '{"keys":[]}' }),
    path: 'spec.jwtRules[0].jwks',
    message: 'jwks parse error: no key Envoy can verify with',
  },
  {
    name: 'jwks with a broken RSA key',
    obj: rule({ jwksUri: undefined, jwks: '{"keys":[{"kty":"RSA","e":"AQAB"}]}' }),
    path: 'spec.jwtRules[0].jwks',
    message: 'jwks parse error: keys[0] (RSA) is not a valid key',
  },
  {
    name: 'jwks key without kty',
    obj: rule({ jwksUri: undefined, jwks: '{"keys":[{"n":"x"}]}' }),
    path: 'spec.jwtRules[0].jwks',
    message: 'jwks parse error: keys[0] has no "kty"',
  },
  {
    name: 'discovery from an issuer that is not https',
    obj: rule({ issuer: 'testing@secure.istio.io', jwksUri: undefined }),
    path: 'spec.jwtRules[0].issuer',
    message: 'so the issuer must be an https URL (got "testing@secure.istio.io")',
  },
  { name: 'empty audience', obj: rule({ audiences: ['api', ''] }), path: 'spec.jwtRules[0].audiences[1]', message: 'audience must be non-empty string' },
  // ---- token locations ----
  {
    name: 'fromHeaders without a name',
    obj: rule({ fromHeaders: [{ prefix: 'Bearer ' }] }),
    path: 'spec.jwtRules[0].fromHeaders[0].name',
    message: 'location header name must be non-empty string',
  },
  {
    name: 'fromHeaders prefix with a newline',
    obj: rule({ fromHeaders: [{ name: 'x-jwt', prefix: 'Bearer\n' }] }),
    path: 'spec.jwtRules[0].fromHeaders[0].prefix',
    message: 'prefix must not contain NUL, CR or LF',
  },
  {
    name: 'misspelt fromHeaders field',
    obj: rule({ fromHeaders: [{ name: 'x-jwt', prefx: 'Bearer ' }] }),
    path: 'spec.jwtRules[0].fromHeaders[0].prefx',
    message: 'unknown field "prefx" (did you mean "prefix"?)',
  },
  { name: 'empty fromParams entry', obj: rule({ fromParams: [''] }), path: 'spec.jwtRules[0].fromParams[0]', message: 'location query must be non-empty string' },
  { name: 'empty fromCookies entry', obj: rule({ fromCookies: ['session', ''] }), path: 'spec.jwtRules[0].fromCookies[1]', message: 'cookie name must be non-empty string' },
  // ---- outputs ----
  {
    name: 'claim header without a claim',
    obj: rule({ outputClaimToHeaders: [{ header: 'x-sub' }] }),
    path: 'spec.jwtRules[0].outputClaimToHeaders[0].claim',
    message: 'outputClaimToHeaders header and claim value must be non-empty string',
  },
  {
    name: 'claim header without a header',
    obj: rule({ outputClaimToHeaders: [{ claim: 'sub' }] }),
    path: 'spec.jwtRules[0].outputClaimToHeaders[0].header',
    message: 'outputClaimToHeaders header and claim value must be non-empty string',
  },
  {
    name: 'claim header name with a colon',
    obj: rule({ outputClaimToHeaders: [{ header: 'x:sub', claim: 'sub' }] }),
    path: 'spec.jwtRules[0].outputClaimToHeaders[0].header',
    message: 'header name x:sub is not a valid header name',
  },
  {
    name: 'claim header set twice',
    obj: rule({
      outputClaimToHeaders: [
        { header: 'x-user', claim: 'sub' },
        { header: 'X-User', claim: 'email' },
      ],
    }),
    path: 'spec.jwtRules[0].outputClaimToHeaders[1].header',
    message: 'header X-User is already set from a claim by spec.jwtRules[0].outputClaimToHeaders[0]',
  },
  {
    name: 'payload header name with a space',
    obj: rule({ outputPayloadToHeader: 'x jwt' }),
    path: 'spec.jwtRules[0].outputPayloadToHeader',
    message: 'header name x jwt is not a valid header name',
  },
  {
    name: 'forwardOriginalToken as a string',
    obj: rule({ forwardOriginalToken: 'yes' }),
    path: 'spec.jwtRules[0].forwardOriginalToken',
    message: 'must be true or false (got string "yes")',
  },
  { name: 'timeout without a unit', obj: rule({ timeout: '5' }), path: 'spec.jwtRules[0].timeout', message: 'invalid duration "5"' },
  { name: 'timeout under 1ms', obj: rule({ timeout: '100us' }), path: 'spec.jwtRules[0].timeout', message: 'must be at least 1ms' },
  {
    name: 'empty spaceDelimitedClaims entry',
    obj: rule({ spaceDelimitedClaims: [''] }),
    path: 'spec.jwtRules[0].spaceDelimitedClaims[0]',
    message: 'claim name must be non-empty string',
  },
  { name: 'the second rule', obj: ra({ jwtRules: [BASE, { issuer: '' }] }), path: 'spec.jwtRules[1]', message: 'issuer or jwksUri must be non-empty string' },
];

for (const c of INVALID) {
  test(`invalid: RequestAuthentication ${c.name}`, () => {
    const errors = validateObject(c.obj);
    const hit = errors.find((e) => e.path === c.path && e.message.includes(c.message));
    assert.ok(hit, `want ${c.path}: ${c.message}\ngot ${JSON.stringify(errors, null, 1)}`);
  });
}

const VALID: Array<[string, ConfigObject]> = [
  ['empty spec', ra(undefined)],
  ['selector only (no rules)', ra({ selector: SEL })],
  ['jwksUri', ra({ selector: SEL, jwtRules: [BASE] })],
  ['jwksUri without an issuer (istiod allows it)', ra({ jwtRules: [{ jwksUri: 'https://idp.example.com/jwks.json' }] })],
  ['inline jwks', ra({ jwtRules: [{ issuer: 'testing@secure.istio.io', jwks: JWKS }] })],
  ['OpenID discovery from an https issuer', ra({ jwtRules: [{ issuer: 'https://accounts.example.com/' }] })],
  ['targetRef to a Gateway, v1beta1', ra({ targetRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }, jwtRules: [BASE] }, 'security.istio.io/v1beta1')],
  [
    'every field',
    ra({
      selector: SEL,
      jwtRules: [
        {
          ...BASE,
          audiences: ['api', 'web'],
          fromHeaders: [{ name: 'authorization', prefix: 'Bearer ' }, { name: 'x-jwt' }],
          fromParams: ['access_token'],
          fromCookies: ['session'],
          outputPayloadToHeader: 'x-jwt-payload',
          outputClaimToHeaders: [
            { header: 'x-sub', claim: 'sub' },
            { header: 'x-tenant', claim: 'org.tenant' },
          ],
          forwardOriginalToken: true,
          timeout: '2.5s',
          spaceDelimitedClaims: ['roles'],
        },
        { issuer: 'other@example.com', jwks: JWKS },
      ],
    }),
  ],
];

for (const [name, obj] of VALID) {
  test(`valid: RequestAuthentication ${name}`, () => assert.deepEqual(validateObject(obj), []));
}

test('JWKS documents: RSA, EC, OKP and oct keys are usable; unknown key types are skipped; the JSON is compacted', () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  const ed = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
  const doc = { keys: [rsa, ec, ed, { kty: 'oct', k: 'c2VjcmV0' }, { kty: 'future-kind', x: 1 }] };
  const r = parseJwks(JSON.stringify(doc, null, 2));
  assert.ok('json' in r, JSON.stringify(r));
  assert.deepEqual(JSON.parse(r.json), doc);
  assert.ok(!r.json.includes('\n'));
  assert.deepEqual(parseJwks('{"keys":[{"kty":"future-kind"}]}'), { error: 'no key Envoy can verify with (RSA, EC, OKP or oct)' });
  assert.match('error' in parseJwks('{"keys":[{"kty":"EC","crv":"P-256","x":"AA"}]}') ? 'bad' : 'ok', /bad/);
  // istiod's fake JWKS is itself a well-formed JWKS (Envoy accepts it; no token verifies).
  const fake = fakeJwks('https://idp.example.com/jwks.json');
  assert.ok('json' in parseJwks(fake));
  assert.equal(
    fake,
    `{"keys":[ {"e":"AQAB","kid":"abc","kty":"RSA","n":"${Buffer.from('Error-IstiodFailedToFetchJwksUri-https://idp.example.com/jwks.json').toString('base64url')}"}]}`,
  );
});

test('security.istio.io v1 and v1beta1 RequestAuthentications parse; v1alpha1 is refused', () => {
  const doc = (apiVersion: string): string =>
    `apiVersion: ${apiVersion}\nkind: RequestAuthentication\nmetadata: { name: jwt, namespace: shop }\nspec: { jwtRules: [{ issuer: "https://idp.example.com" }] }\n`;
  for (const v of ['security.istio.io/v1', 'security.istio.io/v1beta1']) assert.equal(parseDocuments(doc(v), 'f.yaml').objects.length, 1, v);
  const r = parseDocuments(doc('security.istio.io/v1alpha1'), 'f.yaml');
  assert.equal(r.objects.length, 0);
  assert.match(r.errors[0]?.errors[0]?.message ?? '', /unsupported apiVersion .* for kind RequestAuthentication/);
});
