/**
 * What each kind of proxy gets, per type, as parts the push engine can reuse separately:
 * - `named`: a list of names and a builder per name, each resource reused on its own (the many
 *   outbound clusters, endpoints and routes);
 * - `list`: a small list built as a whole (a sidecar's own inbound listener and clusters, gateway
 *   config);
 * - `requested`: resources only ever sent by name, built for the names asked for (SDS, gateway
 *   routes, gRPC server listeners).
 * Parts of one type never share names.
 */
import { proxyServices } from '../model/lookup';
import type { Proxy } from '../model/proxy';
import { TypeUrl } from '../xds/protos';
import { outboundClusterNamed, outboundClusters, sidecarLocalClusters } from './clusters';
import { endpointResource, endpointResources } from './endpoints';
import { gatewayClusters, gatewayEndpoints } from './gateway/clusters';
import { withTelemetry } from './telemetry/apply';
import { withClusterListPatches, withExtensionConfigPatches, withListenerPatches, withNamedClusterPatches, withNamedRoutePatches, withRouteListPatches } from './envoyfilter/apply';
import { gatewayListeners } from './gateway/listeners';
import { gatewayRoutes } from './gateway/routes';
import { grpcApiListenerNamed, grpcServicePortNames } from './grpc';
import { sidecarInboundListeners, sidecarOutboundListeners } from './listeners';
import { grpcRouteConfig, sidecarRouteNamed } from './routes';
import { sidecarRouteNames } from './outbound-listeners';
import { secretResources } from './secrets';
import { grpcServerListeners } from './security/grpc-server';
import type { GenerateContext, Resource } from './types';
import { extensionConfigs, withWasmPlugins } from './wasm';

export interface NamedPart {
  kind: 'named';
  id: string;
  names(ctx: GenerateContext): Iterable<string>;
  /** One of `names`' resources; undefined when it turns out to have none. */
  build(ctx: GenerateContext, name: string): Resource | undefined;
}

export interface ListPart {
  kind: 'list';
  id: string;
  list(ctx: GenerateContext): Resource[];
}

export interface RequestedPart {
  kind: 'requested';
  id: string;
  /** Called with `ctx.names` set to the names asked for. */
  list(ctx: GenerateContext): Resource[];
}

export type Part = NamedPart | ListPart | RequestedPart;

export type PartTable = Readonly<Partial<Record<TypeUrl, readonly Part[]>>>;

const names = (list: (ctx: GenerateContext) => Resource[]) => (ctx: GenerateContext) => list(ctx).map((r) => r.name);

/** A sidecar cluster's EnvoyFilter patch context: inbound clusters (and the inbound passthrough ones) are SIDECAR_INBOUND. */
const sidecarClusterContext = (_ctx: GenerateContext, name: string): 'SIDECAR_INBOUND' | 'SIDECAR_OUTBOUND' =>
  name.startsWith('inbound|') || name.startsWith('InboundPassthroughCluster') ? 'SIDECAR_INBOUND' : 'SIDECAR_OUTBOUND';

const sidecarOutboundClusters = withNamedClusterPatches('SIDECAR_OUTBOUND', {
  names: names((ctx) => outboundClusters(ctx, 'envoy')),
  build: (ctx, name) => outboundClusterNamed(ctx, 'envoy', name),
});

const edsPart: NamedPart = {
  kind: 'named',
  id: 'eds',
  names: names(endpointResources),
  build: (ctx, name) => endpointResource(ctx, name),
};

/** ECDS (WasmPlugins): only ever sent by name, the names the proxy's listeners reference. */
const ecdsPart: RequestedPart = { kind: 'requested', id: 'ecds', list: withExtensionConfigPatches(extensionConfigs) };

export const SIDECAR_PARTS: PartTable = {
  [TypeUrl.Cluster]: [
    { kind: 'named', id: 'cds-outbound', ...sidecarOutboundClusters },
    { kind: 'list', id: 'cds-local', list: withClusterListPatches(sidecarClusterContext, 'SIDECAR_INBOUND', sidecarLocalClusters) },
  ],
  [TypeUrl.Endpoint]: [edsPart],
  [TypeUrl.Listener]: [
    { kind: 'list', id: 'lds-outbound', list: withListenerPatches('SIDECAR_OUTBOUND', withTelemetry(withWasmPlugins(sidecarOutboundListeners))) },
    { kind: 'list', id: 'lds-inbound', list: withListenerPatches('SIDECAR_INBOUND', withTelemetry(withWasmPlugins(sidecarInboundListeners))) },
  ],
  [TypeUrl.Route]: [
    {
      kind: 'named',
      id: 'rds-sidecar',
      names: sidecarRouteNames,
      build: withNamedRoutePatches('SIDECAR_OUTBOUND', sidecarRouteNamed),
    },
  ],
  [TypeUrl.ExtensionConfig]: [ecdsPart],
  // Sidecars ask over ADS only for ConfigMap CA bundles (BackendTLSPolicy); no Secret is ever served to them.
  [TypeUrl.Secret]: [{ kind: 'requested', id: 'sds-sidecar', list: secretResources }],
};

export const GRPC_PARTS: PartTable = {
  [TypeUrl.Cluster]: [{ kind: 'named', id: 'cds-grpc', names: names((ctx) => outboundClusters(ctx, 'grpc')), build: (ctx, name) => outboundClusterNamed(ctx, 'grpc', name) }],
  [TypeUrl.Endpoint]: [edsPart],
  [TypeUrl.Listener]: [
    { kind: 'named', id: 'lds-grpc', names: grpcServicePortNames, build: grpcApiListenerNamed },
    { kind: 'requested', id: 'lds-grpc-server', list: grpcServerListeners },
  ],
  [TypeUrl.Route]: [
    {
      kind: 'named',
      id: 'rds-grpc',
      names: (ctx) => proxyServices(ctx.snap, ctx.proxy).flatMap((svc) => svc.ports.map((p) => `${svc.hostname}:${p.port}`)),
      build: (ctx, name) => {
        const colon = name.lastIndexOf(':');
        const svc = ctx.snap.serviceByHost.get(name.slice(0, colon));
        const port = Number(name.slice(colon + 1));
        return svc && svc.ports.some((p) => p.port === port) ? { name, build: () => grpcRouteConfig(ctx, svc, port) } : undefined;
      },
    },
  ],
};

export const GATEWAY_PARTS: PartTable = {
  [TypeUrl.Cluster]: [{ kind: 'list', id: 'cds-gateway', list: withClusterListPatches(() => 'GATEWAY', 'GATEWAY', gatewayClusters) }],
  [TypeUrl.Endpoint]: [{ kind: 'list', id: 'eds-gateway', list: gatewayEndpoints }],
  [TypeUrl.Listener]: [{ kind: 'list', id: 'lds-gateway', list: withListenerPatches('GATEWAY', withTelemetry(withWasmPlugins(gatewayListeners))) }],
  [TypeUrl.Route]: [{ kind: 'requested', id: 'rds-gateway', list: withRouteListPatches('GATEWAY', gatewayRoutes) }],
  [TypeUrl.Secret]: [{ kind: 'requested', id: 'sds-gateway', list: secretResources }],
  [TypeUrl.ExtensionConfig]: [ecdsPart],
};

export function partsFor(proxy: Proxy): PartTable {
  if (proxy.generator === 'grpc') return GRPC_PARTS;
  return proxy.type === 'router' ? GATEWAY_PARTS : SIDECAR_PARTS;
}
