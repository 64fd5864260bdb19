/**
 * Flow control for pushes. Connections that may have something to send wait in one queue, each
 * at most once: a newer snapshot does not queue a second push, the one waiting simply computes
 * against the newest config when its turn comes. The queue runs in slices of bounded time and
 * yields to the event loop between them, however few proxies a slice sent to, so requests,
 * ACKs and health checks are never starved. A connection whose stream is not draining (more
 * than `maxQueuedBytes` written and not yet on the network) is skipped until it drains: a proxy
 * that stops reading costs bounded memory and never delays the others.
 */
import type { Connection } from './connection';

export interface PushQueueOptions {
  /** Longest run of work before yielding to the event loop (ms). */
  sliceMs: number;
  /** Bytes a connection may have queued before its pushes wait for a drain. */
  maxQueuedBytes: number;
  /** Does one connection's pending work. Must not throw. */
  process: (conn: Connection) => void;
  /** Called whenever the queue runs empty. */
  onIdle?: () => void;
}

export class PushQueue {
  private readonly waiting = new Set<Connection>();
  private scheduled = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: PushQueueOptions) {}

  /** Queues a connection (once, however often called before its turn). */
  add(conn: Connection): void {
    if (conn.closed) return;
    this.waiting.add(conn);
    if (conn.blocked) return;
    this.schedule();
  }

  /** Called when a connection's stream drained: it may go on. */
  drained(conn: Connection): void {
    if (!conn.blocked || conn.queuedBytes > this.opts.maxQueuedBytes / 2) return;
    conn.blocked = false;
    if (this.waiting.has(conn)) this.schedule();
  }

  has(conn: Connection): boolean {
    return this.waiting.has(conn);
  }

  remove(conn: Connection): void {
    this.waiting.delete(conn);
  }

  get size(): number {
    return this.waiting.size;
  }

  /** Resolves once no connection that can make progress is waiting. */
  idle(): Promise<void> {
    if (!this.runnable()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private runnable(): boolean {
    for (const c of this.waiting) if (!c.blocked) return true;
    return false;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.run());
  }

  private run(): void {
    this.scheduled = false;
    const start = performance.now();
    for (const conn of this.waiting) {
      if (conn.blocked) continue;
      this.waiting.delete(conn);
      this.opts.process(conn);
      if (conn.queuedBytes > this.opts.maxQueuedBytes) conn.blocked = true;
      if (performance.now() - start >= this.opts.sliceMs) {
        this.schedule();
        return;
      }
    }
    if (!this.runnable()) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
      this.opts.onIdle?.();
    }
  }
}
