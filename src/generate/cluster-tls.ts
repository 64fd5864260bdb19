/**
 * Client-side TLS of an outbound cluster (DestinationRule `tls`), as istiod's cluster_tls.go
 * for Envoy and grpcgen for proxyless gRPC. Certificates are never inlined: Envoy fetches them
 * over SDS from istio-agent (`sds-grpc`, or ADS for credentialName secrets), gRPC clients from
 * their bootstrap's certificate provider `default`.
 */
import type { ClientTLSSettings } from '../model/objects';
import type { ProtoObject } from './types';
import { type ClusterDraft, isHttp2Draft } from './cluster-policy';
import { SDS_DEFAULT, SDS_ROOT, agentSds } from './agent-sds';

export const UPSTREAM_TLS_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
export const TLS_SOCKET_NAME = 'envoy.transport_sockets.tls';
/** The SDS cluster istio-agent's bootstrap defines. */
const CA_SUFFIX = '-cacert';
const ALPN_IN_MESH = ['istio-peer-exchange', 'istio'];
const ALPN_IN_MESH_H2 = ['istio-peer-exchange', 'istio', 'h2'];

/** What TLS needs to know about the cluster beyond the settings. */
export interface TlsTarget {
  /** istiod's default ISTIO_MUTUAL SNI: `outbound_.<port>_.<subset>_.<host>`. */
  sni: string;
  /** spiffe identities of the service's workloads (plus ServiceEntry subjectAltNames). */
  serviceAccounts: readonly string[];
  /** ServiceEntry hosts verify SIMPLE/MUTUAL peers against these when the rule names none. */
  fromServiceEntry: boolean;
  /** credentialName is honoured for sidecars only from rules with a workloadSelector. */
  sidecar: boolean;
  ruleHasSelector: boolean;
}

/** A credentialName secret, served over ADS. */
function credentialSds(name: string): ProtoObject {
  return { name: name.includes('://') ? name : `kubernetes://${name}`, sds_config: { ads: {}, resource_api_version: 'V3' } };
}

function exact(sans: readonly string[]): ProtoObject[] {
  return sans.map((s) => ({ exact: s }));
}

function validation(sans: readonly string[], crl?: string): ProtoObject {
  const v: ProtoObject = {};
  if (sans.length > 0) v.match_subject_alt_names = exact(sans);
  if (crl) v.crl = { filename: crl };
  return v;
}

function tlsParams(): ProtoObject {
  return { tls_minimum_protocol_version: 'TLSv1_2', tls_maximum_protocol_version: 'TLSv1_3' };
}

function istioMutual(tls: ClientTLSSettings, t: TlsTarget, h2: boolean): ProtoObject {
  const sans = (tls.subjectAltNames?.length ?? 0) > 0 ? (tls.subjectAltNames ?? []) : t.serviceAccounts;
  return {
    common_tls_context: {
      tls_params: tlsParams(),
      tls_certificate_sds_secret_configs: [agentSds(SDS_DEFAULT)],
      combined_validation_context: {
        default_validation_context: validation(sans),
        validation_context_sds_secret_config: agentSds(SDS_ROOT),
      },
      alpn_protocols: h2 ? ALPN_IN_MESH_H2 : ALPN_IN_MESH,
    },
    sni: tls.sni || t.sni,
  };
}

/** SIMPLE or MUTUAL origination (istiod's constructUpstreamTLS). */
function originate(d: ClusterDraft, tls: ClientTLSSettings, t: TlsTarget, mutual: boolean): ProtoObject | undefined {
  const skipVerify = tls.insecureSkipVerify === true;
  const common: ProtoObject = { tls_params: tlsParams() };
  // Without an explicit SNI Envoy sends the request's host, and checks the peer against it
  // when no SANs are given.
  if (!tls.sni) {
    d.http ??= {};
    const upstream: ProtoObject = { auto_sni: true };
    if ((tls.subjectAltNames?.length ?? 0) === 0 && !skipVerify) upstream.auto_san_validation = true;
    d.http.upstream = upstream;
  }
  const sans = (tls.subjectAltNames?.length ?? 0) > 0 ? (tls.subjectAltNames ?? []) : t.fromServiceEntry ? t.serviceAccounts : [];
  if (tls.credentialName) {
    if (mutual) common.tls_certificate_sds_secret_configs = [credentialSds(tls.credentialName)];
    if (!skipVerify) {
      common.combined_validation_context = {
        default_validation_context: validation(sans),
        validation_context_sds_secret_config: credentialSds(tls.credentialName + CA_SUFFIX),
      };
    }
  } else {
    if (mutual) {
      // Validation requires both; a half-configured MUTUAL gets no TLS rather than a broken one.
      if (!tls.clientCertificate || !tls.privateKey) return undefined;
      common.tls_certificate_sds_secret_configs = [agentSds(`file-cert:${tls.clientCertificate}~${tls.privateKey}`)];
    }
    if (skipVerify) common.validation_context = {};
    else {
      common.combined_validation_context = {
        default_validation_context: validation(sans, tls.caCrl),
        validation_context_sds_secret_config: agentSds(`file-root:${tls.caCertificates || 'system'}`),
      };
    }
  }
  if (isHttp2Draft(d)) common.alpn_protocols = ['h2'];
  const ctx: ProtoObject = { common_tls_context: common };
  if (tls.sni) ctx.sni = tls.sni;
  return ctx;
}

/** DestinationRule tls → the cluster's transport_socket (Envoy sidecars and gateways). */
export function applyUpstreamTls(d: ClusterDraft, tls: ClientTLSSettings | undefined, t: TlsTarget): void {
  if (!tls || !tls.mode || tls.mode === 'DISABLE') return;
  // A rule without a workloadSelector would hand the secret to every sidecar it reaches; istiod
  // honours credentialName there only for gateways (ConfigMap references are not secret).
  const privileged = !!tls.credentialName && !tls.credentialName.startsWith('configmap://');
  if (privileged && t.sidecar && !t.ruleHasSelector && (tls.mode === 'SIMPLE' || tls.mode === 'MUTUAL')) return;
  let ctx: ProtoObject | undefined;
  if (tls.mode === 'ISTIO_MUTUAL') ctx = istioMutual(tls, t, isHttp2Draft(d));
  else ctx = originate(d, tls, t, tls.mode === 'MUTUAL');
  if (ctx) d.cluster.transport_socket = { name: TLS_SOCKET_NAME, typed_config: { '@type': UPSTREAM_TLS_TYPE, ...ctx } };
}

function providerInstance(certificateName: string): ProtoObject {
  return { instance_name: 'default', certificate_name: certificateName };
}

/**
 * ISTIO_MUTUAL for proxyless gRPC (istiod's grpcgen): the bootstrap's certificate provider
 * `default` supplies the workload certificate (`default`) and the root (`ROOTCA`). The identity
 * goes in both the current and the deprecated field, for old and new gRPC releases. The root
 * goes in a plain validation_context (ca_certificate_provider_instance, read by grpc-js and
 * C-core alike): istiod's combined_validation_context form lacks the SDS config that Envoy's
 * validate.rules require of it. gRPC cannot take DestinationRule files or credentialName
 * secrets, so SIMPLE and MUTUAL are not offered to it (as in istiod).
 */
export function grpcUpstreamTls(tls: ClientTLSSettings | undefined, serviceAccounts: readonly string[]): ProtoObject | undefined {
  if (tls?.mode !== 'ISTIO_MUTUAL') return undefined;
  const sans = (tls.subjectAltNames?.length ?? 0) > 0 ? (tls.subjectAltNames ?? []) : serviceAccounts;
  const validationContext: ProtoObject = { ca_certificate_provider_instance: providerInstance(SDS_ROOT) };
  if (sans.length > 0) validationContext.match_subject_alt_names = exact(sans);
  return {
    name: TLS_SOCKET_NAME,
    typed_config: {
      '@type': UPSTREAM_TLS_TYPE,
      common_tls_context: {
        tls_certificate_provider_instance: providerInstance(SDS_DEFAULT),
        tls_certificate_certificate_provider_instance: providerInstance(SDS_DEFAULT),
        validation_context: validationContext,
      },
    },
  };
}
