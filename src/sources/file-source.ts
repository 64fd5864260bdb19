/**
 * Folder source: every *.yaml / *.yml / *.json below a directory, parsed and validated per file,
 * watched so that an edited, added or removed file becomes a new set of objects.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type FSWatcher, watch } from 'chokidar';
import { DEFAULT_INPUT_LIMITS, type InputLimits } from '../config/limits';
import type { ConfigError, ConfigObject } from '../model/objects';
import { objectError, objectKey } from '../model/objects';
import { fileTooLarge } from './bounds';
import { type FileResult, loadText, loadTextAsync } from './load';
import type { ConfigSource, ConfigState } from './source';

export type { ConfigState } from './source';
export { loadText } from './load';

const CONFIG_FILE = /\.(ya?ml|json)$/i;

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name.startsWith('.')) continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && CONFIG_FILE.test(e.name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** Emits `change` (with the file that changed) after the initial load. */
export class FileSource extends EventEmitter implements ConfigSource {
  private readonly files = new Map<string, FileResult>();
  private watcher?: FSWatcher;
  /** File reads run one after another, in the order asked (a later read of a file wins). */
  private reads: Promise<void> = Promise.resolve();

  constructor(
    readonly dir: string,
    private readonly limits: InputLimits = DEFAULT_INPUT_LIMITS,
  ) {
    super();
  }

  /** Reads everything once, before anything is served. Throws only if the directory itself cannot be read. */
  load(): void {
    if (!fs.statSync(this.dir).isDirectory()) throw new Error(`--config-dir ${this.dir}: not a directory`);
    this.files.clear();
    for (const f of listFiles(this.dir)) this.readSync(f);
  }

  async watch(): Promise<void> {
    this.watcher = watch(this.dir, {
      ignoreInitial: true,
      ignored: (p, stats) => path.basename(p).startsWith('.') || (stats?.isFile() === true && !CONFIG_FILE.test(p)),
      awaitWriteFinish: false,
    });
    const onFile = (file: string): void => {
      if (!CONFIG_FILE.test(file)) return;
      void this.readFile(file).then(() => this.emit('change', path.relative(this.dir, file)));
    };
    const onRemove = (file: string): void => {
      // After the reads asked before it, so that a read in progress cannot bring the file back.
      void this.queue(async () => {
        if (this.files.delete(file)) this.emit('change', path.relative(this.dir, file));
      });
    };
    this.watcher.on('add', onFile).on('change', onFile).on('unlink', onRemove);
    this.watcher.on('unlinkDir', (d: string) => {
      for (const f of [...this.files.keys()]) if (f.startsWith(d + path.sep)) onRemove(f);
    });
    this.watcher.on('error', (err) => this.emit('error', err));
    await new Promise<void>((resolve) => this.watcher?.once('ready', () => resolve()));
  }

  /** ConfigSource: follow the folder (same as watch()). */
  start(): Promise<void> {
    return this.watch();
  }

  async close(): Promise<void> {
    await this.watcher?.close();
  }

  private queue(work: () => Promise<void>): Promise<void> {
    const next = this.reads.then(work);
    this.reads = next.catch(() => undefined);
    return next;
  }

  /** A changed file, parsed in slices (the event loop keeps turning); reads run in order. */
  private readFile(file: string): Promise<void> {
    return this.queue(async () => {
      const source = path.relative(this.dir, file);
      let text: string;
      try {
        if (this.tooLarge(file, source, (await fs.promises.stat(file)).size)) return;
        text = await fs.promises.readFile(file, 'utf8');
      } catch (err) {
        this.unreadable(file, source, err);
        return;
      }
      this.files.set(file, await loadTextAsync(text, source, this.limits));
    });
  }

  private readSync(file: string): void {
    const source = path.relative(this.dir, file);
    let text: string;
    try {
      if (this.tooLarge(file, source, fs.statSync(file).size)) return;
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      this.unreadable(file, source, err);
      return;
    }
    this.files.set(file, loadText(text, source, this.limits));
  }

  /** A file over the size limit is refused unread. */
  private tooLarge(file: string, source: string, size: number): boolean {
    if (size <= this.limits.maxFileBytes) return false;
    this.files.set(file, { objects: [], errors: [{ source, errors: [{ path: '', message: fileTooLarge(size, this.limits) }] }] });
    return true;
  }

  private unreadable(file: string, source: string, err: unknown): void {
    // Removed between listing and reading, or unreadable: report, keep the rest.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      this.files.delete(file);
      return;
    }
    this.files.set(file, { objects: [], errors: [{ source, errors: [{ path: '', message: `cannot read file: ${(err as Error).message}` }] }] });
  }

  /** All valid objects across files; an object defined twice keeps its first definition. */
  state(): ConfigState {
    const seen = new Map<string, ConfigObject>();
    const objects: ConfigObject[] = [];
    const errors: ConfigError[] = [];
    for (const file of [...this.files.keys()].sort()) {
      const r = this.files.get(file) as FileResult;
      errors.push(...r.errors);
      for (const o of r.objects) {
        const key = objectKey(o.kind, o.metadata.namespace, o.metadata.name);
        const first = seen.get(key);
        if (first) {
          errors.push(objectError(o, [{ path: 'metadata.name', message: `duplicate ${o.kind} ${key}: already defined in ${first.origin.source}; this definition is ignored` }]));
          continue;
        }
        seen.set(key, o);
        objects.push(o);
      }
    }
    return { objects, errors };
  }
}
