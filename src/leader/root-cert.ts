/**
 * istiod's namespace controller as a leader-only task: keeps ConfigMap `istio-ca-root-cert`
 * (key `root-cert.pem`, label `istio.io/config: "true"`) in every namespace, with the mesh's root
 * certificate, so workloads can trust the CA. It watches Namespaces (a new namespace gets the
 * ConfigMap) and those ConfigMaps (an edited or deleted one is put back). Like istiod, it skips
 * kube-public, kube-node-lease and local-path-storage, and namespaces being deleted.
 */
import { CoreV1Api, type KubeConfig, ListWatch, type V1ConfigMap, type V1Namespace, Watch } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { statusOf } from './lease';
import { type LeaderTask, abortableDelay, unlessAborted, whenAborted } from './tasks';

export const CA_ROOT_CONFIGMAP = 'istio-ca-root-cert';
export const CA_ROOT_KEY = 'root-cert.pem';
export const CA_ROOT_LABELS: Readonly<{ [k: string]: string }> = Object.freeze({ 'istio.io/config': 'true' });
/** istiod's inject.IgnoredNamespaces without kube-system. */
export const ROOT_CERT_IGNORED_NAMESPACES: readonly string[] = Object.freeze(['kube-public', 'kube-node-lease', 'local-path-storage']);

export interface RootCertPublisherOptions {
  kubeConfig: KubeConfig;
  /** PEM of the root certificate(s) to publish. */
  rootCertPem: string;
  log: Logger;
  /** First retry delay of a failed namespace (doubles each time). Default 100 ms. */
  retryDelayMs?: number;
  /** Attempts per namespace before giving up until its next event. Default 5, as istiod. */
  maxAttempts?: number;
  /** Delay before restarting a watch that failed. Default 1 s. */
  rewatchDelayMs?: number;
}

/** How long a stopping publisher waits for a ConfigMap write already sent. */
const QUEUE_CLOSE_GRACE_MS = 500;

type ApiCore = Pick<CoreV1Api, 'listNamespace' | 'listConfigMapForAllNamespaces' | 'readNamespacedConfigMap' | 'createNamespacedConfigMap' | 'replaceNamespacedConfigMap'>;

export class RootCertPublisher implements LeaderTask {
  readonly name = 'namespace controller (istio-ca-root-cert)';
  private pem: string;
  private resyncAll: (() => void) | undefined;

  constructor(private readonly opts: RootCertPublisherOptions) {
    if (!opts.rootCertPem.trim()) throw new Error('root certificate PEM is empty');
    this.pem = opts.rootCertPem;
  }

  /** Publishes a new root (e.g. after a CA rotation); a running leader rewrites every namespace. */
  setRootCert(pem: string): void {
    if (!pem.trim()) throw new Error('root certificate PEM is empty');
    if (pem === this.pem) return;
    this.pem = pem;
    this.resyncAll?.();
  }

  async run(signal: AbortSignal): Promise<void> {
    const { kubeConfig, log } = this.opts;
    const core: ApiCore = kubeConfig.makeApiClient(CoreV1Api);
    const watch = new Watch(kubeConfig);
    const fieldSelector = `metadata.name=${CA_ROOT_CONFIGMAP}`;
    const namespaces = new ListWatch<V1Namespace>('/api/v1/namespaces', watch, () => core.listNamespace(), false);
    const configMaps = new ListWatch<V1ConfigMap>('/api/v1/configmaps', watch, () => core.listConfigMapForAllNamespaces({ fieldSelector }), false, undefined, fieldSelector);

    const wanted = (ns: V1Namespace | undefined): boolean => !!ns?.metadata?.name && !ROOT_CERT_IGNORED_NAMESPACES.includes(ns.metadata.name) && ns.status?.phase !== 'Terminating';

    const queue = new KeyQueue(
      async (nsName) => {
        if (signal.aborted) return;
        if (!wanted(namespaces.get(nsName))) return;
        const cached = configMaps.get(CA_ROOT_CONFIGMAP, nsName);
        if (cached?.data?.[CA_ROOT_KEY] === this.pem) return;
        await reconcile(core, nsName, this.pem, log);
      },
      { log, retryDelayMs: this.opts.retryDelayMs ?? 100, maxAttempts: this.opts.maxAttempts ?? 5 },
    );
    const enqueueNamespace = (ns: V1Namespace): void => {
      if (wanted(ns)) queue.add(ns.metadata?.name as string);
    };
    const enqueueFor = (cm: V1ConfigMap): void => {
      const ns = cm.metadata?.namespace;
      if (cm.metadata?.name === CA_ROOT_CONFIGMAP && ns && wanted(namespaces.get(ns))) queue.add(ns);
    };
    namespaces.on('add', enqueueNamespace);
    namespaces.on('update', enqueueNamespace);
    configMaps.on('update', enqueueFor);
    configMaps.on('delete', enqueueFor);

    const rewatchMs = this.opts.rewatchDelayMs ?? 1000;
    const timers = new Set<NodeJS.Timeout>();
    for (const [what, informer] of [
      ['namespaces', namespaces],
      ['configmaps', configMaps],
    ] as const) {
      informer.on('error', (err: unknown) => {
        if (signal.aborted) return;
        log.warn({ err: errText(err), what }, 'root cert publisher: watch failed; restarting');
        const t = setTimeout(() => {
          timers.delete(t);
          if (!signal.aborted) void informer.start();
        }, rewatchMs);
        timers.add(t);
      });
    }

    this.resyncAll = () => {
      for (const ns of namespaces.list()) enqueueNamespace(ns);
    };
    try {
      // The initial lists may hang on a slow API server: stepping down does not wait for them.
      const starting = Promise.all([configMaps.start(), namespaces.start()]);
      if (
        (await unlessAborted(
          starting.then(() => true),
          signal,
        )) !== true
      ) {
        // A list that answers after all would start its watch: stop the informers again then.
        void starting.then(
          () => Promise.all([namespaces.stop(), configMaps.stop()]),
          () => undefined,
        );
        return;
      }
      log.info({ namespaces: namespaces.list().length }, `publishing ${CA_ROOT_CONFIGMAP} to every namespace`);
      await whenAborted(signal);
    } finally {
      this.resyncAll = undefined;
      for (const t of timers) clearTimeout(t);
      await namespaces.stop();
      await configMaps.stop();
      await queue.close(QUEUE_CLOSE_GRACE_MS);
    }
  }
}

/** Creates or updates the ConfigMap in one namespace, as istiod's InsertDataToConfigMap. */
async function reconcile(core: ApiCore, namespace: string, pem: string, log: Logger): Promise<void> {
  let current: V1ConfigMap | undefined;
  try {
    current = await core.readNamespacedConfigMap({ name: CA_ROOT_CONFIGMAP, namespace });
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
  }
  if (!current) {
    try {
      await core.createNamespacedConfigMap({
        namespace,
        body: {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: CA_ROOT_CONFIGMAP, namespace, labels: { ...CA_ROOT_LABELS } },
          data: { [CA_ROOT_KEY]: pem },
        },
      });
      log.debug({ namespace }, `created ${CA_ROOT_CONFIGMAP}`);
    } catch (err) {
      // Anything else, 409 (created meanwhile) included, is retried: the retry reads the
      // ConfigMap and updates it if needed.
      if (namespaceGoingAway(err)) return;
      throw err;
    }
    return;
  }
  if (current.data?.[CA_ROOT_KEY] === pem) return;
  await core.replaceNamespacedConfigMap({
    name: CA_ROOT_CONFIGMAP,
    namespace,
    body: { ...current, data: { ...current.data, [CA_ROOT_KEY]: pem } },
  });
  log.debug({ namespace }, `updated ${CA_ROOT_CONFIGMAP}`);
}

/** 404 (no such namespace), or 403 with cause NamespaceTerminating: nothing to do. */
function namespaceGoingAway(err: unknown): boolean {
  const status = statusOf(err);
  if (status === 404) return true;
  if (status !== 403) return false;
  const body = (err as { body?: unknown }).body;
  const text = typeof body === 'string' ? body : JSON.stringify(body ?? '');
  return text.includes('NamespaceTerminating') || text.includes('being terminated');
}

function errText(err: unknown): string {
  const status = statusOf(err);
  if (status !== undefined) return `HTTP ${status}`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * A deduplicating work queue with one worker: a key added while pending is processed once; a
 * failure is retried with doubling delays up to `maxAttempts`.
 */
class KeyQueue {
  private readonly pending = new Set<string>();
  private readonly attempts = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private worker: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly handle: (key: string) => Promise<void>,
    private readonly opts: { log: Logger; retryDelayMs: number; maxAttempts: number },
  ) {}

  add(key: string): void {
    if (this.closed) return;
    this.pending.add(key);
    this.worker ??= this.drain().finally(() => {
      this.worker = undefined;
      if (this.pending.size > 0 && !this.closed) this.add([...this.pending][0] as string);
    });
  }

  /** Drops what is pending; waits for a write in flight for at most `graceMs`. */
  async close(graceMs: number): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.pending.clear();
    if (!this.worker) return;
    const timeout = new AbortController();
    await Promise.race([this.worker, abortableDelay(graceMs, timeout.signal)]);
    timeout.abort();
  }

  private async drain(): Promise<void> {
    while (!this.closed && this.pending.size > 0) {
      const key = this.pending.values().next().value as string;
      this.pending.delete(key);
      try {
        await this.handle(key);
        this.attempts.delete(key);
      } catch (err) {
        const n = (this.attempts.get(key) ?? 0) + 1;
        if (n >= this.opts.maxAttempts) {
          this.attempts.delete(key);
          this.opts.log.error({ namespace: key, err: errText(err) }, `giving up on ${CA_ROOT_CONFIGMAP} after ${n} attempts`);
          continue;
        }
        this.attempts.set(key, n);
        this.opts.log.debug({ namespace: key, err: errText(err) }, `retrying ${CA_ROOT_CONFIGMAP}`);
        const t = setTimeout(
          () => {
            this.timers.delete(t);
            this.add(key);
          },
          this.opts.retryDelayMs * 2 ** (n - 1),
        );
        this.timers.add(t);
      }
    }
  }
}
