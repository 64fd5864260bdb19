/**
 * `meshd agent`: istio-agent's role for one workload. Gets and renews the workload certificate
 * from meshd's CA; writes it as files for proxyless gRPC (with a gRPC xDS bootstrap) and serves it
 * to Envoy over SDS on a Unix socket; writes the Envoy bootstrap. Runs until SIGINT/SIGTERM.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import pino from 'pino';
import { type AgentHandle, type AgentOptions, startAgent } from '../agent/agent';
import type { KeyType } from '../agent/csr';
import { buildBootstrap, parsePodInfoLabels, SDS_UDS_PATH } from './bootstrap';

type Env = Readonly<Record<string, string | undefined>>;

export const DEFAULT_CA_ADDRESS = 'istiod.istio-system.svc:15012';
export const DEFAULT_TOKEN_FILE = '/var/run/secrets/tokens/istio-token';
export const DEFAULT_ROOT_CERT_FILE = '/var/run/secrets/istio/root-cert.pem';

/** Go-style durations (`24h`, `90m`, `1h30m`, `5s`, `500ms`) or plain seconds → seconds. */
export function parseDurationSeconds(s: string): number {
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/gy;
  const unit: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 };
  let total = 0;
  let end = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * (unit[m[2] as string] as number);
    end = re.lastIndex;
  }
  if (end !== s.length || s === '') throw new InvalidArgumentError(`not a duration: ${JSON.stringify(s)} (e.g. 24h, 90m, 30s)`);
  return total;
}

/** SECRET_TTL as istio-agent reads it; 24 h when unset or malformed. */
function defaultTtl(env: Env): number {
  try {
    return parseDurationSeconds(env['SECRET_TTL'] ?? '24h');
  } catch {
    return 24 * 3600;
  }
}

interface AgentFlags {
  caAddress: string;
  caRootCert: string;
  caServerName?: string;
  plaintext?: boolean;
  tokenFile: string;
  trustDomain: string;
  namespace?: string;
  serviceAccount?: string;
  keyType: string;
  certTtl: number;
  graceRatio: number;
  outputDir?: string;
  grpcBootstrap?: string;
  xdsAddress?: string;
  sds: string | false;
  envoyBootstrap?: string;
  labelsFile: string;
  clusterId?: string;
}

/** The node (id, cluster, Istio metadata) the bootstraps carry, from the pod's environment. */
function nodeFor(env: Env, labels: Record<string, string> | undefined, domain: string, ns: string, sa: string): { id: string; cluster: string; metadata: Record<string, unknown> } {
  const full: Record<string, string | undefined> = { ...env, POD_NAMESPACE: ns, SERVICE_ACCOUNT: sa };
  full['POD_NAME'] ??= os.hostname();
  full['INSTANCE_IP'] ??= '127.0.0.1';
  const r = buildBootstrap({ env: full, ...(labels ? { labels } : {}), domain });
  const node = r.bootstrap?.['node'] as { id: string; cluster: string; metadata: Record<string, unknown> } | undefined;
  return node ?? { id: `sidecar~${full['INSTANCE_IP']}~${full['POD_NAME']}.${ns}~${ns}.svc.${domain}`, cluster: `${sa}.${ns}`, metadata: { NAMESPACE: ns, SERVICE_ACCOUNT: sa } };
}

/**
 * How often gRPC's file_watcher re-reads the certificate files: istio-agent's 15 min, but never
 * more than a quarter of the time a renewed certificate's predecessor stays valid (lifetime ×
 * grace ratio), so short-lived certificates are picked up before the old ones expire.
 */
export function fileWatcherRefreshSeconds(ttlSeconds: number, graceRatio: number): number {
  return Math.max(1, Math.min(900, Math.floor((ttlSeconds * graceRatio) / 4)));
}

/** Options for startAgent from the flags and environment; throws with a message on bad input. */
export function agentOptionsFrom(o: AgentFlags, env: Env, domain: string, log: pino.Logger): AgentOptions {
  const namespace = o.namespace ?? env['POD_NAMESPACE'];
  const serviceAccount = o.serviceAccount ?? env['SERVICE_ACCOUNT'];
  if (!namespace) throw new Error('the namespace is unknown: set POD_NAMESPACE or --namespace');
  if (!serviceAccount) throw new Error('the service account is unknown: set SERVICE_ACCOUNT or --service-account');
  if (o.keyType !== 'ecdsa' && o.keyType !== 'rsa') throw new Error(`--key-type must be ecdsa or rsa (got ${JSON.stringify(o.keyType)})`);
  if (!(o.graceRatio > 0 && o.graceRatio < 1)) throw new Error('--grace-ratio must be between 0 and 1');
  const labels = fs.existsSync(o.labelsFile) ? parsePodInfoLabels(fs.readFileSync(o.labelsFile, 'utf8')) : undefined;
  const plaintext = o.plaintext === true;
  const opts: AgentOptions = {
    trustDomain: o.trustDomain,
    namespace,
    serviceAccount,
    keyType: o.keyType as KeyType,
    ttlSeconds: Math.round(o.certTtl),
    graceRatio: o.graceRatio,
    ca: {
      address: o.caAddress,
      plaintext,
      rootCertFile: o.caRootCert,
      tokenFile: o.tokenFile,
      ...(o.caServerName ? { serverName: o.caServerName } : {}),
      ...(o.clusterId ? { clusterId: o.clusterId } : {}),
    },
    log,
    ...(o.outputDir ? { outputDir: o.outputDir } : {}),
    ...(o.sds !== false ? { sdsSocket: o.sds } : {}),
  };
  if (o.grpcBootstrap) {
    opts.grpcBootstrap = {
      file: o.grpcBootstrap,
      xdsAddress: o.xdsAddress ?? o.caAddress,
      plaintext,
      node: nodeFor(env, labels, domain, namespace, serviceAccount),
      refreshSeconds: fileWatcherRefreshSeconds(o.certTtl, o.graceRatio),
    };
  }
  if (o.envoyBootstrap) {
    const r = buildBootstrap({ env: { ...env, POD_NAMESPACE: namespace, SERVICE_ACCOUNT: serviceAccount }, ...(labels ? { labels } : {}), domain });
    if (!r.bootstrap) throw new Error(`cannot write the Envoy bootstrap: ${r.errors.join('; ')}`);
    opts.envoyBootstrap = { file: o.envoyBootstrap, bootstrap: r.bootstrap };
  }
  return opts;
}

/** The `agent` subcommand. `env` is the process environment, passed in by the composition root. */
export function agentCommand(env: Env, io: { stderr: NodeJS.WritableStream }): Command {
  return new Command('agent')
    .description("run as the workload's agent: get and renew its certificate from meshd's CA, write it as files and serve it over SDS")
    .option('--ca-address <host:port>', "meshd's CA (15012 TLS; 15010 plaintext with meshd --plaintext-ca)", env['CA_ADDR'] ?? DEFAULT_CA_ADDRESS)
    .option('--ca-root-cert <file>', "root that verifies the CA's TLS certificate", DEFAULT_ROOT_CERT_FILE)
    .option('--ca-server-name <name>', "name the CA's TLS certificate carries, when not the address's host")
    .option('--plaintext', 'talk to the CA without TLS (port 15010; meshd serves it there only with --plaintext-ca)')
    .option('--token-file <file>', 'bearer JWT sent to the CA', DEFAULT_TOKEN_FILE)
    .option('--trust-domain <domain>', 'trust domain of the SPIFFE ID', env['TRUST_DOMAIN'] ?? 'cluster.local')
    .option('--namespace <ns>', 'workload namespace (default: POD_NAMESPACE)')
    .option('--service-account <sa>', 'workload service account (default: SERVICE_ACCOUNT)')
    .option('--key-type <type>', 'ecdsa (P-256) or rsa (2048)', 'ecdsa')
    .option('--cert-ttl <duration>', 'requested certificate lifetime', parseDurationSeconds, defaultTtl(env))
    .option('--grace-ratio <ratio>', 'renew when this share of the lifetime is left', Number, 0.5)
    .option('--output-dir <dir>', 'write cert-chain.pem, key.pem (0600), root-cert.pem here (proxyless gRPC)')
    .option('--grpc-bootstrap <file>', 'write a gRPC xDS bootstrap using those files')
    .option('--xds-address <host:port>', "meshd's xDS address in the gRPC bootstrap (default: --ca-address)")
    .option('--sds-socket <path>', 'serve SDS to Envoy on this Unix socket', SDS_UDS_PATH)
    .option('--no-sds', 'do not serve SDS')
    .option('--envoy-bootstrap <file>', "write the Envoy bootstrap for the pod's environment here")
    .option('--labels-file <file>', "the pod's labels (downward API)", '/etc/istio/pod/labels')
    .option('--cluster-id <id>', 'ClusterID sent to the CA', env['ISTIO_META_CLUSTER_ID'])
    .action(async (raw: Omit<AgentFlags, 'sds'> & { sds: boolean; sdsSocket: string }, self: Command) => {
      const globals = self.optsWithGlobals<{ domain?: string; logLevel?: string }>();
      const log = pino({ level: globals.logLevel ?? 'info', base: { app: 'meshd-agent' } });
      let handle: AgentHandle;
      try {
        const opts = agentOptionsFrom({ ...raw, sds: raw.sds === false ? false : raw.sdsSocket }, env, globals.domain ?? 'cluster.local', log);
        handle = await startAgent(opts);
      } catch (err) {
        io.stderr.write(`agent: ${(err as Error).message}\n`);
        process.exitCode = 1;
        return;
      }
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          void handle.close().then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
