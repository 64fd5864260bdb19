/**
 * Push debounce as istiod does it: wait until changes stop for `quietMs`, but never hold a
 * change longer than `maxMs`.
 */
export interface DebounceOptions {
  quietMs: number;
  maxMs: number;
}

export class Debouncer<T> {
  private pending: T[] = [];
  private firstAt = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly opts: DebounceOptions,
    private readonly flush: (events: T[], firstAt: number) => void,
  ) {}

  add(ev: T): void {
    const now = Date.now();
    if (this.pending.length === 0) this.firstAt = now;
    this.pending.push(ev);
    if (this.timer) clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.opts.quietMs, this.firstAt + this.opts.maxMs - now));
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
