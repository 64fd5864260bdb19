/**
 * JSON Web Key Sets as the model holds them: where a JWT rule's keys come from (its `jwks`
 * inline, its `jwksUri`, or OpenID discovery from its issuer), what was fetched (a JwksEntry per
 * source, filled in by the JWKS resolver outside the model), and the checks a JWKS document must
 * pass before it is handed to Envoy. Pure: parsing keys is computation, never I/O.
 */
import { createPublicKey, createSecretKey, type JsonWebKey } from 'node:crypto';
import type { JWTRule } from './objects-security';

/** What is known about one remote JWKS source, as the snapshot holds it. */
export interface JwksEntry {
  /** The JWKS document (compact JSON) to inline; absent when none was ever fetched. */
  readonly keys?: string;
  /** Why the source could not be fetched (now): with `keys`, the keys are an older copy. */
  readonly error?: string;
}

/** Where a rule's keys are fetched from; undefined when the rule carries them inline. */
export interface JwksSource {
  /** The key of the source in the snapshot's `jwks` map: the URL fetched first. */
  readonly key: string;
  /** The JWKS URL, or the issuer's OpenID discovery document (which names the JWKS URL). */
  readonly url: string;
  readonly discovery: boolean;
}

/** OpenID Connect Discovery 1.0: the configuration document below the issuer. */
export const OPENID_DISCOVERY_SUFFIX = '/.well-known/openid-configuration';

/** The JWKS URI a rule names (`jwksUri`, or the CRD's `jwks_uri` spelling). */
export function ruleJwksUri(rule: JWTRule): string {
  return rule.jwksUri || rule.jwks_uri || '';
}

export function jwksSourceOf(rule: JWTRule): JwksSource | undefined {
  if (rule.jwks) return undefined;
  const uri = ruleJwksUri(rule);
  if (uri) return { key: uri, url: uri, discovery: false };
  // The spec: a terminating `/` of the issuer is removed before the suffix is appended.
  const url = `${(rule.issuer ?? '').replace(/\/$/, '')}${OPENID_DISCOVERY_SUFFIX}`;
  return { key: url, url, discovery: true };
}

/**
 * istiod's CreateFakeJwks: a well-formed JWKS whose one RSA key no token is signed with, so
 * that every token is rejected while requests without one still reach authorization.
 */
export function fakeJwks(uri: string): string {
  const n = Buffer.from(`Error-IstiodFailedToFetchJwksUri-${uri}`).toString('base64url');
  return `{"keys":[ {"e":"AQAB","kid":"abc","kty":"RSA","n":"${n}"}]}`;
}

const PUBLIC_KEY_TYPES = new Set(['RSA', 'EC', 'OKP']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Why one JWK is unusable, or undefined; unknown key types are skipped by Envoy, and so here. */
function keyError(k: unknown, i: number): string | undefined {
  if (!isObject(k)) return `keys[${i}] is not an object`;
  const kty = k['kty'];
  if (typeof kty !== 'string' || kty === '') return `keys[${i}] has no "kty"`;
  try {
    if (PUBLIC_KEY_TYPES.has(kty)) createPublicKey({ key: k as JsonWebKey, format: 'jwk' });
    else if (kty === 'oct') {
      const secret = k['k'];
      if (typeof secret !== 'string' || secret === '') return `keys[${i}] (oct) has no "k"`;
      createSecretKey(Buffer.from(secret, 'base64url'));
    }
  } catch (err) {
    return `keys[${i}] (${kty}) is not a valid key: ${(err as Error).message}`;
  }
  return undefined;
}

/**
 * A JWKS document checked as Envoy will read it: a JSON object with a `keys` list holding at
 * least one key of a type Envoy verifies with (RSA, EC, OKP, oct), every such key well formed.
 * Returns the compact JSON to inline, or why the document cannot be used.
 */
export function parseJwks(text: string): { json: string } | { error: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { error: `not JSON: ${(err as Error).message}` };
  }
  if (!isObject(doc)) return { error: 'not a JSON object' };
  const keys = doc['keys'];
  if (!Array.isArray(keys)) return { error: 'no "keys" list (a JWKS is {"keys": [...]})' };
  let usable = 0;
  for (const [i, k] of keys.entries()) {
    const e = keyError(k, i);
    if (e !== undefined) return { error: e };
    const kty = (k as Record<string, unknown>)['kty'];
    if (typeof kty === 'string' && (PUBLIC_KEY_TYPES.has(kty) || kty === 'oct')) usable++;
  }
  if (usable === 0) return { error: 'no key Envoy can verify with (RSA, EC, OKP or oct)' };
  return { json: JSON.stringify(doc) };
}
