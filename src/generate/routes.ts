/**
 * RDS: RouteConfigurations, shared by sidecars and proxyless gRPC. Sidecars get one per outbound
 * HTTP port (named by the port), and one per sniffed service port on an address of its own
 * (`<fqdn>:<port>`); gRPC clients one per `<fqdn>:<port>`. The routes themselves come from
 * http-route.ts.
 */
import { isHttpOrSniffed } from '../model/protocol';
import { proxyServices, proxyVirtualService } from '../model/lookup';
import type { MeshService, MeshSnapshot } from '../model/snapshot';
import type { Proxy } from '../model/proxy';
import { defaultRoute, virtualServiceRoutes } from './http-route';
import { type RouteScope, meshScope } from './route-scope';
import type { CompositeItem, GenerateContext, ProtoObject, Resource } from './types';
import { catchAllVirtualHost } from './outbound-policy';

export type { Flavor, RouteScope } from './route-scope';
export { virtualServiceRoutes, defaultRoute } from './http-route';

/** istiod raises Envoy's 4 KiB direct-response limit to the 1 MiB that validation allows. */
const MAX_DIRECT_RESPONSE_BODY = 1024 * 1024;

/** Routes for a service on a port: its VirtualService's, or the default route to the service. */
export function serviceRoutes(svc: MeshService, scope: RouteScope): ProtoObject[] {
  const vs = proxyVirtualService(scope.snap, scope.proxy, svc.hostname);
  const routes = vs ? virtualServiceRoutes(vs, scope, svc) : [];
  // A VirtualService with no route for this port leaves the service its default route, as in istiod.
  return routes.length > 0 ? routes : [defaultRoute(svc, scope)];
}

/** Domains Istio puts on a sidecar virtual host: FQDN, shorter forms valid in the proxy's namespace, the VIP. */
function sidecarDomains(svc: MeshService, port: number, proxyNs: string, domain: string): string[] {
  const names = [svc.hostname];
  if (svc.hostname.endsWith(`.svc.${domain}`)) {
    names.push(`${svc.name}.${svc.namespace}.svc`, `${svc.name}.${svc.namespace}`);
    if (svc.namespace === proxyNs) names.push(svc.name);
  }
  const domains = names.flatMap((n) => [n, `${n}:${port}`]);
  // Headless Kubernetes services: their pods' own names too (`<pod>.<svc>.<ns>.svc…`), as istiod.
  if (svc.resolution === 'PASSTHROUGH' && svc.source.kind === 'Service') domains.push(...domains.map((d) => `*.${d}`));
  if (svc.clusterIP) domains.push(svc.clusterIP, `${svc.clusterIP}:${port}`);
  return domains;
}

/** The services with virtual hosts on a port: HTTP and sniffed ports (istiod's IsHTTPOrSniffed). */
function httpServicesOn(snap: MeshSnapshot, proxy: Proxy, port: number): MeshService[] {
  return proxyServices(snap, proxy).filter((svc) => svc.ports.some((p) => p.port === port && isHttpOrSniffed(p.protocol)));
}

/** Sidecar RouteConfiguration named `<port>`: one virtual host per HTTP service on that port. */
export function sidecarRouteConfig(ctx: GenerateContext, port: number): ProtoObject {
  return sidecarRouteResource(ctx, port).build();
}

const VIRTUAL_HOST_TYPE = 'type.googleapis.com/envoy.config.route.v3.VirtualHost';
/** RouteConfiguration.virtual_hosts */
const VIRTUAL_HOSTS_FIELD = 2;

/**
 * The same, as a composite resource: one virtual host per service, each reused while its own
 * inputs (the service, its domains, the routes it reads) hold. A changed VirtualService
 * rebuilds its host's entry, not the port's whole table.
 */
export function sidecarRouteResource(ctx: GenerateContext, port: number): Resource {
  const scope = meshScope(ctx.snap, ctx.proxy, 'envoy', port);
  const used = new Set<string>();
  const items: CompositeItem[] = [];
  for (const svc of httpServicesOn(ctx.snap, ctx.proxy, port)) {
    // A domain goes to the first service that claims it, so the lists are settled here, in order.
    const domains = sidecarDomains(svc, port, ctx.proxy.namespace, ctx.snap.domain).filter((d) => !used.has(d));
    if (domains.length === 0) continue;
    domains.forEach((d) => used.add(d));
    items.push({
      key: svc.hostname,
      inputs: [svc, domains.join(' ')],
      build: () => ({ name: `${svc.hostname}:${port}`, domains, routes: serviceRoutes(svc, scope), include_request_attempt_count: true }),
    });
  }
  items.push({
    key: '*',
    inputs: [],
    // allow_any → PassthroughCluster, or block_all (502) under REGISTRY_ONLY.
    build: () => catchAllVirtualHost(ctx.snap, ctx.proxy),
  });
  const head = (): ProtoObject => ({
    name: String(port),
    validate_clusters: { value: false },
    max_direct_response_body_size_bytes: { value: MAX_DIRECT_RESPONSE_BODY },
    ignore_port_in_host_matching: true,
  });
  return {
    name: String(port),
    build: () => {
      const { name, ...rest } = head();
      return { name, virtual_hosts: items.map((i) => i.build()), ...rest };
    },
    composite: { head, fieldNumber: VIRTUAL_HOSTS_FIELD, itemType: VIRTUAL_HOST_TYPE, items },
  };
}

/** Proxyless gRPC RouteConfiguration named `<fqdn>:<port>`. */
export function grpcRouteConfig(ctx: GenerateContext, svc: MeshService, port: number): ProtoObject {
  const scope = meshScope(ctx.snap, ctx.proxy, 'grpc', port);
  const name = `${svc.hostname}:${port}`;
  const domains = [svc.hostname, name];
  if (svc.namespace === ctx.proxy.namespace) domains.push(svc.name, `${svc.name}:${port}`);
  return { name, virtual_hosts: [{ name, domains, routes: serviceRoutes(svc, scope) }] };
}

/**
 * The route configuration of a sniffed service port on an address of its own, `<fqdn>:<port>`
 * (istiod's getVirtualHostsForSniffedServicePort): the service's virtual host of the port's
 * table, for any authority, and no catch-all (what is not HTTP never reaches it).
 */
export function sniffedRouteResource(ctx: GenerateContext, name: string): Resource | undefined {
  const colon = name.lastIndexOf(':');
  const port = Number(name.slice(colon + 1));
  const svc = ctx.snap.serviceByHost.get(name.slice(0, colon));
  if (!svc || !Number.isInteger(port) || !svc.ports.some((p) => p.port === port)) return undefined;
  const scope = meshScope(ctx.snap, ctx.proxy, 'envoy', port);
  return {
    name,
    build: () => ({
      name,
      virtual_hosts: [{ name: `${svc.hostname}:${port}`, domains: ['*'], routes: serviceRoutes(svc, scope), include_request_attempt_count: true }],
      validate_clusters: { value: false },
      max_direct_response_body_size_bytes: { value: MAX_DIRECT_RESPONSE_BODY },
      ignore_port_in_host_matching: true,
    }),
  };
}

/** A sidecar route configuration by name: `<port>` or `<fqdn>:<port>`. */
export function sidecarRouteNamed(ctx: GenerateContext, name: string): Resource | undefined {
  return /^\d+$/.test(name) ? sidecarRouteResource(ctx, Number(name)) : sniffedRouteResource(ctx, name);
}

export function grpcRoutes(ctx: GenerateContext): Resource[] {
  const out: Resource[] = [];
  for (const svc of proxyServices(ctx.snap, ctx.proxy)) {
    for (const p of svc.ports) {
      const name = `${svc.hostname}:${p.port}`;
      if (ctx.names && !ctx.names.has(name)) continue;
      out.push({ name, build: () => grpcRouteConfig(ctx, svc, p.port) });
    }
  }
  return out;
}
