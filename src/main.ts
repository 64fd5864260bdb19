/** Composition root: parses flags, starts meshd, stops it on SIGINT/SIGTERM. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULTS } from './config/options';
import { DEFAULT_INPUT_LIMITS, type InputLimits, inputLimits } from './config/limits';
import { type MeshdHandle, meshdLogger, startMeshd } from './meshd';
import { BoundedSink } from './cli/log-sink';
import { validateFiles } from './cli/validate';
import { agentCommand } from './cli/agent';
import { bootstrapCommand } from './cli/bootstrap';
import { kubeInjectCommand } from './cli/kube-inject';
import { MESHD_VERSION } from './version';

export { startMeshd, type MeshdHandle } from './meshd';

interface CliOptions {
  configDir?: string;
  configRescanInterval: number;
  kubeconfig?: string;
  host: string;
  xdsPort: number;
  debugPort: number;
  monitoringPort: number;
  webhookPort: number;
  customHost?: string;
  secureXdsPort: number;
  plaintextCa?: boolean;
  trustDomain: string;
  trustDomainAliases: string[];
  envoyFilterAllowedTypes: string[];
  meshConfig?: string;
  revision?: string;
  caDir: string;
  cacerts?: string;
  jwks?: string;
  jwtIssuer?: string;
  jwtAudience?: string[];
  jwksCaFile?: string;
  jwtMaxLifetime: number;
  workloadCertTtl: number;
  maxWorkloadCertTtl: number;
  caSignWorkers: number;
  domain: string;
  logLevel: string;
  validateResources: boolean;
  contentCacheBytes: number;
  maxFileBytes: number;
  maxDocumentsPerFile: number;
  maxDepth: number;
  maxAliasNodes: number;
  maxErrorsPerObject: number;
  debugEndpointAuth: boolean;
}

type LimitFlags = Pick<InputLimits, 'maxFileBytes' | 'maxDocumentsPerFile' | 'maxDepth' | 'maxAliasNodes' | 'maxErrorsPerObject'>;

function count(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} must be a whole number`);
    return n;
  };
}

/** A size: bytes, or with a unit (16Mi, 512Ki, 1Gi; also k, M, G as powers of 1000). */
function bytes(name: string) {
  return (v: string): number => {
    const m = /^(\d+)(Ki|Mi|Gi|k|M|G)?$/.exec(v.trim());
    if (!m) throw new InvalidArgumentError(`${name} must be a size such as 16777216, 16Mi or 512Ki`);
    const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9 }[(m[2] ?? '') as 'Ki'] ?? 1;
    return Number(m[1]) * unit;
  };
}

/** The input limit flags, shared by the server and `meshd validate`. */
function limitOptions(cmd: Command): Command {
  return cmd
    .option('--max-file-bytes <size>', 'largest config file read; a larger one is refused (e.g. 16Mi)', bytes('--max-file-bytes'), DEFAULT_INPUT_LIMITS.maxFileBytes)
    .option(
      '--max-documents-per-file <n>',
      'most YAML documents (or List items) in one file; a file with more is refused',
      count('--max-documents-per-file'),
      DEFAULT_INPUT_LIMITS.maxDocumentsPerFile,
    )
    .option('--max-depth <n>', 'deepest nesting of mappings and lists in one object', count('--max-depth'), DEFAULT_INPUT_LIMITS.maxDepth)
    .option(
      '--max-alias-nodes <n>',
      'most nodes (mappings, lists, values) YAML aliases may add by expansion, per file',
      count('--max-alias-nodes'),
      DEFAULT_INPUT_LIMITS.maxAliasNodes,
    )
    .option('--max-errors-per-object <n>', 'most field errors reported per object (then "and N more")', count('--max-errors-per-object'), DEFAULT_INPUT_LIMITS.maxErrorsPerObject);
}

function limitsOf(o: LimitFlags): Partial<InputLimits> {
  return {
    maxFileBytes: o.maxFileBytes,
    maxDocumentsPerFile: o.maxDocumentsPerFile,
    maxDepth: o.maxDepth,
    maxAliasNodes: o.maxAliasNodes,
    maxErrorsPerObject: o.maxErrorsPerObject,
  };
}

/** `true` or `false` (also 1/0, yes/no, on/off), as a flag's value: `--flag=false`. */
function bool(name: string) {
  return (v: string): boolean => {
    const t = v.trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(t)) return true;
    if (['false', '0', 'no', 'off'].includes(t)) return false;
    throw new InvalidArgumentError(`${name} must be true or false`);
  };
}

function port(name: string, allowDisable = false) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < (allowDisable ? -1 : 0) || n > 65535) throw new InvalidArgumentError(`${name} must be a port number 0-65535${allowDisable ? ' or -1' : ''}`);
    return n;
  };
}

/** A whole number of processes or threads, 0-64. */
function smallCount(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 64) throw new InvalidArgumentError(`${name} must be a whole number 0-64`);
    return n;
  };
}

function seconds(name: string) {
  return (v: string): number => {
    const m = /^(\d+)(s|m|h|d)?$/.exec(v.trim());
    if (!m || Number(m[1]) <= 0) throw new InvalidArgumentError(`${name} must be a positive duration such as 3600, 90m, 24h or 90d`);
    return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  };
}

/** A duration in milliseconds: `0` (off), `500ms`, `5s`, `2m`; a bare number is seconds. */
function millis(name: string) {
  return (v: string): number => {
    const m = /^(\d+)(ms|s|m|h)?$/.exec(v.trim());
    if (!m) throw new InvalidArgumentError(`${name} must be a duration such as 0, 500ms, 5s or 1m`);
    return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  };
}

/** A shutdown that takes longer than this ends the process anyway (exit code 1). */
export const SHUTDOWN_DEADLINE_MS = 8000;
/** How long a shutdown waits for the last log lines to leave. */
export const LOG_DRAIN_MS = 1000;

/** Where the self-signed root lives on the command line (folder source), relative to the working directory. */
export const DEFAULT_CA_DIR = '.meshd/ca';

export function program(): Command {
  const cmd = new Command('meshd')
    .description('An Istio control plane: Istio and Kubernetes config in, Envoy xDS out.')
    .version(MESHD_VERSION, '--version', 'print the version and exit')
    // A subcommand's options are its own: `meshd agent --trust-domain X` must reach the agent,
    // not the server's flag of the same name.
    .enablePositionalOptions()
    .option('--config-dir <dir>', 'folder of Kubernetes/Istio YAML or JSON to serve (watched)')
    .addOption(
      new Option('--config-rescan-interval <duration>', 'with --config-dir: re-read every file this often and serve changes the watcher missed (0 turns it off)')
        .argParser(millis('--config-rescan-interval'))
        .default(DEFAULTS.configRescanIntervalMs, `${DEFAULTS.configRescanIntervalMs / 1000}s`),
    )
    .option('--kubeconfig <file>', 'watch the Kubernetes API server of this kubeconfig instead (in a pod, neither flag: in-cluster config)')
    .option('--host <addr>', 'address to listen on', DEFAULTS.host)
    .option('--xds-port <port>', 'gRPC xDS (ADS) port; 0 picks a free port', port('--xds-port'), DEFAULTS.xdsPort)
    .option('--debug-port <port>', 'HTTP debug port (/debug/*, /ready, /metrics); 0 picks a free port', port('--debug-port'), DEFAULTS.debugPort)
    .option('--monitoring-port <port>', 'HTTP /metrics port as istiod; 0 picks, -1 disables', port('--monitoring-port', true), DEFAULTS.monitoringPort)
    .option('--webhook-port <port>', 'HTTPS admission webhooks (/inject, /validate) as istiod; 0 picks, -1 disables', port('--webhook-port', true), 15017)
    .option(
      '--custom-host <names>',
      "extra DNS names (comma-separated) of the webhooks' certificate, so a webhook can be reached by URL; default $ISTIOD_CUSTOM_HOST",
      process.env['ISTIOD_CUSTOM_HOST'],
    )
    .option('--secure-xds-port <port>', 'xDS and CA over TLS as istiod; 0 picks, -1 disables', port('--secure-xds-port', true), 15012)
    .option('--plaintext-ca', 'also serve the CA on the plaintext xDS port (development only: tokens cross the network in clear)')
    .option(
      '--revision <name>',
      "control-plane revision (istiod's REVISION, which it defaults to): istiod-<rev>, istio-sidecar-injector-<rev>, istio.io/rev=<rev>",
      process.env['REVISION'] || undefined,
    )
    .option('--mesh-config <file>', "MeshConfig file, watched (istiod's --meshConfig); replaces the folder's mesh.yaml and the ConfigMap istio")
    .option('--trust-domain <domain>', 'SPIFFE trust domain of workload identities (MeshConfig trustDomain wins when set)', DEFAULTS.trustDomain)
    .option(
      '--trust-domain-aliases <domains>',
      'comma-separated trust domains that also mean this mesh (MeshConfig trustDomainAliases)',
      (v: string) =>
        v
          .split(',')
          .map((d) => d.trim())
          .filter(Boolean),
      [] as string[],
    )
    .option(
      '--envoy-filter-allowed-types <types>',
      'comma-separated filter type URLs EnvoyFilter patches may insert (e.g. type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua); others are rejected. Default: any',
      (v: string) =>
        v
          .split(',')
          .map((d) => d.trim())
          .filter(Boolean),
      [] as string[],
    )
    .option('--ca-dir <dir>', 'folder of the self-signed root (with --config-dir; Kubernetes keeps it in Secret istio-ca-secret)', DEFAULT_CA_DIR)
    .option('--cacerts <dir>', "plug-in CA folder (istiod's cacerts: ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem)")
    .option('--jwks <file|url>', 'accept CSRs with a JWT signed by a key of this JWKS, a file or an https:// URL (needs --jwt-issuer, --jwt-audience)')
    .option('--jwt-issuer <iss>', 'the issuer JWTs must carry')
    .option('--jwt-audience <aud>', 'an audience JWTs may carry (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--jwks-ca-file <file>', 'PEM CAs trusted, besides the system roots, when fetching RequestAuthentication JWKS (https only)')
    .option('--jwt-max-lifetime <duration>', 'longest JWT lifetime accepted (exp − iat, or exp − now without iat)', seconds('--jwt-max-lifetime'), DEFAULTS.jwtMaxLifetimeSeconds)
    .option('--workload-cert-ttl <duration>', 'workload certificate lifetime when none is asked for', seconds('--workload-cert-ttl'), DEFAULTS.workloadCertTtlSeconds)
    .option('--max-workload-cert-ttl <duration>', 'longest workload certificate lifetime handed out', seconds('--max-workload-cert-ttl'), DEFAULTS.maxWorkloadCertTtlSeconds)
    .option(
      '--ca-sign-workers <n>',
      'worker threads that verify CSRs and sign certificates (0: on the main thread)',
      smallCount('--ca-sign-workers'),
      Math.max(0, Math.min(4, os.availableParallelism() - 1)),
    )
    .option('--domain <domain>', 'cluster DNS domain', DEFAULTS.domain)
    .option('--log-level <level>', 'trace, debug, info, warn, error', DEFAULTS.logLevel)
    .option('--no-validate-resources', 'skip the validate.rules check of generated resources')
    .option(
      '--content-cache-bytes <size>',
      'bytes of recently built resources kept for reuse once no proxy uses them, per cache (resources, virtual hosts); 0 keeps only those in use',
      bytes('--content-cache-bytes'),
      DEFAULTS.contentCacheBytes,
    )
    .option(
      '--debug-endpoint-auth <bool>',
      "istiod's ENABLE_DEBUG_ENDPOINT_AUTH: answer xDS debug types (istioctl proxy-status) only to an identity verified over TLS; false also answers them on the plaintext port",
      bool('--debug-endpoint-auth'),
      DEFAULTS.debugEndpointAuth,
    );
  limitOptions(cmd).action(async (o: CliOptions) => {
    if (o.configDir && o.kubeconfig) cmd.error('error: --config-dir and --kubeconfig are exclusive: pick one config source');
    // Neither flag inside a pod: the cluster's own API server, with the pod's service account.
    const inCluster = !o.configDir && !o.kubeconfig && Boolean(process.env['KUBERNETES_SERVICE_HOST']);
    if (!o.configDir && !o.kubeconfig && !inCluster) {
      cmd.error('error: --config-dir or --kubeconfig is required (try: meshd --config-dir examples/bookinfo)');
    }
    // The pod's name and namespace (downward API, as istiod's Deployment sets them).
    const pod = { podName: process.env['POD_NAME'] || undefined, podNamespace: process.env['POD_NAMESPACE'] || undefined };
    const {
      cacerts,
      workloadCertTtl,
      maxWorkloadCertTtl,
      jwtAudience,
      jwtMaxLifetime,
      customHost,
      configRescanInterval,
      caSignWorkers,
      maxFileBytes,
      maxDocumentsPerFile,
      maxDepth,
      maxAliasNodes,
      maxErrorsPerObject,
      meshConfig,
      ...rest
    } = o;
    // Standard output may be a pipe whose reader stalls or dies: logging must never block
    // serving nor keep a stopping process alive. An unreadable stderr must not crash it either.
    process.stderr.on('error', () => undefined);
    const out = new BoundedSink(process.stdout);
    const logger = meshdLogger(o.logLevel, out);
    const handle: MeshdHandle = await startMeshd({
      ...rest,
      limits: limitsOf({ maxFileBytes, maxDocumentsPerFile, maxDepth, maxAliasNodes, maxErrorsPerObject }),
      logger,
      ...pod,
      meshConfigFile: meshConfig,
      inCluster: inCluster || undefined,
      cacertsDir: cacerts,
      configRescanIntervalMs: configRescanInterval,
      workloadCertTtlSeconds: workloadCertTtl,
      maxWorkloadCertTtlSeconds: maxWorkloadCertTtl,
      jwtAudiences: jwtAudience,
      jwtMaxLifetimeSeconds: jwtMaxLifetime,
      customHosts: (customHost ?? '')
        .split(',')
        .map((h) => h.trim().toLowerCase())
        .filter((h) => h !== ''),
      caSignWorkers,
    });
    out.write(
      `meshd listening: xDS ${o.host}:${handle.xdsPort}, debug http://${o.host}:${handle.debugPort}/debug` +
        (handle.secureXdsPort >= 0 ? `, xDS+CA over TLS ${o.host}:${handle.secureXdsPort}` : '') +
        (o.plaintextCa ? ` (CA also on plaintext ${o.host}:${handle.xdsPort})` : '') +
        (handle.monitoringPort >= 0 ? `, metrics http://${o.host}:${handle.monitoringPort}/metrics` : '') +
        (handle.webhookPort >= 0 ? `, webhooks https://${o.host}:${handle.webhookPort}` : '') +
        '\n',
    );
    // Graceful stop, bounded whatever the API server, the proxies or standard output do; a
    // second signal ends the process at once.
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        process.stderr.write(`meshd: ${signal} again; exiting now\n`);
        process.exit(1);
      }
      stopping = true;
      const startedAt = Date.now();
      logger.info({ signal }, 'shutting down');
      const deadline = setTimeout(() => {
        process.stderr.write(`meshd: shutdown did not finish within ${SHUTDOWN_DEADLINE_MS} ms; exiting\n`);
        process.exit(1);
      }, SHUTDOWN_DEADLINE_MS);
      let code = 0;
      void handle
        .close()
        .then(
          () => logger.info({ ms: Date.now() - startedAt }, 'stopped'),
          (err: unknown) => {
            code = 1;
            logger.error({ err }, 'error while stopping');
          },
        )
        .then(() => out.drain(LOG_DRAIN_MS))
        .then(() => {
          clearTimeout(deadline);
          process.exit(code);
        });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  limitOptions(
    cmd.command('validate').description('check Istio/Kubernetes config files offline; exits 1 if any object is invalid').argument('<files...>', 'YAML or JSON files or folders'),
  ).action((files: string[], o: LimitFlags) => {
    const { output, ok } = validateFiles(files, inputLimits(limitsOf(o)));
    process.stdout.write(output);
    process.exitCode = ok ? 0 : 1;
  });
  cmd.addCommand(bootstrapCommand(process.env, { stdout: process.stdout, stderr: process.stderr }));
  cmd.addCommand(agentCommand(process.env, { stderr: process.stderr }));
  cmd.addCommand(kubeInjectCommand({ stdout: process.stdout, stderr: process.stderr, stdin: () => fs.readFileSync(0, 'utf8') }));
  return cmd;
}

if (require.main === module) {
  program()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      process.stderr.write(`meshd: ${(err as Error).message}\n`);
      process.exit(1);
    });
}
