/**
 * Checks the CA's answer before the agent uses it: the leaf must chain, through the intermediates
 * the CA returned, to a root the agent was configured with (`--ca-root-cert`, Istio's
 * `istio-ca-root-cert` ConfigMap mounted at /var/run/secrets/istio/root-cert.pem). The last
 * certificate of the answer is never trusted for being last: a CA, or whoever sits between the
 * agent and the CA on a plaintext connection, could otherwise hand the workload a root of its
 * own choosing, and the workload would then trust whatever that root signs.
 *
 * Node's crypto has no path validation, so this is a small one: each certificate must name the
 * next as its issuer and carry its signature; every issuer must be a CA; every certificate must be
 * within its validity (notBefore may be up to `skewMs` ahead, as the CA's clock may be); the path
 * ends at a configured root (the same certificate, or one whose key signed the last link).
 * Name constraints and path lengths are not checked.
 */
import { X509Certificate } from 'node:crypto';

/** The PEM certificate blocks of a bundle, each ending with a newline. */
export function pemBlocks(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((b) => `${b}\n`) ?? [];
}

/** Parses a bundle of trusted roots; throws when it holds no certificate or one that does not parse. */
export function parseRoots(bundle: string): X509Certificate[] {
  const blocks = pemBlocks(bundle);
  if (blocks.length === 0) throw new Error('the configured root bundle holds no certificate');
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch {
      throw new Error(`certificate ${i + 1} of the configured root bundle does not parse`);
    }
  });
}

/** Subject, serial and fingerprint: enough to find a certificate in a log, nothing secret. */
const describe = (c: X509Certificate): string => `subject "${c.subject.replace(/\n/g, ', ') || '(empty)'}", issuer "${c.issuer.replace(/\n/g, ', ')}", serial ${c.serialNumber}`;

const signedBy = (child: X509Certificate, issuer: X509Certificate): boolean => child.checkIssued(issuer) && child.verify(issuer.publicKey);

function checkValidity(c: X509Certificate, what: string, now: number, skewMs: number): void {
  if (Date.parse(c.validTo) <= now) throw new Error(`the ${what} (${describe(c)}) expired at ${new Date(c.validTo).toISOString()}`);
  if (Date.parse(c.validFrom) > now + skewMs) throw new Error(`the ${what} (${describe(c)}) is not valid before ${new Date(c.validFrom).toISOString()}`);
}

/**
 * Verifies `chain` (leaf first, as the CA returns it) against `roots`. Returns the root it ends
 * at; throws an Error saying which link failed (no key material is involved).
 */
export function verifyChain(chain: readonly X509Certificate[], roots: readonly X509Certificate[], now: number, skewMs = 60_000): X509Certificate {
  const leaf = chain[0];
  if (!leaf) throw new Error('the CA returned no certificate');
  if (roots.length === 0) throw new Error('no trusted root is configured');
  checkValidity(leaf, 'leaf', now, skewMs);
  let current = leaf;
  for (let i = 1; ; i++) {
    const root = roots.find((r) => r.fingerprint256 === current.fingerprint256) ?? roots.find((r) => r.ca && signedBy(current, r));
    if (root) {
      if (root !== current) checkValidity(root, 'configured root', now, skewMs);
      return root;
    }
    const next = chain[i];
    if (!next) {
      throw new Error(`the chain does not lead to a configured root: its last certificate (${describe(current)}) is neither a configured root nor signed by one`);
    }
    if (!signedBy(current, next)) throw new Error(`certificate ${i} of the chain (${describe(current)}) is not signed by certificate ${i + 1} (${describe(next)})`);
    if (!next.ca) throw new Error(`certificate ${i + 1} of the chain (${describe(next)}) signs another but is not a CA`);
    checkValidity(next, `chain's certificate ${i + 1}`, now, skewMs);
    current = next;
  }
}
