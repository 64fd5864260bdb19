/**
 * meshd's CA, composed: the authority (root from `cacerts`, or a self-signed root kept in a folder,
 * in memory, or in Secret `istio-ca-secret`), the authenticators, the certificate service, the
 * 15012 serving certificate, and the leader task that publishes the roots as `istio-ca-root-cert`.
 * The authority starts in the background (in Kubernetes it may wait for the leader to create the
 * root); until it is ready, CreateCertificate answers UNAVAILABLE as istiod's CA_NOT_READY.
 */
import * as grpc from '@grpc/grpc-js';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { RootCertPublisher } from '../leader/root-cert';
import type { LeaderTask } from '../leader/tasks';
import { CA_DEFAULTS, MeshdAuthority } from './authority';
import { type AuthnContext, JwtAuthenticator, KubeTokenAuthenticator, MtlsAuthenticator, authenticateCaller, spiffeId } from './authn';
import { CaMetrics } from './metrics';
import type { RootMaterial } from './roots';
import { FolderRootStore, KubeSecretRootStore, PLUGIN_SECRET, type RootStore } from './root-store';
import { CertificateService, type PeerCertificateLookup, certificateServiceDefinition } from './service';
import { ServingCertificate, istiodDnsNames } from './tls-server';
import { type Authenticator, CaError, type Caller, type CertificateAuthority, type SignRequest, type SignedCertificate } from './types';

export interface MeshdCaOptions {
  trustDomain: string;
  /** Plug-in root folder (`cacerts`: ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem). */
  cacertsDir?: string;
  /** Self-signed root folder (ignored with Kubernetes, where Secret istio-ca-secret keeps it). */
  caDir?: string;
  kubeConfig?: KubeConfig;
  /** meshd's namespace (istio-system): the Secret's, and istiod's serving names. */
  namespace: string;
  /** Cluster DNS domain for istiod's serving names. */
  domain: string;
  /** meshd's revision: other than default, the 15012 certificate also names `istiod-<rev>`. */
  revision?: string;
  /** May this replica create or rotate the self-signed root (the leader)? */
  mayWrite: () => boolean;
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
  jwks?: string;
  jwtIssuer?: string;
  jwtAudiences?: readonly string[];
  /** Longest JWT lifetime accepted (seconds); default 24 h. */
  jwtMaxLifetimeSeconds?: number;
  /** Issue a serving certificate for port 15012. */
  serving: boolean;
  servingTtlSeconds?: number;
  registry: Registry;
  log: Logger;
  /** Use this authority instead of building one (tests, embedders). */
  authority?: CertificateAuthority;
  /** Worker threads that verify CSRs and sign; 0 signs on the main thread. */
  signWorkers?: number;
}

/** A root store that lives as long as the process (library default without a folder). */
class MemoryRootStore implements RootStore {
  readonly description = 'memory (a new root on every start)';
  private m: RootMaterial | undefined;
  async load(): Promise<RootMaterial | undefined> {
    return this.m;
  }
  async save(m: RootMaterial): Promise<void> {
    this.m = m;
  }
}

/** The authority once it is loaded; CA_NOT_READY before. */
class PendingAuthority implements CertificateAuthority {
  inner: CertificateAuthority | undefined;
  constructor(readonly trustDomain: string) {}
  async sign(req: SignRequest): Promise<SignedCertificate> {
    if (!this.inner) throw new CaError('ca_not_ready', 'the CA is not ready yet (its root is still being loaded or created)', grpc.status.UNAVAILABLE);
    return this.inner.sign(req);
  }
  rootBundlePem(): string {
    return this.inner?.rootBundlePem() ?? '';
  }
}

/** Publishes the CA's roots as istio-ca-root-cert while leading, once the roots exist. */
class RootCertTask implements LeaderTask {
  readonly name = 'namespace controller (istio-ca-root-cert)';
  private publisher: RootCertPublisher | undefined;
  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly roots: () => string,
    private readonly ready: Promise<void>,
    private readonly log: Logger,
  ) {}
  async run(signal: AbortSignal): Promise<void> {
    await Promise.race([this.ready, new Promise((r) => signal.addEventListener('abort', r, { once: true }))]);
    if (signal.aborted || !this.roots()) return;
    this.publisher = new RootCertPublisher({ kubeConfig: this.kubeConfig, rootCertPem: this.roots(), log: this.log });
    await this.publisher.run(signal);
  }
  rootsChanged(pem: string): void {
    if (pem) this.publisher?.setRootCert(pem);
  }
}

const octal = (mode: number): string => `0${mode.toString(8).padStart(3, '0')}`;

/**
 * Once at start: the self-signed root's folder (`--ca-dir`) is made private (0700) when others can
 * read it; a plug-in `ca-key.pem` that group or others may read is warned about (meshd does not
 * change an operator's files or a mounted Secret).
 */
async function checkFolderPermissions(store: FolderRootStore, plugin: boolean, log: Logger): Promise<void> {
  if (plugin) {
    const mode = await store.keyFileMode();
    if (mode !== undefined && (mode & 0o044) !== 0) {
      log.warn(
        { store: store.description, file: 'ca-key.pem', mode: octal(mode) },
        'the plug-in CA key is readable by group or others: restrict it to 0600 (or the Secret volume to defaultMode 0400)',
      );
    }
    return;
  }
  const was = await store.restrictFolder();
  if (was !== undefined) log.warn({ store: store.description, mode: octal(was), now: '0700' }, 'the CA folder was open to group or others: made it 0700');
}

export class MeshdCa {
  readonly authority: PendingAuthority;
  readonly metrics: CaMetrics;
  readonly service: CertificateService;
  readonly serving: ServingCertificate | undefined;
  readonly leaderTasks: LeaderTask[] = [];
  private readonly rootTask: RootCertTask | undefined;
  private readonly abort = new AbortController();
  private owned: MeshdAuthority | undefined;
  private readonly readyPromise: Promise<void>;
  private readonly authenticators: readonly Authenticator[];

  constructor(private readonly opts: MeshdCaOptions) {
    const log = opts.log.child({ component: 'ca' });
    this.authority = new PendingAuthority(opts.trustDomain);
    this.metrics = new CaMetrics(opts.registry);
    const serving = opts.serving
      ? new ServingCertificate({
          ca: this.authority,
          dnsNames: istiodDnsNames(opts.namespace, opts.domain, opts.revision),
          identity: spiffeId(opts.trustDomain, opts.namespace, 'istiod'),
          ttlSeconds: opts.servingTtlSeconds,
          log,
        })
      : undefined;
    this.serving = serving;
    const authenticators: Authenticator[] = [
      new MtlsAuthenticator({
        trustDomain: opts.trustDomain,
        roots: () => this.authority.rootBundlePem(),
        intermediates: () => (serving?.certChainPem() ?? []).slice(1, -1).join(''),
      }),
    ];
    if (opts.kubeConfig) authenticators.push(new KubeTokenAuthenticator({ kubeConfig: opts.kubeConfig, trustDomain: opts.trustDomain, log }));
    if (opts.jwks)
      authenticators.push(
        new JwtAuthenticator({
          jwks: opts.jwks,
          issuer: opts.jwtIssuer ?? '',
          audiences: opts.jwtAudiences ?? [],
          trustDomain: opts.trustDomain,
          maxLifetimeSeconds: opts.jwtMaxLifetimeSeconds,
        }),
      );
    this.authenticators = authenticators;
    this.service = new CertificateService({
      ca: this.authority,
      authenticators,
      metrics: this.metrics,
      log,
      defaultTtlSeconds: opts.defaultTtlSeconds,
      maxTtlSeconds: opts.maxTtlSeconds,
    });
    let markReady: () => void = () => undefined;
    this.readyPromise = new Promise<void>((r) => (markReady = r));
    if (opts.kubeConfig) {
      this.rootTask = new RootCertTask(opts.kubeConfig, () => this.authority.rootBundlePem(), this.readyPromise, log);
      this.leaderTasks.push(this.rootTask);
    }
    void this.startAuthority(log).then(
      () => markReady(),
      (err: unknown) => log.error({ error: err instanceof Error ? err.message : String(err) }, 'the CA could not start: certificate requests are refused'),
    );
  }

  private async startAuthority(log: Logger): Promise<void> {
    const o = this.opts;
    if (o.authority) {
      this.authority.inner = o.authority;
    } else {
      const plugin = o.cacertsDir !== undefined;
      const store: RootStore = plugin
        ? new FolderRootStore(o.cacertsDir as string)
        : o.kubeConfig
          ? new KubeSecretRootStore({ kubeConfig: o.kubeConfig, namespace: o.namespace })
          : o.caDir !== undefined
            ? new FolderRootStore(o.caDir)
            : new MemoryRootStore();
      if (store instanceof FolderRootStore) await checkFolderPermissions(store, plugin, log);
      log.info({ mode: plugin ? 'plugin' : 'self-signed', store: store.description, trustDomain: o.trustDomain, plugin: plugin ? PLUGIN_SECRET : undefined }, 'starting the CA');
      this.owned = await MeshdAuthority.start({
        mode: plugin ? 'plugin' : 'self-signed',
        store,
        log: o.log,
        trustDomain: o.trustDomain,
        mayWrite: plugin ? () => false : o.kubeConfig ? o.mayWrite : () => true,
        defaultTtlSeconds: o.defaultTtlSeconds,
        maxTtlSeconds: o.maxTtlSeconds,
        signal: this.abort.signal,
        onRootsChanged: (pem) => this.rootsChanged(pem),
        checkIntervalMs: CA_DEFAULTS.checkIntervalMs,
        signWorkers: o.signWorkers ?? 0,
      });
      this.authority.inner = this.owned;
    }
    this.rootsChanged(this.authority.rootBundlePem());
    await this.serving?.start();
  }

  private rootsChanged(pem: string): void {
    this.serving?.refreshRoots();
    this.rootTask?.rootsChanged(pem);
  }

  /**
   * Proves who a caller is with the CA's authenticators (client certificate, service-account
   * token, JWT), for other services on the same ports (xDS streams). Throws CaError.
   */
  authenticate(ctx: AuthnContext): Promise<Caller> {
    return authenticateCaller(this.authenticators, ctx);
  }

  /** Resolves once the CA signs (and the serving certificate, if any, is issued). */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  /**
   * CreateCertificate as a gRPC service for one port (meshd serves it on 15012, and on 15010 only
   * with --plaintext-ca), reading client certificates through `peerCertificates` (the 15012 listener's).
   */
  grpcService(peerCertificates?: PeerCertificateLookup): { definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation } {
    return { definition: certificateServiceDefinition(), implementation: this.service.implementation(peerCertificates) };
  }

  close(): void {
    this.abort.abort();
    this.serving?.close();
    this.owned?.close();
  }
}
