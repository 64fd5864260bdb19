/**
 * The webhooks' serving certificate, issued by meshd's own CA as istiod issues its own: for
 * istiod's service names in meshd's namespace plus the custom hosts (istiod's
 * `ISTIOD_CUSTOM_HOST`, so a webhook can also be reached by URL), with a fresh key, renewed at half
 * its lifetime by the same `ServingCertificate` that keeps port 15012's certificate. Every replica
 * shares the CA's root (Secret `istio-ca-secret` or `cacerts`), so the webhook configurations'
 * `caBundle` is simply the CA's root bundle, whichever replica the API server reaches.
 */
import type { Logger } from 'pino';
import { spiffeId } from '../ca/authn/common';
import { ServingCertificate } from '../ca/tls-server';
import type { CertificateAuthority } from '../ca/types';

/** What the HTTPS server serves: leaf first, then intermediates (PEM), and its key. */
export interface WebhookCertificate {
  certChainPem: string;
  keyPem: string;
}

/** `istiod.istio-system.svc`, `istiod.istio-system.svc.cluster.local`, `istiod.istio-system`, `istiod`. */
export function webhookDnsNames(service = 'istiod', namespace = 'istio-system', domain = 'cluster.local'): string[] {
  return [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.${domain}`, `${service}.${namespace}`, service];
}

export interface WebhookCertificateOptions {
  /** meshd's CA (its root bundle is the webhook configurations' caBundle). */
  ca: CertificateAuthority;
  /** meshd's namespace: the names are istiod's Service names there. */
  namespace: string;
  domain: string;
  /** Extra DNS names (ISTIOD_CUSTOM_HOST). */
  customHosts: readonly string[];
  /** meshd's revision: other than default, its Service `istiod-<rev>` is named too (the webhooks' clientConfig). */
  revision?: string;
  log: Logger;
  /** Lifetime asked for; default 24 h, renewed at half. */
  ttlSeconds?: number;
  /** First retry delay after a failed issuance; default 1 s. */
  retryMs?: number;
}

/** The names of the webhook certificate: istiod's Service names, then the custom hosts. */
export function webhookCertificateNames(namespace: string, domain: string, customHosts: readonly string[], revision?: string): string[] {
  const own = revision && revision !== 'default' ? webhookDnsNames(`istiod-${revision}`, namespace, domain) : [];
  return [...new Set([...webhookDnsNames('istiod', namespace, domain), ...own, ...customHosts])];
}

/**
 * A `ServingCertificate` (src/ca/tls-server.ts) for the webhooks: call `start()` once the CA can
 * sign, `close()` to stop renewing; `followCertificates` hands each one to the server.
 */
export function webhookServingCertificate(o: WebhookCertificateOptions): ServingCertificate {
  return new ServingCertificate({
    ca: o.ca,
    dnsNames: webhookCertificateNames(o.namespace, o.domain, o.customHosts, o.revision),
    identity: spiffeId(o.ca.trustDomain, o.namespace, 'istiod'),
    log: o.log,
    ...(o.ttlSeconds !== undefined ? { ttlSeconds: o.ttlSeconds } : {}),
    ...(o.retryMs !== undefined ? { retryMs: o.retryMs } : {}),
  });
}

/**
 * Calls `apply` with the current certificate of `source` (if any) and with every renewal; returns
 * the function that stops following.
 */
export function followCertificates(
  source: Pick<ServingCertificate, 'addIdentityCertificateListener' | 'removeIdentityCertificateListener'>,
  apply: (c: WebhookCertificate) => void,
): () => void {
  const listener = (u: { certificate: Buffer; privateKey: Buffer } | null): void => {
    if (u) apply({ certChainPem: u.certificate.toString('utf8'), keyPem: u.privateKey.toString('utf8') });
  };
  source.addIdentityCertificateListener(listener);
  return () => source.removeIdentityCertificateListener(listener);
}
