/**
 * Leader-only work, as istiod's `AddRunFunction`: each task runs while this replica leads and is
 * told to stop (its AbortSignal fires) when leadership ends. Every replica keeps serving xDS; only
 * the work that must happen once in the cluster goes here.
 */
import type { Logger } from 'pino';

export interface LeaderTask {
  readonly name: string;
  /** Runs until `signal` aborts (then resolves). A rejection is logged and the task restarted while still leading. */
  run(signal: AbortSignal): Promise<void>;
}

interface Running {
  controller: AbortController;
  done: Promise<void>;
}

/** How long stop() waits for aborted tasks before it steps down without them. */
export const DEFAULT_TASK_STOP_TIMEOUT_MS = 1000;

export class LeaderTasks {
  private running: Running[] = [];
  private readonly restartDelayMs: number;
  private readonly stopTimeoutMs: number;

  constructor(
    private readonly tasks: readonly LeaderTask[],
    private readonly log: Logger,
    opts: { restartDelayMs?: number; stopTimeoutMs?: number } = {},
  ) {
    this.restartDelayMs = opts.restartDelayMs ?? 1000;
    this.stopTimeoutMs = opts.stopTimeoutMs ?? DEFAULT_TASK_STOP_TIMEOUT_MS;
  }

  get size(): number {
    return this.tasks.length;
  }

  /** True between start() and stop(). */
  active(): boolean {
    return this.running.length > 0;
  }

  start(): void {
    if (this.running.length > 0) return;
    this.running = this.tasks.map((task) => {
      const controller = new AbortController();
      return { controller, done: this.keepRunning(task, controller.signal) };
    });
  }

  /**
   * Aborts every task and waits for them to return, for at most `stopTimeoutMs`: a task that does
   * not honour its signal is logged and left behind rather than holding up the handover.
   */
  async stop(): Promise<void> {
    const running = this.running;
    this.running = [];
    for (const r of running) r.controller.abort();
    const late = new Set(running.map((_, i) => i));
    const all = Promise.all(running.map((r, i) => r.done.then(() => void late.delete(i))));
    const timeout = new AbortController();
    await Promise.race([all, abortableDelay(this.stopTimeoutMs, timeout.signal)]);
    timeout.abort();
    for (const i of late) this.log.warn({ task: this.tasks[i]?.name, timeoutMs: this.stopTimeoutMs }, 'leader task did not stop in time; stepping down without waiting for it');
  }

  private async keepRunning(task: LeaderTask, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      this.log.info({ task: task.name }, 'leader task starting');
      try {
        await task.run(signal);
      } catch (err) {
        if (signal.aborted) break;
        this.log.error({ err, task: task.name }, 'leader task failed; restarting');
        await abortableDelay(this.restartDelayMs, signal);
        continue;
      }
      if (!signal.aborted) {
        this.log.warn({ task: task.name }, 'leader task returned while leading; restarting');
        await abortableDelay(this.restartDelayMs, signal);
      }
    }
    this.log.info({ task: task.name }, 'leader task stopped');
  }
}

/** Resolves after `ms`, or as soon as `signal` aborts. */
export function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Resolves when `signal` aborts (at once if it has). */
export function whenAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/**
 * `work`'s result, or undefined as soon as `signal` aborts. The work itself cannot be cancelled
 * (client-node takes no signal): it finishes in the background and its outcome is dropped.
 */
export function unlessAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.resolve(undefined);
  }
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = (): void => {
      work.catch(() => undefined);
      resolve(undefined);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
