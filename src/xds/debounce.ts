/**
 * Push debounce as istiod does it: wait until changes stop for `quietMs`, but never hold a
 * change longer than `maxMs`. A change may say when it happened (the folder source reports a
 * file's last write, which it then spent time confirming): the quiet period counts from there,
 * so time a source spent settling a change is not waited for again.
 */
export interface DebounceOptions {
  quietMs: number;
  maxMs: number;
}

export class Debouncer<T> {
  private pending: T[] = [];
  private firstAt = 0;
  private quietUntil = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly opts: DebounceOptions,
    private readonly flush: (events: T[], firstAt: number) => void,
  ) {}

  /** `at`: when the change happened (epoch ms, not later than now); now when not given. */
  add(ev: T, at?: number): void {
    const now = Date.now();
    const when = at === undefined || !Number.isFinite(at) ? now : Math.min(at, now);
    if (this.pending.length === 0) {
      this.firstAt = when;
      this.quietUntil = 0;
    } else if (when < this.firstAt) this.firstAt = when;
    this.pending.push(ev);
    this.quietUntil = Math.max(this.quietUntil, when + this.opts.quietMs);
    if (this.timer) clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.quietUntil, this.firstAt + this.opts.maxMs) - now);
    this.timer = setTimeout(() => this.fire(), wait);
  }

  private fire(): void {
    this.timer = undefined;
    const events = this.pending;
    this.pending = [];
    if (events.length > 0) this.flush(events, this.firstAt);
  }

  /** Fires now if anything is pending. */
  flushNow(): void {
    if (this.timer) clearTimeout(this.timer);
    this.fire();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = [];
  }
}
