/** Picks the generators for a proxy: Envoy sidecar, Envoy gateway (`router~` node IDs) or proxyless gRPC. */
import type { Proxy } from '../model/proxy';
import { TypeUrl } from '../xds/protos';
import { outboundClusters, sidecarClusters } from './clusters';
import { endpointResources } from './endpoints';
import { gatewayClusters, gatewayEndpoints } from './gateway/clusters';
import { gatewayListeners } from './gateway/listeners';
import { gatewayRoutes } from './gateway/routes';
import { grpcListeners } from './grpc';
import { sidecarListeners } from './listeners';
import { grpcRoutes, sidecarRoutes } from './routes';
import { secretResources } from './secrets';
import type { GeneratorTable } from './types';

export const SIDECAR_GENERATORS: GeneratorTable = {
  [TypeUrl.Cluster]: sidecarClusters,
  [TypeUrl.Endpoint]: endpointResources,
  [TypeUrl.Listener]: sidecarListeners,
  [TypeUrl.Route]: sidecarRoutes,
};

export const GRPC_GENERATORS: GeneratorTable = {
  [TypeUrl.Cluster]: (ctx) => outboundClusters(ctx, 'grpc'),
  [TypeUrl.Endpoint]: endpointResources,
  [TypeUrl.Listener]: grpcListeners,
  [TypeUrl.Route]: grpcRoutes,
};

/** Gateways: listeners and routes from their Gateways, credentialName certificates over SDS. */
export const GATEWAY_GENERATORS: GeneratorTable = {
  [TypeUrl.Cluster]: gatewayClusters,
  [TypeUrl.Endpoint]: gatewayEndpoints,
  [TypeUrl.Listener]: gatewayListeners,
  [TypeUrl.Route]: gatewayRoutes,
  [TypeUrl.Secret]: secretResources,
};

export function generatorsFor(proxy: Proxy): GeneratorTable {
  if (proxy.generator === 'grpc') return GRPC_GENERATORS;
  return proxy.type === 'router' ? GATEWAY_GENERATORS : SIDECAR_GENERATORS;
}

export type { GenerateContext, Resource, ProtoObject } from './types';
