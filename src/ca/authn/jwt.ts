/**
 * Istio's JwtAuthenticator (for callers outside the cluster): a JWT whose signature verifies
 * against a configured JWKS (a file or an https URL), with the configured issuer and audience and
 * an expiry. The identity is the `sub` claim when it is a SPIFFE ID of the mesh's trust domain,
 * else `sub` `system:serviceaccount:<ns>:<sa>` (as istiod reads it), else the projected
 * service-account claims `kubernetes.io: {namespace, serviceaccount: {name}}`.
 */
import * as fs from 'node:fs';
import { type JWTPayload, type JWTVerifyGetKey, createLocalJWKSet, createRemoteJWKSet, jwtVerify } from 'jose';
import type { Authenticator, Caller } from '../types';
import { type AuthnContext, bearerToken, parseSpiffeId, serviceAccountOf, spiffeId, unauthenticated } from './common';

export interface JwtAuthenticatorOptions {
  /** A JWKS: a file path, or an http(s) URL fetched (and cached) by jose. */
  jwks: string;
  issuer: string;
  /** The token's `aud` must contain one of these. */
  audiences: readonly string[];
  trustDomain: string;
  /** Allowed clock skew, seconds; default 30. */
  clockToleranceSeconds?: number;
}

/** A JWKS file read once, or a remote JWKS. Throws when the file cannot be read. */
export function jwksKeySet(source: string): JWTVerifyGetKey {
  if (/^https?:\/\//i.test(source)) return createRemoteJWKSet(new URL(source));
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(source, 'utf8'));
  } catch (err) {
    throw new Error(`--jwks ${source}: cannot read a JWKS (${(err as Error).message})`);
  }
  if (!json || typeof json !== 'object' || !Array.isArray((json as { keys?: unknown }).keys)) throw new Error(`--jwks ${source}: not a JWKS (no "keys" array)`);
  return createLocalJWKSet(json as Parameters<typeof createLocalJWKSet>[0]);
}

/** Messages for jose's error codes: never the token, never key material. */
function describeJoseError(err: unknown): { reason: string; message: string } {
  const code = (err as { code?: unknown }).code;
  const claim = (err as { claim?: unknown }).claim;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return { reason: 'expired_token', message: 'the token has expired' };
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return { reason: 'invalid_token', message: 'the token signature does not verify against the configured JWKS' };
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return { reason: 'invalid_token', message: `the token's "${typeof claim === 'string' ? claim : '?'}" claim is not accepted` };
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return { reason: 'invalid_token', message: 'the token signature algorithm is not allowed' };
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
      return { reason: 'jwks_unavailable', message: 'the JWKS could not be fetched' };
    default:
      return { reason: 'invalid_token', message: 'the token is not a valid signed JWT' };
  }
}

export class JwtAuthenticator implements Authenticator {
  readonly name = 'jwt';
  private readonly keys: JWTVerifyGetKey;

  constructor(private readonly opts: JwtAuthenticatorOptions) {
    if (!opts.issuer) throw new Error('a JWT issuer is required with a JWKS');
    if (opts.audiences.length === 0) throw new Error('a JWT audience is required with a JWKS');
    this.keys = jwksKeySet(opts.jwks);
  }

  async authenticate(ctx: AuthnContext): Promise<Caller | undefined> {
    const token = bearerToken(ctx.metadata);
    if (!token) return undefined;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        issuer: this.opts.issuer,
        audience: [...this.opts.audiences],
        requiredClaims: ['exp'],
        clockTolerance: this.opts.clockToleranceSeconds ?? 30,
      }));
    } catch (err) {
      const d = describeJoseError(err);
      throw unauthenticated(d.reason, `${this.name}: ${d.message}`);
    }
    return { identities: [this.identityOf(payload)], via: this.name };
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
