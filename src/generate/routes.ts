/**
 * RDS: RouteConfigurations, shared by sidecars and proxyless gRPC. Sidecars get one per outbound
 * HTTP port (named by the port), gRPC clients one per `<fqdn>:<port>`. The routes themselves come
 * from http-route.ts.
 */
import { isHttp } from '../model/protocol';
import { proxyLabels } from '../model/proxy';
import { proxyDestinationRule, visibleServices, virtualServiceFor } from '../model/lookup';
import { type MeshService, type MeshSnapshot, labelsMatch, resolveHost } from '../model/snapshot';
import { hasConsistentHash } from './hash-policy';
import { defaultRoute, virtualServiceRoutes } from './http-route';
import { type Flavor, type RouteScope, meshScope } from './route-scope';
import type { GenerateContext, ProtoObject, Resource } from './types';
import { PASSTHROUGH_CLUSTER, seconds } from './util';

export type { Flavor, RouteScope } from './route-scope';
export { virtualServiceRoutes, defaultRoute } from './http-route';

/** istiod raises Envoy's 4 KiB direct-response limit to the 1 MiB that validation allows. */
const MAX_DIRECT_RESPONSE_BODY = 1024 * 1024;

/** Routes for a service on a port: its VirtualService's, or the default route to the service. */
export function serviceRoutes(svc: MeshService, scope: RouteScope): ProtoObject[] {
  const vs = virtualServiceFor(scope.snap, scope.proxy.namespace, svc.hostname);
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
  if (svc.clusterIP) names.push(svc.clusterIP);
  return names.flatMap((n) => [n, `${n}:${port}`]);
}

function httpServicesOn(snap: MeshSnapshot, ns: string, port: number): MeshService[] {
  return visibleServices(snap, ns).filter((svc) => svc.ports.some((p) => p.port === port && isHttp(p.protocol)));
}

/** Sidecar RouteConfiguration named `<port>`: one virtual host per HTTP service on that port. */
export function sidecarRouteConfig(ctx: GenerateContext, port: number): ProtoObject {
  const scope = meshScope(ctx.snap, ctx.proxy, 'envoy', port);
  const used = new Set<string>();
  const virtualHosts: ProtoObject[] = [];
  for (const svc of httpServicesOn(ctx.snap, ctx.proxy.namespace, port)) {
    const domains = sidecarDomains(svc, port, ctx.proxy.namespace, ctx.snap.domain).filter((d) => !used.has(d));
    if (domains.length === 0) continue;
    domains.forEach((d) => used.add(d));
    virtualHosts.push({ name: `${svc.hostname}:${port}`, domains, routes: serviceRoutes(svc, scope), include_request_attempt_count: true });
  }
  virtualHosts.push({
    name: 'allow_any',
    domains: ['*'],
    routes: [{ name: 'allow_any', match: { prefix: '/' }, route: { cluster: PASSTHROUGH_CLUSTER, timeout: seconds(0), max_grpc_timeout: seconds(0) } }],
    include_request_attempt_count: true,
  });
  return {
    name: String(port),
    virtual_hosts: virtualHosts,
    validate_clusters: { value: false },
    max_direct_response_body_size_bytes: { value: MAX_DIRECT_RESPONSE_BODY },
    ignore_port_in_host_matching: true,
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

/** Which route names a sidecar has: one per HTTP service port. */
export function sidecarRouteNames(snap: MeshSnapshot, ns: string): number[] {
  const ports = new Set<number>();
  for (const svc of visibleServices(snap, ns)) for (const p of svc.ports) if (isHttp(p.protocol)) ports.add(p.port);
  return [...ports].sort((a, b) => a - b);
}

/**
 * The per-proxy inputs of the route configs for `services`, beyond the snapshot: the proxy's
 * namespace (short domains, VirtualService choice, sourceNamespace), which sourceLabels
 * matches its labels satisfy, and the DestinationRules (with consistent hashing) in effect for
 * the hosts routed to. Proxies that agree on these share the encoded bytes.
 */
export function routeKey(ctx: GenerateContext, services: readonly MeshService[], flavor: Flavor): string {
  const { snap, proxy } = ctx;
  const ns = proxy.namespace;
  let labels: Readonly<Record<string, string>> | undefined;
  const bits: string[] = [];
  const hosts = new Set<string>();
  const seen = new Set<object>();
  for (const svc of services) {
    const vs = virtualServiceFor(snap, ns, svc.hostname);
    if (!vs) {
      hosts.add(svc.hostname);
      continue;
    }
    if (seen.has(vs)) continue;
    seen.add(vs);
    for (const r of vs.spec.http ?? []) {
      for (const m of r.match ?? []) {
        if (!m.sourceLabels || (m.gateways && m.gateways.length > 0)) continue;
        labels ??= proxyLabels(proxy, snap);
        bits.push(labelsMatch(m.sourceLabels, labels) ? '1' : '0');
      }
      for (const d of r.route ?? []) hosts.add(resolveHost(d.destination.host, vs.meta.namespace, snap.domain));
    }
  }
  const rules: string[] = [];
  for (const h of [...hosts].sort()) {
    const dr = proxyDestinationRule(snap, proxy, h);
    if (hasConsistentHash(dr)) rules.push(`${h}=${dr?.sources.join(',')}`);
  }
  return `${flavor}|${ns}|${bits.join('')}|${rules.join(';')}`;
}

/**
 * A route key depends on the proxy's namespace and labels only: proxies alike in both share it,
 * so it is computed once per snapshot for each (flavour, namespace, labels, route name).
 */
function memoRouteKey(ctx: GenerateContext, flavor: Flavor, labelsKey: string, name: string, services: () => readonly MeshService[]): string {
  return ctx.snap.memo.get(`rk|${flavor}|${ctx.proxy.namespace}|${labelsKey}|${name}`, () => routeKey(ctx, services(), flavor));
}

function labelsKeyOf(ctx: GenerateContext): string {
  return JSON.stringify(Object.entries(proxyLabels(ctx.proxy, ctx.snap)).sort());
}

export function sidecarRoutes(ctx: GenerateContext): Resource[] {
  const labelsKey = labelsKeyOf(ctx);
  return sidecarRouteNames(ctx.snap, ctx.proxy.namespace)
    .map(String)
    .filter((n) => !ctx.names || ctx.names.has(n))
    .map((name) => ({
      name,
      key: memoRouteKey(ctx, 'envoy', labelsKey, name, () => httpServicesOn(ctx.snap, ctx.proxy.namespace, Number(name))),
      build: () => sidecarRouteConfig(ctx, Number(name)),
    }));
}

export function grpcRoutes(ctx: GenerateContext): Resource[] {
  const labelsKey = labelsKeyOf(ctx);
  const out: Resource[] = [];
  for (const svc of visibleServices(ctx.snap, ctx.proxy.namespace)) {
    for (const p of svc.ports) {
      const name = `${svc.hostname}:${p.port}`;
      if (ctx.names && !ctx.names.has(name)) continue;
      out.push({ name, key: memoRouteKey(ctx, 'grpc', labelsKey, name, () => [svc]), build: () => grpcRouteConfig(ctx, svc, p.port) });
    }
  }
  return out;
}
