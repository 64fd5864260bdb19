/** Picks the generators for a proxy: Envoy sidecar or proxyless gRPC. */
import type { Proxy } from '../model/proxy';
import { TypeUrl } from '../xds/protos';
import { outboundClusters, sidecarClusters } from './clusters';
import { endpointResources } from './endpoints';
import { grpcListeners } from './grpc';
import { sidecarListeners } from './listeners';
import { grpcRoutes, sidecarRoutes } from './routes';
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

export function generatorsFor(proxy: Proxy): GeneratorTable {
  return proxy.generator === 'grpc' ? GRPC_GENERATORS : SIDECAR_GENERATORS;
}

/** The flavour part of a cache key: resources of different flavours never share bytes. */
export function flavorOf(proxy: Proxy): string {
  return proxy.generator === 'grpc' ? 'grpc' : proxy.type;
}

export type { GenerateContext, Resource, ProtoObject } from './types';
