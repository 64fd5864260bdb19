/**
 * One kind's list/watch against the API server, with client-node's ListWatch informer:
 *
 * - discovery picks the first served version (Istio kinds: v1, then v1beta1, then v1alpha3);
 *   a kind that is not served at all is reported once and looked for again slowly;
 * - the initial LIST fills the informer's cache, then WATCH resumes from the last
 *   resourceVersion (bookmarks keep it fresh); a 410 Gone makes ListWatch relist, and its
 *   relist diff turns into adds, updates and deletes, so the cache ends equal to the server;
 * - a failed list or watch (connection refused, dropped stream, 5xx) restarts with
 *   exponential backoff (100 ms … 5 s by default), resuming from the last resourceVersion;
 * - a 404 while running means the resource went away (CRD deleted): its objects are dropped
 *   and the kind goes back to slow discovery.
 */
import { type KubeConfig, type KubernetesListObject, type KubernetesObject, ListWatch, Watch } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { KubeHttpError, getJson, listAll } from './kube-http';
import { type KubeKind, type KubeResource, collectionPath, discoveryPath } from './kube-kinds';

export type RawObject = Record<string, unknown>;

/** Where a kind's watcher delivers what it sees. */
export interface KindSink<K extends KubeResource = KubeKind> {
  upsert(k: K, version: string, raw: RawObject): void;
  remove(k: K, raw: RawObject): void;
  /** Every object of the kind is gone (the resource is no longer served). */
  clear(k: K): void;
  /** The initial list completed, or the kind turned out not to be served. */
  synced(k: K): void;
  /** The kind is not served (a message), or served again (undefined). */
  missing(k: K, message: string | undefined): void;
}

export interface KindWatcherOptions {
  kc: KubeConfig;
  log: Logger;
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** How often to look again for a kind that is not served. */
  missingRetryMs: number;
  /** The server ends each watch after this long; the informer then resumes it. */
  watchTimeoutSeconds: () => number;
}

export type KindPhase = 'discovering' | 'running' | 'missing' | 'closed';

/** A watch that was ended by the server this soon, without a single event, counts as a failure. */
const QUICK_CLOSE_MS = 1000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** client-node's Watch, plus bookmarks, a server-side timeout, and bookkeeping for its owner. */
class SourceWatch extends Watch {
  constructor(
    kc: KubeConfig,
    private readonly owner: KindWatcher<KubeResource>,
    private readonly lw: () => ListWatch<KubernetesObject> | undefined,
  ) {
    super(kc);
  }

  override async watch(
    path: string,
    params: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, obj: RawObject, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const idle = new AbortController();
    idle.abort();
    if (!this.owner.owns(this.lw())) return idle;
    this.owner.listApplied();
    const delay = this.owner.quickCloseDelay();
    if (delay > 0) {
      await sleep(delay);
      if (!this.owner.owns(this.lw())) return idle;
    }
    const started = Date.now();
    let events = 0;
    let failed = false;
    const ctl = await super.watch(
      path,
      { ...params, allowWatchBookmarks: true, timeoutSeconds: this.owner.o.watchTimeoutSeconds() },
      (phase, obj, w) => {
        events++;
        callback(phase, obj as RawObject, w);
      },
      (err: unknown) => {
        if (err) failed = true;
        else this.owner.watchEnded(Date.now() - started < QUICK_CLOSE_MS && events === 0);
        done(err);
      },
    );
    if (!failed) this.owner.connected();
    return ctl;
  }
}

export class KindWatcher<K extends KubeResource = KubeKind> {
  version?: string;
  /** The initial list completed (or the kind is not served). */
  isSynced = false;
  phase: KindPhase = 'discovering';
  private lw?: ListWatch<KubernetesObject>;
  private timer?: NodeJS.Timeout;
  private failures = 0;
  private quickCloses = 0;
  private missingReported = false;
  /** Aborts discovery and LIST requests in flight when closed. */
  private readonly aborter = new AbortController();

  constructor(
    readonly kind: K,
    readonly o: KindWatcherOptions,
    private readonly sink: KindSink<K>,
  ) {}

  start(): void {
    void this.discover();
  }

  /** The resourceVersion the informer would resume from ('' before the first list). */
  resourceVersion(): string {
    return this.lw?.latestResourceVersion() ?? '';
  }

  async close(): Promise<void> {
    this.phase = 'closed';
    this.aborter.abort();
    if (this.timer) clearTimeout(this.timer);
    const lw = this.lw;
    this.lw = undefined;
    await lw?.stop();
  }

  owns(lw: ListWatch<KubernetesObject> | undefined): boolean {
    return lw !== undefined && lw === this.lw && this.phase === 'running';
  }

  /** The informer starts a watch: every list before it has been applied to its cache. */
  listApplied(): void {
    if (this.isSynced) return;
    this.isSynced = true;
    this.o.log.debug({ kind: this.kind.kind, version: this.version, resourceVersion: this.resourceVersion() }, 'initial list done');
    this.sink.synced(this.kind);
  }

  connected(): void {
    if (this.failures > 0) this.o.log.info({ kind: this.kind.kind }, 'Kubernetes watch reconnected');
    this.failures = 0;
  }

  watchEnded(quick: boolean): void {
    this.quickCloses = quick ? this.quickCloses + 1 : 0;
  }

  quickCloseDelay(): number {
    return this.quickCloses === 0 ? 0 : this.backoff(this.quickCloses);
  }

  private backoff(n: number): number {
    return Math.min(this.o.backoffMaxMs, this.o.backoffInitialMs * 2 ** Math.max(0, n - 1));
  }

  private schedule(ms: number, fn: () => void): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.phase !== 'closed') fn();
    }, ms);
  }

  private failed(err: unknown, what: string, retry: () => void): void {
    this.failures++;
    const delay = this.backoff(this.failures);
    const msg = (err as Error)?.message ?? String(err);
    // The first failure of a streak is a warning; the retries that follow are debug noise.
    if (this.failures === 1) this.o.log.warn({ kind: this.kind.kind, err: msg, retryInMs: delay }, `Kubernetes ${what} failed; retrying with backoff`);
    else this.o.log.debug({ kind: this.kind.kind, err: msg, retryInMs: delay, failures: this.failures }, `Kubernetes ${what} failed again`);
    this.schedule(delay, retry);
  }

  private closed(): boolean {
    return this.phase === 'closed';
  }

  private async discover(): Promise<void> {
    this.phase = 'discovering';
    let version: string | undefined;
    try {
      version = await this.findVersion();
    } catch (err) {
      if (!this.closed()) this.failed(err, 'discovery', () => void this.discover());
      return;
    }
    if (this.closed()) return;
    this.failures = 0;
    if (version === undefined) {
      this.setMissing(this.notServed());
      return;
    }
    if (this.missingReported) {
      this.missingReported = false;
      this.o.log.info({ kind: this.kind.kind, version }, 'Kubernetes resource is served now; watching it');
      this.sink.missing(this.kind, undefined);
    }
    this.run(version);
  }

  private async findVersion(): Promise<string | undefined> {
    for (const v of this.kind.versions) {
      try {
        const doc = (await getJson(this.o.kc, discoveryPath(this.kind, v), this.aborter.signal)) as { resources?: Array<{ name?: unknown }> };
        if (doc.resources?.some((r) => r.name === this.kind.plural)) return v;
      } catch (err) {
        if (err instanceof KubeHttpError && err.statusCode === 404) continue;
        throw err;
      }
    }
    return undefined;
  }

  /** The source error while a kind is not served (the same however it came to be missing). */
  private notServed(): string {
    return `${this.kind.group || 'core'} ${this.kind.kind} is not served by the API server (tried ${this.kind.versions.join(', ')}); its objects are left out until it is installed`;
  }

  private setMissing(logMessage: string): void {
    this.phase = 'missing';
    this.version = undefined;
    if (!this.missingReported) {
      // Reported once; looked for again quietly.
      this.missingReported = true;
      this.o.log.warn({ kind: this.kind.kind, retryInMs: this.o.missingRetryMs }, logMessage);
      this.sink.missing(this.kind, this.notServed());
    }
    if (!this.isSynced) {
      this.isSynced = true;
      this.sink.synced(this.kind);
    }
    this.schedule(this.o.missingRetryMs, () => void this.discover());
  }

  private run(version: string): void {
    this.version = version;
    const path = collectionPath(this.kind, version);
    // Assigned once, below: the watch's closure is made before it.
    // eslint-disable-next-line prefer-const
    let lw: ListWatch<KubernetesObject> | undefined;
    const watch = new SourceWatch(this.o.kc, this, () => lw);
    const list = async (): Promise<KubernetesListObject<KubernetesObject>> => {
      const l = await listAll(this.o.kc, path, this.aborter.signal);
      this.failures = 0;
      return l as KubernetesListObject<KubernetesObject>;
    };
    lw = new ListWatch<KubernetesObject>(path, watch, list, false);
    const self = lw;
    this.lw = lw;
    this.phase = 'running';
    const mine = (): boolean => this.owns(self);
    const upsert = (o: KubernetesObject): void => {
      if (mine()) this.sink.upsert(this.kind, version, o as RawObject);
    };
    lw.on('add', upsert);
    lw.on('update', upsert);
    lw.on('delete', (o: KubernetesObject) => {
      if (mine()) this.sink.remove(this.kind, o as RawObject);
    });
    lw.on('error', (err: unknown) => {
      if (mine()) this.onError(self, err);
    });
    void lw.start();
  }

  private onError(lw: ListWatch<KubernetesObject>, err: unknown): void {
    const code = (err as { statusCode?: unknown })?.statusCode;
    if (code === 404) {
      // The resource is gone (e.g. its CRD was deleted), and so are its objects.
      this.lw = undefined;
      void lw.stop();
      this.sink.clear(this.kind);
      this.missingReported = false;
      this.setMissing(
        `${this.kind.group || 'core'} ${this.kind.kind} is no longer served by the API server (its CRD was removed?); its objects are left out until it is installed again`,
      );
      return;
    }
    this.failed(err, 'list/watch', () => {
      if (this.owns(lw)) void lw.start();
    });
  }
}
