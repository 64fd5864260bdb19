/**
 * EnvoyFilter patches on route configurations, as istiod's rc_patch.go applies them:
 * ROUTE_CONFIGURATION (MERGE), VIRTUAL_HOST (MERGE, REPLACE, REMOVE, ADD) and HTTP_ROUTE (MERGE,
 * REMOVE, ADD, INSERT_BEFORE, INSERT_AFTER, INSERT_FIRST). Sidecars match on the route's port
 * (its name, `inbound|…` aside) and name; gateways on the port, port name and gateway of their
 * `http.<port>` / `https.<port>.<portName>.<gateway>.<namespace>` names.
 */
import type { EnvoyFilterApplyTo, EnvoyFilterContext } from '../../model/objects-envoyfilter';
import type { ProtoObject, ProtoValue } from '../types';
import { protoMerge } from './merge';
import { type PatchRef, type PatchValues, contextMatch } from './select';

export const ROUTE_CLASS: readonly EnvoyFilterApplyTo[] = ['ROUTE_CONFIGURATION', 'VIRTUAL_HOST', 'HTTP_ROUTE'];

function isObj(v: ProtoValue | undefined): v is ProtoObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function objects(v: ProtoValue | undefined): ProtoObject[] {
  return Array.isArray(v) ? v.filter(isObj) : [];
}

function atoi(s: string | undefined): number {
  return s !== undefined && /^[+-]?\d+$/.test(s) ? Number(s) : 0;
}

/** istiod's ParseGatewayRDSRouteName. */
function parseGatewayRouteName(name: string): { port: number; portName: string; gateway: string } {
  const parts = name.split('.');
  if (name.startsWith('http.') && parts.length >= 2) return { port: atoi(parts[1]), portName: '', gateway: '' };
  if (name.startsWith('https.') && parts.length >= 5) return { port: atoi(parts[1]), portName: parts[2] ?? '', gateway: `${parts[4] ?? ''}/${parts[3] ?? ''}` };
  return { port: 0, portName: '', gateway: '' };
}

export function routeConfigurationMatch(pctx: EnvoyFilterContext, name: string, rp: PatchRef): boolean {
  const m = rp.patch.match?.routeConfiguration;
  if (!m) return true;
  if (pctx !== 'GATEWAY') {
    const port = name.startsWith('inbound') ? atoi(name.split('|')[1]) : atoi(name);
    if (m.portNumber && m.portNumber !== port) return false;
    return !(m.name && m.name !== name);
  }
  const g = parseGatewayRouteName(name);
  if (m.portNumber && m.portNumber !== g.port) return false;
  if (m.portName && m.portName !== g.portName) return false;
  if (m.gateway && m.gateway !== g.gateway) return false;
  return !(m.name && m.name !== name);
}

function virtualHostMatch(vh: ProtoObject, rp: PatchRef): boolean {
  const m = rp.patch.match?.routeConfiguration?.vhost;
  return !m || !m.name || m.name === vh['name'];
}

const hasRouteMatch = (rp: PatchRef): boolean => rp.patch.match?.routeConfiguration?.vhost?.route !== undefined;

function routeMatch(r: ProtoObject, rp: PatchRef): boolean {
  const m = rp.patch.match?.routeConfiguration?.vhost?.route;
  if (!m) return true;
  if (m.name && m.name !== r['name']) return false;
  const action = m.action ?? 'ANY';
  if (action !== 'ANY') {
    if (r['route'] !== undefined) return action === 'ROUTE';
    if (r['redirect'] !== undefined) return action === 'REDIRECT';
    if (r['direct_response'] !== undefined) return action === 'DIRECT_RESPONSE';
  }
  return true;
}

export class RoutePatcher {
  private readonly refs: readonly PatchRef[];

  constructor(
    private readonly pv: PatchValues,
    private readonly pctx: EnvoyFilterContext,
    refs: readonly PatchRef[],
  ) {
    this.refs = refs.filter((r) => ROUTE_CLASS.includes(r.patch.applyTo) && contextMatch(r, pctx));
  }

  /** Whether any patch may change the route configuration of this name. */
  touches(name: string): boolean {
    return this.refs.some((rp) => routeConfigurationMatch(this.pctx, name, rp));
  }

  patch(rc: ProtoObject): ProtoObject {
    const name = String(rc['name'] ?? '');
    const mine = this.refs.filter((rp) => routeConfigurationMatch(this.pctx, name, rp));
    if (mine.length === 0) return rc;
    let out = rc;
    for (const rp of mine) {
      if (rp.patch.applyTo === 'ROUTE_CONFIGURATION' && rp.patch.operation === 'MERGE')
        out = protoMerge(this.pv.types.type('envoy.config.route.v3.RouteConfiguration'), out, this.pv.value(rp), this.pv.types);
    }
    const vhPatches = mine.filter((rp) => rp.patch.applyTo === 'VIRTUAL_HOST');
    const routePatches = mine.filter((rp) => rp.patch.applyTo === 'HTTP_ROUTE');
    const vhosts: ProtoObject[] = [];
    for (const vh of objects(out['virtual_hosts'])) {
      const p = this.virtualHost(vh, vhPatches, routePatches);
      if (p) vhosts.push(p);
    }
    for (const rp of vhPatches) if (rp.patch.operation === 'ADD') vhosts.push(this.pv.value(rp));
    return { ...out, virtual_hosts: vhosts };
  }

  private virtualHost(host: ProtoObject, vhPatches: readonly PatchRef[], routePatches: readonly PatchRef[]): ProtoObject | undefined {
    let vh = host;
    for (const rp of vhPatches) {
      if (!virtualHostMatch(vh, rp)) continue;
      if (rp.patch.operation === 'REMOVE') return undefined;
      if (rp.patch.operation === 'MERGE') vh = protoMerge(this.pv.types.type('envoy.config.route.v3.VirtualHost'), vh, this.pv.value(rp), this.pv.types);
      else if (rp.patch.operation === 'REPLACE') vh = this.pv.value(rp);
    }
    return this.routes(vh, routePatches);
  }

  private routes(vh: ProtoObject, routePatches: readonly PatchRef[]): ProtoObject {
    const mine = routePatches.filter((rp) => virtualHostMatch(vh, rp));
    if (mine.length === 0) return vh;
    const routeType = this.pv.types.type('envoy.config.route.v3.Route');
    // Removes and merges route by route, then the adds and inserts.
    let routes: ProtoObject[] = [];
    for (const r of objects(vh['routes'])) {
      let cur: ProtoObject | undefined = r;
      for (const rp of mine) {
        if (!cur || !routeMatch(cur, rp)) continue;
        if (rp.patch.operation === 'REMOVE') cur = undefined;
        else if (rp.patch.operation === 'MERGE') cur = protoMerge(routeType, cur, this.pv.value(rp), this.pv.types);
      }
      if (cur) routes.push(cur);
    }
    for (const rp of mine) {
      const value = (): ProtoObject => this.pv.value(rp);
      switch (rp.patch.operation) {
        case 'ADD':
          routes = [...routes, value()];
          break;
        case 'INSERT_AFTER': {
          if (!hasRouteMatch(rp)) {
            routes = [...routes, value()];
            break;
          }
          const i = routes.findIndex((r) => routeMatch(r, rp));
          if (i >= 0) routes = [...routes.slice(0, i + 1), value(), ...routes.slice(i + 1)];
          break;
        }
        case 'INSERT_BEFORE': {
          if (!hasRouteMatch(rp)) {
            routes = [value(), ...routes];
            break;
          }
          const i = routes.findIndex((r) => routeMatch(r, rp));
          if (i >= 0) routes = [...routes.slice(0, i), value(), ...routes.slice(i)];
          break;
        }
        case 'INSERT_FIRST':
          if (!hasRouteMatch(rp) || routes.some((r) => routeMatch(r, rp))) routes = [value(), ...routes];
          break;
        default:
          break;
      }
    }
    return { ...vh, routes };
  }
}
