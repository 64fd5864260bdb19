/**
 * istiod's MergeGateways for one gateway proxy: the servers of every Gateway that selects it,
 * grouped by the port the proxy listens on, with RDS route names, SNI hosts, and the checks
 * that keep Envoy from rejecting the result (one protocol per plaintext port, unique TLS hosts
 * per port, unique HTTPS route names). Servers that conflict are skipped, never thrown on.
 */
import type { GatewayServer } from '../../model/objects';
import { gatewaysFor } from '../../model/lookup';
import { type Proxy, proxyLabels, workloadOf } from '../../model/proxy';
import { type GatewayConfig, type MeshSnapshot, labelsMatch } from '../../model/snapshot';
import { isHttpProtocol, isHttpServer, isTlsServer, sanitizeServerHosts, serverProtocol, sniHostsForServer, tlsMode } from './hosts';

/** One server of one Gateway, as merged for this proxy. */
export interface MergedServer {
  server: GatewayServer;
  gateway: GatewayConfig;
  /** Hosts with `./` and `*\/` resolved: `ns/host` or `host`. */
  hosts: string[];
  /** The port the proxy listens on (the gateway Service's targetPort, as istiod resolves it). */
  listenPort: number;
  /** `http.<port>` or `https.<port>.<portName>.<gateway>.<namespace>`; empty for TCP/TLS. */
  routeName: string;
  /** SNI names for servers with TLS settings. */
  sniHosts: string[];
}

/** (listen port, protocol, bind) → its servers, in merge order. */
export interface ServerPortGroup {
  port: number;
  protocol: string;
  bind: string;
  servers: MergedServer[];
}

export interface MergedGateway {
  groups: ServerPortGroup[];
  serversByRouteName: ReadonlyMap<string, readonly MergedServer[]>;
  /** Hosts of AUTO_PASSTHROUGH servers: their SNI-named clusters go to CDS/EDS. */
  autoPassthroughHosts: readonly string[];
}

/** The Service ports that select this proxy: port → targetPort (istiod's resolvePorts, legacy selector). */
function servicePortMap(snap: MeshSnapshot, proxy: Proxy, labels: Readonly<Record<string, string>>): Map<number, number> {
  const out = new Map<number, number>();
  // The pod is looked up only for a named targetPort: replicas of a gateway then share config.
  let pod: { w: ReturnType<typeof workloadOf> } | undefined;
  const workload = (): ReturnType<typeof workloadOf> => (pod ??= { w: workloadOf(proxy, snap) }).w;
  for (const svc of snap.services) {
    if (svc.source.kind !== 'Service' || svc.namespace !== proxy.namespace) continue;
    if (Object.keys(svc.selector).length === 0 || !labelsMatch(svc.selector, labels)) continue;
    for (const p of svc.ports) {
      if (out.has(p.port)) continue;
      let target = p.port;
      if (typeof p.targetPort === 'number') target = p.targetPort;
      else if (typeof p.targetPort === 'string') target = workload()?.containerPorts.find((c) => c.name === p.targetPort)?.port ?? p.port;
      out.set(p.port, target);
    }
  }
  return out;
}

function routeNameFor(s: GatewayServer, listenPort: number, gw: GatewayConfig): string {
  const bind = s.bind ? `.${s.bind}` : '';
  const p = serverProtocol(s);
  if (isHttpProtocol(p)) return `http.${listenPort}${bind}`;
  if (p === 'HTTPS' && s.tls !== undefined && !(tlsMode(s.tls) === 'PASSTHROUGH' || tlsMode(s.tls) === 'AUTO_PASSTHROUGH')) {
    return `https.${s.port.number}.${s.port.name}.${gw.meta.name}.${gw.meta.namespace}${bind}`;
  }
  return '';
}

function canMergeProtocols(incoming: string, current: string): boolean {
  return (isHttpProtocol(incoming) || incoming === current) && isHttpProtocol(current);
}

export function mergeGateways(snap: MeshSnapshot, proxy: Proxy): MergedGateway {
  const labels = proxyLabels(proxy, snap);
  const portMap = servicePortMap(snap, proxy, labels);
  const unprivileged = proxy.metadata.UNPRIVILEGED_POD === 'true';
  const groups: ServerPortGroup[] = [];
  const byRoute = new Map<string, MergedServer[]>();
  const plaintext = new Map<number, ServerPortGroup>();
  const seenPorts = new Set<number>();
  const tlsHostsByPort = new Map<number, Map<string, string>>();
  const tlsBinds = new Map<number, Set<string>>();
  const autoHosts = new Set<string>();
  const groupFor = (port: number, protocol: string, bind: string): ServerPortGroup | undefined => groups.find((g) => g.port === port && g.protocol === protocol && g.bind === bind);

  const selected = gatewaysFor(snap, proxy);
  for (const gw of selected) {
    for (const server of gw.spec.servers ?? []) {
      if (!server.port) continue;
      const listenPort = portMap.get(server.port.number) ?? server.port.number;
      // Ports below 1024 cannot be bound by an unprivileged pod; istiod skips them.
      if (unprivileged && listenPort < 1024) continue;
      const hosts = sanitizeServerHosts(server.hosts ?? [], gw.meta.namespace);
      const routeName = routeNameFor(server, listenPort, gw);
      const bind = server.bind ?? '';
      const protocol = serverProtocol(server);
      const ms: MergedServer = { server, gateway: gw, hosts, listenPort, routeName, sniHosts: server.tls ? sniHostsForServer(hosts) : [] };
      if (server.tls) {
        // Two servers with one SNI host on one listener: Envoy rejects duplicate filter chain matches.
        const known = tlsHostsByPort.get(listenPort) ?? new Map<string, string>();
        tlsHostsByPort.set(listenPort, known);
        if (hosts.some((h) => known.get(h) === bind)) continue;
        for (const h of hosts) known.set(h, bind);
        if (tlsMode(server.tls) === 'AUTO_PASSTHROUGH') for (const h of hosts) autoHosts.add(h);
      }
      const addRoute = (): void => {
        if (!routeName) return;
        const list = byRoute.get(routeName) ?? [];
        list.push(ms);
        byRoute.set(routeName, list);
      };
      if (!seenPorts.has(listenPort)) {
        seenPorts.add(listenPort);
        const g: ServerPortGroup = { port: listenPort, protocol, bind, servers: [ms] };
        groups.push(g);
        if (!isTlsServer(server)) plaintext.set(listenPort, g);
        if (isHttpServer(server)) addRoute();
        continue;
      }
      const current = plaintext.get(listenPort);
      if (current) {
        // Plaintext servers share a port only when both speak HTTP (one HCM, one route config).
        if (current.bind === bind && (!canMergeProtocols(protocol, current.protocol) || !routeName)) continue;
        if (current.bind !== bind) {
          const g = groupFor(listenPort, protocol, bind) ?? { port: listenPort, protocol, bind, servers: [] };
          if (!groups.includes(g)) groups.push(g);
          g.servers.push(ms);
        } else current.servers.push(ms);
        addRoute();
        continue;
      }
      // The port is already a TLS port: servers are told apart by SNI.
      if (isHttpServer(server)) {
        if (!routeName || byRoute.has(routeName)) continue;
        addRoute();
      }
      const binds = tlsBinds.get(listenPort) ?? new Set<string>();
      tlsBinds.set(listenPort, binds);
      const newBind = !binds.has(bind);
      binds.add(bind);
      if (!server.tls && !newBind) continue;
      const g = groupFor(listenPort, protocol, bind);
      if (g) g.servers.push(ms);
      else groups.push({ port: listenPort, protocol, bind, servers: [ms] });
    }
  }
  return { groups, serversByRouteName: byRoute, autoPassthroughHosts: [...autoHosts] };
}
