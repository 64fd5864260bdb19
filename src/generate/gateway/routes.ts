/**
 * RDS for gateway proxies (istiod's buildGatewayHTTPRouteConfig). Unlike sidecars, every
 * VirtualService bound to the server's Gateway whose hosts meet the server's hosts contributes:
 * routes for one host are concatenated (VirtualServices in namespace/name order, catch-all
 * routes last), hosts with identical routes share one virtual host, `httpsRedirect` servers
 * require TLS, and a route config with no virtual host answers 404 from a `blackhole` host.
 */
import type { MeshService, VirtualServiceConfig } from '../../model/snapshot';
import { resolveHost } from '../../model/snapshot';
import { virtualServiceRoutes } from '../http-route';
import { isCatchAll } from '../route-match';
import type { RouteScope } from '../route-scope';
import type { GenerateContext, ProtoObject, Resource } from '../types';
import { intersectHosts, serverHostsForNamespace, stripNamespace } from './hosts';
import { virtualServicesForGateway } from './l4';
import { type MergedServer, mergeGateways } from './merge';

/** istiod raises Envoy's 4 KiB direct-response limit to 1 MiB. */
const MAX_DIRECT_RESPONSE_BODY = 1024 * 1024;

interface VHost {
  name: string;
  domains: string[];
  routes: ProtoObject[];
  /** Which (gateway, VirtualService) route lists were appended, in order: equal lists collapse. */
  sources: string[];
  requireTls: boolean;
}

/**
 * The service whose cluster stands in where a route needs one it cannot name (only proxyless
 * gRPC uses it); gateways are Envoy, so any service of the VirtualService will do.
 */
function routeService(ctx: GenerateContext, vs: VirtualServiceConfig, hostname: string): MeshService {
  const dest = vs.spec.http?.flatMap((r) => r.route ?? [])[0]?.destination.host;
  const byDest = dest ? ctx.snap.serviceByHost.get(resolveHost(dest, vs.meta.namespace, ctx.snap.domain)) : undefined;
  return (
    ctx.snap.serviceByHost.get(hostname) ??
    byDest ?? {
      name: hostname,
      namespace: vs.meta.namespace,
      hostname,
      ports: [],
      selector: {},
      addresses: [],
      labels: {},
      source: { kind: 'ServiceEntry', namespace: vs.meta.namespace, name: vs.meta.name },
      resolution: 'EDS',
      meshExternal: true,
      exportTo: [],
      subjectAltNames: [],
    }
  );
}

function sortCatchAllLast(routes: readonly ProtoObject[]): ProtoObject[] {
  const all = routes.filter((r) => !isCatchAll(r.match as ProtoObject));
  return [...all, ...routes.filter((r) => isCatchAll(r.match as ProtoObject))];
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** Hosts whose routes came from the same VirtualServices share one virtual host (istiod's route collapse). */
function collapse(vhosts: Map<string, VHost>): VHost[] {
  const out: VHost[] = [];
  const bySources = new Map<string, VHost>();
  for (const host of [...vhosts.keys()].sort()) {
    const vh = vhosts.get(host);
    if (!vh) continue;
    const sig = `${vh.requireTls}|${vh.sources.join('\n')}`;
    const first = bySources.get(sig);
    if (first) {
      first.domains.push(...vh.domains);
      continue;
    }
    bySources.set(sig, vh);
    out.push(vh);
  }
  return out;
}

function gatewayRouteConfig(ctx: GenerateContext, routeName: string, servers: readonly MergedServer[] | undefined): ProtoObject {
  if (!servers || servers.length === 0) return { name: routeName, virtual_hosts: [], validate_clusters: { value: false } };
  const vhosts = new Map<string, VHost>();
  const cache = new Map<string, ProtoObject[]>();
  for (const ms of servers) {
    const gw = ms.gateway.key;
    const port = ms.server.port.number;
    const redirect = ms.server.tls?.httpsRedirect === true;
    const scope: RouteScope = { snap: ctx.snap, proxy: ctx.proxy, flavor: 'envoy', port, gateways: new Set([gw]), tls: ms.server.tls !== undefined };
    for (const vs of virtualServicesForGateway(ctx.snap, ctx.proxy.namespace, gw)) {
      const hosts = intersectHosts(serverHostsForNamespace(ms.hosts, vs.meta.namespace), vs.hosts);
      if (hosts.length === 0) continue;
      const source = `${gw}|${vs.meta.namespace}/${vs.meta.name}`;
      let routes = cache.get(source);
      if (!routes) {
        try {
          routes = virtualServiceRoutes(vs, scope, routeService(ctx, vs, hosts[0] ?? ''));
        } catch {
          continue; // one VirtualService that cannot be translated leaves the others served
        }
        cache.set(source, routes);
      }
      for (const raw of hosts) {
        const h = raw.toLowerCase();
        const vh = vhosts.get(h);
        if (vh) {
          vh.routes.push(...routes);
          vh.sources.push(source);
          if (redirect) vh.requireTls = true;
        } else vhosts.set(h, { name: `${h}:${port}`, domains: [h], routes: [...routes], sources: [source], requireTls: redirect });
      }
    }
    if (!redirect) continue;
    // Every host of an httpsRedirect server redirects, with or without a VirtualService.
    for (const raw of ms.hosts) {
      const h = stripNamespace(raw).toLowerCase();
      const vh = vhosts.get(h);
      if (vh) vh.requireTls = true;
      else vhosts.set(h, { name: `${h}:${port}`, domains: [h], routes: [], sources: [], requireTls: true });
    }
  }
  let virtualHosts: ProtoObject[];
  if (vhosts.size === 0) {
    // No routes: Envoy answers 404 for any host.
    virtualHosts = [{ name: `blackhole:${servers[0]?.server.port.number ?? 0}`, domains: ['*'], routes: [] }];
  } else {
    virtualHosts = collapse(vhosts)
      .sort(byName)
      .map((vh) => ({
        name: vh.name,
        domains: vh.domains,
        routes: sortCatchAllLast(vh.routes),
        ...(vh.requireTls ? { require_tls: 'ALL' } : {}),
        include_request_attempt_count: true,
      }));
  }
  return {
    name: routeName,
    virtual_hosts: virtualHosts,
    validate_clusters: { value: false },
    max_direct_response_body_size_bytes: { value: MAX_DIRECT_RESPONSE_BODY },
    ignore_port_in_host_matching: true,
  };
}

export function gatewayRoutes(ctx: GenerateContext): Resource[] {
  const merged = mergeGateways(ctx.snap, ctx.proxy);
  // A name the proxy still asks for (a listener draining after its Gateway went away) gets an empty config, as in istiod.
  const names = ctx.names ? [...ctx.names] : [...merged.serversByRouteName.keys()];
  return names.map((name) => ({ name, build: () => gatewayRouteConfig(ctx, name, merged.serversByRouteName.get(name)) }));
}
