/** Composition: source (folder or Kubernetes API) → model → generate → cache → ADS server, plus debug. */
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { type MeshdOptionsInput, withDefaults } from './config/options';
import type { InputLimits } from './config/limits';
import { truncate } from './sources/bounds';
import { debugApp, listenApp, metricsApp } from './debug/server';
import { buildSnapshot } from './model/build';
import type { ConfigError, ConfigObject } from './model/objects';
import type { MeshSnapshot } from './model/snapshot';
import { FileSource } from './sources/file-source';
import { loadKubeConfig } from './sources/kube-http';
import { KubeSource, type KubeSourceOptions } from './sources/kube-source';
import { type LeaderElectionHandle, type LeaseTimings, leaderIdentity, meshdLeaderTasks, startLeaderElection } from './leader';
import { DEFAULT_LEADER_NAMESPACE } from './leader';
import { validateObject } from './model/validate';
import { type WebhookServerHandle, startWebhookServer, webhookDnsNames } from './webhook/server';
import { servingCertificateFrom } from './webhook/certs';
import { sharedWebhookCa } from './webhook/shared-ca';
import type { ConfigSource } from './sources/source';
import { ConfigEngine } from './xds/engine';
import { Debouncer } from './xds/debounce';
import { XdsMetrics } from './xds/metrics';
import { EnvoyProtos } from './xds/protos';
import { AdsServer } from './xds/server';
import type { XdsAuth } from './xds/authn';
import { SecretAccessReviewer } from './ca/secret-access';
import { MeshdCa } from './ca/setup';
import type { CertificateAuthority } from './ca/types';
import { ResourceValidator } from './xds/validate-rules';

export interface MeshdHandle {
  xdsPort: number;
  debugPort: number;
  monitoringPort: number;
  /** The snapshot being served (none before a Kubernetes source's initial lists are done). */
  snapshot(): MeshSnapshot | undefined;
  /** What `/ready` answers: true once the first snapshot is served. */
  ready(): boolean;
  /** Resolves once ready; rejects if meshd is closed first. */
  whenReady(): Promise<void>;
  /** Where config comes from (a FileSource or a KubeSource). */
  readonly source: ConfigSource;
  /** The admission webhooks' HTTPS port, or -1 when off. */
  webhookPort: number;
  /** The CA the webhook serving certificate chains to (the webhook configurations' caBundle). */
  webhookCaPem(): string | undefined;
  /** xDS and the CA over TLS (istiod's 15012), or -1 when off. */
  secureXdsPort: number;
  /** The CA's root bundle (PEM) that workloads trust; '' until the CA is ready. */
  caRootPem(): string;
  /** Resolves once the CA signs (and the 15012 serving certificate is issued). */
  caReady(): Promise<void>;
  /** With a Kubernetes source: this replica's leader-election identity and state. */
  leader(): { identity: string; leading: boolean; holder: string } | undefined;
  close(): Promise<void>;
}

/** Kubernetes source tuning (tests shorten these). */
export type KubeTuning = Pick<KubeSourceOptions, 'backoffInitialMs' | 'backoffMaxMs' | 'missingRetryMs' | 'watchTimeoutSeconds'>;

export type StartOptions = MeshdOptionsInput & {
  logger?: Logger;
  kube?: KubeTuning;
  leaseTimings?: Partial<LeaseTimings>;
  /** Sign with this authority instead of meshd's own (tests, embedders). */
  certificateAuthority?: CertificateAuthority;
  /** Lifetime of the 15012 serving certificate (default 24 h; re-issued at half). */
  servingCertTtlSeconds?: number;
};

/** The content part of a snapshot version (`<sequence>-<hash>`). */
function contentHash(s: MeshSnapshot): string {
  return s.version.slice(s.version.indexOf('-') + 1);
}

/** One line per object left out, no longer than the log line limit (the full list is in /debug/configz). */
function describe(e: ConfigError, limits: InputLimits): string {
  const obj = e.kind ? ` ${e.kind} ${e.namespace ? `${e.namespace}/` : ''}${e.name ?? ''}` : '';
  const doc = e.document !== undefined ? `#${e.document}` : '';
  return truncate(`${e.source}${doc}${obj}: ${e.errors.map((f) => (f.path ? `${f.path}: ${f.message}` : f.message)).join('; ')}`, limits.maxLogLineLength);
}

/** Equal problem lists, compared field by field (no string as large as all of them is built). */
function sameErrors(a: readonly ConfigError[], b: readonly ConfigError[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as ConfigError;
    const y = b[i] as ConfigError;
    if (x.source !== y.source || x.document !== y.document || x.item !== y.item || x.kind !== y.kind || x.namespace !== y.namespace || x.name !== y.name) return false;
    if (x.errors.length !== y.errors.length) return false;
    for (let j = 0; j < x.errors.length; j++) {
      const f = x.errors[j];
      const g = y.errors[j];
      if (f?.path !== g?.path || f?.message !== g?.message) return false;
    }
  }
  return true;
}

export async function startMeshd(input: StartOptions): Promise<MeshdHandle> {
  const opts = withDefaults(input);
  const log = input.logger ?? pino({ level: opts.logLevel, base: { app: 'meshd' } });
  const protos = new EnvoyProtos();
  const metrics = new XdsMetrics();
  const engine = new ConfigEngine({ protos, checker: opts.validateResources ? new ResourceValidator(protos) : undefined, log });
  let current: MeshSnapshot | undefined;
  let sequence = 0;
  let ready = false;
  let closed = false;
  let markReady: () => void = () => undefined;
  let notReady: (err: Error) => void = () => undefined;
  const readyPromise = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    notReady = reject;
  });
  readyPromise.catch(() => undefined);
  // xDS streams over TLS are authenticated by the CA's authenticators (set up below, before any
  // port listens); with a Kubernetes source, credentials also need RBAC's word.
  let authenticate: XdsAuth['authenticate'] = () => Promise.reject(new Error('the CA is not set up'));
  let secretAccess: SecretAccessReviewer | undefined;
  const server = new AdsServer({
    protos,
    watcher: engine,
    metrics,
    log,
    auth: { authenticate: (ctx) => authenticate(ctx), mayReadSecrets: (ns, sa) => (secretAccess ? secretAccess.mayReadSecrets(ns, sa) : Promise.resolve(true)) },
  });
  // The one place a snapshot becomes the served one: the engine learns it before any push.
  const serve = (snap: MeshSnapshot): void => {
    current = snap;
    engine.setSnapshot(snap);
    metrics.rejectedResources.set(engine.currentRejections().length);
  };

  const kubeConnection = opts.configDir !== undefined ? undefined : opts.kubeconfig !== undefined ? { kubeconfig: opts.kubeconfig } : { inCluster: true as const };
  const kubeConfig = kubeConnection ? loadKubeConfig(kubeConnection) : undefined;
  const source: ConfigSource = kubeConfig
    ? new KubeSource({ kubeConfig, log: log.child({ component: 'kube' }), limits: opts.limits, ...input.kube })
    : new FileSource(opts.configDir as string, opts.limits);
  // The webhook CA every replica's serving certificate chains to (Kubernetes: shared through a Secret).
  let webhookCaPem: string | undefined;
  // The workload CA: CreateCertificate on the xDS ports; in Kubernetes only the leader creates the root.
  let leading: () => boolean = () => false;
  const ca = new MeshdCa({
    trustDomain: opts.trustDomain,
    cacertsDir: opts.cacertsDir,
    caDir: opts.caDir,
    kubeConfig,
    namespace: opts.podNamespace ?? DEFAULT_LEADER_NAMESPACE,
    domain: opts.domain,
    mayWrite: () => leading(),
    defaultTtlSeconds: opts.workloadCertTtlSeconds,
    maxTtlSeconds: opts.maxWorkloadCertTtlSeconds,
    jwks: opts.jwks,
    jwtIssuer: opts.jwtIssuer,
    jwtAudiences: opts.jwtAudiences,
    serving: opts.secureXdsPort >= 0,
    servingTtlSeconds: input.servingCertTtlSeconds,
    registry: metrics.registry,
    log,
    authority: input.certificateAuthority,
  });
  ca.register((def, impl) => server.addService(def, impl));
  authenticate = (ctx) => ca.authenticate(ctx);
  if (kubeConfig) secretAccess = new SecretAccessReviewer({ kubeConfig });
  // Every replica serves xDS; work that must happen once in the cluster runs on the Lease holder:
  // the webhooks' caBundle, and the CA's root Secret and istio-ca-root-cert ConfigMaps.
  const election: LeaderElectionHandle | undefined = kubeConfig
    ? startLeaderElection({
        kubeConfig,
        namespace: opts.podNamespace,
        identity: leaderIdentity(opts.podName),
        log,
        tasks: [...meshdLeaderTasks({ kubeConfig, log, webhookCaPem: opts.webhookPort >= 0 ? () => webhookCaPem : undefined }), ...ca.leaderTasks],
        timings: input.leaseTimings,
      })
    : undefined;
  if (election) leading = () => election.isLeader();
  // Each problem is logged when it first appears, not again on every rebuild while it lasts.
  let logged = new Set<string>();
  const digests = new WeakMap<ConfigObject, string>();
  const rebuild = (): MeshSnapshot => {
    const state = source.state();
    const started = performance.now();
    const snap = buildSnapshot({ objects: state.objects, errors: state.errors, sequence: ++sequence, now: new Date(), domain: opts.domain, trustDomain: opts.trustDomain, trustDomainAliases: opts.trustDomainAliases, previous: current, digests });
    metrics.snapshotBuildTime.observe((performance.now() - started) / 1000);
    metrics.invalidObjects.set(snap.errors.length);
    const now = new Set<string>();
    for (const e of snap.errors) {
      const line = describe(e, opts.limits);
      now.add(line);
      if (!logged.has(line)) log.warn({ source: e.source, kind: e.kind, namespace: e.namespace, name: e.name }, `config left out: ${line}`);
    }
    logged = now;
    return snap;
  };

  if (source instanceof FileSource) {
    source.load();
    const first = rebuild();
    serve(first);
    log.info({ version: first.version, counts: first.counts, errors: first.errors.length, dir: opts.configDir }, 'config loaded');
  }

  const debouncer = new Debouncer<string>({ quietMs: opts.debounceQuietMs, maxMs: opts.debounceMaxMs }, (files, firstAt) => {
    metrics.debounceTime.observe((Date.now() - firstAt) / 1000);
    const prev = current;
    let next: MeshSnapshot;
    try {
      next = rebuild();
    } catch (err) {
      // Whatever the input, a failed rebuild must not end the process: keep serving what is served.
      log.error({ err: truncate(String((err as Error)?.stack ?? err), opts.limits.maxLogLineLength), files: files.slice(0, 20) }, 'config rebuild failed; the served config is kept');
      return;
    }
    // Same objects and same problems (e.g. a file touched, or an invalid object edited into
    // another invalid one with the same message): keep the snapshot and its encoded resources.
    if (prev && contentHash(next) === contentHash(prev) && sameErrors(next.errors, prev.errors)) {
      log.debug({ files }, 'files changed but config is the same; no push');
      return;
    }
    serve(next);
    log.info({ version: next.version, files: files.length > 20 ? [...files.slice(0, 20), `… ${files.length - 20} more`] : files, errors: next.errors.length }, 'config changed; pushing');
    void server.push({ snap: next, triggeredAt: firstAt, reason: 'config' });
  });
  source.on('change', (what: string) => debouncer.add(what));
  source.on('error', (err: unknown) => log.error({ err }, 'config source error'));
  if (source instanceof FileSource) await source.start();

  const apps: FastifyInstance[] = [];
  let xdsPort = 0;
  let debugPort = 0;
  let monitoringPort = -1;
  let secureXdsPort = -1;
  let webhooks: WebhookServerHandle | undefined;
  try {
    xdsPort = await server.listen(opts.host, opts.xdsPort);
    // Connections to 15012 are dropped until the CA has issued the serving certificate.
    if (ca.serving) secureXdsPort = await server.listen(opts.host, opts.secureXdsPort, ca.serving.credentials());
    const dbg = debugApp({ server, protos, engine, metrics, snapshot: () => current, ready: () => ready });
    apps.push(dbg);
    debugPort = await listenApp(dbg, opts.host, opts.debugPort);
    if (opts.monitoringPort >= 0) {
      const mon = metricsApp(metrics);
      apps.push(mon);
      monitoringPort = await listenApp(mon, opts.host, opts.monitoringPort);
    }
    if (opts.webhookPort >= 0) {
      const dnsNames = webhookDnsNames('istiod', opts.podNamespace ?? DEFAULT_LEADER_NAMESPACE, opts.domain);
      webhooks = await startWebhookServer({
        host: opts.host,
        port: opts.webhookPort,
        log: log.child({ component: 'webhook' }),
        validate: (o) => validateObject(o, opts.limits.maxErrorsPerObject),
        injection: { clusterDomain: opts.domain, trustDomain: opts.trustDomain },
        namespaceLabels: (ns) => current?.namespaceLabels.get(ns),
        dnsNames,
      });
      if (!kubeConfig) webhookCaPem = webhooks.caPem;
      else {
        // Until the shared CA is read (the API may still be unreachable), the self-signed one serves.
        const handle = webhooks;
        void (async () => {
          for (let delay = 200; !closed; delay = Math.min(delay * 2, 10_000)) {
            try {
              const ca = await sharedWebhookCa(kubeConfig, opts.podNamespace ?? DEFAULT_LEADER_NAMESPACE, log);
              handle.setCertificate(servingCertificateFrom(ca, { dnsNames }));
              webhookCaPem = ca.certPem;
              return;
            } catch (err) {
              log.warn({ err: String(err) }, 'webhook CA not available yet; retrying');
              await new Promise((r) => setTimeout(r, delay));
            }
          }
        })();
      }
    }
  } catch (err) {
    debouncer.stop();
    ca.close();
    await webhooks?.close();
    await election?.stop();
    await source.close();
    await server.close();
    for (const a of apps) await a.close();
    throw err;
  }
  log.info({ xds: `${opts.host}:${xdsPort}`, secureXds: secureXdsPort >= 0 ? `${opts.host}:${secureXdsPort}` : 'off', debug: `http://${opts.host}:${debugPort}`, monitoring: monitoringPort >= 0 ? `http://${opts.host}:${monitoringPort}/metrics` : 'off' }, 'meshd is serving');
  const becomeReady = (): void => {
    ready = true;
    markReady();
  };
  if (current) {
    becomeReady();
  } else {
    // Kubernetes: serve (not ready, no config) until every kind's initial list is done, then
    // build the first snapshot and push it to whoever connected meanwhile.
    void (async () => {
      await source.load();
      await source.start();
      if (closed) return;
      const first = rebuild();
      serve(first);
      log.info({ version: first.version, counts: first.counts, errors: first.errors.length }, 'config loaded');
      await server.push({ snap: first, triggeredAt: Date.now(), reason: 'config' });
      becomeReady();
    })().catch((err: unknown) => log.error({ err }, 'config source failed to load'));
  }

  return {
    xdsPort,
    debugPort,
    monitoringPort,
    snapshot: () => current,
    ready: () => ready,
    whenReady: () => readyPromise,
    source,
    webhookPort: webhooks?.port ?? -1,
    webhookCaPem: () => webhookCaPem,
    secureXdsPort,
    caRootPem: () => ca.authority.rootBundlePem(),
    caReady: () => ca.ready(),
    leader: () => (election ? { identity: election.identity, leading: election.isLeader(), holder: election.leader() } : undefined),
    close: async () => {
      closed = true;
      ready = false;
      notReady(new Error('meshd closed before it was ready'));
      debouncer.stop();
      ca.close();
      await election?.stop();
      await webhooks?.close();
      await source.close();
      await server.close();
      for (const a of apps) await a.close();
    },
  };
}
