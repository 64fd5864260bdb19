/**
 * The full field set of Istio's Gateway spec (networking.istio.io v1 / v1beta1 / v1alpha3), as
 * in Istio's CRD, and the cipher suite names Istio accepts in `tls.cipherSuites`.
 */
import { arrayOf, bool, closed, mapOf, oneOf, str, u32 } from './schema';

export const TLS_MODES = ['PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL'] as const;
export const TLS_VERSIONS = ['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'] as const;

const tlsVersion = oneOf(...TLS_VERSIONS);

export const serverTlsSchema = closed({
  httpsRedirect: bool,
  mode: oneOf(...TLS_MODES),
  serverCertificate: str,
  privateKey: str,
  caCertificates: str,
  caCrl: str,
  credentialName: str,
  credentialNames: arrayOf(str),
  tlsCertificates: arrayOf(closed({ serverCertificate: str, privateKey: str, caCertificates: str })),
  subjectAltNames: arrayOf(str),
  verifyCertificateSpki: arrayOf(str),
  verifyCertificateHash: arrayOf(str),
  minProtocolVersion: tlsVersion,
  maxProtocolVersion: tlsVersion,
  cipherSuites: arrayOf(str),
});

export const gatewaySchema = closed({
  servers: arrayOf(
    closed({
      port: closed({ number: u32, protocol: str, name: str, targetPort: u32 }),
      bind: str,
      hosts: arrayOf(str),
      tls: serverTlsSchema,
      defaultEndpoint: str,
      name: str,
    }),
  ),
  selector: mapOf(str),
});

/** BoringSSL's cipher suite names (without PSK suites), as Istio lists them for gateways. */
export const VALID_CIPHER_SUITES: ReadonlySet<string> = new Set([
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-SHA',
  'ECDHE-RSA-AES128-SHA',
  'ECDHE-ECDSA-AES256-SHA',
  'ECDHE-RSA-AES256-SHA',
  'AES128-GCM-SHA256',
  'AES256-GCM-SHA384',
  'AES128-SHA',
  'AES256-SHA',
  'DES-CBC3-SHA',
]);

/**
 * A cipher suite entry Envoy will accept: a known name, `ALL`, or an expression that starts with
 * an operator or bracket (`!`, `-`, `+`, `[`), which Istio passes through unparsed.
 */
export function isValidCipherSuite(cs: string): boolean {
  if (cs === '' || cs === 'ALL') return true;
  if (!/^[\p{L}\p{N}]/u.test(cs)) return true;
  return VALID_CIPHER_SUITES.has(cs);
}
