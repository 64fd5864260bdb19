/**
 * A proxy that proves who it is, as istio-agent does for a gateway: a workload certificate from
 * meshd's CA (asked for over TLS with a service-account token), then xDS over TLS presenting it.
 */
import * as grpc from '@grpc/grpc-js';
import { keyAndCsr } from '../../src/ca/tls-server';
import { type IstioCertificateRequest, type IstioCertificateResponse, loadCaProto } from '../../src/ca/service';

export interface WorkloadCert {
  keyPem: string;
  /** Leaf first, root last. */
  chainPem: string[];
}

/** istiod's serving name that 15012's certificate carries (the TLS server name to check). */
export const ISTIOD_SERVER_NAME = 'istiod.istio-system.svc';

export function tlsChannel(rootPem: string, cert?: WorkloadCert): { credentials: grpc.ChannelCredentials; channelOptions: grpc.ChannelOptions } {
  const credentials = grpc.credentials.createSsl(Buffer.from(rootPem), cert ? Buffer.from(cert.keyPem) : null, cert ? Buffer.from(cert.chainPem.slice(0, -1).join('')) : null);
  return { credentials, channelOptions: { 'grpc.ssl_target_name_override': ISTIOD_SERVER_NAME, 'grpc.default_authority': ISTIOD_SERVER_NAME } };
}

export function bearer(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
}

/** CreateCertificate over TLS for `spiffeId`, proving it with `token`. */
export async function workloadCert(o: { address: string; rootPem: string; token: string; spiffeId: string }): Promise<WorkloadCert> {
  const { keyPem, csrPem } = keyAndCsr([o.spiffeId], []);
  const pkg = loadCaProto() as unknown as { istio: { v1: { auth: { IstioCertificateService: grpc.ServiceClientConstructor } } } };
  const { credentials, channelOptions } = tlsChannel(o.rootPem);
  const client = new pkg.istio.v1.auth.IstioCertificateService(o.address, credentials, channelOptions);
  try {
    const res = await new Promise<IstioCertificateResponse>((resolve, reject) =>
      (
        client as unknown as {
          CreateCertificate: (req: IstioCertificateRequest, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: IstioCertificateResponse) => void) => void;
        }
      ).CreateCertificate({ csr: csrPem, validity_duration: 3600 }, bearer(o.token), (err, r) => (err ? reject(err) : resolve(r))),
    );
    return { keyPem, chainPem: res.cert_chain };
  } finally {
    client.close();
  }
}
