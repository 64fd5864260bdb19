/**
 * Automatic mutual TLS (istiod's default, enableAutoMtls): an outbound cluster to an in-mesh
 * service whose DestinationRule sets no TLS gets two transport socket matches, ISTIO_MUTUAL for
 * endpoints labelled `security.istio.io/tlsMode: istio` (they have a sidecar) and plaintext for
 * the rest; EDS marks those endpoints with `envoy.transport_socket_match: {tlsMode: istio}`.
 * Not when the service's namespace (or the mesh) PeerAuthentication says DISABLE, nor for
 * mesh-external services. Original-destination clusters cannot match per endpoint: they get
 * ISTIO_MUTUAL only when every endpoint has a sidecar (istiod's passthrough rule).
 */
import type { ClientTLSSettings } from '../../model/objects';
import type { MeshService, MeshSnapshot, ServiceEndpoint } from '../../model/snapshot';
import type { ClusterDraft } from '../cluster-policy';
import { type TlsTarget, applyUpstreamTls } from '../cluster-tls';
import type { LocalityGroup } from '../locality';
import type { ProtoObject } from '../types';
import { TLS_MODE_LABEL } from './grpc-server';
import { mtlsForPort, serviceMtlsMode, workloadMtls } from './peer-authn';
import { toStruct } from './struct';

export const TRANSPORT_SOCKET_MATCH_KEY = 'envoy.transport_socket_match';
const RAW_BUFFER_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';

export function rawBufferSocket(): ProtoObject {
  return { name: 'envoy.transport_sockets.raw_buffer', typed_config: { '@type': RAW_BUFFER_TYPE } };
}

/** Adds auto mTLS to an Envoy cluster whose traffic policy has no `tls` (user settings win). */
export function applyAutoMtls(snap: MeshSnapshot, d: ClusterDraft, svc: MeshService, port: number, tls: ClientTLSSettings | undefined, target: TlsTarget): void {
  // MeshConfig enableAutoMtls: false leaves clusters without a rule's TLS in plaintext.
  if (tls || !snap.enableAutoMtls) return;
  const mode = serviceMtlsMode(snap, svc);
  if (mode === undefined || mode === 'DISABLE') return;
  const c = d.cluster;
  if (c.type === 'ORIGINAL_DST') {
    const eps = snap.endpoints.get(svc.hostname)?.get(port) ?? [];
    if (eps.length === 0 || eps.some((e) => e.labels[TLS_MODE_LABEL] !== 'istio')) return;
    applyUpstreamTls(d, { mode: 'ISTIO_MUTUAL' }, target);
    return;
  }
  applyUpstreamTls(d, { mode: 'ISTIO_MUTUAL' }, target);
  const socket = c.transport_socket;
  if (!socket) return;
  delete c.transport_socket;
  c.transport_socket_matches = [
    { name: 'tlsMode-istio', match: toStruct({ tlsMode: 'istio' }), transport_socket: socket },
    { name: 'tlsMode-disabled', match: toStruct({}), transport_socket: rawBufferSocket() },
  ];
}

/** Whether an endpoint accepts Istio mTLS: a sidecar label, and no DISABLE for its port. */
export function endpointIstioMtls(snap: MeshSnapshot, svc: MeshService, e: ServiceEndpoint): boolean {
  if (e.labels[TLS_MODE_LABEL] !== 'istio') return false;
  const ns = e.pod ? (e.pod.split('/')[0] ?? svc.namespace) : svc.namespace;
  return mtlsForPort(workloadMtls(snap, ns, e.labels), e.port) !== 'DISABLE';
}

/** Locality groups with the tlsMode metadata on the endpoints that accept Istio mTLS. */
export function withTlsModeMetadata(snap: MeshSnapshot, svc: MeshService, groups: LocalityGroup[]): LocalityGroup[] {
  return groups.map((g) => ({
    ...g,
    lbEndpoints: g.lbEndpoints.map((lb, i) => {
      const e = g.endpoints[i];
      if (!e || !endpointIstioMtls(snap, svc, e)) return lb;
      return { ...lb, metadata: { filter_metadata: { [TRANSPORT_SOCKET_MATCH_KEY]: toStruct({ tlsMode: 'istio' }) } } };
    }),
  }));
}
