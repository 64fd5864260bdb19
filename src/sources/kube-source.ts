/**
 * Kubernetes API source: one informer per kind (Namespaces, Services, EndpointSlices, Pods,
 * Secrets and Istio's networking kinds), each object turned into the ConfigObject the folder
 * source would produce and validated by the same code, so an invalid object is reported
 * exactly as it would be from a file and left out.
 *
 * `load()` resolves once every kind's initial list is done (a kind that is not served counts
 * as done, with a source error naming it). After that, `change` is emitted for every
 * add/update/delete that changes what meshd sees; writes meshd cannot see (status,
 * resourceVersion, managedFields, most annotations) emit nothing.
 */
import { EventEmitter } from 'node:events';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { InputLimits } from '../config/limits';
import type { ConfigError, ConfigObject, Kind } from '../model/objects';
import { type KindPhase, type KindSink, KindWatcher, type RawObject } from './kube-informer';
import { KUBE_KINDS, type KubeKind, type KubeResource, type ObjectResult, originOf, toConfigObject } from './kube-kinds';
import type { MeshConfigText } from '../model/build-mesh';
import type { ConfigSource, ConfigState } from './source';
import type { RecordEvent } from './events';
import { UnknownKindScanner } from './kube-unknown';

export interface KubeSourceOptions {
  kubeConfig: KubeConfig;
  log: Logger;
  /** Called per object added, changed or removed (istiod's pilot_k8s_reg_events / pilot_k8s_cfg_events). */
  events?: RecordEvent;
  /** Kinds to watch; default all of KUBE_KINDS. */
  kinds?: readonly KubeKind[];
  /** Reconnect backoff after a failed list or watch: first delay and cap (default 100 ms, 5 s). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** How often a kind that is not served is looked for again (default 30 s). */
  missingRetryMs?: number;
  /** Server-side watch timeout (default random 300..600 s, as client-go). */
  watchTimeoutSeconds?: number;
  /** Input limits objects are checked against (nesting depth, keys, errors per object). */
  limits?: InputLimits;
  /** The ConfigMap holding the MeshConfig (key `mesh`), as istiod: `istio` (or `istio-<revision>`) in its namespace. */
  meshConfigMap?: { namespace: string; name: string };
  /** Look for Istio kinds served that meshd does not know, and report them (default true). */
  reportUnknownKinds?: boolean;
  /** How often discovery looks again for unknown Istio kinds (default 60 s). */
  unknownKindRetryMs?: number;
}

/** ConfigMaps, watched in one namespace for the MeshConfig's. */
function configMaps(namespace: string): KubeResource {
  return { kind: 'ConfigMap', group: '', versions: ['v1'], plural: 'configmaps', namespaced: true, keepAnnotations: false, namespace };
}

export interface KindStatus {
  kind: Kind;
  /** The served version in use. */
  version?: string;
  phase: KindPhase;
  synced: boolean;
  /** The resourceVersion the informer would resume from. */
  resourceVersion: string;
  objects: number;
}

function metaOf(raw: RawObject): { name: string; namespace?: string } {
  const m = (raw['metadata'] ?? {}) as { name?: unknown; namespace?: unknown };
  return { name: String(m.name ?? ''), namespace: typeof m.namespace === 'string' && m.namespace !== '' ? m.namespace : undefined };
}

export class KubeSource extends EventEmitter implements ConfigSource {
  private readonly kinds: readonly KubeKind[];
  private readonly entries = new Map<Kind, Map<string, ObjectResult>>();
  private readonly missingKinds = new Map<Kind, ConfigError>();
  private readonly watchers: KindWatcher[];
  /** The MeshConfig ConfigMap's watcher, and the ConfigMap's `data.mesh` as last seen. */
  private readonly meshWatcher?: KindWatcher<KubeResource>;
  private mesh?: MeshConfigText;
  /** Served Istio kinds meshd does not model; their first discovery pass is part of the initial list. */
  private readonly unknownKinds?: UnknownKindScanner;
  private unknownScanned = false;
  private started = false;
  private allSynced = false;
  private readonly syncWaiters: Array<() => void> = [];

  constructor(private readonly opts: KubeSourceOptions) {
    super();
    this.kinds = opts.kinds ?? KUBE_KINDS;
    for (const k of this.kinds) this.entries.set(k.kind, new Map());
    const sink: KindSink = {
      upsert: (k, version, raw) => this.upsert(k, version, raw),
      remove: (k, raw) => this.remove(k, raw),
      clear: (k) => this.clear(k),
      synced: () => this.checkSynced(),
      missing: (k, message) => this.setMissing(k, message),
    };
    const watchOpts = {
      kc: opts.kubeConfig,
      log: opts.log,
      backoffInitialMs: opts.backoffInitialMs ?? 100,
      backoffMaxMs: opts.backoffMaxMs ?? 5000,
      missingRetryMs: opts.missingRetryMs ?? 30_000,
      watchTimeoutSeconds: () => opts.watchTimeoutSeconds ?? 300 + Math.floor(Math.random() * 300),
    };
    this.watchers = this.kinds.map((k) => new KindWatcher(k, watchOpts, sink));
    if (opts.reportUnknownKinds !== false) {
      this.unknownKinds = new UnknownKindScanner({
        kc: opts.kubeConfig,
        log: opts.log,
        retryMs: opts.unknownKindRetryMs ?? 60_000,
        onChange: () => this.changed('kubernetes:unknown-kinds'),
      });
    }
    const cm = opts.meshConfigMap;
    if (cm) {
      const mine = (raw: RawObject): boolean => metaOf(raw).name === cm.name;
      const origin = originOf('ConfigMap', cm.namespace, cm.name);
      const setMesh = (next: MeshConfigText | undefined): void => {
        if (next?.text === this.mesh?.text) return;
        this.mesh = next;
        this.changed(origin);
      };
      this.meshWatcher = new KindWatcher<KubeResource>(configMaps(cm.namespace), watchOpts, {
        upsert: (_k, _v, raw) => {
          if (!mine(raw)) return;
          const data = raw['data'] as Record<string, unknown> | undefined;
          const text = data?.['mesh'];
          // A ConfigMap without a `mesh` key holds no MeshConfig: istiod's defaults apply.
          setMesh(typeof text === 'string' ? { source: origin, text } : undefined);
        },
        remove: (_k, raw) => {
          if (mine(raw)) setMesh(undefined);
        },
        clear: () => setMesh(undefined),
        synced: () => this.checkSynced(),
        missing: () => undefined,
      });
    }
  }

  /** Starts every informer; resolves when every kind's initial list is done. */
  load(): Promise<void> {
    if (!this.started) {
      this.started = true;
      const server = this.opts.kubeConfig.getCurrentCluster()?.server;
      this.opts.log.info({ server, kinds: this.kinds.map((k) => k.kind) }, 'watching the Kubernetes API');
      for (const w of this.watchers) w.start();
      this.meshWatcher?.start();
      if (this.unknownKinds) {
        void this.unknownKinds.start().then(() => {
          this.unknownScanned = true;
          this.checkSynced();
        });
      }
    }
    if (this.allSynced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /** Changes are followed from load() on; nothing more to start. */
  async start(): Promise<void> {
    await this.load();
  }

  /** Every kind's initial list is done. */
  synced(): boolean {
    return this.allSynced;
  }

  state(): ConfigState {
    const objects: ConfigObject[] = [];
    const errors: ConfigError[] = [];
    for (const k of this.kinds) {
      const missing = this.missingKinds.get(k.kind);
      if (missing) errors.push(missing);
      const byKey = this.entries.get(k.kind) as Map<string, ObjectResult>;
      for (const key of [...byKey.keys()].sort()) {
        const r = byKey.get(key) as ObjectResult;
        if (r.object) objects.push(r.object);
        errors.push(...r.errors);
      }
    }
    if (this.unknownKinds) errors.push(...this.unknownKinds.errors());
    return { objects, errors, ...(this.mesh ? { mesh: this.mesh } : {}) };
  }

  /** Per kind: served version, phase, resourceVersion, object count (for tests and debugging). */
  status(): KindStatus[] {
    return this.watchers.map((w) => ({
      kind: w.kind.kind,
      version: w.version,
      phase: w.phase,
      synced: w.isSynced,
      resourceVersion: w.resourceVersion(),
      objects: this.entries.get(w.kind.kind)?.size ?? 0,
    }));
  }

  async close(): Promise<void> {
    this.unknownKinds?.close();
    await Promise.all([...this.watchers, ...(this.meshWatcher ? [this.meshWatcher] : [])].map((w) => w.close()));
    for (const resolve of this.syncWaiters.splice(0)) resolve();
  }

  private key(k: KubeKind, raw: RawObject): string {
    const m = metaOf(raw);
    return k.namespaced ? `${m.namespace ?? ''}/${m.name}` : m.name;
  }

  private changed(what: string): void {
    // Before the initial lists are done, everything seen so far is part of the first state.
    if (this.allSynced) this.emit('change', what);
  }

  private upsert(k: KubeKind, version: string, raw: RawObject): void {
    // An object the kind does not keep is as if absent (and leaves if it no longer qualifies).
    if (k.keep && !k.keep(raw as Readonly<Record<string, unknown>>)) {
      this.remove(k, raw);
      return;
    }
    const byKey = this.entries.get(k.kind) as Map<string, ObjectResult>;
    const key = this.key(k, raw);
    const next = toConfigObject(k, version, raw, this.opts.limits);
    const prev = byKey.get(key);
    if (prev?.fingerprint === next.fingerprint) return;
    byKey.set(key, next);
    this.opts.events?.(k.kind, prev ? 'update' : 'add');
    const m = metaOf(raw);
    this.changed(originOf(k.kind, m.namespace, m.name));
  }

  private remove(k: KubeKind, raw: RawObject): void {
    if (!(this.entries.get(k.kind) as Map<string, ObjectResult>).delete(this.key(k, raw))) return;
    this.opts.events?.(k.kind, 'delete');
    const m = metaOf(raw);
    this.changed(originOf(k.kind, m.namespace, m.name));
  }

  private clear(k: KubeKind): void {
    const byKey = this.entries.get(k.kind) as Map<string, ObjectResult>;
    if (byKey.size === 0) return;
    for (let i = 0; i < byKey.size; i++) this.opts.events?.(k.kind, 'delete');
    byKey.clear();
    this.changed(`kubernetes:${k.kind}`);
  }

  private setMissing(k: KubeKind, message: string | undefined): void {
    if (message === undefined) {
      if (this.missingKinds.delete(k.kind)) this.changed(`kubernetes:${k.kind}`);
      return;
    }
    this.missingKinds.set(k.kind, { source: `kubernetes:${k.kind}`, kind: k.kind, errors: [{ path: '', message }] });
    this.changed(`kubernetes:${k.kind}`);
  }

  private checkSynced(): void {
    if (this.allSynced || !this.watchers.every((w) => w.isSynced) || (this.meshWatcher && !this.meshWatcher.isSynced) || (this.unknownKinds && !this.unknownScanned)) return;
    this.allSynced = true;
    const counts = Object.fromEntries(this.kinds.map((k) => [k.kind, this.entries.get(k.kind)?.size ?? 0]));
    const unknown = this.unknownKinds?.unknown().map((u) => `${u.group}/${u.kind}`) ?? [];
    this.opts.log.info({ counts, notServed: [...this.missingKinds.keys()], ...(unknown.length > 0 ? { unknown } : {}) }, 'Kubernetes initial list done');
    for (const resolve of this.syncWaiters.splice(0)) resolve();
  }
}
