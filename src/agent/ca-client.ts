/**
 * The client side of Istio's CA API, `istio.v1.auth.IstioCertificateService/CreateCertificate`:
 * a CSR (PEM), a requested validity in seconds and metadata in; the certificate chain (leaf first,
 * root last) out.
 *
 * Authentication, as istio-agent does it: a bearer token (`authorization: Bearer <jwt>`, read from
 * the token file at every call, since Kubernetes rotates it) and, over TLS, the workload's current
 * certificate as the client certificate, so a renewal is proved by mTLS even without a token.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';

export const CREATE_CERTIFICATE_PATH = '/istio.v1.auth.IstioCertificateService/CreateCertificate';

/** The wire contract: Istio's istioca.proto (package istio.v1.auth), shared with meshd's CA. */
export const ISTIOCA_PROTO_FILE = path.join(__dirname, '..', '..', 'proto', 'istioca.proto');

export interface CaMessages {
  Request: protobuf.Type;
  Response: protobuf.Type;
}

export function loadCaMessages(): CaMessages {
  const root = new protobuf.Root().loadSync(ISTIOCA_PROTO_FILE, { keepCase: true });
  root.resolveAll();
  return { Request: root.lookupType('istio.v1.auth.IstioCertificateRequest'), Response: root.lookupType('istio.v1.auth.IstioCertificateResponse') };
}

export interface CaClientOptions {
  /** host:port of the CA (meshd 15010 plaintext, 15012 TLS). */
  address: string;
  /** Plaintext (15010) instead of TLS (15012). */
  plaintext: boolean;
  /** PEM of the root that signs the CA's serving certificate (TLS only). */
  rootCertPem?: () => string | undefined;
  /** The name the CA's certificate must carry when it differs from the address's host. */
  serverName?: string;
  /** File with the bearer JWT; unreadable or absent means no token is sent. */
  tokenFile?: string;
  /** Request metadata (e.g. ClusterID), as istio-agent sends it. */
  metadata?: Readonly<Record<string, string>>;
  /** Per-call deadline (default 10 s). */
  timeoutMs?: number;
}

export interface SignCall {
  csrPem: string;
  ttlSeconds: number;
  /** The current certificate and key, presented as the TLS client certificate (renewals). */
  clientCert?: { certChainPem: string; keyPem: string };
}

/** A signing call's failure. The message never contains key material or the token. */
export class CaClientError extends Error {
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
  }
}

export class CaClient {
  private readonly messages = loadCaMessages();

  constructor(private readonly opts: CaClientOptions) {}

  private credentials(call: SignCall): grpc.ChannelCredentials {
    if (this.opts.plaintext) return grpc.credentials.createInsecure();
    const root = this.opts.rootCertPem?.();
    const rootBuf = root ? Buffer.from(root) : null;
    if (call.clientCert) return grpc.credentials.createSsl(rootBuf, Buffer.from(call.clientCert.keyPem), Buffer.from(call.clientCert.certChainPem));
    return grpc.credentials.createSsl(rootBuf);
  }

  private token(): string | undefined {
    if (!this.opts.tokenFile) return undefined;
    try {
      const t = fs.readFileSync(this.opts.tokenFile, 'utf8').trim();
      return t === '' ? undefined : t;
    } catch {
      return undefined;
    }
  }

  /** Signs `csrPem`; resolves to the PEM chain, leaf first. */
  async sign(call: SignCall): Promise<string[]> {
    const token = this.token();
    if (!token && !(call.clientCert && !this.opts.plaintext)) {
      throw new CaClientError(
        `no credentials: token file ${JSON.stringify(this.opts.tokenFile ?? '')} is missing or empty${this.opts.plaintext ? '' : ' and there is no certificate to renew with'}`,
      );
    }
    const md = new grpc.Metadata();
    if (token) md.set('authorization', `Bearer ${token}`);
    const { Request, Response } = this.messages;
    const fields: Record<string, { stringValue: string }> = {};
    for (const [k, v] of Object.entries(this.opts.metadata ?? {})) fields[k] = { stringValue: v };
    const req = { csr: call.csrPem, validity_duration: call.ttlSeconds, ...(Object.keys(fields).length > 0 ? { metadata: { fields } } : {}) };
    const channelOptions: grpc.ChannelOptions = this.opts.serverName
      ? { 'grpc.ssl_target_name_override': this.opts.serverName, 'grpc.default_authority': this.opts.serverName }
      : {};
    // A fresh channel per call: the client certificate changes with every rotation, and calls are
    // rare (one per half-life).
    const client = new grpc.Client(this.opts.address, this.credentials(call), channelOptions);
    try {
      return await new Promise<string[]>((resolve, reject) => {
        client.makeUnaryRequest(
          CREATE_CERTIFICATE_PATH,
          (v: Record<string, unknown>) => Buffer.from(Request.encode(Request.fromObject(v)).finish()),
          (b: Buffer) => Response.toObject(Response.decode(b), { defaults: true }) as { cert_chain: string[] },
          req,
          md,
          { deadline: Date.now() + (this.opts.timeoutMs ?? 10_000) },
          (err, res) => {
            if (err) reject(new CaClientError(`CreateCertificate failed: ${grpc.status[err.code] ?? err.code}: ${err.details}`, err.code));
            else if (!res || res.cert_chain.length === 0) reject(new CaClientError('CreateCertificate returned an empty certificate chain'));
            else resolve(res.cert_chain);
          },
        );
      });
    } finally {
      client.close();
    }
  }
}
