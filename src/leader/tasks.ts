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

export class LeaderTasks {
  private running: Running[] = [];
  private readonly restartDelayMs: number;

  constructor(
    private readonly tasks: readonly LeaderTask[],
    private readonly log: Logger,
    opts: { restartDelayMs?: number } = {},
  ) {
    this.restartDelayMs = opts.restartDelayMs ?? 1000;
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

  /** Aborts every task and waits for all of them to return. */
  async stop(): Promise<void> {
    const running = this.running;
    this.running = [];
    for (const r of running) r.controller.abort();
    await Promise.all(running.map((r) => r.done));
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
