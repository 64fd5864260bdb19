/** What the authenticators share: the bearer token, SPIFFE IDs, and trying authenticators in order. */
import * as grpc from '@grpc/grpc-js';
import { type Authenticator, CaError, type Caller } from '../types';

export type AuthnContext = Parameters<Authenticator['authenticate']>[0];

/** The token of `authorization: Bearer <token>` (Istio's agents send the service-account token so). */
export function bearerToken(metadata: AuthnContext['metadata']): string | undefined {
  for (const v of metadata['authorization'] ?? []) {
    const m = /^bearer\s+(\S+)\s*$/i.exec(v);
    if (m) return m[1];
  }
  return undefined;
}

export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/** A Kubernetes name segment (namespace, service account): DNS-1123 label or subdomain. */
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** `system:serviceaccount:<ns>:<sa>` → [ns, sa]. */
export function serviceAccountOf(username: string): [string, string] | undefined {
  const parts = username.split(':');
  if (parts.length !== 4 || parts[0] !== 'system' || parts[1] !== 'serviceaccount') return undefined;
  const [ns, sa] = [parts[2] as string, parts[3] as string];
  return NAME.test(ns) && NAME.test(sa) ? [ns, sa] : undefined;
}

/** `spiffe://<td>/ns/<ns>/sa/<sa>` → its parts. */
export function parseSpiffeId(id: string): { trustDomain: string; namespace: string; serviceAccount: string } | undefined {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(id);
  if (!m || !NAME.test(m[2] as string) || !NAME.test(m[3] as string)) return undefined;
  return { trustDomain: m[1] as string, namespace: m[2] as string, serviceAccount: m[3] as string };
}

export function unauthenticated(reason: string, message: string): CaError {
  return new CaError(reason, message, grpc.status.UNAUTHENTICATED);
}

/** Removes a secret (a token) from a message that may echo it. */
export function scrub(text: string, secret: string | undefined): string {
  return secret && secret.length >= 8 ? text.split(secret).join('[token]') : text;
}

/**
 * Istio's security.Authenticate: the first authenticator that proves an identity wins. An
 * authenticator that does not apply (no token, no client certificate) is skipped; if every
 * applicable one fails, the caller is refused with all of their reasons.
 */
export async function authenticateCaller(authenticators: readonly Authenticator[], ctx: AuthnContext): Promise<Caller> {
  const failures: CaError[] = [];
  for (const a of authenticators) {
    try {
      const caller = await a.authenticate(ctx);
      if (caller && caller.identities.length > 0) return caller;
      if (caller) failures.push(unauthenticated('no_identity', `${a.name}: the credential names no identity`));
    } catch (err) {
      failures.push(err instanceof CaError ? err : unauthenticated('authenticator_error', `${a.name}: the credential could not be checked`));
    }
  }
  if (failures.length > 0) {
    throw new CaError((failures[0] as CaError).reason, `authentication failed: ${failures.map((f) => f.message).join('; ')}`, grpc.status.UNAUTHENTICATED);
  }
  throw unauthenticated(
    'no_credential',
    'authentication failed: no credential (send `authorization: Bearer <token>` with a Kubernetes service-account token or a JWT, or present an unexpired workload certificate issued by this mesh over TLS)',
  );
}
