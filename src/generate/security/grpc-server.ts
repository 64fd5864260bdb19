/**
 * Inbound listeners for xDS-enabled gRPC servers (istiod's grpcgen): a server bound to
 * `<ip>:<port>` asks for `xds.istio.io/grpc/lds/inbound/<ip>:<port>` (the bootstrap's
 * server_listener_resource_name_template). The answer is one filter chain with an inline route
 * (non-forwarding, as gRPC servers require), the RBAC filters (DENY, then ALLOW; gRPC has no
 * AUDIT; grpcgen's filter and policy names, since gRPC refuses two filters of one name; unlike
 * grpcgen, ALLOW policies whose rules all fail still deny, as on sidecars) before the router, and for STRICT a DownstreamTlsContext from the bootstrap's
 * certificate provider `default` (identity `default`, roots `ROOTCA`) requiring client
 * certificates. gRPC cannot do PERMISSIVE: a workload labelled for Istio mTLS gets STRICT (its
 * clients use mTLS), any other plaintext. Ports no service of the workload targets get nothing.
 */
import { proxyLabels } from '../../model/proxy';
import { inboundPorts } from '../inbound';
import type { GenerateContext, ProtoObject, Resource } from '../types';
import { HCM_TYPE, routerFilter, socketAddress } from '../util';
import { rbacHttpFilters, workloadPolicies } from './authz';
import { DOWNSTREAM_TLS_TYPE } from './inbound-tls';
import { type EffectiveMode, mtlsForPort, workloadMtls } from './peer-authn';

export const GRPC_INBOUND_PREFIX = 'xds.istio.io/grpc/lds/inbound/';
export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';

/** `<host>:<port>` or `[<v6>]:<port>` → host without brackets and port. */
export function splitHostPort(s: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):([0-9]{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[3]);
  return port >= 1 && port <= 65535 ? { host: m[1] ?? m[2] ?? '', port } : undefined;
}

function provider(certificateName: string): ProtoObject {
  return { instance_name: 'default', certificate_name: certificateName };
}

export function grpcDownstreamTls(): ProtoObject {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': DOWNSTREAM_TLS_TYPE,
      common_tls_context: {
        tls_certificate_provider_instance: provider('default'),
        tls_certificate_certificate_provider_instance: provider('default'),
        validation_context: { ca_certificate_provider_instance: provider('ROOTCA') },
      },
      require_client_certificate: { value: true },
    },
  };
}

function serverListener(ctx: GenerateContext, name: string, host: string, port: number, mode: EffectiveMode): ProtoObject {
  const labels = proxyLabels(ctx.proxy, ctx.snap);
  const suffix = mode === 'STRICT' ? 'mtls' : 'plaintext';
  const hcm: ProtoObject = {
    '@type': HCM_TYPE,
    // The mode is in the HCM's own bytes: grpc-js-xds 1.14's XdsServer compares only the filters
    // when a listener changes, so a STRICT <-> DISABLE switch that changed nothing else would not
    // reach a running server.
    stat_prefix: `inbound_${suffix}_${port}`,
    route_config: {
      name: 'inbound',
      virtual_hosts: [{ name: 'inbound', domains: ['*'], routes: [{ match: { prefix: '/' }, non_forwarding_action: {} }] }],
    },
    http_filters: [...rbacHttpFilters(workloadPolicies(ctx.snap, ctx.proxy.namespace, labels), true), routerFilter()],
  };
  const chain: ProtoObject = { name: `inbound-${suffix}`, filters: [{ name: `inbound-hcm${suffix}`, typed_config: hcm }] };
  if (mode === 'STRICT') chain.transport_socket = grpcDownstreamTls();
  return { name, address: socketAddress(host, port), filter_chains: [chain] };
}

/** The server listeners a gRPC proxy asked for by name (none on a wildcard request). */
export function grpcServerListeners(ctx: GenerateContext): Resource[] {
  const wanted = [...(ctx.names ?? [])].filter((n) => n.startsWith(GRPC_INBOUND_PREFIX));
  if (wanted.length === 0) return [];
  const labels = proxyLabels(ctx.proxy, ctx.snap);
  const ports = new Set(inboundPorts(ctx).map((p) => p.targetPort));
  const merged = workloadMtls(ctx.snap, ctx.proxy.namespace, labels);
  const out: Resource[] = [];
  for (const name of wanted) {
    const hp = splitHostPort(name.slice(GRPC_INBOUND_PREFIX.length));
    if (!hp || !ports.has(hp.port)) continue;
    let mode = mtlsForPort(merged, hp.port);
    if (mode === 'PERMISSIVE') mode = labels[TLS_MODE_LABEL] === 'istio' ? 'STRICT' : 'DISABLE';
    const { host, port } = hp;
    out.push({ name, build: () => serverListener(ctx, name, host, port, mode) });
  }
  return out;
}
