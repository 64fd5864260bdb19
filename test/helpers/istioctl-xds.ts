/**
 * What istioctl sends for `proxy-status` and reads back (istioctl/pkg/xds GetXdsResponse over
 * pkg/adsc): one StreamAggregatedResources stream whose first request carries adsc's node
 * (`sidecar~<ip>~test-1.<ns>~<ns>.svc.cluster.local`, metadata GENERATOR=event, SERVICE_ACCOUNT,
 * NAMESPACE, ISTIO_VERSION 65536.65536.65536) and a response nonce of the current time, then the
 * first response of that type, decoded as istioctl's status writer decodes it.
 */
import * as grpc from '@grpc/grpc-js';
import { type DiscoveryRequestMsg, type DiscoveryResponseMsg, discoveryStreamMethod } from '../../src/xds/connection';
import type { EnvoyProtos } from '../../src/xds/protos';
import { ADS_PATH } from '../../src/xds/server';

export interface IstioctlAsk {
  typeUrl: string;
  resourceNames?: string[];
  /** Who istioctl says it is: adsc's node in `namespace` for `serviceAccount` (istioctl: istio-system, default). */
  namespace?: string;
  serviceAccount?: string;
  /** Replace adsc's node by another id (e.g. `debug~0.0.0.0~istioctl~cluster.local`, no metadata). */
  nodeId?: string;
  credentials?: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
  metadata?: grpc.Metadata;
}

export interface IstioctlAnswer {
  response?: DiscoveryResponseMsg & { control_plane?: { identifier?: string } };
  error?: grpc.ServiceError;
}

/** The request exactly as adsc puts it on the wire. */
export function istioctlRequest(a: IstioctlAsk): DiscoveryRequestMsg {
  const ns = a.namespace ?? 'istio-system';
  const meta = { GENERATOR: 'event', SERVICE_ACCOUNT: a.serviceAccount ?? 'default', NAMESPACE: ns, ISTIO_VERSION: '65536.65536.65536' };
  return {
    type_url: a.typeUrl,
    resource_names: a.resourceNames ?? [],
    response_nonce: new Date().toString(),
    node: a.nodeId
      ? { id: a.nodeId }
      : { id: `sidecar~10.0.0.7~test-1.${ns}~${ns}.svc.cluster.local`, metadata: { fields: Object.fromEntries(Object.entries(meta).map(([k, v]) => [k, { stringValue: v }])) } },
  };
}

/** One question, one answer (or the status the stream ended with). */
export function askLikeIstioctl(protos: EnvoyProtos, address: string, a: IstioctlAsk): Promise<IstioctlAnswer> {
  const Ctor = grpc.makeGenericClientConstructor({ ads: discoveryStreamMethod(protos, ADS_PATH, 'streamAggregatedResources') }, 'ADS');
  const client = new Ctor(address, a.credentials ?? grpc.credentials.createInsecure(), a.channelOptions ?? {});
  const call = (client as unknown as { ads: (md?: grpc.Metadata) => grpc.ClientDuplexStream<DiscoveryRequestMsg, DiscoveryResponseMsg> }).ads(a.metadata);
  return new Promise<IstioctlAnswer>((resolve) => {
    const done = (r: IstioctlAnswer): void => {
      call.cancel();
      client.close();
      resolve(r);
    };
    call.on('data', (r: DiscoveryResponseMsg) => {
      if (r.type_url === a.typeUrl) done({ response: r });
    });
    call.on('error', (error: grpc.ServiceError) => done({ error }));
    call.on('end', () => done({}));
    call.write(istioctlRequest(a));
  });
}

/** istioctl's status writer: one row per ClientConfig, its types' ConfigStatus names, and the control plane's ID and version. */
export function statusRows(protos: EnvoyProtos, r: DiscoveryResponseMsg & { control_plane?: { identifier?: string } }): Record<string, Record<string, string>> {
  const ClientConfig = protos.type('envoy.service.status.v3.ClientConfig');
  const cp = JSON.parse(r.control_plane?.identifier ?? '{}') as { ID?: string; Info?: { version?: string } };
  const rows: Record<string, Record<string, string>> = {};
  for (const any of r.resources) {
    if (any.type_url !== 'type.googleapis.com/envoy.service.status.v3.ClientConfig') throw new Error(`unexpected ${any.type_url}`);
    const cc = ClientConfig.toObject(ClientConfig.decode(any.value), { enums: String, defaults: true }) as {
      node: { id: string; metadata?: { fields?: Record<string, { stringValue?: string }> } };
      generic_xds_configs: { type_url: string; config_status: string; client_status: string }[];
    };
    const short = (t: string): string =>
      ({ Cluster: 'CDS', Listener: 'LDS', ClusterLoadAssignment: 'EDS', RouteConfiguration: 'RDS', TypedExtensionConfig: 'ECDS' })[t.slice(t.lastIndexOf('.') + 1)] ?? t;
    const row: Record<string, string> = { CLUSTER: cc.node.metadata?.fields?.['CLUSTER_ID']?.stringValue ?? '', ISTIOD: cp.ID ?? '', VERSION: cp.Info?.version ?? '' };
    for (const g of cc.generic_xds_configs) {
      row[short(g.type_url)] = g.config_status;
      if (g.client_status !== 'UNKNOWN') row[`${short(g.type_url)}_client`] = g.client_status;
    }
    rows[cc.node.id] = row;
  }
  return rows;
}
