/**
 * The `--mesh-config FILE` source (istiod's `--meshConfig`, the ConfigMap `istio` mounted as a
 * file): read at start, then watched. As with the folder source, an event is only a hint to
 * look: the file is taken once two reads a quiet period apart agree, and a periodic re-read
 * catches changes whose events were lost (a mounted ConfigMap is swapped by renaming a symlink).
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import type { MeshConfigText } from '../model/build-mesh';
import { type Observation, observe, pause, sameObservation } from './file-settle';

export interface MeshConfigFileOptions {
  settleMs?: number;
  /** Re-read this often (0: never). */
  rescanIntervalMs?: number;
  maxBytes?: number;
  log?: Logger;
}

/** Emits `change` when the file's content changes (or it appears or disappears). */
export class MeshConfigFile extends EventEmitter {
  private served?: { hash: string; text: string };
  private readonly stopping = new AbortController();
  private watcher?: fs.FSWatcher;
  private timer?: NodeJS.Timeout;
  private settling?: Promise<void>;
  private again = false;

  constructor(
    readonly file: string,
    private readonly opts: MeshConfigFileOptions = {},
  ) {
    super();
  }

  /** Reads the file now; a missing file means istiod's defaults (a warning says so). */
  load(): void {
    try {
      const text = fs.readFileSync(this.file, 'utf8');
      this.served = { hash: '', text };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`--mesh-config ${this.file}: ${(err as Error).message}`, { cause: err });
      this.opts.log?.warn({ file: this.file }, 'mesh config file not found; the default MeshConfig is used until it appears');
    }
  }

  text(): MeshConfigText | undefined {
    return this.served ? { source: this.file, text: this.served.text } : undefined;
  }

  start(): void {
    const dir = path.dirname(this.file);
    try {
      this.watcher = fs.watch(dir, () => this.look());
      this.watcher.on('error', (err) => this.opts.log?.warn({ err, dir }, 'mesh config folder watch failed; relying on the periodic re-read'));
    } catch (err) {
      this.opts.log?.warn({ err, dir }, 'cannot watch the mesh config folder; relying on the periodic re-read');
    }
    const every = this.opts.rescanIntervalMs ?? 5000;
    if (every > 0) {
      this.timer = setInterval(() => this.look(), every);
      this.timer.unref();
    }
    // Whatever changed between load() and now had no event.
    this.look();
  }

  /** Resolves once no read is under way (tests). */
  async idle(): Promise<void> {
    while (this.settling) await this.settling;
  }

  async close(): Promise<void> {
    this.stopping.abort();
    clearInterval(this.timer);
    this.watcher?.close();
    await this.idle();
  }

  private look(): void {
    if (this.stopping.signal.aborted) return;
    if (this.settling) {
      this.again = true;
      return;
    }
    this.settling = this.settle()
      .catch((err: unknown) => this.opts.log?.error({ err }, 'reading the mesh config file failed'))
      .finally(() => {
        this.settling = undefined;
        if (this.again) {
          this.again = false;
          this.look();
        }
      });
  }

  private async settle(): Promise<void> {
    const { signal } = this.stopping;
    let prev: Observation | undefined;
    for (;;) {
      const obs = await observe(this.file, this.opts.maxBytes ?? 16 * 1024 * 1024);
      if (signal.aborted) return;
      if (prev && !this.again && sameObservation(prev, obs)) return this.commit(obs);
      this.again = false;
      prev = obs;
      await pause(this.opts.settleMs ?? 50, signal);
      if (signal.aborted) return;
    }
  }

  private commit(obs: Observation): void {
    if (!obs.exists || obs.error !== undefined) {
      if (this.served === undefined) return;
      this.served = undefined;
      this.opts.log?.warn({ file: this.file }, 'mesh config file is gone; the default MeshConfig is used');
      this.emit('change', this.file);
      return;
    }
    if (obs.oversized) {
      this.opts.log?.warn({ file: this.file, size: obs.size }, 'mesh config file is too large; the one served is kept');
      return;
    }
    if (this.served && (this.served.hash === obs.hash || this.served.text === obs.text)) {
      this.served = { hash: obs.hash, text: obs.text };
      return;
    }
    this.served = { hash: obs.hash, text: obs.text };
    this.emit('change', this.file);
  }
}
