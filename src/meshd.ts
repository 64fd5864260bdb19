/** Composition: source (folder or Kubernetes API) → model → generate → cache → ADS server, plus debug. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { type MeshdOptionsInput, withDefaults } from './config/options';
import type { InputLimits } from './config/limits';
import { truncate } from './sources/bounds';
import { debugApp, listenApp } from './debug/server';
import { XdsDebug } from './debug/xds-debug';
import { MESHD_VERSION, controlPlaneIdentifier } from './version';
import { buildSnapshot } from './model/build';
import { BuildCache } from './model/build-cache';
import { loadText } from './sources/load';
import { type PreviewMode, type PreviewReport, applyChange, previewChange } from './debug/preview';
import { jwksSources } from './model/build-reqauthn';
import type { ConfigError, ConfigObject, RequestAuthenticationSpec } from './model/objects';
import { JwksResolver, type JwksResolverOptions } from './jwks/resolver';
import type { MeshSnapshot } from './model/snapshot';
import { FileSource, MESH_CONFIG_FILE } from './sources/file-source';
import { MeshConfigFile } from './sources/mesh-file';
import type { MeshConfigText } from './model/build-mesh';
import { parseMeshConfig } from './model/mesh-config';
import * as path from 'node:path';
import { loadKubeConfig } from './sources/kube-http';
import { KubeSource, type KubeSourceOptions } from './sources/kube-source';
import { eventRecorder } from './sources/events';
import { type LeaseTimings, leaderIdentity } from './leader';
import { startRevisionElections } from './leader/revision-elections';
import { objectsOfRevision, revisionNames } from './config/revision';
import { DEFAULT_LEADER_NAMESPACE } from './leader';
import { checkObject } from './model/validate';
import { type WebhookServerHandle, followCertificates, startWebhookServer, webhookServingCertificate } from './webhook/server';
import type { ConfigSource } from './sources/source';
import type { InjectionConfig } from './inject/options';
import { BoundedSink } from './cli/log-sink';
import { ConfigEngine } from './xds/engine';
import { Debouncer } from './xds/debounce';
import { XdsMetrics } from './xds/metrics';
import { EnvoyProtos } from './xds/protos';
import { AdsServer } from './xds/server';
import type { XdsAuth } from './xds/authn';
import { SecretAccessReviewer } from './ca/secret-access';
import { SecurePort } from './ca/secure-port';
import { MeshdCa } from './ca/setup';
import type { ServingCertificate } from './ca/tls-server';
import type { CertificateAuthority } from './ca/types';
import { ResourceValidator } from './xds/validate-rules';
import { GatewayController } from './gatewayapi/controller';
import { withClassStatuses } from './gatewayapi/standin';
import { gatewayApiStatusSource } from './gatewayapi/status';
import type { GatewayApiStatusSource } from './gatewayapi/status-types';
import { resolveInjectionOptions } from './inject/options';
import { AutoRegistrar } from './autoreg/registrar';
import { KubeWorkloadEntryStore, MemoryWorkloadEntryStore } from './autoreg/stores';

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
  /**
   * The webhook configurations' caBundle: the CA's root bundle, which the webhook serving
   * certificate chains to; undefined until this replica's webhooks serve a certificate.
   */
  webhookCaPem(): string | undefined;
  /** xDS and the CA over TLS (istiod's 15012), or -1 when off. */
  secureXdsPort: number;
  /** The CA's root bundle (PEM) that workloads trust; '' until the CA is ready. */
  caRootPem(): string;
  /** Resolves once the CA signs (and the 15012 serving certificate is issued). */
  caReady(): Promise<void>;
  /**
   * With a Kubernetes source: this replica's identity and state in the shared election
   * (`istio-namespace-controller-election`: cluster-wide writes), which it joins only while its
   * revision is the mesh's default.
   */
  leader(): { identity: string; leading: boolean; holder: string } | undefined;
  /** With a Kubernetes source and webhooks on: the per-revision election (`meshd-webhook-patcher-<rev>`). */
  revisionLeader(): { identity: string; leading: boolean; holder: string; lease: string } | undefined;
  /** meshd's revision and, with a Kubernetes source, the tags pointing at it and whether it is the default. */
  revision(): { revision: string; tags: readonly string[]; isDefault: boolean };
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
  /** Lifetime of the 15012 and webhook serving certificates (default 24 h; re-issued at half). */
  servingCertTtlSeconds?: number;
  /** How often the revision tag webhooks are listed (default 5 s). */
  revisionTagIntervalMs?: number;
  /** How often this revision's webhook configurations' caBundle is re-checked (default 30 s). */
  webhookPatchIntervalMs?: number;
  /** JWKS resolver tuning (tests shorten the refresh; embedders may bound the cache). */
  jwksResolver?: Omit<JwksResolverOptions, 'onChange' | 'log' | 'registry'>;
  /** Gateway API controller tuning (tests shorten the debounce and resync). */
  gatewayController?: { debounceMs?: number; resyncMs?: number };
};

/**
 * The wanted status of the Gateway API objects, from the config being served (the translation's,
 * gatewayapi/status.ts), with the controller's GatewayClass Accepted for classes it leaves out.
 */
function gatewayStatusSource(objects: () => readonly ConfigObject[], snapshot: () => MeshSnapshot | undefined): GatewayApiStatusSource {
  return withClassStatuses(gatewayApiStatusSource(snapshot), objects);
}

/** meshd's logger: JSON lines at `level` to `out` (default: standard output, bounded; see BoundedSink). */
export function meshdLogger(level: string, out: pino.DestinationStream = new BoundedSink(process.stdout)): Logger {
  return pino({ level, base: { app: 'meshd' } }, out);
}

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

/** The PEM CAs of `--jwks-ca-file`, or a clear error naming the flag. */
function readCaFile(file: string): string {
  let pem: string;
  try {
    pem = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`--jwks-ca-file ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`--jwks-ca-file ${file}: no PEM certificate in it`);
  return pem;
}

/** istiod's MeshConfig ConfigMap: `istio`, or `istio-<revision>` for a revision other than default. */
export function meshConfigMapName(revision: string | undefined): string {
  return revisionNames(revision, DEFAULT_LEADER_NAMESPACE).meshConfigMap;
}

/** A config folder's mesh.yaml, if it has one (read before the source, for the CA's trust domain). */
function readMeshYaml(dir: string): MeshConfigText | undefined {
  try {
    return { source: MESH_CONFIG_FILE, text: fs.readFileSync(path.join(dir, MESH_CONFIG_FILE), 'utf8') };
  } catch {
    return undefined;
  }
}

/**
 * The injector's settings from the MeshConfig in effect (none while no MeshConfig was given:
 * the flags' only), one object per MeshConfig so the webhook resolves them once per change.
 */
function meshInjector(): (snap: MeshSnapshot | undefined) => InjectionConfig | undefined {
  const cache = new WeakMap<object, InjectionConfig>();
  return (snap) => {
    if (!snap || snap.meshStatus.source === undefined) return undefined;
    const mesh = snap.meshConfig;
    let c = cache.get(mesh);
    if (!c) cache.set(mesh, (c = { proxyConfig: mesh.defaultConfig, trustDomain: mesh.trustDomain }));
    return c;
  };
}

export async function startMeshd(input: StartOptions): Promise<MeshdHandle> {
  const opts = withDefaults(input);
  const names = revisionNames(opts.revision, opts.podNamespace ?? DEFAULT_LEADER_NAMESPACE);
  // Read before anything starts, so a bad file fails the start cleanly.
  const jwksCaPems = opts.jwksCaFile !== undefined ? [readCaFile(opts.jwksCaFile)] : undefined;
  const log = input.logger ?? meshdLogger(opts.logLevel);
  const protos = new EnvoyProtos();
  const metrics = new XdsMetrics();
  const engineOptions = { protos, checker: opts.validateResources ? new ResourceValidator(protos) : undefined, log, maxContentBytes: opts.contentCacheBytes };
  const engine = new ConfigEngine(engineOptions);
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
  let peerCertificate: (peer: string) => Buffer | undefined = () => undefined;
  // WorkloadGroup auto-registration: the entries go to the API server, or (folder mode) to memory.
  const kubeConnection = opts.configDir !== undefined ? undefined : opts.kubeconfig !== undefined ? { kubeconfig: opts.kubeconfig } : { inCluster: true as const };
  const kubeConfig = kubeConnection ? loadKubeConfig(kubeConnection) : undefined;
  const memoryEntries = kubeConfig ? undefined : new MemoryWorkloadEntryStore();
  const registrar = new AutoRegistrar({
    store: kubeConfig ? new KubeWorkloadEntryStore(kubeConfig) : (memoryEntries as MemoryWorkloadEntryStore),
    instanceId: opts.podName ?? os.hostname(),
    group: (ns, name) => current?.workloadGroups.get(`${ns}/${name}`),
    gracePeriodMs: opts.workloadEntryGracePeriodMs,
    validateIdentity: opts.validateWorkloadEntryIdentity,
    log: log.child({ component: 'wle' }),
  });
  const server = new AdsServer({
    protos,
    lifecycle: registrar,
    watcher: engine,
    metrics,
    log,
    // istioctl's proxy-status and config dump over xDS (istio.io/debug/*), as istiod answers them.
    debug: new XdsDebug({ protos, watcher: engine, systemNamespace: opts.podNamespace ?? DEFAULT_LEADER_NAMESPACE }),
    debugEndpointAuth: opts.debugEndpointAuth,
    controlPlaneIdentifier: controlPlaneIdentifier(opts.podName ?? os.hostname()),
    auth: {
      authenticate: (ctx) => authenticate(ctx),
      peerCertificate: (peer) => peerCertificate(peer),
      mayReadSecrets: (ns, sa) => (secretAccess ? secretAccess.mayReadSecrets(ns, sa) : Promise.resolve(true)),
    },
  });
  // The engine's sweep of unused results runs a second after a push is done, off a change's path.
  let maintainTimer: NodeJS.Timeout | undefined;
  const maintainLater = (): void => {
    clearTimeout(maintainTimer);
    maintainTimer = setTimeout(() => engine.maintain(), 1000);
    maintainTimer.unref();
  };
  // The one place a snapshot becomes the served one: the engine learns it before any push.
  const serve = (snap: MeshSnapshot): void => {
    current = snap;
    engine.setSnapshot(snap);
    metrics.rejectedResources.set(engine.currentRejections().length);
  };

  // MeshConfig: the --mesh-config file when given (istiod's --meshConfig), else the source's
  // (the folder's mesh.yaml, or ConfigMap istio in meshd's namespace).
  const meshFile = opts.meshConfigFile
    ? new MeshConfigFile(opts.meshConfigFile, {
        settleMs: opts.configSettleMs,
        rescanIntervalMs: opts.configRescanIntervalMs,
        maxBytes: opts.limits.maxFileBytes,
        log: log.child({ component: 'mesh-config' }),
      })
    : undefined;
  meshFile?.load();
  const meshText = (): MeshConfigText | undefined => (meshFile ? meshFile.text() : source.state().mesh);
  const source: ConfigSource = kubeConfig
    ? new KubeSource({
        kubeConfig,
        log: log.child({ component: 'kube' }),
        limits: opts.limits,
        events: eventRecorder(metrics),
        ...(meshFile ? {} : { meshConfigMap: { namespace: opts.podNamespace ?? DEFAULT_LEADER_NAMESPACE, name: names.meshConfigMap } }),
        ...input.kube,
      })
    : new FileSource(opts.configDir as string, {
        rescanIntervalMs: opts.configRescanIntervalMs,
        settleMs: opts.configSettleMs,
        log: log.child({ component: 'folder' }),
        limits: opts.limits,
        events: eventRecorder(metrics),
      });
  // The CA signs for the trust domain in effect at start: a MeshConfig file's, else the flag's
  // (a MeshConfig read later from the API server changes the generated config, not the CA).
  const startMesh = meshFile ? meshFile.text() : opts.configDir !== undefined ? readMeshYaml(opts.configDir) : undefined;
  const caTrustDomain = (startMesh && parseMeshConfig(startMesh.text, { trustDomain: opts.trustDomain }).config?.trustDomain) || opts.trustDomain;
  // The workload CA: CreateCertificate on 15012 (and 15010 with --plaintext-ca); in Kubernetes only the leader creates the root.
  let leading: () => boolean = () => false;
  const ca = new MeshdCa({
    trustDomain: caTrustDomain,
    cacertsDir: opts.cacertsDir,
    caDir: opts.caDir,
    kubeConfig,
    namespace: opts.podNamespace ?? DEFAULT_LEADER_NAMESPACE,
    domain: opts.domain,
    revision: names.revision,
    // Only the leader of the default revision creates or rotates the shared root; other revisions use it as it is.
    mayWrite: () => leading(),
    defaultTtlSeconds: opts.workloadCertTtlSeconds,
    maxTtlSeconds: opts.maxWorkloadCertTtlSeconds,
    jwks: opts.jwks,
    jwtIssuer: opts.jwtIssuer,
    jwtAudiences: opts.jwtAudiences,
    jwtMaxLifetimeSeconds: opts.jwtMaxLifetimeSeconds,
    serving: opts.secureXdsPort >= 0,
    servingTtlSeconds: input.servingCertTtlSeconds,
    registry: metrics.registry,
    log,
    authority: input.certificateAuthority,
    signWorkers: opts.caSignWorkers,
  });
  authenticate = (ctx) => ca.authenticate(ctx);
  if (kubeConfig) secretAccess = new SecretAccessReviewer({ kubeConfig });
  // The Gateway API controller (class, automated deployment, status), as istiod's: it runs on the
  // shared Lease, which only the mesh's default revision campaigns for.
  const meshInjection = meshInjector();
  const gatewayController = kubeConfig
    ? new GatewayController({
        kubeConfig,
        log: log.child({ component: 'gateway-api' }),
        statuses: gatewayStatusSource(
          () => source.state().objects,
          () => current,
        ),
        objects: () => source.state().objects,
        injection: () => resolveInjectionOptions({ clusterDomain: opts.domain, trustDomain: opts.trustDomain, revision: opts.revision, ...meshInjection(current) }),
        revision: opts.revision,
        userAgent: `meshd/${MESHD_VERSION} (${opts.podName ?? os.hostname()}) gateway-controller`,
        ...input.gatewayController,
      })
    : undefined;
  // Every replica serves xDS. Work that must happen once in the cluster (the CA's root Secret, the
  // istio-ca-root-cert ConfigMaps) runs on the holder of istiod's shared namespace-controller Lease,
  // which only replicas of the default revision campaign for; this revision's own webhook
  // configurations are patched by the holder of its per-revision Lease (leader/revision-elections.ts).
  const elections = kubeConfig
    ? startRevisionElections({
        kubeConfig,
        names,
        namespace: opts.podNamespace ?? DEFAULT_LEADER_NAMESPACE,
        identity: leaderIdentity(opts.podName),
        log,
        sharedTasks: [...ca.leaderTasks, ...(gatewayController ? [gatewayController] : [])],
        // The webhooks' caBundle is the CA's root bundle: every replica's webhook certificate chains to it.
        ...(opts.webhookPort >= 0 ? { webhookCaPem: () => ca.authority.rootBundlePem() || undefined } : {}),
        timings: input.leaseTimings,
        revisionTagIntervalMs: input.revisionTagIntervalMs,
        webhookPatchIntervalMs: input.webhookPatchIntervalMs,
      })
    : undefined;
  const election = elections?.shared;
  const role = (): { tags: readonly string[]; isDefault: boolean } => elections?.role() ?? { tags: [], isDefault: names.isDefaultName };
  if (election) leading = () => election.isLeader();
  // RequestAuthentication key sets, fetched by meshd (istiod's default) and handed to the model.
  let onJwksChange: () => void = () => undefined;
  const jwksResolver = new JwksResolver({
    ...(jwksCaPems ? { extraCaPems: jwksCaPems } : {}),
    ...input.jwksResolver,
    onChange: () => onJwksChange(),
    log: log.child({ component: 'jwks' }),
    registry: metrics.registry,
  });
  /** Fetches the key sets the current config names and has not fetched yet (bounded by their timeouts). */
  const fetchJwks = async (): Promise<void> => {
    const policies = objectsOfRevision(source.state().objects, names.revision)
      .filter((o) => o.kind === 'RequestAuthentication')
      .map((o) => ({ meta: o.metadata, spec: (o.body.spec ?? {}) as RequestAuthenticationSpec }));
    await jwksResolver.want(jwksSources(policies));
  };
  // Each problem is logged when it first appears, not again on every rebuild while it lasts.
  let logged = new Set<string>();
  let loggedMeshWarnings = '';
  const digests = new WeakMap<ConfigObject, string>();
  // The builds that become the served snapshot, one from the other, share a cache (a preview does not).
  const buildCache = new BuildCache();
  const snapshotOf = (objects: readonly ConfigObject[], errors: readonly ConfigError[], seq: number, cache?: BuildCache): MeshSnapshot =>
    buildSnapshot({
      objects,
      errors,
      sequence: seq,
      now: new Date(),
      domain: opts.domain,
      trustDomain: opts.trustDomain,
      trustDomainAliases: opts.trustDomainAliases,
      envoyFilterAllowedTypes: opts.envoyFilterAllowedTypes,
      mesh: meshText(),
      previous: current,
      digests,
      jwks: jwksResolver.entries(),
      ...(cache ? { cache } : {}),
    });
  /** The config objects: the source's, and in folder mode the auto-registered WorkloadEntries. */
  const currentObjects = (): { objects: readonly ConfigObject[]; errors: readonly ConfigError[] } => {
    const state = source.state();
    // As istiod: Istio config labelled istio.io/rev for another revision is not this one's.
    const objects = objectsOfRevision(state.objects, names.revision);
    const registered = memoryEntries?.state();
    if (!registered || registered.objects.length + registered.errors.length === 0) return { objects, errors: state.errors };
    return { objects: [...objects, ...registered.objects], errors: [...state.errors, ...registered.errors] };
  };
  const rebuild = (): MeshSnapshot => {
    const state = currentObjects();
    const started = performance.now();
    const snap = snapshotOf(state.objects, state.errors, ++sequence, buildCache);
    metrics.snapshotBuildTime.observe((performance.now() - started) / 1000);
    metrics.invalidObjects.set(snap.errors.length);
    const now = new Set<string>();
    for (const e of snap.errors) {
      const line = describe(e, opts.limits);
      now.add(line);
      if (!logged.has(line)) log.warn({ source: e.source, kind: e.kind, namespace: e.namespace, name: e.name }, `config left out: ${line}`);
    }
    logged = now;
    // Unknown MeshConfig fields are warnings (istiod decodes them leniently): logged once per change.
    const warnings = snap.meshStatus.warnings.map((w) => `${w.path}: ${w.message}`).join('; ');
    if (warnings !== loggedMeshWarnings && warnings !== '') log.warn({ source: snap.meshStatus.source }, truncate(`MeshConfig: ${warnings}`, opts.limits.maxLogLineLength));
    loggedMeshWarnings = warnings;
    return snap;
  };

  if (source instanceof FileSource) {
    source.load();
    await fetchJwks();
    const first = rebuild();
    serve(first);
    log.info({ version: first.version, counts: first.counts, errors: first.errors.length, dir: opts.configDir }, 'config loaded');
  }

  // Flushes run one at a time: a flush may wait for a newly named JWKS before it builds.
  let flushing: Promise<void> = Promise.resolve();
  const debouncer = new Debouncer<string>({ quietMs: opts.debounceQuietMs, maxMs: opts.debounceMaxMs }, (files, firstAt) => {
    flushing = flushing
      .then(async () => {
        await fetchJwks();
        if (closed) return;
        metrics.debounceTime.observe((Date.now() - firstAt) / 1000);
        const prev = current;
        const next = rebuild();
        // Same objects and same problems (e.g. a file touched, or an invalid object edited into
        // another invalid one with the same message): keep the snapshot and its encoded resources.
        if (prev && contentHash(next) === contentHash(prev) && sameErrors(next.errors, prev.errors)) {
          log.debug({ files }, 'files changed but config is the same; no push');
          return;
        }
        serve(next);
        log.info(
          { version: next.version, files: files.length > 20 ? [...files.slice(0, 20), `… ${files.length - 20} more`] : files, errors: next.errors.length },
          'config changed; pushing',
        );
        void server.push({ snap: next, triggeredAt: firstAt, reason: 'config' }).then(maintainLater);
        gatewayController?.notify();
      })
      // Whatever the input, a failed rebuild must not end the process: what is served stays.
      .catch((err: unknown) =>
        log.error({ err: truncate(String((err as Error)?.stack ?? err), opts.limits.maxLogLineLength) }, 'rebuilding config failed; the served config is kept'),
      );
  });
  onJwksChange = () => debouncer.add('jwks');
  meshFile?.on('change', (what: string) => debouncer.add(what));
  source.on('change', (what: string, at?: number) => debouncer.add(what, at));
  memoryEntries?.on('change', (what: string) => debouncer.add(what));
  source.on('error', (err: unknown) => log.error({ err }, 'config source error'));
  if (source instanceof FileSource) await source.start();
  meshFile?.start();

  const apps: FastifyInstance[] = [];
  let xdsPort: number;
  let debugPort: number;
  let monitoringPort = -1;
  let secureXdsPort = -1;
  let webhooks: WebhookServerHandle | undefined;
  let webhookCert: ServingCertificate | undefined;
  // 15012's TLS listener keeps every client certificate for the CA's authenticator (see ca/secure-port.ts).
  const securePort = ca.serving ? new SecurePort({ certificates: ca.serving, log: log.child({ component: 'secure-xds' }) }) : undefined;
  // xDS streams on 15012 prove who they are with the same certificates.
  if (securePort) peerCertificate = (peer) => securePort.peerCertificate(peer);
  try {
    // As istiod, the CA is not on the plaintext port unless asked for: bearer tokens would cross the network in clear.
    xdsPort = await server.listen(opts.host, opts.xdsPort, undefined, { extraServices: opts.plaintextCa ? [ca.grpcService()] : [] });
    if (opts.plaintextCa) {
      log.warn(
        { port: xdsPort },
        'the CA (CreateCertificate) is also served on the plaintext xDS port (--plaintext-ca): bearer tokens cross the network in clear; use it for development only',
      );
    }
    // Connections to 15012 are dropped until the CA has issued the serving certificate.
    if (securePort) {
      const injector = server.connectionInjector('tls', { extraServices: [ca.grpcService((peer) => securePort.peerCertificate(peer))] });
      secureXdsPort = await securePort.listen(opts.host, opts.secureXdsPort, injector);
    }
    /** `meshctl x preview`: the change over a copy of the current objects, diffed per connected proxy. */
    const preview = async (text: string, mode: PreviewMode): Promise<PreviewReport> => {
      const cur = current;
      if (!cur) throw Object.assign(new Error('no config loaded yet'), { statusCode: 503 });
      const parsed = loadText(text, 'preview', opts.limits);
      const state = currentObjects();
      const { objects, missing } = applyChange(state.objects, parsed.objects, mode);
      const next = snapshotOf(objects, state.errors, sequence + 1);
      const line = (e: ConfigError): string => describe(e, opts.limits);
      const before = new Set(cur.errors.map(line));
      const after = new Set(next.errors.map(line));
      return previewChange({
        live: engine,
        next,
        connections: server.connectionList(),
        engineOptions,
        base: {
          mode,
          fromVersion: cur.version,
          changeErrors: parsed.errors,
          missing,
          newErrors: next.errors.filter((e) => !before.has(line(e))),
          clearedErrors: cur.errors.filter((e) => !after.has(line(e))),
        },
      });
    };
    const debugDeps = {
      server,
      protos,
      engine,
      metrics,
      snapshot: () => current,
      ready: () => ready,
      jwks: () => jwksResolver.status(),
      preview,
      maxBodyBytes: opts.limits.maxFileBytes,
    };
    const dbg = debugApp(debugDeps);
    apps.push(dbg);
    debugPort = await listenApp(dbg, opts.host, opts.debugPort);
    if (opts.monitoringPort >= 0) {
      // As istiod: the debug views are on the monitoring port too (Kiali reads /debug/syncz there).
      // No preview there: it costs a generation pass per proxy, and 15014 is reachable in the cluster.
      const mon = debugApp({ ...debugDeps, preview: undefined });
      apps.push(mon);
      monitoringPort = await listenApp(mon, opts.host, opts.monitoringPort);
    }
    if (opts.webhookPort >= 0) {
      const wlog = log.child({ component: 'webhook' });
      const hooks = await startWebhookServer({
        host: opts.host,
        port: opts.webhookPort,
        log: wlog,
        validate: (o) => checkObject(o, opts.limits.maxErrorsPerObject),
        // The injected proxy dials this revision's Service (istiod-<rev>.<ns>.svc:15012) unless the MeshConfig names another.
        injection: {
          clusterDomain: opts.domain,
          trustDomain: opts.trustDomain,
          revision: names.revision,
          istiodService: names.service,
          istioNamespace: opts.podNamespace ?? DEFAULT_LEADER_NAMESPACE,
        },
        role,
        // The MeshConfig's defaultConfig (proxyMetadata, holdApplicationUntilProxyStarts, …) and trust domain, when one is given.
        meshInjection: () => meshInjection(current),
        namespaceLabels: (ns) => current?.namespaceLabels.get(ns),
        proxyConfigs: () => (current ? { rootNamespace: current.rootNamespace, byNamespace: current.proxyConfigs } : undefined),
        metrics,
      });
      webhooks = hooks;
      // Issued by meshd's CA for istiod's names and the custom hosts, renewed at half-life; until
      // the CA signs (in Kubernetes it may wait for the leader's root), handshakes fail.
      const cert = webhookServingCertificate({
        ca: ca.authority,
        namespace: opts.podNamespace ?? DEFAULT_LEADER_NAMESPACE,
        domain: opts.domain,
        customHosts: opts.customHosts,
        revision: names.revision,
        log: wlog,
        ...(input.servingCertTtlSeconds !== undefined ? { ttlSeconds: input.servingCertTtlSeconds } : {}),
      });
      webhookCert = cert;
      followCertificates(cert, (c) => hooks.setCertificate(c));
      void ca.ready().then(() => (closed ? undefined : cert.start()));
    }
  } catch (err) {
    debouncer.stop();
    clearTimeout(maintainTimer);
    jwksResolver.close();
    ca.close();
    webhookCert?.close();
    await meshFile?.close();
    await webhooks?.close();
    await elections?.stop();
    await source.close();
    await server.close();
    registrar.close();
    await securePort?.close();
    for (const a of apps) await a.close();
    throw err;
  }
  log.info(
    {
      xds: `${opts.host}:${xdsPort}`,
      secureXds: secureXdsPort >= 0 ? `${opts.host}:${secureXdsPort}` : 'off',
      debug: `http://${opts.host}:${debugPort}`,
      monitoring: monitoringPort >= 0 ? `http://${opts.host}:${monitoringPort}/metrics` : 'off',
    },
    'meshd is serving',
  );
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
      await fetchJwks();
      if (closed) return;
      const first = rebuild();
      serve(first);
      log.info({ version: first.version, counts: first.counts, errors: first.errors.length }, 'config loaded');
      await server.push({ snap: first, triggeredAt: Date.now(), reason: 'config' });
      becomeReady();
      gatewayController?.notify();
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
    webhookCaPem: () => (webhooks?.hasCertificate() ? ca.authority.rootBundlePem() || undefined : undefined),
    secureXdsPort,
    caRootPem: () => ca.authority.rootBundlePem(),
    caReady: () => ca.ready(),
    leader: () => (election ? { identity: election.identity, leading: election.isLeader(), holder: election.leader() } : undefined),
    revisionLeader: () => {
      const r = elections?.perRevision;
      return r ? { identity: r.identity, leading: r.isLeader(), holder: r.leader(), lease: r.lease } : undefined;
    },
    revision: () => {
      const r = role();
      return { revision: names.revision, tags: r.tags, isDefault: r.isDefault };
    },
    close: async () => {
      closed = true;
      ready = false;
      notReady(new Error('meshd closed before it was ready'));
      debouncer.stop();
      clearTimeout(maintainTimer);
      jwksResolver.close();
      ca.close();
      webhookCert?.close();
      await elections?.stop();
      await webhooks?.close();
      await meshFile?.close();
      await source.close();
      await server.close();
      registrar.close();
      await securePort?.close();
      for (const a of apps) await a.close();
    },
  };
}
