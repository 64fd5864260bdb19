/**
 * SDS for gateway proxies: `credentialName` Secrets as Envoy Secret resources, as istiod serves
 * them (pilot/pkg/xds/sds.go). `kubernetes://<name>` is the certificate chain and private key of
 * Secret <name> in the proxy's namespace; `kubernetes://<name>-cacert` the CA bundle, from a
 * Secret named `<name>-cacert` if there is one, else from `ca.crt` of <name>. Only a proxy whose
 * identity the server verified reads them, and only Secrets of that identity's namespace. Certificates and keys are parsed for real; a certificate that
 * does not parse, or a key that does not belong to it, is not served, and the reason (never
 * the key) is reported. Nothing here logs or returns key material except the Secret itself.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { Proxy } from '../model/proxy';
import type { CredentialSecret, MeshSnapshot } from '../model/snapshot';
import { CA_SUFFIX, KUBERNETES_SECRET_PREFIX } from './gateway/tls';
import type { GenerateContext, ProtoObject, Resource } from './types';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** istiod's name for a CA bundle in a ConfigMap (credentials.KubernetesConfigMapTypeURI). */
const CONFIGMAP_PREFIX = 'configmap://';

/** istiod's name for a Secret a Gateway API Gateway references in another namespace. */
const KUBERNETES_GATEWAY_PREFIX = 'kubernetes-gateway://';

/**
 * `kubernetes://[ns/]name` or `kubernetes-gateway://ns/name` → where the Secret lives (and which
 * form named it); undefined for names meshd does not serve.
 */
function parseSecretName(resource: string, proxyNamespace: string): { namespace: string; name: string; gatewayRef: boolean } | undefined {
  const gatewayRef = resource.startsWith(KUBERNETES_GATEWAY_PREFIX);
  if (!gatewayRef && !resource.startsWith(KUBERNETES_SECRET_PREFIX)) return undefined;
  const rest = resource.slice(gatewayRef ? KUBERNETES_GATEWAY_PREFIX.length : KUBERNETES_SECRET_PREFIX.length);
  const slash = rest.indexOf('/');
  if (gatewayRef && slash < 0) return undefined;
  const namespace = slash < 0 ? proxyNamespace : rest.slice(0, slash);
  const name = slash < 0 ? rest : rest.slice(slash + 1);
  if (!namespace || !name || name.includes('/')) return undefined;
  return { namespace, name, gatewayRef };
}

/**
 * A Secret of another namespace that a gateway of `credentialNamespace` may read: named in the
 * Gateway API's form, referenced by a Gateway of that namespace and permitted by a ReferenceGrant
 * (istiod's SecretGen check for `kubernetes-gateway://`).
 */
function grantedAcross(snap: MeshSnapshot, credentialNamespace: string, ref: { namespace: string; name: string; gatewayRef: boolean }): boolean {
  if (!ref.gatewayRef) return false;
  const base = ref.name.endsWith(CA_SUFFIX) ? ref.name.slice(0, -CA_SUFFIX.length) : ref.name;
  return (
    snap.gatewayCredentialGrants.includes(`${credentialNamespace}|${ref.namespace}/${ref.name}`) ||
    snap.gatewayCredentialGrants.includes(`${credentialNamespace}|${ref.namespace}/${base}`)
  );
}

/** Every certificate of a PEM bundle, parsed; throws a message that names no content. */
function parseCertificates(pem: string, what: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new Error(`${what}: no PEM certificate found`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch {
      throw new Error(`${what}: certificate ${i + 1} of ${blocks.length} is not a valid X.509 certificate`);
    }
  });
}

/** Why a Secret's certificate and key cannot be served, or undefined when they form a valid pair. */
function certificateProblem(s: CredentialSecret): string | undefined {
  if (s.certChain === undefined) return 'no certificate (tls.crt or cert)';
  if (s.privateKey === undefined) return 'no private key (tls.key or key)';
  let leaf: X509Certificate | undefined;
  try {
    leaf = parseCertificates(s.certChain, 'certificate chain')[0];
  } catch (err) {
    return (err as Error).message;
  }
  let ok: boolean;
  try {
    ok = leaf !== undefined && leaf.checkPrivateKey(createPrivateKey(s.privateKey));
  } catch {
    return 'private key: not a valid PEM private key';
  }
  return ok ? undefined : 'private key does not belong to the certificate (they are not a key pair)';
}

/** Why a CA bundle cannot be served, or undefined. */
function caProblem(pem: string | undefined): string | undefined {
  if (pem === undefined) return 'no CA certificate (ca.crt or cacert)';
  try {
    parseCertificates(pem, 'CA certificate');
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The Secret that holds the CA of `<name>-cacert` (istiod's GetCaCert: the `-cacert` Secret, else `<name>`). */
function caSource(snap: MeshSnapshot, namespace: string, name: string): CredentialSecret | undefined {
  return snap.secrets.get(`${namespace}/${name}`) ?? snap.secrets.get(`${namespace}/${name.slice(0, -CA_SUFFIX.length)}`);
}

function inline(pem: string): ProtoObject {
  return { inline_bytes: Buffer.from(pem, 'utf8').toString('base64') };
}

/**
 * Why `resource` is not served to `proxy`, or undefined when it may be: istiod's SecretGen
 * authorization. Only a verified identity gets credentials, only from its own namespace.
 */
export function secretDenial(proxy: Pick<Proxy, 'type' | 'namespace' | 'credentialNamespace'>, resource: string, noIdentityReason: string): string | undefined {
  // A ConfigMap's CA bundle is public: istiod serves it to any proxy (BackendTLSPolicy, mesh and gateways).
  if (parseConfigMapCa(resource)) return undefined;
  if (proxy.type !== 'router') return 'only gateway (router) proxies are served credentials by the control plane';
  const ref = parseSecretName(resource, proxy.namespace);
  if (!ref) return `not a credential name this control plane serves (want ${KUBERNETES_SECRET_PREFIX}[namespace/]name or ${KUBERNETES_GATEWAY_PREFIX}namespace/name)`;
  if (proxy.credentialNamespace === undefined) return noIdentityReason;
  // A Gateway API reference across namespaces is served only where a ReferenceGrant permits it;
  // the snapshot decides that (secretResources), so nothing is reported here.
  if (ref.gatewayRef) return undefined;
  if (ref.namespace !== proxy.credentialNamespace) return `Secret ${ref.namespace}/${ref.name} is outside the verified identity's namespace ${proxy.credentialNamespace}`;
  return undefined;
}

/** `configmap://<ns>/<name>-cacert` → the ConfigMap it names; undefined for any other name. */
function parseConfigMapCa(resource: string): { namespace: string; name: string } | undefined {
  if (!resource.startsWith(CONFIGMAP_PREFIX) || !resource.endsWith(CA_SUFFIX)) return undefined;
  const [namespace, name, ...extra] = resource.slice(CONFIGMAP_PREFIX.length, -CA_SUFFIX.length).split('/');
  if (!namespace || !name || extra.length > 0) return undefined;
  return { namespace, name };
}

/** A ConfigMap CA bundle (istiod's `configmap://` credentials): the root only, to any proxy. */
function configMapResource(snap: MeshSnapshot, resource: string): Resource | undefined {
  const ref = parseConfigMapCa(resource);
  const pem = ref ? snap.configMapCAs?.get(`${ref.namespace}/${ref.name}`) : undefined;
  if (pem === undefined) return undefined;
  return { name: resource, build: () => ({ name: resource, validation_context: { trusted_ca: inline(pem) } }) };
}

/** One requested SDS name → its resource, or undefined when it is not served to this proxy. */
function secretResource(snap: MeshSnapshot, credentialNamespace: string, resource: string): Resource | undefined {
  const ref = parseSecretName(resource, credentialNamespace);
  // istiod's authorization: a verified gateway reads Secrets in its own namespace, and others
  // only through a Gateway API reference a ReferenceGrant permits.
  if (!ref || (ref.namespace !== credentialNamespace && !grantedAcross(snap, credentialNamespace, ref))) return undefined;
  const key = `${ref.namespace}/${ref.name}`;
  if (ref.name.endsWith(CA_SUFFIX)) {
    const src = caSource(snap, ref.namespace, ref.name);
    if (!src) return undefined;
    return {
      name: resource,
      build: () => {
        const problem = caProblem(src.caCert);
        // Thrown reasons are withheld resources in /debug/push_status; they never quote the Secret.
        if (problem) throw new Error(`Secret ${src.namespace}/${src.name}: ${problem}`);
        return { name: resource, validation_context: { trusted_ca: inline(src.caCert ?? '') } };
      },
    };
  }
  const s = snap.secrets.get(key);
  if (!s) return undefined;
  return {
    name: resource,
    build: () => {
      const problem = certificateProblem(s);
      if (problem) throw new Error(`Secret ${s.namespace}/${s.name}: ${problem}`);
      return { name: resource, tls_certificate: { certificate_chain: inline(s.certChain ?? ''), private_key: inline(s.privateKey ?? '') } };
    },
  };
}

/**
 * SDS for gateway proxies. Only names asked for are served (Envoy never subscribes to all
 * Secrets); sidecars and proxyless gRPC get none from here.
 */
export function secretResources(ctx: GenerateContext): Resource[] {
  if (!ctx.names) return [];
  const names = [...ctx.names].sort();
  // ConfigMap CA bundles go to every proxy (they hold no secret).
  const out: Resource[] = names.map((n) => configMapResource(ctx.snap, n)).filter((r): r is Resource => r !== undefined);
  if (ctx.proxy.type !== 'router') return out;
  const credentialNamespace = ctx.proxy.credentialNamespace;
  // No verified identity: no credential at all (the server reports why).
  if (credentialNamespace === undefined) return out;
  for (const name of names) {
    const r = secretResource(ctx.snap, credentialNamespace, name);
    if (r) out.push(r);
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

export interface CredentialStatus {
  namespace: string;
  name: string;
  /** Which parts the Secret carries; never their contents. */
  has_cert: boolean;
  has_key: boolean;
  has_ca: boolean;
  /** Subject and validity of the leaf certificate when it parses. */
  certificate?: { subject: string; not_before: string; not_after: string; fingerprint256: string };
  problems: string[];
}

/** For /debug/configz: each TLS Secret, what it carries, whether it can be served and why not. No key material. */
export function credentialReport(snap: MeshSnapshot): CredentialStatus[] {
  return [...snap.secrets.values()].map((s) => {
    const problems: string[] = [];
    let certificate: CredentialStatus['certificate'];
    if (s.certChain !== undefined || s.privateKey !== undefined) {
      const p = certificateProblem(s);
      if (p) problems.push(p);
    }
    if (s.certChain !== undefined) {
      try {
        const leaf = parseCertificates(s.certChain, 'certificate chain')[0];
        if (leaf) certificate = { subject: leaf.subject, not_before: leaf.validFrom, not_after: leaf.validTo, fingerprint256: leaf.fingerprint256 };
      } catch {
        // reported above
      }
    }
    if (s.caCert !== undefined) {
      const p = caProblem(s.caCert);
      if (p) problems.push(p);
    }
    return {
      namespace: s.namespace,
      name: s.name,
      has_cert: s.certChain !== undefined,
      has_key: s.privateKey !== undefined,
      has_ca: s.caCert !== undefined,
      ...(certificate ? { certificate } : {}),
      problems,
    };
  });
}
