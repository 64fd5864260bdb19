/**
 * Sidecar inbound filter chains per port and mTLS mode, as istiod's filterchain_options:
 * STRICT → one chain matching transport_protocol `tls` that terminates mTLS; PERMISSIVE → an mTLS
 * chain (TLS with Istio's ALPNs) and a plaintext chain (`raw_buffer`), plus, on TCP ports, a
 * chain passing one-way TLS through untouched; DISABLE → plaintext only. Every chain of a port
 * carries the port's RBAC filters. TLS uses the agent's SDS secrets `default` and `ROOTCA`.
 */
import type { ProtoObject } from '../types';
import { SDS_DEFAULT, SDS_ROOT, agentSds } from '../agent-sds';
import type { EffectiveMode } from './peer-authn';

export const DOWNSTREAM_TLS_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
export const TLS_INSPECTOR_TYPE = 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector';
const TLS_SOCKET = 'envoy.transport_sockets.tls';

/** istiod's allIstioMtlsALPNs: what sidecar clients offer over mTLS. */
export const ISTIO_MTLS_ALPNS = ['istio', 'istio-peer-exchange', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2'];
/** istiod's ALPNHttp and ALPNDownstreamWithMxc: what the server side negotiates. */
const ALPN_HTTP = ['h2', 'http/1.1'];
const ALPN_TCP_MXC = ['istio-peer-exchange', 'h2', 'http/1.1'];
/** istiod's SupportedCiphers for sidecars. */
const CIPHERS = [
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'AES256-GCM-SHA384',
  'AES128-GCM-SHA256',
];

/** istiod's BuildInboundTLS: client certificates required, verified against ROOTCA. */
export function sidecarDownstreamTls(http: boolean): ProtoObject {
  return {
    name: TLS_SOCKET,
    typed_config: {
      '@type': DOWNSTREAM_TLS_TYPE,
      common_tls_context: {
        tls_params: { tls_minimum_protocol_version: 'TLSv1_2', tls_maximum_protocol_version: 'TLSv1_3', cipher_suites: CIPHERS },
        tls_certificate_sds_secret_configs: [agentSds(SDS_DEFAULT)],
        combined_validation_context: { default_validation_context: {}, validation_context_sds_secret_config: agentSds(SDS_ROOT) },
        alpn_protocols: http ? ALPN_HTTP : ALPN_TCP_MXC,
      },
      require_client_certificate: { value: true },
    },
  };
}

interface ChainOption {
  transport: 'tls' | 'raw_buffer';
  alpns?: string[];
  /** Terminate mTLS on this chain. */
  mtls: boolean;
}

function options(mode: EffectiveMode, http: boolean): ChainOption[] {
  if (mode === 'STRICT') return [{ transport: 'tls', mtls: true }];
  if (mode === 'DISABLE') return [{ transport: 'raw_buffer', mtls: false }];
  const both: ChainOption[] = [
    { transport: 'tls', alpns: ISTIO_MTLS_ALPNS, mtls: true },
    { transport: 'raw_buffer', mtls: false },
  ];
  return http ? both : [...both, { transport: 'tls', mtls: false }];
}

/** The chains of one inbound port; `filters` are the port's network filters (RBAC included). */
export function inboundChains(port: number, mode: EffectiveMode, http: boolean, filters: ProtoObject[]): ProtoObject[] {
  return options(mode, http).map((o) => {
    const match: ProtoObject = { destination_port: { value: port }, transport_protocol: o.transport };
    if (o.alpns) match.application_protocols = o.alpns;
    const chain: ProtoObject = { name: `0.0.0.0_${port}`, filter_chain_match: match, filters };
    if (o.mtls) chain.transport_socket = sidecarDownstreamTls(http);
    return chain;
  });
}

/** The TLS inspector, needed by chains that match on transport_protocol `tls`. */
export function tlsInspector(): ProtoObject {
  return { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': TLS_INSPECTOR_TYPE } };
}

export function needsTlsInspector(chains: readonly ProtoObject[]): boolean {
  return chains.some((c) => (c.filter_chain_match as ProtoObject | undefined)?.transport_protocol === 'tls');
}
