/**
 * Istio's JwtAuthenticator (for callers outside the cluster): a JWT whose signature verifies
 * against a configured JWKS (a file or an https URL), with the configured issuer and audience, an
 * expiry, an `iat` that is not in the future and a bounded lifetime. The identity is the `sub`
 * claim when it is a SPIFFE ID of the mesh's trust domain, else `sub`
 * `system:serviceaccount:<ns>:<sa>` (as istiod reads it), else the projected service-account
 * claims `kubernetes.io: {namespace, serviceaccount: {name}}`.
 */
import * as fs from 'node:fs';
import { type JWTPayload, type JWTVerifyGetKey, createLocalJWKSet, createRemoteJWKSet, customFetch, jwtVerify } from 'jose';
import type { Authenticator, Caller } from '../types';
import { type AuthnContext, bearerToken, parseSpiffeId, serviceAccountOf, spiffeId, unauthenticated } from './common';

export const JWT_DEFAULTS = {
  /** Clock skew allowed on `exp`, `nbf` and `iat`: Envoy jwt_authn's default `clock_skew_seconds`. */
  clockSkewSeconds: 60,
  /** Longest token lifetime accepted (exp − iat); Kubernetes projected tokens default to ≤ 48 h, Istio's istio-token asks 12 h. */
  maxLifetimeSeconds: 24 * 3600,
  /** A remote JWKS: one fetch may take this long, including its body (jose's default)… */
  jwksTimeoutMs: 5_000,
  /** …is kept this long before it is fetched again (jose's default)… */
  jwksCacheMaxAgeMs: 10 * 60_000,
  /** …is re-fetched for an unknown `kid` at most this often (jose's default)… */
  jwksCooldownMs: 30_000,
  /** …and may be at most this large. */
  jwksMaxBytes: 1024 * 1024,
} as const;

/** Asymmetric algorithms only: a JWKS publishes public keys, never a shared HMAC secret. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/** How a remote JWKS is fetched (jose's `customFetch` signature); the global fetch by default. */
export type JwksFetch = (url: string, init: { headers: Headers; method: 'GET'; redirect: 'manual'; signal: AbortSignal }) => Promise<Response>;

export interface JwtAuthenticatorOptions {
  /** A JWKS: a file path, or an https URL fetched (and cached) by jose. */
  jwks: string;
  issuer: string;
  /** The token's `aud` must contain one of these. */
  audiences: readonly string[];
  trustDomain: string;
  /** Allowed clock skew, seconds; default 60 (JWT_DEFAULTS.clockSkewSeconds). */
  clockToleranceSeconds?: number;
  /** Longest lifetime accepted: exp − iat, or exp − now without `iat`; default 24 h. */
  maxLifetimeSeconds?: number;
  /** The transport of a remote JWKS (tests give one that trusts their own CA). */
  fetch?: JwksFetch;
  /** The clock (tests). */
  now?: () => Date;
}

/** Why `source` cannot be a JWKS location (a URL that is not https), or undefined when it can. */
export function jwksSourceProblem(source: string): string | undefined {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(source)?.[1]?.toLowerCase();
  if (scheme === undefined || scheme === 'https') return undefined;
  return `--jwks ${source}: a remote JWKS must be fetched over https:// (over ${scheme}:// anyone on the path could swap the keys that sign tokens); give an https:// URL or a local file`;
}

function jwksError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * `inner`, with the JWKS body read up to `maxBytes` (jose reads whatever it is given). jose
 * already bounds the time (its AbortSignal covers the body too) and refuses redirects.
 */
export function boundedJwksFetch(inner: JwksFetch, maxBytes: number): JwksFetch {
  return async (url, init) => {
    let res: Response;
    try {
      res = await inner(url, init);
    } catch (err) {
      // jose turns a TimeoutError into ERR_JWKS_TIMEOUT; anything else is a failed fetch.
      if ((err as Error).name === 'TimeoutError') throw err;
      throw jwksError('ERR_JWKS_FETCH', 'the JWKS could not be fetched');
    }
    if (res.status !== 200 || !res.body) {
      await res.body?.cancel().catch(() => undefined);
      throw jwksError('ERR_JWKS_FETCH', `the JWKS answered HTTP ${res.status}`);
    }
    if (Number(res.headers.get('content-length') ?? 0) > maxBytes) {
      await res.body.cancel().catch(() => undefined);
      throw jwksError('ERR_JWKS_TOO_LARGE', `the JWKS is larger than ${maxBytes} bytes`);
    }
    const reader = res.body.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw jwksError('ERR_JWKS_TOO_LARGE', `the JWKS is larger than ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
    return new Response(Buffer.concat(chunks), { status: 200, headers: res.headers });
  };
}

/** A JWKS file read once, or a remote (https) JWKS. Throws when the file cannot be read or the URL is not https. */
export function jwksKeySet(source: string, o: { fetch?: JwksFetch } = {}): JWTVerifyGetKey {
  const problem = jwksSourceProblem(source);
  if (problem) throw new Error(problem);
  if (/^https:\/\//i.test(source)) {
    return createRemoteJWKSet(new URL(source), {
      timeoutDuration: JWT_DEFAULTS.jwksTimeoutMs,
      cacheMaxAge: JWT_DEFAULTS.jwksCacheMaxAgeMs,
      cooldownDuration: JWT_DEFAULTS.jwksCooldownMs,
      [customFetch]: boundedJwksFetch(o.fetch ?? fetch, JWT_DEFAULTS.jwksMaxBytes),
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(source, 'utf8'));
  } catch (err) {
    throw new Error(`--jwks ${source}: cannot read a JWKS (${(err as Error).message})`, { cause: err });
  }
  if (!json || typeof json !== 'object' || !Array.isArray((json as { keys?: unknown }).keys)) throw new Error(`--jwks ${source}: not a JWKS (no "keys" array)`);
  return createLocalJWKSet(json as Parameters<typeof createLocalJWKSet>[0]);
}

/** Messages for jose's error codes: never the token, never key material. */
function describeJoseError(err: unknown): { reason: string; message: string } {
  const code = (err as { code?: unknown }).code;
  const claim = (err as { claim?: unknown }).claim;
  const why = (err as { reason?: unknown }).reason;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return { reason: 'expired_token', message: 'the token has expired' };
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return { reason: 'invalid_token', message: 'the token signature does not verify against the configured JWKS' };
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const name = typeof claim === 'string' ? claim : '?';
      return { reason: 'invalid_token', message: why === 'missing' ? `the token has no "${name}" claim` : `the token's "${name}" claim is not accepted` };
    }
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return { reason: 'invalid_token', message: 'the token signature algorithm is not allowed' };
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
    case 'ERR_JWKS_FETCH':
    case 'ERR_JWKS_TOO_LARGE':
      return { reason: 'jwks_unavailable', message: 'the JWKS could not be fetched' };
    default:
      return { reason: 'invalid_token', message: 'the token is not a valid signed JWT' };
  }
}

export class JwtAuthenticator implements Authenticator {
  readonly name = 'jwt';
  private readonly keys: JWTVerifyGetKey;
  private readonly skew: number;
  private readonly maxLifetime: number;

  constructor(private readonly opts: JwtAuthenticatorOptions) {
    if (!opts.issuer) throw new Error('a JWT issuer is required with a JWKS');
    if (opts.audiences.length === 0) throw new Error('a JWT audience is required with a JWKS');
    this.skew = opts.clockToleranceSeconds ?? JWT_DEFAULTS.clockSkewSeconds;
    this.maxLifetime = opts.maxLifetimeSeconds ?? JWT_DEFAULTS.maxLifetimeSeconds;
    if (!(this.skew >= 0) || !(this.maxLifetime > 0)) throw new Error('the JWT clock skew must be ≥ 0 and the maximum lifetime > 0');
    this.keys = jwksKeySet(opts.jwks, opts.fetch ? { fetch: opts.fetch } : {});
  }

  async authenticate(ctx: AuthnContext): Promise<Caller | undefined> {
    const token = bearerToken(ctx.metadata);
    if (!token) return undefined;
    const now = this.opts.now?.() ?? new Date();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        issuer: this.opts.issuer,
        audience: [...this.opts.audiences],
        algorithms: ALGORITHMS,
        requiredClaims: ['exp'],
        clockTolerance: this.skew,
        currentDate: now,
      }));
    } catch (err) {
      const d = describeJoseError(err);
      throw unauthenticated(d.reason, `${this.name}: ${d.message}`);
    }
    this.checkTimes(payload, now);
    return { identities: [this.identityOf(payload)], via: this.name };
  }

  /**
   * What jose leaves to us: it checks a future `iat` only together with `maxTokenAge`, which
   * would also make `iat` mandatory, and it has no lifetime bound. jose has checked that `exp`
   * is present, numeric and not past, and that `iat`, when present, is numeric.
   */
  private checkTimes(p: JWTPayload, now: Date): void {
    const t = Math.floor(now.getTime() / 1000);
    const exp = p.exp as number;
    if (p.iat !== undefined) {
      if (p.iat > t + this.skew)
        throw unauthenticated('invalid_token', `${this.name}: the token's "iat" is ${p.iat - t}s in the future (more than the ${this.skew}s clock skew allowed)`);
      if (exp - p.iat > this.maxLifetime)
        throw unauthenticated('invalid_token', `${this.name}: the token's lifetime (exp − iat) is ${exp - p.iat}s, longer than the ${this.maxLifetime}s allowed`);
    } else if (exp - t > this.maxLifetime + this.skew) {
      // exp is the issuer's clock, now ours: the skew applies.
      throw unauthenticated('invalid_token', `${this.name}: the token has no "iat" and expires in ${exp - t}s, later than the ${this.maxLifetime}s allowed`);
    }
  }

  private identityOf(p: JWTPayload): string {
    const td = this.opts.trustDomain;
    const sub = typeof p.sub === 'string' ? p.sub : '';
    const spiffe = parseSpiffeId(sub);
    if (spiffe) {
      if (spiffe.trustDomain !== td) throw unauthenticated('invalid_token', `${this.name}: the token's subject is in trust domain ${spiffe.trustDomain}, not ${td}`);
      return spiffeId(td, spiffe.namespace, spiffe.serviceAccount);
    }
    const sa = serviceAccountOf(sub);
    if (sa) return spiffeId(td, sa[0], sa[1]);
    const k8s = p['kubernetes.io'] as { namespace?: unknown; serviceaccount?: { name?: unknown } } | undefined;
    const ns = k8s?.namespace;
    const name = k8s?.serviceaccount?.name;
    if (typeof ns === 'string' && typeof name === 'string' && serviceAccountOf(`system:serviceaccount:${ns}:${name}`)) return spiffeId(td, ns, name);
    throw unauthenticated('invalid_token', `${this.name}: the token names no workload identity (sub is neither a SPIFFE ID nor a service account, and no kubernetes.io claims)`);
  }
}
