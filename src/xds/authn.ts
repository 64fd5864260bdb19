/**
 * Who is at the other end of an xDS stream, as istiod decides it (pilot/pkg/xds/ads.go
 * `authenticate`, `checkConnectionIdentity`):
 *
 * - on a plaintext stream nobody is authenticated: the proxy gets its config, but no identity;
 * - on a TLS stream the authenticators run (the client certificate, or a bearer token in the
 *   stream's metadata); a stream whose credential fails, or that brings none, is refused;
 * - a proved identity must match the proxy it speaks for: its namespace must be the proxy's
 *   namespace, and its service account the proxy's SERVICE_ACCOUNT when the proxy names one.
 *
 * Credentials (gateway Secrets over SDS) are served only to a verified identity, only from its
 * own namespace, and (with a Kubernetes source) only when its service account may read Secrets
 * there, as istiod's SecretGen authorizes them.
 */
import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import type { Proxy } from '../model/proxy';

/** What an authenticator proved (the CA's Caller). */
export interface ProvedIdentity {
  identities: readonly string[];
  via: string;
}

/** The authenticators and the Secret authorizer the xDS server uses. */
export interface XdsAuth {
  /** Proves who the caller is from the stream's metadata and client certificate; throws (with a message) when a credential fails or none is given. */
  authenticate(ctx: { metadata: Readonly<Record<string, readonly string[]>>; peerCertificatePem?: string }): Promise<ProvedIdentity>;
  /**
   * The client certificate (DER) of the TLS connection a stream came in on, by the stream's peer
   * address, when TLS ends outside grpc-js (15012's listener keeps them); else grpc-js's own.
   */
  peerCertificate?(peer: string): Buffer | undefined;
  /** Whether `serviceAccount` of `namespace` may read Secrets there (Kubernetes RBAC); absent: yes. */
  mayReadSecrets?(namespace: string, serviceAccount: string): Promise<boolean>;
}

export interface VerifiedIdentity {
  /** The SPIFFE ID that matched the proxy. */
  id: string;
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
  /** How it was proved: `mtls`, `kubernetes-token`, `jwt`. */
  via: string;
}

/** The outcome for one stream: a verified identity, or why there is none. */
export interface StreamIdentity {
  verified?: VerifiedIdentity;
  /** Why no credential is served to this stream (no verified identity, or RBAC said no). */
  credentialsDenied?: string;
}

/** Refuses the stream: the status and message the client gets. */
export class StreamAuthError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

/** The surface of a grpc-js server stream this module reads. */
export interface AuthStream {
  metadata?: grpc.Metadata;
  getPeer?(): string;
  getAuthContext?(): { transportSecurityType?: string; sslPeerCertificate?: { raw?: Buffer } } | undefined;
}

export const PLAINTEXT_REASON =
  'the stream is plaintext: credentials are served only to an identity verified over TLS (port 15012) by a workload certificate or a service-account token';

function metadataRecord(md: grpc.Metadata | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (!md) return out;
  for (const k of Object.keys(md.getMap())) {
    const vals = md.get(k).filter((x): x is string => typeof x === 'string');
    if (vals.length > 0) out[k] = vals;
  }
  return out;
}

function peerCertificatePem(raw: Buffer | undefined): string | undefined {
  if (!raw || raw.length === 0) return undefined;
  try {
    return new X509Certificate(raw).toString();
  } catch {
    return undefined;
  }
}

const SPIFFE = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/;

/**
 * Authenticates a stream that came in over TLS, before its first request is handled: the
 * authenticators' verdict; failure throws StreamAuthError(UNAUTHENTICATED).
 */
export async function authenticateStream(stream: AuthStream, auth: XdsAuth): Promise<ProvedIdentity> {
  const ctx = stream.getAuthContext?.();
  try {
    const raw = (stream.getPeer ? auth.peerCertificate?.(stream.getPeer()) : undefined) ?? ctx?.sslPeerCertificate?.raw;
    return await auth.authenticate({ metadata: metadataRecord(stream.metadata), peerCertificatePem: peerCertificatePem(raw) });
  } catch (err) {
    throw new StreamAuthError(grpc.status.UNAUTHENTICATED, err instanceof Error ? err.message : 'authentication failed');
  }
}

/**
 * istiod's checkConnectionIdentity: the first proved SPIFFE ID in the proxy's namespace (and of its
 * service account, when the node names one). None: the stream is refused (PERMISSION_DENIED).
 */
export function matchIdentity(proxy: Pick<Proxy, 'id' | 'serviceAccount'> & { namespace?: string }, proved: ProvedIdentity): VerifiedIdentity {
  for (const raw of proved.identities) {
    const m = SPIFFE.exec(raw);
    if (!m) continue;
    const [, trustDomain, namespace, serviceAccount] = m as unknown as [string, string, string, string];
    // A debug client that names no namespace is whoever its identity says.
    if (proxy.namespace !== undefined && namespace !== proxy.namespace) continue;
    if (proxy.serviceAccount && serviceAccount !== proxy.serviceAccount) continue;
    return { id: raw, trustDomain, namespace, serviceAccount, via: proved.via };
  }
  throw new StreamAuthError(
    grpc.status.PERMISSION_DENIED,
    `the proved identities (${proved.identities.join(', ')}) do not match proxy ${proxy.id} (namespace ${proxy.namespace ?? 'any'}${proxy.serviceAccount ? `, service account ${proxy.serviceAccount}` : ''})`,
  );
}

/**
 * The stream's identity and whether it may have credentials: the proxy's `credentialNamespace`
 * is set only when both hold.
 */
export async function streamIdentity(proxy: Proxy, proved: ProvedIdentity | undefined, auth: XdsAuth | undefined): Promise<StreamIdentity> {
  if (!proved) return { credentialsDenied: PLAINTEXT_REASON };
  const verified = matchIdentity(proxy, proved);
  if (auth?.mayReadSecrets) {
    let allowed: boolean;
    try {
      allowed = await auth.mayReadSecrets(verified.namespace, verified.serviceAccount);
    } catch (err) {
      return {
        verified,
        credentialsDenied: `could not check whether ${verified.id} may read Secrets in ${verified.namespace}: ${err instanceof Error ? err.message : String(err)}`,
      };
    }
    if (!allowed)
      return {
        verified,
        credentialsDenied: `service account ${verified.namespace}/${verified.serviceAccount} may not list Secrets in namespace ${verified.namespace} (Kubernetes RBAC)`,
      };
  }
  return { verified };
}
