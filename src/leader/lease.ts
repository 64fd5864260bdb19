/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics (the ones istiod
 * uses through its `k8sleaderelection` copy):
 *
 * - a candidate acquires the Lease by creating it, or by updating it once the holder's lease has
 *   expired, measured by the candidate's own clock from when it last saw the record change (no
 *   trust in other machines' clocks);
 * - a Lease with an empty `holderIdentity` is free at once (that is what a graceful release writes);
 * - every write carries `metadata.resourceVersion`, so two candidates never both win: the loser
 *   gets 409 Conflict and re-reads;
 * - the leader renews every `retryPeriod`, and steps down when it has not renewed for
 *   `renewDeadline` (shorter than `leaseDuration`, so it has stopped before anyone else may start);
 * - on stop, the leader steps down first, then releases the Lease (empty holder, 1 s duration) so
 *   another replica takes over within one retry period instead of one lease duration.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { type CoordinationV1Api, type V1Lease, type V1LeaseSpec, V1MicroTime } from '@kubernetes/client-node';
import type { Logger } from 'pino';

/** Lease names istiod uses (pilot/pkg/leaderelection). meshd runs one election per name. */
export const LEASE_NAMES = {
  /** istiod's namespace controller: publishes `istio-ca-root-cert` into every namespace. */
  namespaceController: 'istio-namespace-controller-election',
  /** istiod's legacy general-purpose election. */
  leader: 'istio-leader',
  statusController: 'istio-status-leader',
  /**
   * meshd's per-revision election for patching its webhook configurations' caBundle, named
   * `meshd-webhook-patcher-<rev>` as istiod names its per-revision elections (`<id>-<rev>`).
   * istiod patches from every replica; meshd from one per revision.
   */
  webhookPatcher: 'meshd-webhook-patcher',
} as const;

export interface LeaseTimings {
  /** How long a follower waits, after it last saw the Lease change, before taking it over. */
  leaseDurationMs: number;
  /** How long the leader keeps leading without a successful renewal. Must be < leaseDurationMs. */
  renewDeadlineMs: number;
  /** Pause between attempts to acquire or renew. Must be < renewDeadlineMs. */
  retryPeriodMs: number;
}

/** client-go's and Kubernetes controllers' defaults. */
export const DEFAULT_LEASE_TIMINGS: Readonly<LeaseTimings> = Object.freeze({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 });

export function checkTimings(t: LeaseTimings): LeaseTimings {
  for (const [k, v] of Object.entries(t)) {
    if (!Number.isFinite(v) || v <= 0) throw new Error(`leader election: ${k} must be > 0 (got ${v})`);
  }
  if (t.renewDeadlineMs >= t.leaseDurationMs) throw new Error('leader election: renewDeadline must be shorter than leaseDuration');
  if (t.retryPeriodMs >= t.renewDeadlineMs) throw new Error('leader election: retryPeriod must be shorter than renewDeadline');
  return t;
}

/** `<pod name or hostname>-<random>`: unique per process, so a restarted pod is a new candidate. */
export function leaderIdentity(podName?: string): string {
  const base = podName && podName.length > 0 ? podName : hostname();
  return `${base}-${randomBytes(4).toString('hex')}`;
}

/** The part of CoordinationV1Api the elector uses. */
export type LeaseApi = Pick<CoordinationV1Api, 'readNamespacedLease' | 'createNamespacedLease' | 'replaceNamespacedLease'>;

export interface LeaderCallbacks {
  /** Called once per term when this replica becomes the leader. */
  onStartedLeading(): void;
  /** Called when a term ends (lost, or stopping); awaited before the Lease is released or retried. */
  onStoppedLeading(): void | Promise<void>;
  /** Called when the observed holder changes ('' when the Lease is free). */
  onNewLeader?(identity: string): void;
}

export interface LeaderElectorOptions {
  api: LeaseApi;
  namespace: string;
  name: string;
  identity: string;
  timings?: LeaseTimings;
  log: Logger;
  callbacks: LeaderCallbacks;
  /** Labels of the Lease when this replica creates it (`istio.io/rev` for a per-revision one). */
  labels?: Readonly<Record<string, string>>;
  /** Clock in milliseconds; tests may pass their own. */
  now?: () => number;
}

/** HTTP status of a client-node error (ApiException has `code`); undefined for transport errors. */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function describeError(err: unknown): string {
  const status = statusOf(err);
  if (status !== undefined) return `HTTP ${status}`;
  return err instanceof Error ? err.message : String(err);
}

/** What a Lease says, reduced to what the election compares. */
interface LeaseRecord {
  holder: string;
  durationSeconds: number;
  renewTime: string;
  acquireTime: string;
  transitions: number;
}

function toRecord(spec: V1LeaseSpec | undefined): LeaseRecord {
  const t = (v: unknown): string => (v instanceof Date ? v.toISOString() : typeof v === 'string' ? v : '');
  return {
    holder: spec?.holderIdentity ?? '',
    durationSeconds: spec?.leaseDurationSeconds ?? 0,
    renewTime: t(spec?.renewTime),
    acquireTime: t(spec?.acquireTime),
    transitions: spec?.leaseTransitions ?? 0,
  };
}

const sameRecord = (a: LeaseRecord, b: LeaseRecord): boolean =>
  a.holder === b.holder && a.durationSeconds === b.durationSeconds && a.renewTime === b.renewTime && a.acquireTime === b.acquireTime && a.transitions === b.transitions;

class Timeout extends Error {}

/** On stop, how long a Lease request already sent may still take before it is given up. */
export const STOP_GRACE_MS = 1000;
/** The longest a graceful release may take (bounded by the renew deadline too). */
export const RELEASE_TIMEOUT_MS = 2000;

export class LeaderElector {
  private readonly api: LeaseApi;
  private readonly timings: LeaseTimings;
  private readonly now: () => number;
  private readonly log: Logger;
  /** The Lease as last read or written (its resourceVersion is what the next write must carry). */
  private lease: V1Lease | undefined;
  private observed: LeaseRecord | undefined;
  private observedAt = 0;
  private leading = false;
  /** Time the last successful acquire or renew was *sent*: leadership is counted from there. */
  private renewedAt = 0;
  private stopped = false;
  /** Aborted by stop(): a request in flight then gets STOP_GRACE_MS at most. */
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly opts: LeaderElectorOptions) {
    this.api = opts.api;
    this.timings = checkTimings(opts.timings ?? DEFAULT_LEASE_TIMINGS);
    this.now = opts.now ?? Date.now;
    this.log = opts.log.child({ lease: `${opts.namespace}/${opts.name}`, identity: opts.identity });
  }

  get identity(): string {
    return this.opts.identity;
  }

  /** True while this replica holds the Lease and has renewed it within the renew deadline. */
  isLeader(): boolean {
    return this.leading && this.now() - this.renewedAt < this.timings.renewDeadlineMs;
  }

  /** The holder this replica last observed ('' when free or unknown). */
  leader(): string {
    return this.observed?.holder ?? '';
  }

  start(): void {
    if (this.loop) return;
    this.loop = this.run().catch((err: unknown) => this.log.error({ err }, 'leader election loop failed'));
  }

  /**
   * Stops campaigning. A leader steps down (awaiting onStoppedLeading), then releases the Lease
   * unless `release: false` (as a crashed replica would not).
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    const release = opts.release ?? true;
    if (this.stopped) return this.loop;
    this.stopped = true;
    this.stopping.abort();
    this.wake?.();
    await this.loop;
    if (release) await this.release();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      // Follow: try to acquire every retry period (with client-go's jitter), until we win.
      while (!this.stopped && !(await this.attempt(this.timings.renewDeadlineMs))) {
        await this.sleep(this.timings.retryPeriodMs * (1 + Math.random() * 1.2));
      }
      if (this.stopped) return;
      this.leading = true;
      this.log.info('leader election lock obtained');
      try {
        this.opts.callbacks.onStartedLeading();
      } catch (err) {
        this.log.error({ err }, 'onStartedLeading failed');
      }
      // Lead: renew every retry period; give up when the renew deadline passes without success.
      while (!this.stopped && (await this.renew()));
      this.leading = false;
      this.log.info(this.stopped ? 'leader election: stepping down' : 'leader election lock lost');
      try {
        await this.opts.callbacks.onStoppedLeading();
      } catch (err) {
        this.log.error({ err }, 'onStoppedLeading failed');
      }
    }
  }

  /** One renewal round: retries until success, a foreign holder, or the renew deadline. */
  private async renew(): Promise<boolean> {
    await this.sleep(this.timings.retryPeriodMs);
    const deadline = this.renewedAt + this.timings.renewDeadlineMs;
    while (!this.stopped) {
      const left = deadline - this.now();
      if (left <= 0) return false;
      if (await this.attempt(left)) return true;
      // Someone else holds it (e.g. the Lease was edited by hand): stop at once.
      if (this.observed && this.observed.holder !== this.opts.identity) return false;
      await this.sleep(Math.min(this.timings.retryPeriodMs, deadline - this.now()));
    }
    return false;
  }

  /**
   * tryAcquireOrRenew, bounded by `timeoutMs` (and by STOP_GRACE_MS once stop() is called). A 409
   * is retried once straight away.
   */
  private async attempt(timeoutMs: number): Promise<boolean> {
    const sentAt = this.now();
    let timer: NodeJS.Timeout | undefined;
    let giveUp: (err: Error) => void = () => undefined;
    const timeout = new Promise<never>((_, reject) => {
      giveUp = reject;
    });
    const deadline = performance.now() + Math.max(timeoutMs, 1);
    const expireIn = (ms: number, why: string): void => {
      clearTimeout(timer);
      timer = setTimeout(() => giveUp(new Timeout(why)), Math.max(ms, 1));
    };
    expireIn(timeoutMs, `no answer within ${Math.round(timeoutMs)} ms`);
    const onStop = (): void => expireIn(Math.min(deadline - performance.now(), STOP_GRACE_MS), 'stopping: no answer in time');
    if (this.stopping.signal.aborted) onStop();
    else this.stopping.signal.addEventListener('abort', onStop, { once: true });
    try {
      for (let tries = 0; ; tries++) {
        try {
          const ok = await Promise.race([this.tryAcquireOrRenew(sentAt, tries === 0 && this.leading), timeout]);
          if (ok) this.renewedAt = sentAt;
          return ok;
        } catch (err) {
          if (statusOf(err) === 409 && tries === 0 && !this.stopped) {
            this.log.debug('lease changed under us (409); re-reading');
            continue;
          }
          const msg = describeError(err);
          if (this.leading) this.log.warn({ err: msg }, 'failed to renew lease');
          else this.log.debug({ err: msg }, 'failed to acquire lease');
          return false;
        }
      }
    } finally {
      clearTimeout(timer);
      this.stopping.signal.removeEventListener('abort', onStop);
    }
  }

  /**
   * One read-modify-write of the Lease. With `fast` (a leader renewing), the read is skipped and
   * the Lease as last written is sent back: if anyone changed it since, that is a 409 and the
   * caller retries with a fresh read.
   */
  private async tryAcquireOrRenew(sentAt: number, fast: boolean): Promise<boolean> {
    const { namespace, name, identity } = this.opts;
    const durationSeconds = Math.max(1, Math.ceil(this.timings.leaseDurationMs / 1000));
    const stamp = new V1MicroTime(sentAt);
    if (fast && this.lease && this.observed?.holder === identity) {
      const renewed = await this.api.replaceNamespacedLease({
        name,
        namespace,
        body: { ...this.lease, spec: { ...this.lease.spec, holderIdentity: identity, leaseDurationSeconds: durationSeconds, renewTime: stamp } },
      });
      this.observe(renewed);
      return true;
    }
    let current: V1Lease;
    try {
      current = await this.api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      if (this.stopped) return false;
      const created = await this.api.createNamespacedLease({
        namespace,
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace, ...(this.opts.labels ? { labels: { ...this.opts.labels } } : {}) },
          spec: { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: stamp, renewTime: stamp, leaseTransitions: 0 },
        },
      });
      this.observe(created);
      return true;
    }
    this.observe(current);
    const rec = this.observed as LeaseRecord;
    const mine = rec.holder === identity;
    const expiresAt = this.observedAt + (rec.durationSeconds > 0 ? rec.durationSeconds * 1000 : this.timings.leaseDurationMs);
    if (rec.holder !== '' && !mine && this.now() < expiresAt) return false;
    if (this.stopped) return false;
    const updated = await this.api.replaceNamespacedLease({
      name,
      namespace,
      body: {
        ...current,
        spec: {
          ...current.spec,
          holderIdentity: identity,
          leaseDurationSeconds: durationSeconds,
          renewTime: stamp,
          acquireTime: mine && current.spec?.acquireTime ? current.spec.acquireTime : stamp,
          leaseTransitions: mine ? rec.transitions : rec.transitions + 1,
        },
      },
    });
    this.observe(updated);
    if (!mine) this.log.debug({ previous: rec.holder }, 'lease taken over');
    return true;
  }

  private observe(lease: V1Lease): void {
    this.lease = lease;
    const rec = toRecord(lease.spec);
    if (!this.observed || !sameRecord(rec, this.observed)) {
      const changedHolder = this.observed?.holder !== rec.holder;
      this.observed = rec;
      this.observedAt = this.now();
      if (changedHolder) this.opts.callbacks.onNewLeader?.(rec.holder);
    }
  }

  /** Empties the holder if it is still us, so a follower can take over at once. */
  private async release(): Promise<void> {
    const { namespace, name, identity } = this.opts;
    if (!this.lease || this.observed?.holder !== identity) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Timeout('release timed out')), Math.min(this.timings.renewDeadlineMs, RELEASE_TIMEOUT_MS));
    });
    const write = async (base: V1Lease): Promise<void> => {
      const stamp = new V1MicroTime(this.now());
      const released = await this.api.replaceNamespacedLease({
        name,
        namespace,
        body: {
          ...base,
          spec: { ...base.spec, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: stamp, renewTime: stamp, leaseTransitions: toRecord(base.spec).transitions },
        },
      });
      this.observe(released);
    };
    try {
      await Promise.race([
        write(this.lease).catch(async (err: unknown) => {
          if (statusOf(err) !== 409) throw err;
          const fresh = await this.api.readNamespacedLease({ name, namespace });
          this.observe(fresh);
          if (this.observed?.holder === identity) await write(fresh);
        }),
        timeout,
      ]);
      this.log.info('leader election lock released');
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'failed to release lease; it expires on its own');
    } finally {
      clearTimeout(timer);
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }
}
