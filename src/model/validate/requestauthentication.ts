/**
 * RequestAuthentication (security.istio.io), after Istio's ValidateRequestAuthentication and
 * validateJwtRule, with its CRD's field set. Where meshd is stricter than istiod, the message
 * says why: a jwksUri must be https (keys fetched in plaintext could be replaced on the way),
 * `jwks` and `jwksUri` are exclusive (istiod silently ignores the URI), an inline JWKS must hold
 * a key Envoy can use, and header names given to Envoy must be valid and distinct.
 */
import { parseJwks } from '../jwks';
import type { ConfigObject } from '../objects';
import { Issues, pathIdx, pathKey, rec, recordItems, str, stringItems } from './common';
import { checkPolicyTargets, targetRefSchema } from './authorizationpolicy';
import { durationError } from './duration';
import { arrayOf, bool, checkSchema, closed, mapOf, str as strSchema } from './schema';

const strings = arrayOf(strSchema);

export const jwtRuleSchema = closed({
  issuer: strSchema,
  audiences: strings,
  jwksUri: strSchema,
  jwks_uri: strSchema,
  jwks: strSchema,
  fromHeaders: arrayOf(closed({ name: strSchema, prefix: strSchema })),
  fromParams: strings,
  fromCookies: strings,
  outputPayloadToHeader: strSchema,
  outputClaimToHeaders: arrayOf(closed({ header: strSchema, claim: strSchema })),
  forwardOriginalToken: bool,
  timeout: strSchema,
  spaceDelimitedClaims: strings,
});

export const requestAuthenticationSchema = closed({
  selector: closed({ matchLabels: mapOf(strSchema) }),
  targetRef: targetRefSchema,
  targetRefs: arrayOf(targetRefSchema),
  jwtRules: arrayOf(jwtRuleSchema),
});

/** Istio's ValidateStrictHTTPHeaderName. */
const STRICT_HEADER_NAME = /^[-_A-Za-z0-9]+$/;

function headerNameError(name: string): string | undefined {
  return STRICT_HEADER_NAME.test(name) ? undefined : `header name ${name} is not a valid header name`;
}

/** security.ParseJwksURI (http and https), then meshd's https-only rule. */
export function jwksUriError(uri: string): string | undefined {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return `invalid URI ${JSON.stringify(uri)}`;
  }
  const scheme = u.protocol.slice(0, -1);
  if (scheme === 'http') {
    return `jwksUri ${JSON.stringify(uri)} uses http: meshd fetches JWKS only over https, since keys fetched in plaintext could be replaced on the way (istiod allows http)`;
  }
  if (scheme !== 'https') return `URI scheme ${JSON.stringify(scheme)} is not supported`;
  if (u.hostname === '') return `jwksUri ${JSON.stringify(uri)} has no host`;
  return undefined;
}

function checkJwtRule(issues: Issues, rp: string, rule: Readonly<Record<string, unknown>>): void {
  for (const [j, aud] of stringItems(rule['audiences'])) if (aud === '') issues.add(pathIdx(pathKey(rp, 'audiences'), j), 'audience must be non-empty string');
  const issuer = str(rule['issuer']) ?? '';
  const camel = str(rule['jwksUri']) ?? '';
  const snake = str(rule['jwks_uri']) ?? '';
  if (camel !== '' && snake !== '') issues.add(pathKey(rp, 'jwks_uri'), 'jwks_uri is another spelling of jwksUri: set one of them');
  const uri = camel || snake;
  const uriPath = pathKey(rp, camel !== '' ? 'jwksUri' : 'jwks_uri');
  if (issuer === '' && uri === '') issues.add(rp, 'issuer or jwksUri must be non-empty string');
  if (uri !== '') issues.addIf(uriPath, jwksUriError(uri));
  const jwks = str(rule['jwks']) ?? '';
  if (jwks !== '') {
    const parsed = parseJwks(jwks);
    if ('error' in parsed) issues.add(pathKey(rp, 'jwks'), `jwks parse error: ${parsed.error}`);
    if (uri !== '') issues.add(rp, 'only one of jwksUri or jwks can be set (istiod would ignore jwksUri)');
  } else if (uri === '' && issuer !== '') {
    // No keys given: they are found by OpenID discovery below the issuer, which must be https.
    let https: boolean;
    try {
      https = new URL(issuer).protocol === 'https:';
    } catch {
      https = false;
    }
    if (!https)
      issues.add(
        pathKey(rp, 'issuer'),
        `without jwksUri or jwks the keys are found by OpenID discovery at <issuer>/.well-known/openid-configuration, so the issuer must be an https URL (got ${JSON.stringify(issuer)})`,
      );
  }
  const headers = pathKey(rp, 'fromHeaders');
  for (const [j, h] of recordItems(rule['fromHeaders'])) {
    const hp = pathIdx(headers, j);
    if ((str(h['name']) ?? '') === '') issues.add(pathKey(hp, 'name'), 'location header name must be non-empty string');
    const prefix = str(h['prefix']) ?? '';
    if (/[\0\r\n]/.test(prefix)) issues.add(pathKey(hp, 'prefix'), 'prefix must not contain NUL, CR or LF');
  }
  for (const [j, q] of stringItems(rule['fromParams'])) if (q === '') issues.add(pathIdx(pathKey(rp, 'fromParams'), j), 'location query must be non-empty string');
  for (const [j, c] of stringItems(rule['fromCookies'])) if (c === '') issues.add(pathIdx(pathKey(rp, 'fromCookies'), j), 'cookie name must be non-empty string');
  const payloadHeader = str(rule['outputPayloadToHeader']) ?? '';
  if (payloadHeader !== '') issues.addIf(pathKey(rp, 'outputPayloadToHeader'), headerNameError(payloadHeader));
  const seen = new Map<string, number>();
  const claims = pathKey(rp, 'outputClaimToHeaders');
  for (const [j, ch] of recordItems(rule['outputClaimToHeaders'])) {
    const cp = pathIdx(claims, j);
    const header = str(ch['header']) ?? '';
    const claim = str(ch['claim']) ?? '';
    if (header === '' || claim === '') {
      issues.add(pathKey(cp, header === '' ? 'header' : 'claim'), 'outputClaimToHeaders header and claim value must be non-empty string');
      continue;
    }
    const bad = headerNameError(header);
    if (bad !== undefined) {
      issues.add(pathKey(cp, 'header'), bad);
      continue;
    }
    const first = seen.get(header.toLowerCase());
    if (first !== undefined) issues.add(pathKey(cp, 'header'), `header ${header} is already set from a claim by ${pathIdx(claims, first)}`);
    else seen.set(header.toLowerCase(), j);
  }
  const timeout = str(rule['timeout']);
  if (timeout !== undefined) issues.addIf(pathKey(rp, 'timeout'), durationError(timeout));
  for (const [j, c] of stringItems(rule['spaceDelimitedClaims'])) if (c === '') issues.add(pathIdx(pathKey(rp, 'spaceDelimitedClaims'), j), 'claim name must be non-empty string');
}

export function validateRequestAuthentication(obj: ConfigObject, issues: Issues): void {
  const raw = obj.body['spec'];
  // An empty spec is valid: it selects workloads and asks for no JWT.
  if (raw === undefined || raw === null) return;
  checkSchema(raw, requestAuthenticationSchema, 'spec', issues);
  const spec = rec(raw);
  if (spec === undefined) return;
  checkPolicyTargets(issues, spec);
  for (const [i, rule] of recordItems(spec['jwtRules'])) checkJwtRule(issues, pathIdx('spec.jwtRules', i), rule);
}
