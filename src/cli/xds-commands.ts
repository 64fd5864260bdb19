/**
 * meshctl's istioctl verbs that ask the control plane over xDS: `proxy-status` (`ps`) and
 * `proxy-config` (`pc`) cluster|listener|route|endpoint|secret|all, with istioctl's control-plane
 * flags (`--xds-address`, `--plaintext`, `--cert-dir`, `--insecure`, `--xds-san`, `--timeout`).
 */
import * as fs from 'node:fs';
import { Command } from 'commander';
import { configDumpJson } from '../debug/config-dump';
import { EnvoyProtos } from '../xds/protos';
import * as pc from './proxy-config';
import { proxyDiff, readStatuses, displayName, statusTable } from './proxy-status';
import { type ProxyInfo, describeRbacSteps, proxyIps, simulateRbac } from './route-rbac';
import { describeSimulation, simulateRoute } from './route-sim';
import { parseOutput, printValue } from './tables';
import { askXds, type XdsTarget } from './xds-ask';
import type { AnyMsg } from '../xds/wire';

const SYNCZ = 'istio.io/debug/syncz';
const CONFIG_DUMP = 'istio.io/debug/config_dump';

export interface CliIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

interface XdsFlags {
  xdsAddress: string;
  plaintext?: boolean;
  certDir?: string;
  insecure?: boolean;
  xdsSan?: string;
  timeout: string;
  tokenFile?: string;
  istioNamespace: string;
  namespace: string;
  output: string;
}

function seconds(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v);
  if (!m) throw new Error(`--timeout must be a duration such as 500ms, 30s or 1m (got ${JSON.stringify(v)})`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

function target(o: XdsFlags): XdsTarget {
  const token = o.tokenFile ? fs.readFileSync(o.tokenFile, 'utf8').trim() : process.env['MESHCTL_TOKEN'];
  return {
    address: o.xdsAddress,
    plaintext: o.plaintext === true,
    insecure: o.insecure === true,
    namespace: o.istioNamespace,
    timeoutMs: seconds(o.timeout),
    ...(o.certDir ? { certDir: o.certDir } : {}),
    ...(o.xdsSan ? { xdsSan: o.xdsSan } : {}),
    ...(token ? { token } : {}),
  };
}

function xdsFlags(cmd: Command, outputs: string, defaultOutput: string): Command {
  return cmd
    .option('--xds-address <host:port>', "meshd's xDS address (15012 TLS; 15010 with --plaintext)", process.env['XDS_ADDRESS'] ?? 'localhost:15012')
    .option('--plaintext', 'connect without TLS (meshd answers debug types there only with --debug-endpoint-auth=false)')
    .option('--cert-dir <dir>', 'root-cert.pem to verify meshd with, and cert-chain.pem + key.pem to present', process.env['CERT_DIR'])
    .option('--insecure', "skip verifying meshd's certificate chain and name (NOT SECURE)")
    .option('--xds-san <name>', "the name meshd's certificate must carry", 'istiod.istio-system.svc')
    .option('--timeout <duration>', 'how long to wait for the answer', '30s')
    .option('--token-file <file>', 'a service-account token to prove who asks (default: $MESHCTL_TOKEN)')
    .option('-i, --istioNamespace <ns>', "the control plane's namespace (the namespace the asking node claims)", 'istio-system')
    .option('-n, --namespace <ns>', 'the namespace of a proxy named without one', 'default')
    .option('-o, --output <format>', `output format: ${outputs}`, defaultOutput);
}

/** `pod`, `pod.namespace` or a full node ID → what meshd's debug types take. */
function proxyName(arg: string, namespace: string): string {
  return arg.includes('~') || arg.includes('.') ? arg : `${arg}.${namespace}`;
}

function fail(io: CliIo, err: unknown): void {
  io.stderr.write(`Error: ${(err as Error).message}\n`);
  process.exitCode = 1;
}

export function proxyStatusCommand(io: CliIo): Command {
  const cmd = new Command('proxy-status')
    .alias('ps')
    .description("each proxy's xDS sync status (CDS, LDS, EDS, RDS, ECDS) as meshd sees it; with a proxy, whether it holds what meshd would send")
    .argument('[proxy]', '<pod>[.<namespace>] or a node ID');
  xdsFlags(cmd, 'table, json, yaml', 'table').action(async (proxy: string | undefined, o: XdsFlags) => {
    try {
      const format = parseOutput(o.output, ['table', 'json', 'yaml']);
      const protos = new EnvoyProtos();
      const t = target(o);
      const { response, controlPlane } = await askXds(protos, t, SYNCZ);
      let list = readStatuses(protos, response.resources, controlPlane);
      if (proxy) {
        const want = proxyName(proxy, o.namespace);
        list = list.filter((p) => p.name === want || displayName(p.name) === want);
        if (list.length === 0) throw new Error(`proxy ${want} is not connected to ${t.address}`);
      }
      if (format !== 'table') io.stdout.write(printValue(list, format as 'json' | 'yaml'));
      else if (proxy) io.stdout.write(proxyDiff(list[0] as (typeof list)[number]));
      else io.stdout.write(statusTable(list));
    } catch (err) {
      fail(io, err);
    }
  });
  return cmd;
}

type Kind = 'cluster' | 'listener' | 'route' | 'endpoint' | 'secret' | 'all';

interface PcFlags extends XdsFlags {
  fqdn?: string;
  port?: string;
  subset?: string;
  direction?: string;
  name?: string;
  address?: string;
  type?: string;
  cluster?: string;
  status?: string;
}

function portOf(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--port must be a port number (got ${JSON.stringify(v)})`);
  return n;
}

function render(kind: Exclude<Kind, 'all'>, dump: pc.Json, o: PcFlags, format: string): string {
  const port = portOf(o.port);
  const now = new Date();
  const pick = {
    cluster: () => pc.clusters(dump, { fqdn: o.fqdn, port, subset: o.subset, direction: o.direction }),
    listener: () => pc.listeners(dump, { address: o.address, port, type: o.type }),
    route: () => pc.routes(dump, o.name),
    endpoint: () => pc.endpoints(dump, { address: o.address, port, cluster: o.cluster, status: o.status }),
    secret: () => pc.secrets(dump),
  }[kind];
  const list = pick();
  if (format === 'json' || format === 'yaml') return printValue(list, format);
  switch (kind) {
    case 'cluster':
      return pc.clusterTable(list);
    case 'listener':
      return pc.listenerTable(list);
    case 'route':
      return pc.routeTable(list);
    case 'endpoint':
      return pc.endpointTable(list);
    case 'secret':
      return pc.secretTable(list, now);
  }
}

function configCommand(io: CliIo, kind: Kind, description: string, extra: (c: Command) => Command): Command {
  const cmd = new Command(kind).description(description).argument('<proxy>', '<pod>[.<namespace>] or a node ID');
  extra(xdsFlags(cmd, 'short, json, yaml', 'short')).action(async (proxy: string, o: PcFlags) => {
    try {
      const format = parseOutput(o.output, ['short', 'json', 'yaml']);
      const protos = new EnvoyProtos();
      const t = target(o);
      const name = proxyName(proxy, o.namespace);
      const { response } = await askXds(protos, t, CONFIG_DUMP, [name]);
      if (response.resources.length === 0) throw new Error(`proxy ${name} is not connected to ${t.address}`);
      const dump = configDumpJson(protos, response.resources) as pc.Json;
      if (kind !== 'all') {
        io.stdout.write(render(kind, dump, o, format));
        return;
      }
      if (format !== 'short') {
        io.stdout.write(printValue(dump, format as 'json' | 'yaml'));
        return;
      }
      const parts = (['cluster', 'listener', 'route', 'endpoint', 'secret'] as const).map((k) => render(k, dump, o, format));
      io.stdout.write(parts.join('\n'));
    } catch (err) {
      fail(io, err);
    }
  });
  return cmd;
}

export function proxyConfigCommand(io: CliIo): Command {
  const cmd = new Command('proxy-config').alias('pc').description("a proxy's config as meshd serves it (istioctl's tables; -o json|yaml for proto3 JSON)");
  const clusterFlags = (c: Command): Command =>
    c
      .option('--fqdn <fqdn>', 'only clusters whose name contains this FQDN')
      .option('--port <port>', 'only clusters of this port')
      .option('--subset <subset>', 'only clusters of this subset')
      .option('--direction <dir>', 'only inbound or outbound clusters');
  const listenerFlags = (c: Command): Command =>
    c
      .option('--address <ip>', 'only listeners on this address')
      .option('--port <port>', 'only listeners on this port')
      .option('--type <type>', 'only listeners of this type (HTTP, TCP, HTTP+TCP)');
  const routeFlags = (c: Command): Command => c.option('--name <name>', 'only the route configuration of this name');
  const endpointFlags = (c: Command): Command =>
    c
      .option('--address <ip>', 'only endpoints of this address')
      .option('--port <port>', 'only endpoints of this port')
      .option('--cluster <name>', 'only endpoints of this cluster')
      .option('--status <status>', 'only endpoints of this health status (HEALTHY, UNHEALTHY, …)');
  cmd.addCommand(configCommand(io, 'cluster', "the proxy's clusters", clusterFlags).alias('clusters').alias('c'));
  cmd.addCommand(configCommand(io, 'listener', "the proxy's listeners", listenerFlags).alias('listeners').alias('l'));
  cmd.addCommand(configCommand(io, 'route', "the proxy's route configurations", routeFlags).alias('routes').alias('r'));
  cmd.addCommand(configCommand(io, 'endpoint', "the proxy's endpoints (its EDS assignments)", endpointFlags).alias('endpoints').alias('ep'));
  cmd.addCommand(
    configCommand(io, 'secret', "the proxy's secrets (certificates; keys are never shown)", (c) => c)
      .alias('secrets')
      .alias('s'),
  );
  cmd.addCommand(
    configCommand(io, 'all', 'clusters, listeners, routes, endpoints and secrets', (c) => clusterFlags(c).option('--name <name>', 'only the route configuration of this name')),
  );
  return cmd;
}

interface RouteFlags extends XdsFlags {
  from: string;
  principal?: string;
  trustDomain: string;
  rbac: boolean;
  to: string;
  path: string;
  method?: string;
  header: string[];
  grpc?: boolean;
}

/** `host:port` (IPv6 in brackets) → its parts. */
function hostPort(v: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(v);
  const port = Number(m?.[2]);
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--to must be host:port (got ${JSON.stringify(v)})`);
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
}

/** The connected proxies in a syncz answer, with the node metadata the RBAC step needs. */
export function syncProxies(protos: EnvoyProtos, resources: readonly AnyMsg[]): ProxyInfo[] {
  const T = protos.type('envoy.service.status.v3.ClientConfig');
  const out: ProxyInfo[] = [];
  for (const any of resources) {
    if (!any.type_url.endsWith('envoy.service.status.v3.ClientConfig')) continue;
    const cc = T.toObject(T.decode(any.value), { defaults: false }) as { node?: { id?: string; metadata?: { fields?: Record<string, { stringValue?: string }> } } };
    const id = cc.node?.id ?? '';
    const f = cc.node?.metadata?.fields ?? {};
    const sa = f['SERVICE_ACCOUNT']?.stringValue;
    out.push({ id, namespace: f['NAMESPACE']?.stringValue ?? '', ips: proxyIps(id, f['INSTANCE_IPS']?.stringValue), ...(sa ? { serviceAccount: sa } : {}) });
  }
  return out;
}

function headerPair(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/**
 * `meshctl x route --from <proxy> --to <host:port>`: one request simulated through the config
 * meshd serves the proxy (route-sim.ts), with the listener, virtual host, route and the
 * VirtualService it came from, the policies on the way, and the clusters and endpoints it may reach.
 */
export function routeSimCommand(io: CliIo): Command {
  const cmd = new Command('route').description("simulate one request through a proxy's config: listener, virtual host, route, policies, clusters, endpoints");
  xdsFlags(cmd, 'text, json, yaml', 'text')
    .requiredOption('--from <proxy>', 'the calling proxy: <pod>[.<namespace>] or a node ID')
    .requiredOption('--to <host:port>', 'the destination as the caller names it')
    .option('--path <path>', 'request path (with query); gRPC: /<package.Service>/<Method>', '/')
    .option('--method <method>', 'HTTP method (default GET; POST with --grpc)')
    .option('--header <name=value>', 'a request header (repeatable)', headerPair, [] as string[])
    .option('--grpc', 'a gRPC call: POST with content-type application/grpc')
    .option('--principal <spiffe-id>', "the caller's identity at the destination (default: spiffe://<trust domain>/ns/<ns>/sa/<its SERVICE_ACCOUNT>)")
    .option('--trust-domain <domain>', "the mesh's trust domain, for the caller's identity", 'cluster.local')
    .option('--no-rbac', "skip the destination's RBAC decision")
    .action(async (o: RouteFlags) => {
      try {
        const format = parseOutput(o.output, ['text', 'json', 'yaml']);
        const { host, port } = hostPort(o.to);
        const headers: Record<string, string> = {};
        for (const h of o.header) {
          const i = h.indexOf('=');
          if (i <= 0) throw new Error(`--header must be name=value (got ${JSON.stringify(h)})`);
          headers[h.slice(0, i).toLowerCase()] = h.slice(i + 1);
        }
        if (o.grpc) headers['content-type'] ??= 'application/grpc';
        const protos = new EnvoyProtos();
        const t = target(o);
        const name = proxyName(o.from, o.namespace);
        const { response } = await askXds(protos, t, CONFIG_DUMP, [name]);
        if (response.resources.length === 0) throw new Error(`proxy ${name} is not connected to ${t.address}`);
        const dump = configDumpJson(protos, response.resources) as pc.Json;
        const result = simulateRoute(dump, { host, port, path: o.path, method: (o.method ?? (o.grpc ? 'POST' : 'GET')).toUpperCase(), headers });
        let rbac: Awaited<ReturnType<typeof simulateRbac>> = [];
        if (o.rbac && result.action.type === 'forward') {
          // Without the proxy list there is no destination to find: an empty list, said per cluster.
          let proxies: ProxyInfo[] = [];
          let listError: string | undefined;
          try {
            proxies = syncProxies(protos, (await askXds(protos, t, SYNCZ)).response.resources);
          } catch (e) {
            listError = `could not list the connected proxies: ${(e as Error).message}`;
          }
          const dumps = new Map<string, pc.Json | undefined>([[name, dump]]);
          const dumpOf = async (id: string): Promise<pc.Json | undefined> => {
            if (!dumps.has(id)) {
              const r = (await askXds(protos, t, CONFIG_DUMP, [id])).response.resources;
              dumps.set(id, r.length > 0 ? (configDumpJson(protos, r) as pc.Json) : undefined);
            }
            return dumps.get(id);
          };
          rbac = await simulateRbac(result, name, { proxies, dump: dumpOf }, { trustDomain: o.trustDomain, ...(o.principal ? { principal: o.principal } : {}) });
          if (listError) rbac = rbac.map(({ cluster, endpoint }) => ({ cluster, ...(endpoint ? { endpoint } : {}), decision: { decision: 'UNKNOWN', reason: listError } }));
        }
        io.stdout.write(
          format === 'text' ? describeSimulation(result) + describeRbacSteps(rbac) : printValue({ ...result, ...(o.rbac ? { rbac } : {}) }, format as 'json' | 'yaml'),
        );
      } catch (err) {
        fail(io, err);
      }
    });
  return cmd;
}
