/** What a route translation depends on: the snapshot, the proxy, its flavour and the listener port. */
import type { Destination } from '../model/objects';
import type { Proxy } from '../model/proxy';
import { type MeshSnapshot, resolveHost } from '../model/snapshot';
import { outboundClusterName } from './util';

/** `envoy`: sidecars and gateways; `grpc`: proxyless gRPC clients (gRPC-supported fields only). */
export type Flavor = 'envoy' | 'grpc';

export const MESH_GATEWAY = 'mesh';

export interface RouteScope {
  snap: MeshSnapshot;
  proxy: Proxy;
  flavor: Flavor;
  /** The listener (service) port the routes are built for. */
  port: number;
  /**
   * Gateways a match's `gateways` must name for it to apply, as `namespace/name` (or `mesh`).
   * Sidecars and gRPC clients: `mesh` only.
   */
  gateways: ReadonlySet<string>;
  /** The listener terminates TLS (gateways): redirects default to https. */
  tls?: boolean;
}

const MESH_ONLY: ReadonlySet<string> = new Set([MESH_GATEWAY]);

export function meshScope(snap: MeshSnapshot, proxy: Proxy, flavor: Flavor, port: number): RouteScope {
  return { snap, proxy, flavor, port, gateways: MESH_ONLY };
}

/** A gateway name as written in a VirtualService in `namespace` → `namespace/name` (or `mesh`). */
export function gatewayRef(name: string, namespace: string): string {
  return name === MESH_GATEWAY || name.includes('/') ? name : `${namespace}/${name}`;
}

/** A destination's host as an FQDN, short names resolved in the VirtualService's namespace. */
export function destinationHost(d: Destination, vsNamespace: string, scope: RouteScope): string {
  return resolveHost(d.host, vsNamespace, scope.snap.domain);
}

/**
 * The cluster a destination names (istiod's GetDestinationCluster): its port, else the
 * service's only port, else the listener port.
 */
export function destinationCluster(d: Destination, vsNamespace: string, scope: RouteScope): string {
  const host = destinationHost(d, vsNamespace, scope);
  let port = d.port?.number;
  if (port === undefined) {
    const svc = scope.snap.serviceByHost.get(host);
    port = svc && svc.ports.length === 1 ? svc.ports[0]?.port : undefined;
  }
  return outboundClusterName(port ?? scope.port, d.subset ?? '', host);
}
