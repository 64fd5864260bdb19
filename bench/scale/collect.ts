/**
 * The parent's side of the client workers: forks them, hands out proxies, gathers their
 * per-response records by phase and waits for the conditions the scenarios measure.
 */
import { type ChildProcess, fork } from 'node:child_process';
import * as path from 'node:path';
import { EV_FIELDS, type FromWorker, type ProxySpec, type ToWorker, wallNow } from './ipc';
import { TYPE_NAMES } from './proto';
import { waitFor } from './procs';

export interface PhaseStats {
  name: string;
  startAt: number;
  responses: number;
  bytes: number;
  resources: number;
  proxies: Set<number>;
  /** Responses per type index (CDS, EDS, LDS, RDS, other). */
  types: number[];
  firstAck?: number;
  lastAck?: number;
  /** Proxies that ACKed all four types for the first time in this phase. */
  full: number;
  lastFullAt?: number;
}

export interface StreamError {
  proxy: number;
  code: number;
  details: string;
  phase: number;
}

export class Workers {
  private readonly procs: ChildProcess[] = [];
  private readonly waiting = new Map<string, { n: number; replies: FromWorker[]; done: () => void }>();
  readonly phases: PhaseStats[] = [];
  readonly errors: StreamError[] = [];
  /** Wall-clock time of the latest response of any phase. */
  lastEventAt = 0;
  recordedBytes = 0;
  uniqueBytes = 0;

  constructor(
    readonly proxies: ProxySpec[],
    count: number,
    delta: boolean,
  ) {
    const n = Math.max(1, Math.min(count, proxies.length));
    for (let w = 0; w < n; w++) {
      const proc = fork(path.join(__dirname, 'worker.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      proc.on('message', (m: FromWorker) => this.onMessage(m));
      this.procs.push(proc);
      const mine = proxies.filter((p) => p.idx % n === w);
      this.post(proc, { t: 'init', proxies: mine, delta });
    }
  }

  get pids(): number[] {
    return this.procs.map((p) => p.pid ?? -1);
  }

  private post(proc: ChildProcess, msg: ToWorker): void {
    if (proc.connected) proc.send(msg);
  }

  private onMessage(m: FromWorker): void {
    if (m.t === 'ev') this.onEvents(m.ev);
    else if (m.t === 'err') this.errors.push({ proxy: m.proxy, code: m.code, details: m.details, phase: m.phase });
    const w = this.waiting.get(m.t);
    if (!w) return;
    w.replies.push(m);
    if (w.replies.length >= w.n) {
      this.waiting.delete(m.t);
      w.done();
    }
  }

  private onEvents(ev: number[]): void {
    for (let i = 0; i + EV_FIELDS <= ev.length; i += EV_FIELDS) {
      const [proxy, t, type, nRes, bytes, full, phase] = ev.slice(i, i + EV_FIELDS) as [number, number, number, number, number, number, number];
      const p = this.phases[phase];
      if (!p) continue;
      p.responses++;
      p.bytes += bytes;
      p.resources += nRes;
      p.proxies.add(proxy);
      p.types[type] = (p.types[type] ?? 0) + 1;
      p.firstAck = Math.min(p.firstAck ?? t, t);
      p.lastAck = Math.max(p.lastAck ?? t, t);
      if (full) {
        p.full++;
        p.lastFullAt = Math.max(p.lastFullAt ?? t, t);
      }
      this.lastEventAt = Math.max(this.lastEventAt, t);
    }
  }

  /** Sends to every worker and waits for each one's `reply` (undefined on timeout). */
  private async all(msg: ToWorker, reply: FromWorker['t'] | undefined, timeoutMs: number): Promise<FromWorker[] | undefined> {
    const live = this.procs.filter((p) => p.connected);
    if (!reply) {
      for (const p of live) this.post(p, msg);
      return [];
    }
    const replies: FromWorker[] = [];
    const done = new Promise<void>((resolve) => this.waiting.set(reply, { n: live.length, replies, done: resolve }));
    for (const p of live) this.post(p, msg);
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
    const r = await Promise.race([done, timer]);
    this.waiting.delete(reply);
    return r === 'timeout' ? undefined : replies;
  }

  ready(timeoutMs: number): Promise<FromWorker[] | undefined> {
    const replies: FromWorker[] = [];
    const done = new Promise<FromWorker[]>((resolve) => this.waiting.set('ready', { n: this.procs.length, replies, done: () => resolve(replies) }));
    return Promise.race([done, new Promise<undefined>((r) => setTimeout(() => r(undefined), timeoutMs).unref())]);
  }

  private newPhase(name: string): number {
    this.phases.push({ name, startAt: wallNow(), responses: 0, bytes: 0, resources: 0, proxies: new Set(), types: [0, 0, 0, 0, 0], full: 0 });
    return this.phases.length - 1;
  }

  /** Opens every proxy's stream; returns the phase the cold start is counted in. */
  connect(addr: string, record: boolean, name: string): number {
    const phase = this.newPhase(name);
    void this.all({ t: 'connect', addr, phase, record }, undefined, 0);
    return phase;
  }

  /** Starts a phase in every worker; its start time is set once all workers switched. */
  async phase(name: string, timeoutMs: number): Promise<number> {
    const phase = this.newPhase(name);
    const replies = await this.all({ t: 'phase', phase }, 'phaseAck', timeoutMs);
    if (!replies) throw new Error(`workers did not switch to phase ${name} within ${timeoutMs} ms`);
    [this.recordedBytes, this.uniqueBytes] = [0, 0];
    for (const r of replies) {
      if (r.t !== 'phaseAck') continue;
      this.recordedBytes += r.recordedBytes;
      this.uniqueBytes += r.uniqueBytes;
    }
    (this.phases[phase] as PhaseStats).startAt = wallNow();
    return phase;
  }

  /** Waits until `n` proxies became full in `phase`; the wall time of the last one, or undefined. */
  async untilFull(phase: number, n: number, timeoutMs: number): Promise<number | undefined> {
    const p = this.phases[phase] as PhaseStats;
    return waitFor(() => (p.full >= n ? p.lastFullAt : this.fatal(phase) ? -1 : undefined), timeoutMs, 25).then((v) => (v === -1 ? undefined : v));
  }

  /** Every proxy's stream failed: nothing more will arrive. */
  fatal(phase: number): StreamError | undefined {
    const failed = new Set(this.errors.filter((e) => e.phase <= phase).map((e) => e.proxy));
    return failed.size >= this.proxies.length ? this.errors[this.errors.length - 1] : undefined;
  }

  /**
   * Waits for quiescence: no response for `quietMs`, after at least `minMs` since the phase
   * started, or after the first response if `expectSome`. Then checks for `confirmMs` more that
   * nothing else arrives; if something does (a gap longer than `quietMs` inside the change),
   * the wait goes on and the gap is counted. ok: false on timeout.
   */
  async quiet(phase: number, opts: { quietMs: number; minMs: number; expectSome: boolean; timeoutMs: number; confirmMs: number }): Promise<{ ok: boolean; gaps: number }> {
    const p = this.phases[phase] as PhaseStats;
    const end = Date.now() + opts.timeoutMs;
    let gaps = 0;
    for (;;) {
      const r = await waitFor(
        () => {
          const now = wallNow();
          if (opts.expectSome && p.responses === 0) return this.fatal(phase) ? false : undefined;
          if (now - p.startAt < opts.minMs) return undefined;
          return now - Math.max(this.lastEventAt, p.startAt) >= opts.quietMs ? true : undefined;
        },
        Math.max(0, end - Date.now()),
        25,
      );
      if (r !== true) return { ok: false, gaps };
      const seen = p.responses;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(opts.confirmMs, end - Date.now()))));
      if (p.responses === seen) return { ok: true, gaps };
      gaps++;
    }
  }

  async close(timeoutMs: number): Promise<void> {
    await this.all({ t: 'close' }, 'closed', timeoutMs);
  }

  /** Workers write their recordings: one file each in `dir`. */
  async dump(dir: string, timeoutMs: number): Promise<string[]> {
    const files: string[] = [];
    await Promise.all(
      this.procs.map((p, w) => {
        const file = path.join(dir, `worker-${w}.rec`);
        files.push(file);
        const wait = new Promise<void>((resolve) => {
          const on = (m: FromWorker): void => {
            if (m.t === 'dumped') {
              p.off('message', on);
              resolve();
            }
          };
          p.on('message', on);
        });
        this.post(p, { t: 'dump', file });
        return Promise.race([wait, new Promise<void>((r) => setTimeout(r, timeoutMs).unref())]);
      }),
    );
    return files;
  }

  exit(): void {
    for (const p of this.procs) {
      this.post(p, { t: 'exit' });
      setTimeout(() => p.kill('SIGKILL'), 3000).unref();
    }
  }
}

/** "EDS×12, RDS×3" */
export function typeSummary(types: readonly number[]): string {
  const parts = types.map((n, i) => (n ? `${TYPE_NAMES[i]}×${n}` : '')).filter(Boolean);
  return parts.length ? parts.join(', ') : 'none';
}
