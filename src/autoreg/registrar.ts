/**
 * WorkloadGroup auto-registration, as istiod's pilot/pkg/autoregistration controller: a proxy
 * that connects with node metadata `AUTO_REGISTER_GROUP=<group>` gets a WorkloadEntry made from
 * the group (in the proxy's namespace) named `<group>-<ip>[-<network>]`, annotated with the
 * group, this instance (`istio.io/workloadController`) and the connect time; owned by the group.
 * A reconnect marks the existing entry connected again. When the last stream of that proxy ends,
 * the entry is marked disconnected (`istio.io/disconnectedAt`) and deleted after the grace period
 * unless the proxy came back; an entry another instance took over is left alone.
 *
 * The check that can refuse a stream (group missing, identity mismatch) is synchronous, on the
 * snapshot; writes go to the store afterwards, one at a time per entry, so the xDS push path
 * never waits on them. Health checks from the group's probe are not done (the agent's health
 * events are not received).
 */
import type { Logger } from 'pino';
import type { Proxy } from '../model/proxy';
import {
  AUTO_REGISTRATION_GROUP_ANNOTATION,
  CONNECTED_AT_ANNOTATION,
  DISCONNECTED_AT_ANNOTATION,
  type RegisteringProxy,
  WORKLOAD_CONTROLLER_ANNOTATION,
  type WorkloadEntryObject,
  type WorkloadGroupConfig,
  autoRegisteredEntryName,
  workloadEntryFromGroup,
} from '../model/workload-group';
import type { ProxyLifecycle } from '../xds/server';
import type { StreamIdentity } from '../xds/authn';

/** Where WorkloadEntries are read and written (the API server, or memory in folder mode). */
export interface WorkloadEntryStore {
  get(namespace: string, name: string): Promise<WorkloadEntryObject | undefined>;
  create(entry: WorkloadEntryObject): Promise<void>;
  /** Replaces the entry; with `metadata.resourceVersion` set, only that version (a conflict throws). */
  update(entry: WorkloadEntryObject): Promise<void>;
  /** Deletes the entry (a missing one is no error). */
  delete(namespace: string, name: string): Promise<void>;
  /** The group's uid for the entry's owner reference ('' where there is none, as in memory). */
  groupUid(namespace: string, name: string): Promise<string>;
}

export interface AutoRegistrarOptions {
  store: WorkloadEntryStore;
  /** This instance's name (the pod name): the `istio.io/workloadController` of entries it registers. */
  instanceId: string;
  /** The WorkloadGroup `namespace/name` of the current snapshot. */
  group: (namespace: string, name: string) => WorkloadGroupConfig | undefined;
  /** istiod's PILOT_WORKLOAD_ENTRY_GRACE_PERIOD (default 10 s). */
  gracePeriodMs?: number;
  /** istiod's VALIDATE_WORKLOAD_ENTRY_IDENTITY (default true): a verified identity must match the entry. */
  validateIdentity?: boolean;
  log: Logger;
  now?: () => Date;
}

export const AUTO_REGISTER_GROUP = 'AUTO_REGISTER_GROUP';

/** RFC 3339 with nanoseconds, as Go's time.RFC3339Nano writes (trailing zeros dropped). */
export function formatTime(d: Date): string {
  return d.toISOString().replace(/\.?0+Z$/, 'Z');
}

function parseTime(s: string | undefined): number | undefined {
  if (!s) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
}

function groupOf(proxy: Proxy): string {
  const g = proxy.metadata[AUTO_REGISTER_GROUP];
  return typeof g === 'string' ? g : '';
}

/** What the registration reads from the proxy (istiod: proxy.Metadata, the xDS node's locality). */
export function registeringProxy(proxy: Proxy): RegisteringProxy {
  const network = proxy.metadata['NETWORK'];
  const pc = proxy.metadata['PROXY_CONFIG'];
  const l = proxy.locality;
  const locality = l?.region ? [l.region, ...(l.zone ? [l.zone, ...(l.subZone ? [l.subZone] : [])] : [])].join('/') : undefined;
  return {
    id: proxy.id,
    namespace: proxy.namespace,
    ips: proxy.ips,
    labels: proxy.labels,
    ...(typeof network === 'string' && network !== '' ? { network } : {}),
    ...(locality ? { locality } : {}),
    readinessProbe: typeof pc === 'object' && pc !== null && (pc as Record<string, unknown>)['readinessProbe'] != null,
  };
}

/** ensureProxyCanControlEntry: the verified identity's namespace and service account must match. */
export function identityError(identity: StreamIdentity, namespace: string, serviceAccount: string | undefined): string | undefined {
  const v = identity.verified;
  if (!v) return 'registration of WorkloadEntry requires a verified identity';
  if (v.namespace !== namespace) return `registration of WorkloadEntry namespace mismatch: ${JSON.stringify(v.namespace)} vs ${JSON.stringify(namespace)}`;
  if (serviceAccount && v.serviceAccount !== serviceAccount) {
    return `registration of WorkloadEntry service account mismatch: ${JSON.stringify(v.serviceAccount)} vs ${JSON.stringify(serviceAccount)}`;
  }
  return undefined;
}

export class AutoRegistrar implements ProxyLifecycle {
  private readonly grace: number;
  /** Open streams per proxy (network~ip~entry~namespace), as istiod's adsConnections. */
  private readonly streams = new Map<string, number>();
  /** The last write queued per entry: writes to one entry run in order. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly o: AutoRegistrarOptions) {
    this.grace = o.gracePeriodMs ?? 10_000;
  }

  private now(): Date {
    return this.o.now?.() ?? new Date();
  }

  connected(proxy: Proxy, identity: StreamIdentity, at: Date): string | undefined {
    const group = groupOf(proxy);
    if (group === '') return undefined;
    const rp = registeringProxy(proxy);
    const name = autoRegisteredEntryName(group, rp);
    if (name === undefined) {
      this.o.log.error({ proxy: proxy.id }, `auto-registration of ${proxy.id} failed: missing IP address or namespace`);
      return undefined;
    }
    const cfg = this.o.group(proxy.namespace, group);
    if (!cfg) return `auto-registration WorkloadEntry of ${proxy.id} failed: cannot find WorkloadGroup ${proxy.namespace}/${group}`;
    if (this.o.validateIdentity !== false) {
      const err = identityError(identity, proxy.namespace, cfg.spec.template?.serviceAccount);
      if (err) return err;
    }
    const key = this.key(rp, name);
    this.streams.set(key, (this.streams.get(key) ?? 0) + 1);
    this.enqueue(`${proxy.namespace}/${name}`, () => this.register(name, rp, cfg, at));
    return undefined;
  }

  disconnected(proxy: Proxy, connectedAt: Date): void {
    const group = groupOf(proxy);
    if (group === '') return;
    const rp = registeringProxy(proxy);
    const name = autoRegisteredEntryName(group, rp);
    if (name === undefined) return;
    const key = this.key(rp, name);
    const n = this.streams.get(key) ?? 0;
    if (n === 0) return;
    if (n > 1) {
      this.streams.set(key, n - 1);
      return;
    }
    this.streams.delete(key);
    const at = this.now();
    this.enqueue(`${proxy.namespace}/${name}`, () => this.unregister(proxy.namespace, name, at, connectedAt));
  }

  /** Stops the grace-period timers; writes in flight finish. */
  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** Resolves when every queued write has run (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.chains.size > 0) await Promise.all([...this.chains.values()]);
  }

  private key(rp: RegisteringProxy, name: string): string {
    return [rp.network ?? '', rp.ips[0] ?? '', name, rp.namespace].join('~');
  }

  private enqueue(entry: string, work: () => Promise<void>): void {
    const prev = this.chains.get(entry) ?? Promise.resolve();
    const next = prev
      .then(work)
      .catch((err: unknown) => this.o.log.warn({ entry, err: (err as Error).message }, 'WorkloadEntry auto-registration write failed'))
      .finally(() => {
        if (this.chains.get(entry) === next) this.chains.delete(entry);
      });
    this.chains.set(entry, next);
  }

  private connectMeta(e: WorkloadEntryObject, at: Date): void {
    e.metadata.annotations[WORKLOAD_CONTROLLER_ANNOTATION] = this.o.instanceId;
    e.metadata.annotations[CONNECTED_AT_ANNOTATION] = formatTime(at);
    delete e.metadata.annotations[DISCONNECTED_AT_ANNOTATION];
  }

  private async register(name: string, rp: RegisteringProxy, group: WorkloadGroupConfig, at: Date): Promise<void> {
    const existing = await this.o.store.get(rp.namespace, name);
    if (existing) {
      // Reconnected: to this instance now, unless a later connect elsewhere already wrote it.
      const last = parseTime(existing.metadata.annotations[CONNECTED_AT_ANNOTATION]);
      if (last !== undefined && at.getTime() < last) return;
      const e = structuredClone(existing);
      this.connectMeta(e, at);
      await this.o.store.update(e);
      this.o.log.info({ namespace: rp.namespace, name }, `updated auto-registered WorkloadEntry ${rp.namespace}/${name}`);
      return;
    }
    const uid = await this.o.store.groupUid(rp.namespace, group.meta.name);
    const e = workloadEntryFromGroup(name, rp, group, uid);
    this.connectMeta(e, at);
    await this.o.store.create(e);
    this.o.log.info({ namespace: rp.namespace, name, proxy: rp.id }, `auto-registered WorkloadEntry ${rp.namespace}/${name}`);
  }

  private async unregister(namespace: string, name: string, at: Date, connectedAt: Date): Promise<void> {
    const existing = await this.o.store.get(namespace, name);
    if (!existing) return;
    const a = existing.metadata.annotations;
    const conn = parseTime(a[CONNECTED_AT_ANNOTATION]);
    // A later connect (here or at another instance) owns the entry now.
    if (conn !== undefined && conn > connectedAt.getTime()) return;
    if (a[WORKLOAD_CONTROLLER_ANNOTATION] !== this.o.instanceId) return;
    if (conn !== undefined && at.getTime() < conn) return;
    const e = structuredClone(existing);
    delete e.metadata.annotations[CONNECTED_AT_ANNOTATION];
    e.metadata.annotations[DISCONNECTED_AT_ANNOTATION] = formatTime(at);
    await this.o.store.update(e);
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.enqueue(`${namespace}/${name}`, () => this.cleanup(namespace, name));
    }, this.grace);
    this.timers.add(t);
  }

  /** shouldCleanupEntry, then deleteEntry: auto-registered, still disconnected, past the grace period. */
  private async cleanup(namespace: string, name: string): Promise<void> {
    const e = await this.o.store.get(namespace, name);
    if (!e) return;
    const a = e.metadata.annotations;
    if (!a[AUTO_REGISTRATION_GROUP_ANNOTATION] || a[CONNECTED_AT_ANNOTATION]) return;
    const disconnected = parseTime(a[DISCONNECTED_AT_ANNOTATION]);
    if (disconnected === undefined || this.now().getTime() - disconnected < this.grace) return;
    await this.o.store.delete(namespace, name);
    this.o.log.info({ namespace, name }, `cleaned up auto-registered WorkloadEntry ${namespace}/${name}`);
  }
}
