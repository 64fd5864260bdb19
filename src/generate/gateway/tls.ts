/**
 * DownstreamTlsContext for gateway servers that terminate TLS, as istiod builds it
 * (BuildListenerTLSContext): `credentialName` certificates over SDS from the control plane
 * (ADS), ISTIO_MUTUAL and file-mounted certificates from istio-agent's `sds-grpc` cluster.
 */
import type { GatewayServer, ServerTLSSettings } from '../../model/objects';
import type { ProtoObject } from '../types';
import { SDS_DEFAULT, SDS_ROOT, agentSds } from '../agent-sds';
import { isTcpServerWithTlsTermination, tlsMode } from './hosts';

const DOWNSTREAM_TLS_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';

/** The secret type meshd serves over SDS, and the `-cacert` suffix of CA-only names. */
export const KUBERNETES_SECRET_PREFIX = 'kubernetes://';
export const CA_SUFFIX = '-cacert';

/** istio-agent's SDS cluster and its workload certificate / root names. */

const ALPN_HTTP: readonly string[] = ['h2', 'http/1.1'];
/** ISTIO_MUTUAL on a TCP server also offers Istio's metadata exchange. */
const ALPN_DOWNSTREAM_WITH_MXC: readonly string[] = ['istio-peer-exchange', 'h2', 'http/1.1'];

/** `credentialName` → SDS resource name (istiod's credentials.ToResourceName). */
function credentialResourceName(name: string): string {
  return name.includes('://') ? name : `${KUBERNETES_SECRET_PREFIX}${name}`;
}

/** A credential served by the control plane over ADS (no initial fetch timeout: the Secret may not exist yet). */
function credentialSds(name: string): ProtoObject {
  return { name: credentialResourceName(name), sds_config: { ads: {}, resource_api_version: 'V3' } };
}

function exactSans(sans: readonly string[] | undefined): ProtoObject[] {
  return (sans ?? []).map((s) => ({ exact: s }));
}

const TLS_VERSION: Readonly<Record<string, string>> = { TLSV1_0: 'TLSv1_0', TLSV1_1: 'TLSv1_1', TLSV1_2: 'TLSv1_2', TLSV1_3: 'TLSv1_3' };

function tlsParams(t: ServerTLSSettings): ProtoObject | undefined {
  const out: ProtoObject = {};
  const min = t.minProtocolVersion ? TLS_VERSION[t.minProtocolVersion] : undefined;
  const max = t.maxProtocolVersion ? TLS_VERSION[t.maxProtocolVersion] : undefined;
  if (min) out.tls_minimum_protocol_version = min;
  if (max) out.tls_maximum_protocol_version = max;
  if (t.cipherSuites?.length) out.cipher_suites = [...new Set(t.cipherSuites)];
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The certificate and validation part for `credentialName(s)` (ApplyCredentialSDSToServerCommonTLSContext). */
function credentialContext(t: ServerTLSSettings, ctx: ProtoObject): void {
  const names = t.credentialNames?.length ? t.credentialNames : [t.credentialName ?? ''];
  ctx.tls_certificate_sds_secret_configs = names.map(credentialSds);
  const mode = tlsMode(t);
  if (mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL') {
    const dflt: ProtoObject = {};
    if (t.subjectAltNames?.length) dflt.match_subject_alt_names = exactSans(t.subjectAltNames);
    if (t.verifyCertificateSpki?.length) dflt.verify_certificate_spki = [...t.verifyCertificateSpki];
    if (t.verifyCertificateHash?.length) dflt.verify_certificate_hash = [...t.verifyCertificateHash];
    // One CA for all credentials: the first one's `-cacert`.
    ctx.combined_validation_context = { default_validation_context: dflt, validation_context_sds_secret_config: credentialSds(`${names[0] ?? ''}${CA_SUFFIX}`) };
  } else if (t.subjectAltNames?.length) {
    ctx.validation_context = { match_subject_alt_names: exactSans(t.subjectAltNames) };
  }
}

/** Workload certificates (ISTIO_MUTUAL) or file paths, both read by istio-agent (ApplyToCommonTLSContext). */
function agentContext(t: ServerTLSSettings, ctx: ProtoObject, validateClient: boolean, istioMutual: boolean): void {
  const cert = !istioMutual && t.serverCertificate && t.privateKey ? `file-cert:${t.serverCertificate}~${t.privateKey}` : SDS_DEFAULT;
  ctx.tls_certificate_sds_secret_configs = [agentSds(cert)];
  if (!validateClient) return;
  const dflt: ProtoObject = {};
  if (t.subjectAltNames?.length) dflt.match_subject_alt_names = exactSans(t.subjectAltNames);
  if (t.caCrl) dflt.crl = { filename: t.caCrl };
  const root = !istioMutual && t.caCertificates ? `file-root:${t.caCertificates}` : SDS_ROOT;
  ctx.combined_validation_context = { default_validation_context: dflt, validation_context_sds_secret_config: agentSds(root) };
}

/** DownstreamTlsContext for a server that terminates TLS; undefined for passthrough or no TLS. */
export function downstreamTlsContext(server: GatewayServer): ProtoObject | undefined {
  const t = server.tls;
  if (!t) return undefined;
  const mode = tlsMode(t);
  if (mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH') return undefined;
  const istioMutual = mode === 'ISTIO_MUTUAL';
  const common: ProtoObject = { alpn_protocols: [...(istioMutual && isTcpServerWithTlsTermination(server) ? ALPN_DOWNSTREAM_WITH_MXC : ALPN_HTTP)] };
  const requireClient = mode === 'MUTUAL' || istioMutual;
  if (istioMutual) agentContext(t, common, true, true);
  else if (t.credentialName || t.credentialNames?.length) credentialContext(t, common);
  else agentContext(t, common, requireClient || mode === 'OPTIONAL_MUTUAL', false);
  if (mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL') {
    const params = tlsParams(t);
    if (params) common.tls_params = params;
  }
  return { common_tls_context: common, require_client_certificate: { value: requireClient } };
}

export function transportSocket(tls: ProtoObject): ProtoObject {
  return { name: 'envoy.transport_sockets.tls', typed_config: { '@type': DOWNSTREAM_TLS_TYPE, ...tls } };
}
