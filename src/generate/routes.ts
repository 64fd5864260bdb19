/**
 * RDS: VirtualService HTTP routes → Envoy routes, shared by sidecars and proxyless gRPC.
 * Sidecars get one RouteConfiguration per outbound HTTP port (named by the port), gRPC clients
 * one per `<fqdn>:<port>`.
 */
import type { Destination, HTTPMatchRequest, HTTPRoute, StringMatch } from '../model/objects';
import { isHttp } from '../model/protocol';
import { proxyLabels } from '../model/proxy';
import { visibleServices, virtualServiceFor } from '../model/lookup';
import { type MeshService, type MeshSnapshot, type VirtualServiceConfig, labelsMatch, resolveHost } from '../model/snapshot';
import type { Proxy } from '../model/proxy';
import type { GenerateContext, ProtoObject, Resource } from './types';
import { PASSTHROUGH_CLUSTER, PREVIOUS_HOSTS_TYPE, duration, outboundClusterName, seconds } from './util';

export type Flavor = 'envoy' | 'grpc';

interface RouteScope {
  snap: MeshSnapshot;
  proxy: Proxy;
  flavor: Flavor;
  /** The service port the route config is for. */
  port: number;
}

function stringMatch(m: StringMatch, ignoreCase = false): ProtoObject {
  const out: ProtoObject = {};
  if (m.exact !== undefined) out.exact = m.exact;
  else if (m.prefix !== undefined) out.prefix = m.prefix;
  else if (m.regex !== undefined) out.safe_regex = { regex: m.regex };
  if (ignoreCase) out.ignore_case = true;
  return out;
}

function headerMatcher(name: string, m: StringMatch, invert: boolean, flavor: Flavor): ProtoObject {
  const h: ProtoObject = { name };
  // An empty match (`{}`) means "header present".
  if (m.exact === undefined && m.prefix === undefined && m.regex === undefined) h.present_match = true;
  else if (flavor === 'grpc') {
    // gRPC C-core before string_match support (e.g. 1.51) only reads the older matcher fields,
    // which every gRPC xDS client and Envoy still accept.
    if (m.exact !== undefined) h.exact_match = m.exact;
    else if (m.prefix !== undefined) h.prefix_match = m.prefix;
    else if (m.regex !== undefined) h.safe_regex_match = { regex: m.regex };
  } else h.string_match = stringMatch(m);
  if (invert) h.invert_match = true;
  return h;
}

/** Istio match → Envoy RouteMatch; undefined if the match cannot apply to this proxy/port. */
function routeMatch(m: HTTPMatchRequest | undefined, scope: RouteScope): ProtoObject | undefined {
  const out: ProtoObject = {};
  if (!m) return { prefix: '/' };
  if (m.port !== undefined && m.port !== scope.port) return undefined;
  if (m.gateways && m.gateways.length > 0 && !m.gateways.includes('mesh')) return undefined;
  if (m.sourceNamespace !== undefined && m.sourceNamespace !== scope.proxy.namespace) return undefined;
  if (m.sourceLabels && !labelsMatch(m.sourceLabels, proxyLabels(scope.proxy, scope.snap))) return undefined;
  const uri = m.uri;
  if (uri?.exact !== undefined) out.path = uri.exact;
  else if (uri?.prefix !== undefined) out.prefix = uri.prefix;
  else if (uri?.regex !== undefined) out.safe_regex = { regex: uri.regex };
  else out.prefix = '/';
  if (m.ignoreUriCase) out.case_sensitive = false;
  const headers: ProtoObject[] = [];
  for (const [name, sm] of Object.entries(m.headers ?? {})) headers.push(headerMatcher(name, sm, false, scope.flavor));
  for (const [name, sm] of Object.entries(m.withoutHeaders ?? {})) headers.push(headerMatcher(name, sm, true, scope.flavor));
  if (m.method) headers.push(headerMatcher(':method', m.method, false, scope.flavor));
  if (m.authority) headers.push(headerMatcher(':authority', m.authority, false, scope.flavor));
  if (m.scheme) headers.push(headerMatcher(':scheme', m.scheme, false, scope.flavor));
  if (headers.length > 0) out.headers = headers;
  const qp = Object.entries(m.queryParams ?? {}).map(([name, sm]) =>
    sm.exact === undefined && sm.prefix === undefined && sm.regex === undefined ? { name, present_match: true } : { name, string_match: stringMatch(sm) },
  );
  if (qp.length > 0) out.query_parameters = qp;
  return out;
}

/** The cluster a destination names, as seen from a route config for `port`. */
export function destinationCluster(d: Destination, vs: VirtualServiceConfig, scope: RouteScope): string {
  const host = resolveHost(d.host, vs.meta.namespace, scope.snap.domain);
  let port = d.port?.number;
  if (port === undefined) {
    const svc = scope.snap.serviceByHost.get(host);
    port = svc && svc.ports.length === 1 ? svc.ports[0]?.port : scope.port;
  }
  return outboundClusterName(port ?? scope.port, d.subset ?? '', host);
}

/** Istio's default retry policy for sidecars (no retries for proxyless gRPC by default). */
function defaultRetryPolicy(): ProtoObject {
  return {
    retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
    num_retries: { value: 2 },
    retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: { '@type': PREVIOUS_HOSTS_TYPE } }],
    host_selection_retry_max_attempts: 5,
    retriable_status_codes: [503],
  };
}

function routeAction(r: HTTPRoute, vs: VirtualServiceConfig, scope: RouteScope): ProtoObject | undefined {
  const dests = (r.route ?? []).filter((d) => (r.route?.length ?? 0) === 1 || (d.weight ?? 0) > 0);
  if (dests.length === 0) return undefined;
  const action: ProtoObject = {};
  if (dests.length === 1 && dests[0]) {
    action.cluster = destinationCluster(dests[0].destination, vs, scope);
  } else {
    action.weighted_clusters = {
      clusters: dests.map((d) => ({ name: destinationCluster(d.destination, vs, scope), weight: { value: d.weight ?? 0 } })),
    };
  }
  if (scope.flavor === 'envoy') {
    action.timeout = r.timeout ? duration(r.timeout) : seconds(0);
    action.retry_policy = defaultRetryPolicy();
    action.max_grpc_timeout = r.timeout ? duration(r.timeout) : seconds(0);
  } else if (r.timeout) {
    action.max_stream_duration = { max_stream_duration: duration(r.timeout), grpc_timeout_header_max: duration(r.timeout) };
  }
  return action;
}

function headerOps(r: HTTPRoute): ProtoObject {
  const out: ProtoObject = {};
  const req = r.headers?.request;
  const res = r.headers?.response;
  const values = (ops: Record<string, string> | undefined, append: boolean): ProtoObject[] =>
    Object.entries(ops ?? {}).map(([key, value]) => ({
      header: { key, value },
      append_action: append ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD',
    }));
  const reqAdd = [...values(req?.set, false), ...values(req?.add, true)];
  const resAdd = [...values(res?.set, false), ...values(res?.add, true)];
  if (reqAdd.length) out.request_headers_to_add = reqAdd;
  if (req?.remove?.length) out.request_headers_to_remove = [...req.remove];
  if (resAdd.length) out.response_headers_to_add = resAdd;
  if (res?.remove?.length) out.response_headers_to_remove = [...res.remove];
  return out;
}

/** Envoy routes for one VirtualService as seen on one port. */
export function virtualServiceRoutes(vs: VirtualServiceConfig, scope: RouteScope): ProtoObject[] {
  const routes: ProtoObject[] = [];
  (vs.spec.http ?? []).forEach((r, i) => {
    const action = routeAction(r, vs, scope);
    if (!action) return;
    const matches = r.match && r.match.length > 0 ? r.match : [undefined];
    for (const m of matches) {
      const match = routeMatch(m, scope);
      if (!match) continue;
      const route: ProtoObject = {
        name: r.name ?? m?.name ?? `${vs.meta.namespace}/${vs.meta.name}/http[${i}]`,
        match,
        route: action,
        ...headerOps(r),
      };
      if (scope.flavor === 'envoy') {
        route.decorator = { operation: `${typeof action.cluster === 'string' ? action.cluster.split('|')[3] : vs.hosts[0]}:${scope.port}/*` };
      }
      routes.push(route);
    }
  });
  return routes;
}

function defaultRoute(svc: MeshService, scope: RouteScope): ProtoObject {
  const cluster = outboundClusterName(scope.port, '', svc.hostname);
  const action: ProtoObject = { cluster };
  if (scope.flavor === 'envoy') {
    action.timeout = seconds(0);
    action.retry_policy = defaultRetryPolicy();
    action.max_grpc_timeout = seconds(0);
  }
  const route: ProtoObject = { name: 'default', match: { prefix: '/' }, route: action };
  if (scope.flavor === 'envoy') route.decorator = { operation: `${svc.hostname}:${scope.port}/*` };
  return route;
}

/** Routes for a service on a port: its VirtualService's, or the default route to the service. */
export function serviceRoutes(svc: MeshService, scope: RouteScope): ProtoObject[] {
  const vs = virtualServiceFor(scope.snap, scope.proxy.namespace, svc.hostname);
  return vs ? virtualServiceRoutes(vs, scope) : [defaultRoute(svc, scope)];
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

/** Sidecar RouteConfiguration named `<port>`: one virtual host per HTTP service on that port. */
export function sidecarRouteConfig(ctx: GenerateContext, port: number): ProtoObject {
  const scope: RouteScope = { snap: ctx.snap, proxy: ctx.proxy, flavor: 'envoy', port };
  const used = new Set<string>();
  const virtualHosts: ProtoObject[] = [];
  for (const svc of visibleServices(ctx.snap, ctx.proxy.namespace)) {
    const sp = svc.ports.find((p) => p.port === port);
    if (!sp || !isHttp(sp.protocol)) continue;
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
  return { name: String(port), virtual_hosts: virtualHosts, validate_clusters: { value: false }, ignore_port_in_host_matching: true };
}

/** Proxyless gRPC RouteConfiguration named `<fqdn>:<port>`. */
export function grpcRouteConfig(ctx: GenerateContext, svc: MeshService, port: number): ProtoObject {
  const scope: RouteScope = { snap: ctx.snap, proxy: ctx.proxy, flavor: 'grpc', port };
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

function proxyRouteKey(ctx: GenerateContext): string {
  // Routes depend on the proxy's namespace (short domains, sourceNamespace) and labels (sourceLabels).
  const labels = proxyLabels(ctx.proxy, ctx.snap);
  return `${ctx.proxy.namespace}|${JSON.stringify(Object.entries(labels).sort())}`;
}

export function sidecarRoutes(ctx: GenerateContext): Resource[] {
  const key = proxyRouteKey(ctx);
  return sidecarRouteNames(ctx.snap, ctx.proxy.namespace)
    .map(String)
    .filter((n) => !ctx.names || ctx.names.has(n))
    .map((name) => ({ name, key, build: () => sidecarRouteConfig(ctx, Number(name)) }));
}

export function grpcRoutes(ctx: GenerateContext): Resource[] {
  const key = proxyRouteKey(ctx);
  const out: Resource[] = [];
  for (const svc of visibleServices(ctx.snap, ctx.proxy.namespace)) {
    for (const p of svc.ports) {
      const name = `${svc.hostname}:${p.port}`;
      if (ctx.names && !ctx.names.has(name)) continue;
      out.push({ name, key, build: () => grpcRouteConfig(ctx, svc, p.port) });
    }
  }
  return out;
}
