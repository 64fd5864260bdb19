/**
 * One VirtualService's HTTP routes → Envoy routes for one listener port (istiod's
 * BuildHTTPRoutesForVirtualService / TranslateRoute), shared by sidecars, gateways and proxyless
 * gRPC; and the default route of a service without a VirtualService.
 */
import type { HTTPMatchRequest, HTTPRoute } from '../model/objects';
import { proxyDestinationRule } from '../model/lookup';
import type { MeshService, VirtualServiceConfig } from '../model/snapshot';
import { CORS_FILTER_NAME, FAULT_FILTER_NAME } from './http-filters';
import { hashPolicy, serviceConsistentHash } from './hash-policy';
import { defaultForwardAction, directResponseAction, forwardAction, redirectAction } from './route-action';
import { isCatchAll, matchApplies, routeMatches } from './route-match';
import { HTTP_FAULT_TYPE, appendHeaderOps, corsPolicy, headerOperations, httpFault } from './route-policies';
import type { RouteScope } from './route-scope';
import { toStruct } from './security/struct';
import type { ProtoObject } from './types';
import { outboundClusterName, parseOutboundClusterName } from './util';

/** istiod's GetRouteOperation: `<host>:<port><path>` for one cluster, else `<vs name>:<listener port><path>`. */
function decoratorOperation(route: ProtoObject, vsName: string, port: number): string {
  const m = route.match as ProtoObject;
  let path = '/*';
  if (typeof m.prefix === 'string') path = `${m.prefix}*`;
  else if (typeof m.path === 'string') path = m.path;
  else if (m.safe_regex) path = String((m.safe_regex as ProtoObject).regex);
  const action = route.route as ProtoObject | undefined;
  const c = typeof action?.cluster === 'string' ? parseOutboundClusterName(action.cluster) : undefined;
  return c ? `${c.host}:${c.port}${path}` : `${vsName}:${port}${path}`;
}

/**
 * gRPC clients can neither follow a redirect nor take a direct response (grpc-js rejects the
 * whole RouteConfiguration). Such routes become a 100 % fault abort with the same HTTP status,
 * which gRPC maps to a status code, so matching calls fail instead of falling through to later
 * routes. The cluster is only a placeholder the client already knows.
 */
function grpcRefusal(status: number, cluster: string): { route: ProtoObject; fault: ProtoObject } {
  return {
    route: { cluster },
    fault: { '@type': HTTP_FAULT_TYPE, abort: { http_status: status, percentage: { numerator: 100, denominator: 'HUNDRED' } } },
  };
}

/**
 * The last route for gRPC clients when a VirtualService has no catch-all: gRPC fails a call that
 * matches no route with UNAVAILABLE, but gRPC C-core 1.51 crashes instead; this route gives the
 * same status without relying on the client.
 */
function grpcNoRoute(cluster: string): ProtoObject {
  return {
    name: 'no-route',
    match: { prefix: '/' },
    route: { cluster },
    typed_per_filter_config: {
      [FAULT_FILTER_NAME]: { '@type': HTTP_FAULT_TYPE, abort: { grpc_status: 14, percentage: { numerator: 100, denominator: 'HUNDRED' } } },
    },
  };
}

/** One Envoy route for one HTTP route and one of its matches; undefined when it cannot be built. */
function translateRoute(
  r: HTTPRoute,
  m: HTTPMatchRequest | undefined,
  match: ProtoObject,
  vs: VirtualServiceConfig,
  scope: RouteScope,
  placeholderCluster: string,
): ProtoObject | undefined {
  const envoy = scope.flavor === 'envoy';
  const ns = vs.meta.namespace;
  const name = m?.name ? `${r.name ?? ''}.${m.name}` : r.name;
  const route: ProtoObject = { ...(name ? { name } : {}), match };
  if (m?.statPrefix && envoy) route.stat_prefix = m.statPrefix;
  const ops = envoy ? headerOperations(r.headers) : {};
  appendHeaderOps(route, ops);
  const perFilter: ProtoObject = {};
  if (r.redirect || r.directResponse) {
    if (envoy) {
      if (r.redirect) {
        const redirect = redirectAction(r.redirect, scope);
        if (!redirect) return undefined;
        route.redirect = redirect;
      } else if (r.directResponse) route.direct_response = directResponseAction(r.directResponse);
    } else {
      const status = r.directResponse?.status ?? (r.redirect?.redirectCode || 301);
      const refusal = grpcRefusal(status, placeholderCluster);
      route.route = refusal.route;
      perFilter[FAULT_FILTER_NAME] = refusal.fault;
    }
  } else {
    const action = forwardAction(r, ns, scope, route, ops.authority);
    if (!action) return undefined;
    route.route = action;
  }
  if (envoy) route.decorator = { operation: decoratorOperation(route, vs.meta.name, scope.port) };
  if (r.fault && !perFilter[FAULT_FILTER_NAME]) {
    const fault = httpFault(r.fault);
    if (fault) perFilter[FAULT_FILTER_NAME] = fault;
  }
  if (r.corsPolicy && envoy) perFilter[CORS_FILTER_NAME] = corsPolicy(r.corsPolicy);
  if (Object.keys(perFilter).length > 0) route.typed_per_filter_config = perFilter;
  route.metadata = configMetadata(vs);
  return route;
}

/** istiod's BuildConfigInfoMetadata: the VirtualService a route came from, as istioctl reads it back. */
function configMetadata(vs: VirtualServiceConfig): ProtoObject {
  return { filter_metadata: { istio: toStruct({ config: `/apis/networking.istio.io/v1/namespaces/${vs.meta.namespace}/virtual-service/${vs.meta.name}` }) } };
}

/**
 * Envoy routes for one VirtualService as seen on one port. Routes after a catch-all can never
 * match and are left out, as istiod does. `svc` is the service whose virtual host this is.
 */
export function virtualServiceRoutes(vs: VirtualServiceConfig, scope: RouteScope, svc: MeshService): ProtoObject[] {
  const routes: ProtoObject[] = [];
  const placeholder = outboundClusterName(scope.port, '', svc.hostname);
  for (const r of vs.spec.http ?? []) {
    if (r.delegate) continue; // unresolved delegate (reported by the model)
    let catchAll = false;
    const matches = r.match && r.match.length > 0 ? r.match : [undefined];
    for (const m of matches) {
      if (!matchApplies(m, vs.meta.namespace, scope)) continue;
      // Usually one; for gRPC, withoutHeaders may take several (see routeMatches).
      for (const match of routeMatches(m, scope.flavor)) {
        const route = translateRoute(r, m, match, vs, scope, placeholder);
        if (!route) continue;
        routes.push(route);
        if (isCatchAll(match)) catchAll = true;
      }
      if (catchAll) break;
    }
    if (catchAll || !r.match || r.match.length === 0) break;
  }
  const last = routes[routes.length - 1];
  if (scope.flavor === 'grpc' && last && !isCatchAll(last.match as ProtoObject)) routes.push(grpcNoRoute(placeholder));
  return routes;
}

/** The route for a service without a VirtualService: everything to its cluster for this port. */
export function defaultRoute(svc: MeshService, scope: RouteScope): ProtoObject {
  const cluster = outboundClusterName(scope.port, '', svc.hostname);
  const hash = hashPolicy(serviceConsistentHash(proxyDestinationRule(scope.snap, scope.proxy, svc.hostname), scope.port), scope.flavor);
  const route: ProtoObject = { name: 'default', match: { prefix: '/' }, route: defaultForwardAction(cluster, hash, scope) };
  if (scope.flavor === 'envoy') route.decorator = { operation: `${svc.hostname}:${scope.port}/*` };
  return route;
}
