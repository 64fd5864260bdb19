/**
 * Where meshd's log lines go: standard output, which may be a pipe whose reader stalls or goes
 * away. pino's default destination retries a failed write forever when the process exits
 * (EPIPE or EAGAIN every 100 ms), so a shutdown could never finish. This sink writes through the
 * stream Node gives (a pipe is non-blocking there, and pending bytes are dropped at exit), keeps
 * at most `maxBufferedBytes` waiting (later lines are dropped and counted, so a stalled reader
 * costs bounded memory and never blocks serving), stops writing for good once the output fails,
 * and lets a shutdown wait for the last lines for a bounded time only.
 */
import type { Writable } from 'node:stream';

export const DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

/** The one 'error' listener sinks put on their stream (recognised, so it is added once). */
function ignoreOutputError(): void {}

export class BoundedSink {
  private dropped = 0;

  constructor(
    private readonly out: Writable,
    private readonly maxBufferedBytes = DEFAULT_MAX_BUFFERED_BYTES,
  ) {
    // EPIPE (the reader is gone) must not crash meshd: an unheard 'error' would throw (other
    // listeners, such as a pipe() into the stream, may remove themselves first). One listener is
    // enough however many sinks share the stream; `errored` tells them the stream failed.
    if (!out.listeners('error').includes(ignoreOutputError)) out.on('error', ignoreOutputError);
  }

  /** The output failed (EPIPE: its reader is gone) or was closed: nothing more is written. */
  private get broken(): boolean {
    return this.out.errored !== null || this.out.destroyed;
  }

  /** pino's destination interface: one serialised line. */
  write(line: string): void {
    if (this.broken) return;
    if (this.out.writableLength > this.maxBufferedBytes) {
      this.dropped++;
      return;
    }
    if (this.dropped > 0) {
      const n = this.dropped;
      this.dropped = 0;
      this.out.write(`${JSON.stringify({ level: 40, time: Date.now(), msg: `log output fell behind: ${n} line(s) dropped` })}\n`);
    }
    this.out.write(line);
  }

  /** Lines dropped so far because the output fell behind. */
  droppedLines(): number {
    return this.dropped;
  }

  /** Resolves once everything written has left, the output failed, or `timeoutMs` passed. */
  drain(timeoutMs: number): Promise<void> {
    if (this.broken || this.out.writableLength === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.out.off('drain', done);
        this.out.off('error', done);
        this.out.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.out.on('drain', done);
      this.out.on('error', done);
      this.out.on('close', done);
    });
  }
}
