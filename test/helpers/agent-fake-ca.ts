/**
 * A small CA speaking Istio's `IstioCertificateService/CreateCertificate` for the agent's tests:
 * a self-signed root and an intermediate (ECDSA P-256), leaves for whatever key the CSR holds
 * (X.509 assembled with node-forge's ASN.1, signed with Node's crypto), the requested lifetime
 * honoured, and the identity taken from what the caller proved (a known bearer token, or a TLS
 * client certificate chaining to the root), never from the CSR. It can be told to fail, or to
 * answer with a chain from a foreign CA (an impostor on the path, or a compromised CA).
 */
import { createPublicKey, generateKeyPairSync, type KeyObject, randomBytes, sign, X509Certificate } from 'node:crypto';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import forge from 'node-forge';

const asn1 = forge.asn1;
type Node = forge.asn1.Asn1;
const U = asn1.Class.UNIVERSAL;
const seq = (items: Node[]): Node => asn1.create(U, asn1.Type.SEQUENCE, true, items);
const oid = (o: string): Node => asn1.create(U, asn1.Type.OID, false, asn1.oidToDer(o).getBytes());
const octets = (n: Node): Node => asn1.create(U, asn1.Type.OCTETSTRING, false, asn1.toDer(n).getBytes());
const bool = (v: boolean): Node => asn1.create(U, asn1.Type.BOOLEAN, false, String.fromCharCode(v ? 0xff : 0));
const bin = (n: Node): Buffer => Buffer.from(asn1.toDer(n).getBytes(), 'binary');
const fromDer = (b: Buffer): Node => asn1.fromDer(forge.util.createBuffer(b.toString('binary')));
const pem = (der: Buffer): string =>
  `-----BEGIN CERTIFICATE-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
const name = (cn?: string): Node => seq(cn ? [asn1.create(U, asn1.Type.SET, true, [seq([oid('2.5.4.10'), asn1.create(U, asn1.Type.UTF8, false, cn)])])] : []);

interface Signer {
  key: KeyObject;
  name: Node;
  pem: string;
}

function certificate(o: {
  issuer: Signer | 'self';
  subject: string | undefined;
  spki: Node;
  selfKey?: KeyObject;
  notBefore: Date;
  notAfter: Date;
  ca: boolean;
  uri?: string;
  dns?: string;
}): string {
  const issuerName = o.issuer === 'self' ? name(o.subject) : o.issuer.name;
  const signingKey = o.issuer === 'self' ? (o.selfKey as KeyObject) : o.issuer.key;
  const alg = seq([oid('1.2.840.10045.4.3.2')]);
  const exts: Node[] = [seq([oid('2.5.29.19'), bool(true), octets(seq(o.ca ? [bool(true)] : []))])];
  // keyUsage: CA keyCertSign|cRLSign; leaf digitalSignature|keyEncipherment.
  const ku = o.ca ? '\x01\x06' : '\x05\xa0';
  exts.push(seq([oid('2.5.29.15'), bool(true), asn1.create(U, asn1.Type.OCTETSTRING, false, asn1.toDer(asn1.create(U, asn1.Type.BITSTRING, false, ku)).getBytes())]));
  if (!o.ca) exts.push(seq([oid('2.5.29.37'), octets(seq([oid('1.3.6.1.5.5.7.3.1'), oid('1.3.6.1.5.5.7.3.2')]))]));
  if (o.uri) exts.push(seq([oid('2.5.29.17'), bool(true), octets(seq([asn1.create(asn1.Class.CONTEXT_SPECIFIC, 6, false, o.uri)]))]));
  if (o.dns) exts.push(seq([oid('2.5.29.17'), octets(seq([asn1.create(asn1.Class.CONTEXT_SPECIFIC, 2, false, o.dns)]))]));
  const tbs = seq([
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [asn1.create(U, asn1.Type.INTEGER, false, String.fromCharCode(2))]),
    asn1.create(U, asn1.Type.INTEGER, false, `\x01${randomBytes(15).toString('binary')}`),
    alg,
    issuerName,
    seq([asn1.create(U, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(o.notBefore)), asn1.create(U, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(o.notAfter))]),
    name(o.subject),
    o.spki,
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 3, true, [seq(exts)]),
  ]);
  const sig = sign('sha256', bin(tbs), signingKey);
  return pem(bin(seq([tbs, alg, asn1.create(U, asn1.Type.BITSTRING, false, `\x00${sig.toString('binary')}`)])));
}

function newCa(subject: string, issuer: Signer | 'self'): Signer {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const now = Date.now();
  const p = certificate({
    issuer,
    subject,
    spki: fromDer(publicKey.export({ type: 'spki', format: 'der' })),
    selfKey: privateKey,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 10 * 24 * 3600_000),
    ca: true,
  });
  return { key: privateKey, name: name(subject), pem: p };
}

/** The SubjectPublicKeyInfo of a PEM CSR (its signature is not checked: the agent's tests do that with openssl). */
function csrSpki(csrPem: string): Node {
  const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const info = (fromDer(der).value as Node[])[0] as Node;
  return (info.value as Node[])[2] as Node;
}

export interface FakeCaCall {
  via: 'token' | 'mtls';
  identity: string;
  ttlSeconds: number;
  csrPem: string;
  clusterId?: string;
}

/**
 * How the CA answers: `good`, its own chain; `foreign-root`, a leaf from a foreign intermediate
 * with that intermediate and the foreign root; `claims-our-root`, the same leaf and foreign
 * intermediate but ending with the real root (last, as if it were the issuer).
 */
export type FakeCaAnswer = 'good' | 'foreign-root' | 'claims-our-root';

export class FakeCa {
  readonly root = newCa('meshd agent test root', 'self');
  readonly intermediate = newCa('meshd agent test intermediate', this.root);
  /** The same subjects as root and intermediate, other keys. */
  readonly foreignRoot = newCa('meshd agent test root', 'self');
  readonly foreignIntermediate = newCa('meshd agent test intermediate', this.foreignRoot);
  answer: FakeCaAnswer = 'good';
  readonly calls: FakeCaCall[] = [];
  /** Bearer token → identity it proves. */
  readonly tokens = new Map<string, string>();
  /** While set, every call fails with UNAVAILABLE (after being counted in `failures`). */
  failing = false;
  failures = 0;
  private readonly server = new grpc.Server();
  private readonly serving: { cert: string; key: string };

  constructor(serverName = 'istiod.istio-system.svc') {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const now = Date.now();
    const cert = certificate({
      issuer: this.intermediate,
      subject: 'istiod',
      spki: fromDer(publicKey.export({ type: 'spki', format: 'der' })),
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 3600_000),
      ca: false,
      dns: serverName,
    });
    this.serving = { cert: cert + this.intermediate.pem, key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
    const def = protoLoader.loadSync(path.join(__dirname, '..', '..', 'proto', 'istioca.proto'), { keepCase: true, longs: Number, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { istio: { v1: { auth: { IstioCertificateService: { service: grpc.ServiceDefinition } } } } };
    this.server.addService(pkg.istio.v1.auth.IstioCertificateService.service, { CreateCertificate: this.create.bind(this) });
  }

  /** Listens on 127.0.0.1, plaintext or TLS (client certificates optional, verified against the root). */
  listen(tls: boolean): Promise<number> {
    // Client certificates requested but optional (the first call has only a token), as meshd's CA.
    const provider = {
      addCaCertificateListener: (l: (u: { caCertificate: Buffer }) => void) => queueMicrotask(() => l({ caCertificate: Buffer.from(this.root.pem) })),
      removeCaCertificateListener: () => undefined,
      addIdentityCertificateListener: (l: (u: { certificate: Buffer; privateKey: Buffer }) => void) =>
        queueMicrotask(() => l({ certificate: Buffer.from(this.serving.cert), privateKey: Buffer.from(this.serving.key) })),
      removeIdentityCertificateListener: () => undefined,
    };
    const creds = tls ? grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false) : grpc.ServerCredentials.createInsecure();
    return new Promise((resolve, reject) => this.server.bindAsync('127.0.0.1:0', creds, (err, port) => (err ? reject(err) : resolve(port))));
  }

  close(): void {
    this.server.forceShutdown();
  }

  private create(
    call: grpc.ServerUnaryCall<{ csr: string; validity_duration: number; metadata?: { fields?: Record<string, { stringValue?: string }> } }, { cert_chain: string[] }>,
    cb: grpc.sendUnaryData<{ cert_chain: string[] }>,
  ): void {
    if (this.failing) {
      this.failures++;
      cb({ code: grpc.status.UNAVAILABLE, details: 'CA is down (test)' });
      return;
    }
    const auth = String(call.metadata.get('authorization')[0] ?? '');
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
    let identity = token ? this.tokens.get(token) : undefined;
    let via: FakeCaCall['via'] = 'token';
    const peer = call.getAuthContext()?.sslPeerCertificate?.raw;
    if (!identity && peer && peer.length > 0) {
      const x = new X509Certificate(peer);
      const verified = x.verify(new X509Certificate(this.intermediate.pem).publicKey) && x.validTo && new Date(x.validTo).getTime() > Date.now();
      const uri = (x.subjectAltName ?? '').split(/,\s*/).find((s) => s.startsWith('URI:'));
      if (verified && uri) {
        identity = uri.slice(4);
        via = 'mtls';
      }
    }
    if (!identity) {
      cb({ code: grpc.status.UNAUTHENTICATED, details: 'no valid token or client certificate' });
      return;
    }
    const ttl = Number(call.request.validity_duration) || 24 * 3600;
    const clusterId = call.request.metadata?.fields?.['ClusterID']?.stringValue;
    this.calls.push({ via, identity, ttlSeconds: ttl, csrPem: call.request.csr, ...(clusterId ? { clusterId } : {}) });
    const now = Date.now();
    const issuer = this.answer === 'good' ? this.intermediate : this.foreignIntermediate;
    const leaf = certificate({
      issuer,
      subject: undefined,
      spki: csrSpki(call.request.csr),
      notBefore: new Date(now - 1000),
      notAfter: new Date(now + ttl * 1000),
      ca: false,
      uri: identity,
    });
    const rootPem = this.answer === 'foreign-root' ? this.foreignRoot.pem : this.root.pem;
    cb(null, { cert_chain: [leaf, issuer.pem, rootPem] });
  }
}

/** The public key (SPKI DER) of a certificate or private key PEM, for comparisons. */
export const spkiOf = (p: string): Buffer => (p.includes('PRIVATE KEY') ? createPublicKey(p) : new X509Certificate(p).publicKey).export({ type: 'spki', format: 'der' });
