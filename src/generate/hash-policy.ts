/**
 * Route-level `hash_policy` from the DestinationRule in effect (istiod's hashForHTTPDestination /
 * hashForService and consistentHashToHashPolicy). The cluster side (ring hash / maglev) is the
 * cluster generator's; the route says what to hash.
 */
import type { ConsistentHashLB, Destination, PortTrafficPolicy } from '../model/objects';
import { proxyDestinationRule } from '../model/lookup';
import type { DestinationRuleConfig } from '../model/snapshot';
import { type Flavor, type RouteScope, destinationHost } from './route-scope';
import type { ProtoObject } from './types';
import { duration } from './util';

function portLevelHash(port: number | undefined, settings: readonly PortTrafficPolicy[] | undefined): ConsistentHashLB | undefined {
  if (port === undefined) return undefined;
  return settings?.find((s) => s.port?.number === port)?.loadBalancer?.consistentHash;
}

/**
 * The consistent hash for a route destination: the subset's port-level setting, else the
 * subset's, else the rule's port-level setting (only when the destination names a port), else
 * the rule's.
 */
export function destinationConsistentHash(dr: DestinationRuleConfig | undefined, d: Destination): ConsistentHashLB | undefined {
  if (!dr) return undefined;
  const tp = dr.spec.trafficPolicy;
  const port = d.port?.number;
  const subset = d.subset !== undefined ? dr.spec.subsets?.find((s) => s.name === d.subset) : undefined;
  return (
    portLevelHash(port, subset?.trafficPolicy?.portLevelSettings) ??
    subset?.trafficPolicy?.loadBalancer?.consistentHash ??
    portLevelHash(port, tp?.portLevelSettings) ??
    tp?.loadBalancer?.consistentHash
  );
}

/** The consistent hash for a service port without a VirtualService: port-level, else the rule's. */
export function serviceConsistentHash(dr: DestinationRuleConfig | undefined, port: number): ConsistentHashLB | undefined {
  if (!dr) return undefined;
  const tp = dr.spec.trafficPolicy;
  return portLevelHash(port, tp?.portLevelSettings) ?? tp?.loadBalancer?.consistentHash;
}

/**
 * ConsistentHashLB → RouteAction.HashPolicy. gRPC clients hash only on headers and on the
 * channel (`filter_state` io.grpc.channel_id); a proxyless client is its own source, so
 * `useSourceIp` becomes channel affinity there. Cookies and query parameters do not exist in
 * gRPC and give no policy.
 */
export function hashPolicy(ch: ConsistentHashLB | undefined, flavor: Flavor): ProtoObject | undefined {
  if (!ch) return undefined;
  if (ch.httpHeaderName) return { header: { header_name: ch.httpHeaderName } };
  if (flavor === 'grpc') return ch.useSourceIp ? { filter_state: { key: 'io.grpc.channel_id' } } : undefined;
  if (ch.httpCookie) {
    const c = ch.httpCookie;
    const cookie: ProtoObject = { name: c.name };
    if (c.ttl) cookie.ttl = duration(c.ttl);
    if (c.path) cookie.path = c.path;
    if (c.attributes?.length) cookie.attributes = c.attributes.map((a) => ({ name: a.name, ...(a.value ? { value: a.value } : {}) }));
    return { cookie };
  }
  if (ch.useSourceIp) return { connection_properties: { source_ip: true } };
  if (ch.httpQueryParameterName) return { query_parameter: { name: ch.httpQueryParameterName } };
  return undefined;
}

/** The DestinationRule a destination of a VirtualService in `vsNamespace` is governed by, for this proxy. */
export function destinationRuleOf(d: Destination, vsNamespace: string, scope: RouteScope): DestinationRuleConfig | undefined {
  return proxyDestinationRule(scope.snap, scope.proxy, destinationHost(d, vsNamespace, scope));
}

/** Whether a rule can influence route hash policies at all (anything in it sets consistentHash). */
export function hasConsistentHash(dr: DestinationRuleConfig | undefined): boolean {
  if (!dr) return false;
  const policies = [dr.spec.trafficPolicy, ...(dr.spec.subsets ?? []).map((s) => s.trafficPolicy)];
  return policies.some((tp) => tp?.loadBalancer?.consistentHash !== undefined || (tp?.portLevelSettings ?? []).some((p) => p.loadBalancer?.consistentHash !== undefined));
}

/** Appends `p` to a route action's hash_policy unless an identical one is there (weighted destinations often share a rule). */
export function addHashPolicy(action: ProtoObject, p: ProtoObject | undefined): void {
  if (!p) return;
  const cur = Array.isArray(action.hash_policy) ? action.hash_policy : [];
  const key = JSON.stringify(p);
  if (cur.some((x) => JSON.stringify(x) === key)) return;
  action.hash_policy = [...cur, p];
}
