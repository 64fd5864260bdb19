/**
 * `meshd bootstrap`: the Envoy v3 bootstrap istio-agent would write for an injected pod, from the
 * pod's environment (the variables the injection template sets) and, when mounted, its labels
 * (the `istio-podinfo` downward API file). Printed as proto3 JSON, as Envoy reads it with
 * `-c FILE`. Pure: the caller passes the environment and the labels.
 *
 * - node: `sidecar~<INSTANCE_IP>~<POD_NAME>.<POD_NAMESPACE>~<POD_NAMESPACE>.svc.<domain>`, with
 *   Istio's node metadata (NAMESPACE, NAME, LABELS, SERVICE_ACCOUNT, INSTANCE_IPS, CLUSTER_ID,
 *   ISTIO_VERSION, MESH_ID, PROXY_CONFIG, every `ISTIO_META_*` and `ISTIO_METAJSON_*` variable);
 * - ADS over the static `xds-grpc` cluster at PROXY_CONFIG's `discoveryAddress` (TLS with the
 *   agent's `default` certificate and `ROOTCA` over SDS, except on 15010 or with
 *   `controlPlaneAuthPolicy: NONE`); SDS from the agent on its workload socket (`sds-grpc`);
 * - admin on 127.0.0.1:15000; Prometheus stats on 15090 and readiness on 15021 (`/healthz/ready`,
 *   answered by Envoy's own `/ready` until an agent serves it).
 */
import * as fs from 'node:fs';
import { isIP } from 'node:net';
import { Command } from 'commander';
import { DEFAULT_PROXY_IMAGE, versionFromImage } from '../inject/options';

type Json = Record<string, unknown>;

export const DEFAULT_DISCOVERY_ADDRESS = 'istiod.istio-system.svc:15012';
export const SDS_UDS_PATH = './var/run/secrets/workload-spiffe-uds/socket';
export const ADMIN_PORT = 15000;

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const HTTP_OPTIONS = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

export interface BootstrapInput {
  env: Readonly<Record<string, string | undefined>>;
  /** The pod's labels (e.g. from `/etc/istio/pod/labels`); none when unknown. */
  labels?: Readonly<Record<string, string>>;
  /** Cluster DNS domain (default `cluster.local`). */
  domain?: string;
  /** `sidecar` (default) or `router` (a gateway). */
  proxyType?: 'sidecar' | 'router';
}

/** The downward API's labels file: `key="value"` lines, values quoted as Go's %q. */
export function parsePodInfoLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    const raw = line.slice(eq + 1).trim();
    let value = raw;
    if (raw.startsWith('"')) {
      try {
        value = JSON.parse(raw) as string;
      } catch {
        value = raw.slice(1, raw.endsWith('"') ? -1 : undefined);
      }
    }
    out[key] = value;
  }
  return out;
}

function splitHostPort(addr: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(addr) ?? /^([^:]+):(\d+)$/.exec(addr);
  if (!m) return undefined;
  const port = Number(m[2]);
  return port > 0 && port < 65536 ? { host: m[1] as string, port } : undefined;
}

const socket = (address: string, port: number): Json => ({ socket_address: { address, port_value: port } });
const http2: Json = { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': HTTP_OPTIONS, explicit_http_config: { http2_protocol_options: {} } } };

function loadAssignment(name: string, address: Json): Json {
  return { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] };
}

function sdsSecret(name: string): Json {
  return {
    name,
    sds_config: {
      api_config_source: { api_type: 'GRPC', set_node_on_first_message_only: true, transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }] },
      initial_fetch_timeout: '0s',
      resource_api_version: 'V3',
    },
  };
}

function httpListener(name: string, port: number, statPrefix: string, route: Json): Json {
  return {
    name,
    address: socket('0.0.0.0', port),
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              codec_type: 'AUTO',
              stat_prefix: statPrefix,
              route_config: { virtual_hosts: [{ name: 'backend', domains: ['*'], routes: [route] }] },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
            },
          },
        ],
      },
    ],
  };
}

function nodeMetadata(env: BootstrapInput['env'], labels: Readonly<Record<string, string>> | undefined, proxyConfig: Json, errors: string[]): Json {
  const md: Json = {};
  for (const [k, v] of Object.entries(env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (v === undefined) continue;
    if (k.startsWith('ISTIO_METAJSON_')) {
      try {
        md[k.slice('ISTIO_METAJSON_'.length)] = JSON.parse(v) as unknown;
      } catch {
        errors.push(`${k}: not JSON`);
      }
    } else if (k.startsWith('ISTIO_META_')) {
      md[k.slice('ISTIO_META_'.length)] = v;
    }
  }
  const ns = env['POD_NAMESPACE'] ?? '';
  Object.assign(md, {
    NAMESPACE: ns,
    NAME: env['POD_NAME'] ?? '',
    INSTANCE_IPS: env['INSTANCE_IP'] ?? '',
    CLUSTER_ID: md['CLUSTER_ID'] ?? 'Kubernetes',
    ISTIO_VERSION: md['ISTIO_VERSION'] ?? versionFromImage(DEFAULT_PROXY_IMAGE),
    PROXY_CONFIG: proxyConfig,
    ENVOY_PROMETHEUS_PORT: 15090,
    ENVOY_STATUS_PORT: 15021,
  });
  if (env['SERVICE_ACCOUNT']) md['SERVICE_ACCOUNT'] = env['SERVICE_ACCOUNT'];
  if (env['TRUST_DOMAIN'] && md['MESH_ID'] === undefined) md['MESH_ID'] = env['TRUST_DOMAIN'];
  if (labels) md['LABELS'] = { ...labels };
  return md;
}

/** The bootstrap, or the reasons it cannot be made (missing or malformed variables). */
export function buildBootstrap(input: BootstrapInput): { bootstrap?: Json; errors: string[] } {
  const { env } = input;
  const errors: string[] = [];
  for (const k of ['POD_NAME', 'POD_NAMESPACE', 'INSTANCE_IP']) if (!env[k]) errors.push(`${k} is not set (the injected istio-proxy container sets it from the downward API)`);
  if (env['INSTANCE_IP'] && isIP(env['INSTANCE_IP']) === 0) errors.push(`INSTANCE_IP ${JSON.stringify(env['INSTANCE_IP'])} is not an IP address`);
  let proxyConfig: Json = {};
  if (env['PROXY_CONFIG'] && env['PROXY_CONFIG'].trim() !== '') {
    try {
      const v = JSON.parse(env['PROXY_CONFIG']) as unknown;
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) proxyConfig = v as Json;
      else errors.push('PROXY_CONFIG must be a JSON object');
    } catch (err) {
      errors.push(`PROXY_CONFIG is not JSON: ${(err as Error).message}`);
    }
  }
  const discovery = typeof proxyConfig['discoveryAddress'] === 'string' && proxyConfig['discoveryAddress'] ? proxyConfig['discoveryAddress'] : DEFAULT_DISCOVERY_ADDRESS;
  const hp = splitHostPort(discovery);
  if (!hp) errors.push(`discoveryAddress ${JSON.stringify(discovery)} is not host:port`);
  const labels = input.labels;
  const md = nodeMetadata(env, labels, { ...proxyConfig, discoveryAddress: discovery }, errors);
  if (errors.length > 0 || !hp) return { errors };

  const ns = env['POD_NAMESPACE'] as string;
  const domain = input.domain ?? 'cluster.local';
  const app = labels?.['service.istio.io/canonical-name'] ?? labels?.['app'] ?? (typeof md['WORKLOAD_NAME'] === 'string' ? md['WORKLOAD_NAME'] : 'istio-proxy');
  const tls = hp.port !== 15010 && proxyConfig['controlPlaneAuthPolicy'] !== 'NONE';
  const xds: Json = {
    name: 'xds-grpc',
    type: isIP(hp.host) ? 'STATIC' : 'STRICT_DNS',
    connect_timeout: '1s',
    lb_policy: 'ROUND_ROBIN',
    load_assignment: loadAssignment('xds-grpc', socket(hp.host, hp.port)),
    circuit_breakers: {
      thresholds: ['DEFAULT', 'HIGH'].map((priority) => ({ priority, max_connections: 100000, max_pending_requests: 100000, max_requests: 100000 })),
    },
    upstream_connection_options: { tcp_keepalive: { keepalive_time: 300 } },
    typed_extension_protocol_options: http2,
  };
  if (tls) {
    xds['transport_socket'] = {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': UPSTREAM_TLS,
        sni: hp.host,
        common_tls_context: {
          alpn_protocols: ['h2'],
          tls_certificate_sds_secret_configs: [sdsSecret('default')],
          combined_validation_context: {
            default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: hp.host } }] },
            validation_context_sds_secret_config: sdsSecret('ROOTCA'),
          },
        },
      },
    };
  }
  const ads: Json = { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' };
  const bootstrap: Json = {
    node: {
      id: `${input.proxyType ?? 'sidecar'}~${env['INSTANCE_IP']}~${env['POD_NAME']}.${ns}~${ns}.svc.${domain}`,
      cluster: `${app}.${ns}`,
      metadata: md,
    },
    admin: { address: socket('127.0.0.1', ADMIN_PORT), profile_path: '/var/lib/istio/data/envoy.prof' },
    dynamic_resources: {
      lds_config: ads,
      cds_config: ads,
      ads_config: {
        api_type: 'GRPC',
        set_node_on_first_message_only: true,
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }],
      },
    },
    static_resources: {
      clusters: [
        {
          name: 'prometheus_stats',
          type: 'STATIC',
          connect_timeout: '0.250s',
          lb_policy: 'ROUND_ROBIN',
          load_assignment: loadAssignment('prometheus_stats', socket('127.0.0.1', ADMIN_PORT)),
        },
        {
          name: 'sds-grpc',
          type: 'STATIC',
          connect_timeout: '1s',
          typed_extension_protocol_options: http2,
          load_assignment: loadAssignment('sds-grpc', { pipe: { path: SDS_UDS_PATH } }),
        },
        xds,
      ],
      listeners: [
        httpListener('envoy-prometheus', 15090, 'stats', { match: { prefix: '/stats/prometheus' }, route: { cluster: 'prometheus_stats' } }),
        httpListener('readiness', 15021, 'agent', { match: { path: '/healthz/ready' }, route: { cluster: 'prometheus_stats', prefix_rewrite: '/ready' } }),
      ],
    },
  };
  return { bootstrap, errors: [] };
}

/** The `bootstrap` subcommand. `env` is the process environment, passed in by the composition root. */
export function bootstrapCommand(env: Readonly<Record<string, string | undefined>>, io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream }): Command {
  return new Command('bootstrap')
    .description("print the Envoy bootstrap (JSON) for this pod from the injected sidecar's environment")
    .option('--labels-file <file>', "the pod's labels (downward API)", '/etc/istio/pod/labels')
    .option('--proxy-type <type>', 'sidecar or router (a gateway)', 'sidecar')
    .option('-o, --output <file>', 'write the bootstrap here instead of stdout')
    .action((o: { labelsFile: string; proxyType: string; output?: string }, self: Command) => {
      // The cluster DNS domain is meshd's own --domain flag.
      const globals = self.optsWithGlobals<{ domain?: string }>();
      const domain = typeof globals.domain === 'string' && globals.domain !== '' ? globals.domain : 'cluster.local';
      if (o.proxyType !== 'sidecar' && o.proxyType !== 'router') {
        io.stderr.write(`bootstrap: --proxy-type must be sidecar or router (got ${JSON.stringify(o.proxyType)})\n`);
        process.exitCode = 1;
        return;
      }
      let labels: Record<string, string> | undefined;
      if (fs.existsSync(o.labelsFile)) labels = parsePodInfoLabels(fs.readFileSync(o.labelsFile, 'utf8'));
      const r = buildBootstrap({ env, ...(labels ? { labels } : {}), domain, proxyType: o.proxyType });
      if (!r.bootstrap) {
        for (const e of r.errors) io.stderr.write(`bootstrap: ${e}\n`);
        process.exitCode = 1;
        return;
      }
      const text = `${JSON.stringify(r.bootstrap, null, 2)}\n`;
      if (o.output) fs.writeFileSync(o.output, text);
      else io.stdout.write(text);
    });
}
