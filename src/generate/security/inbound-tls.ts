/**
 * Sidecar inbound filter chains per port and mTLS mode, as istiod's filterchain_options:
 * STRICT → one chain matching transport_protocol `tls` that terminates mTLS; PERMISSIVE → an mTLS
 * chain (TLS with Istio's ALPNs) and a plaintext chain (`raw_buffer`), plus, on TCP ports, a
 * chain passing one-way TLS through untouched; DISABLE → plaintext only. A sniffed port (no
 * declared protocol) gets HTTP chains matched by the ALPN the client's sidecar or the HTTP
 * inspector reports, and TCP chains for the rest. Every chain of a port carries the port's RBAC
 * filters. TLS uses the agent's SDS secrets `default` and `ROOTCA`.
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

/** istiod's mtlsHTTPALPNs and mtlsTCPWithMxcALPNs: what a sidecar client that sniffed HTTP, or did not, offers over mTLS. */
const MTLS_HTTP_ALPNS = ['istio-http/1.0', 'istio-http/1.1', 'istio-h2'];
const MTLS_TCP_MXC_ALPNS = ['istio-peer-exchange', 'istio'];
/** istiod's plaintextHTTPALPNs: what the HTTP inspector reports for plaintext HTTP. */
const PLAINTEXT_HTTP_ALPNS = ['http/1.1', 'h2c'];

/** How a port's traffic is told apart: declared HTTP, declared TCP, or sniffed (both). */
export type InboundKind = 'http' | 'tcp' | 'auto';

interface ChainOption {
  transport: 'tls' | 'raw_buffer';
  alpns?: string[];
  /** Terminate mTLS on this chain. */
  mtls: boolean;
  /** The chain's filters: the HTTP connection manager or the tcp_proxy. */
  http: boolean;
}

/** istiod's getFilterChainMatchOptions, per mode and kind of port. */
function options(mode: EffectiveMode, kind: InboundKind): ChainOption[] {
  const http = kind === 'http';
  if (kind === 'auto') {
    if (mode === 'STRICT') {
      return [
        { transport: 'tls', alpns: MTLS_HTTP_ALPNS, mtls: true, http: true },
        { transport: 'tls', mtls: true, http: false },
      ];
    }
    if (mode === 'DISABLE') {
      return [
        { transport: 'raw_buffer', alpns: PLAINTEXT_HTTP_ALPNS, mtls: false, http: true },
        { transport: 'raw_buffer', mtls: false, http: false },
      ];
    }
    return [
      { transport: 'tls', alpns: MTLS_HTTP_ALPNS, mtls: true, http: true },
      { transport: 'raw_buffer', alpns: PLAINTEXT_HTTP_ALPNS, mtls: false, http: true },
      { transport: 'tls', alpns: MTLS_TCP_MXC_ALPNS, mtls: true, http: false },
      { transport: 'raw_buffer', mtls: false, http: false },
      { transport: 'tls', mtls: false, http: false },
    ];
  }
  if (mode === 'STRICT') return [{ transport: 'tls', mtls: true, http }];
  if (mode === 'DISABLE') return [{ transport: 'raw_buffer', mtls: false, http }];
  const both: ChainOption[] = [
    { transport: 'tls', alpns: ISTIO_MTLS_ALPNS, mtls: true, http },
    { transport: 'raw_buffer', mtls: false, http },
  ];
  return http ? both : [...both, { transport: 'tls', mtls: false, http }];
}

/**
 * The chains of one inbound port; `filters` are the port's network filters (RBAC included): the
 * HTTP ones for HTTP chains, the TCP ones for TCP chains (a sniffed port has both).
 */
export function inboundChains(port: number, mode: EffectiveMode, kind: InboundKind, filters: { http?: ProtoObject[]; tcp?: ProtoObject[] }): ProtoObject[] {
  return options(mode, kind).map((o) => {
    const match: ProtoObject = { destination_port: { value: port }, transport_protocol: o.transport };
    if (o.alpns) match.application_protocols = o.alpns;
    const chain: ProtoObject = { name: `0.0.0.0_${port}`, filter_chain_match: match, filters: (o.http ? filters.http : filters.tcp) ?? [] };
    if (o.mtls) chain.transport_socket = sidecarDownstreamTls(o.http);
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

const HTTP_INSPECTOR_TYPE = 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector';

/**
 * The HTTP inspector when some port's chains match plaintext HTTP by ALPN, off for the ports that
 * never do (istiod's buildHTTPInspector); undefined when no port needs it.
 */
export function httpInspector(chains: readonly ProtoObject[]): ProtoObject | undefined {
  const needs = new Map<number, boolean>();
  for (const c of chains) {
    const m = c.filter_chain_match as ProtoObject | undefined;
    const port = ((m?.destination_port as ProtoObject | undefined)?.value as number | undefined) ?? 0;
    const alpns = (m?.application_protocols as string[] | undefined) ?? [];
    needs.set(port, (needs.get(port) ?? false) || alpns.some((a) => PLAINTEXT_HTTP_ALPNS.includes(a)));
  }
  if (![...needs.values()].some(Boolean)) return undefined;
  const off = [...needs].filter(([, n]) => !n).map(([p]) => p);
  off.sort((a, b) => a - b);
  const filter: ProtoObject = { name: 'envoy.filters.listener.http_inspector', typed_config: { '@type': HTTP_INSPECTOR_TYPE } };
  if (off.length === 0) return filter;
  const rules = off.map((p) => ({ destination_port_range: { start: p, end: p + 1 } }));
  return { ...filter, filter_disabled: rules.length === 1 ? rules[0] : { or_match: { rules } } };
}
