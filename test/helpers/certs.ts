/**
 * Throwaway X.509 material for tests, made at test time: a self-signed CA and certificates it
 * signs (server or client), RSA keys from Node's crypto, certificates built with node-forge.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface Pem {
  cert: string;
  key: string;
}

function keyPair(): { pub: forge.pki.PublicKey; priv: forge.pki.rsa.PrivateKey; keyPem: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const priv = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  return { pub: forge.pki.rsa.setPublicKey(priv.n, priv.e), priv, keyPem };
}

function baseCert(pub: forge.pki.PublicKey, cn: string): forge.pki.Certificate {
  const c = forge.pki.createCertificate();
  c.publicKey = pub;
  // A positive serial: the first byte's high bit clear.
  c.serialNumber = `01${randomBytes(8).toString('hex')}`;
  c.validity.notBefore = new Date(Date.now() - 60_000);
  c.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
  c.setSubject([
    { name: 'organizationName', value: 'meshd test' },
    { name: 'commonName', value: cn },
  ]);
  return c;
}

/** A self-signed CA. */
export function makeCa(cn = 'meshd test CA'): Pem & { forgeCert: forge.pki.Certificate; forgeKey: forge.pki.rsa.PrivateKey } {
  const { pub, priv, keyPem } = keyPair();
  const c = baseCert(pub, cn);
  c.setIssuer(c.subject.attributes);
  c.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
  ]);
  c.sign(priv, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(c), key: keyPem, forgeCert: c, forgeKey: priv };
}

/** A leaf certificate for `dnsNames` (and `ips`) signed by `ca` (server and client use). */
export function issue(ca: ReturnType<typeof makeCa>, dnsNames: string[], cn = dnsNames[0] ?? 'client', ips: string[] = []): Pem {
  const { pub, keyPem } = keyPair();
  const c = baseCert(pub, cn);
  c.setIssuer(ca.forgeCert.subject.attributes);
  c.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    ...(dnsNames.length + ips.length > 0 ? [{ name: 'subjectAltName', altNames: [...dnsNames.map((value) => ({ type: 2, value })), ...ips.map((ip) => ({ type: 7, ip }))] }] : []),
  ]);
  c.sign(ca.forgeKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(c), key: keyPem };
}

/** A Kubernetes TLS Secret as YAML (stringData), optionally with ca.crt. */
export function tlsSecretYaml(namespace: string, name: string, pem: Partial<Pem> & { ca?: string }): string {
  const block = (k: string, v: string): string =>
    `  ${k}: |\n${v
      .trimEnd()
      .split('\n')
      .map((l) => `    ${l}`)
      .join('\n')}\n`;
  return (
    `apiVersion: v1\nkind: Secret\nmetadata: { name: ${name}, namespace: ${namespace} }\ntype: Opaque\nstringData:\n` +
    (pem.cert ? block('tls.crt', pem.cert) : '') +
    (pem.key ? block('tls.key', pem.key) : '') +
    (pem.ca ? block('ca.crt', pem.ca) : '')
  );
}
