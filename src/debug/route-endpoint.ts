/**
 * `GET /debug/route?proxyID=&to=<host:port>&path=&method=&header=name=value…`: the route simulator
 * of `meshctl x route` (route-sim.ts, route-rbac.ts) run in meshd on the config dump it would send
 * the proxy now, with the RBAC decision taken on the dump of the connected proxy that owns the
 * chosen endpoint. Answers the simulator's text; 400 with the parameter's name on bad input, 404
 * when the proxy is not connected.
 */
import type { Json } from '../cli/proxy-config';
import { type ProxyInfo, describeRbacSteps, simulateRbac } from '../cli/route-rbac';
import { describeSimulation, simulateRoute } from '../cli/route-sim';
import type { Connection } from '../xds/connection';
import type { XdsWatcher } from '../xds/engine';
import type { EnvoyProtos } from '../xds/protos';
import { configDumpAnys, configDumpJson } from './config-dump';
import { findProxy } from './xds-debug';

export interface RouteQuery {
  proxyID?: string;
  to?: string;
  path?: string;
  method?: string;
  header?: string | string[];
  principal?: string;
}

export interface RouteDeps {
  protos: EnvoyProtos;
  watcher: XdsWatcher;
  connections: readonly Connection[];
  trustDomain: string;
}

class BadRequest extends Error {}

function parse(q: RouteQuery): { host: string; port: number; path: string; method: string; headers: Record<string, string> } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(q.to ?? '');
  const port = Number(m?.[2]);
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) throw new BadRequest(`to: must be host:port (got ${JSON.stringify(q.to ?? '')})`);
  const path = q.path || '/';
  if (!path.startsWith('/')) throw new BadRequest(`path: must start with / (got ${JSON.stringify(path)})`);
  const method = (q.method || 'GET').toUpperCase();
  if (!/^[A-Z]+$/.test(method)) throw new BadRequest(`method: must be an HTTP method (got ${JSON.stringify(q.method)})`);
  const headers: Record<string, string> = {};
  const list = q.header === undefined ? [] : Array.isArray(q.header) ? q.header : [q.header];
  list.forEach((h, i) => {
    if (h === '') return;
    const eq = h.indexOf('=');
    if (eq <= 0) throw new BadRequest(`header[${i}]: must be name=value (got ${JSON.stringify(h)})`);
    headers[h.slice(0, eq).trim().toLowerCase()] = h.slice(eq + 1);
  });
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port, path, method, headers };
}

function dumpOf(deps: RouteDeps, conn: Connection): Json {
  return configDumpJson(deps.protos, configDumpAnys(deps.watcher, deps.protos, conn)) as Json;
}

export async function routeSimulation(deps: RouteDeps, q: RouteQuery): Promise<{ status: number; text: string }> {
  if (!q.proxyID) return { status: 400, text: 'proxyID: required (a node ID or <pod>.<namespace>)\n' };
  let req;
  try {
    req = parse(q);
  } catch (e) {
    if (e instanceof BadRequest) return { status: 400, text: `${e.message}\n` };
    throw e;
  }
  const conn = findProxy(deps.connections, q.proxyID);
  if (!conn?.proxy) return { status: 404, text: `proxy ${q.proxyID} is not connected\n` };
  const result = simulateRoute(dumpOf(deps, conn), req);
  const proxies: ProxyInfo[] = deps.connections.flatMap((c) =>
    c.proxy ? [{ id: c.proxy.id, namespace: c.proxy.namespace, ips: c.proxy.ips, ...(c.proxy.serviceAccount ? { serviceAccount: c.proxy.serviceAccount } : {}) }] : [],
  );
  const rbac = await simulateRbac(
    result,
    conn.proxy.id,
    {
      proxies,
      dump: (id) => {
        const c = findProxy(deps.connections, id);
        return Promise.resolve(c ? dumpOf(deps, c) : undefined);
      },
    },
    { trustDomain: deps.trustDomain, ...(q.principal ? { principal: q.principal } : {}) },
  );
  return { status: 200, text: describeSimulation(result) + describeRbacSteps(rbac) };
}
