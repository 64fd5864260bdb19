/**
 * Folder source: every *.yaml / *.yml / *.json below a directory, parsed and validated per file,
 * watched so that an edited, added or removed file becomes a new set of objects.
 *
 * A file rewritten in place (`cp`, an editor, `cat >`) can be seen half-written, and events can
 * come late, merged or not at all, so an event is only a hint to look: the file is read
 * until two reads a quiet period apart agree on size, mtime and content hash with no event in
 * between (an event during a read makes another read). A read that would take objects away (an
 * empty file, fewer objects, new errors) is held a while longer to see whether the write is still
 * under way; if it stays, it is served and a warning says so. Content equal to what is served
 * changes nothing. A periodic rescan re-reads every file and compares content hashes, so a change
 * whose events were all lost is still picked up.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { type RecordEvent, recordDiff } from './events';
import { DEFAULT_INPUT_LIMITS, type InputLimits } from '../config/limits';
import type { ConfigError, ConfigObject } from '../model/objects';
import { objectError, objectKey } from '../model/objects';
import { fileTooLarge } from './bounds';
import { DirWatcher } from './dir-watch';
import { type Observation, contentHash, observe, pause, sameObservation } from './file-settle';
import { type FileResult, loadText, loadTextAsync } from './load';
import type { ConfigSource, ConfigState } from './source';

export type { ConfigState } from './source';
export { loadText } from './load';

const CONFIG_FILE = /\.(ya?ml|json)$/i;

/** A file as read: its objects and problems; `mesh.yaml` at the top holds the MeshConfig text instead. */
interface Read extends FileResult {
  meshText?: string;
}

/** What is served for one file, and the hash of the content it came from. */
interface Committed extends Read {
  hash: string;
  /** The file as last seen with this content: a rescan that finds it so does not read it again. */
  stat?: FileStamp;
}

/** What a stat says about a file's content: a write changes ctime (and a rename the inode). */
interface FileStamp {
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
}

function stampOf(st: { ino: number; size: number; mtimeMs: number; ctimeMs: number }): FileStamp {
  return { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/**
 * Whether a text holds objects rather than a MeshConfig: a top-level `kind` other than ConfigMap
 * (MeshConfig has no `kind`), or several YAML documents (a MeshConfig is one).
 */
export function holdsObjects(text: string): boolean {
  if (/^---\s*$/m.test(text.replace(/^\s*---\s*\n/, ''))) return true;
  const kind = /^kind:\s*["']?([A-Za-z]+)/m.exec(text);
  return kind !== null && kind[1] !== 'ConfigMap';
}

/** The MeshConfig file of a config folder (istiod's mesh config, or the ConfigMap `istio` holding it). */
export const MESH_CONFIG_FILE = 'mesh.yaml';

export interface FileSourceOptions {
  /** Quiet period between the two reads that must agree before a file is taken. Default 50 ms. */
  settleMs?: number;
  /** How long a read that would take objects away is held before it is served. Default 500 ms. */
  suspectHoldMs?: number;
  /** A file still changing after this long is served as last read (settling goes on). Default 2 s. */
  maxSettleMs?: number;
  /**
   * Look at every file this often and pick up changes the watcher missed; 0 turns it off.
   * Default 5 s. A file whose stat (inode, size, mtime, ctime) is as last seen is not read.
   */
  rescanIntervalMs?: number;
  /** Every this many rescans, every file is read and its content compared, whatever its stat says. Default 12. */
  rescanReadEvery?: number;
  /** Watch the folder for events (default). Off, only the rescan sees changes (file systems without inotify). */
  watch?: boolean;
  log?: Logger;
  /** What one file may cost (size, documents, depth, aliases, errors); default DEFAULT_INPUT_LIMITS. */
  limits?: InputLimits;
  /** Called per object added, changed or removed by a file edit (istiod's pilot_k8s_*_events). */
  events?: RecordEvent;
}

export const FILE_SOURCE_DEFAULTS: Readonly<Required<Omit<FileSourceOptions, 'log' | 'watch' | 'limits' | 'events'>>> = Object.freeze({
  settleMs: 50,
  suspectHoldMs: 500,
  maxSettleMs: 2000,
  rescanIntervalMs: 5000,
  rescanReadEvery: 12,
});

/** What the folder source has done, for tests and operators. */
export interface FileSourceStats {
  /** Rescans completed. */
  rescans: number;
  /** Files a rescan found changed (or added, or removed) without the watcher having said so. */
  foundByRescan: number;
  /** Reads held because they would have taken objects away. */
  held: number;
  /** Files a rescan read (the others' stat was as last seen). */
  rescanReads: number;
}

function isConfigName(name: string): boolean {
  return !name.startsWith('.') && CONFIG_FILE.test(name);
}

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

/** As listFiles, without blocking; a folder removed during the walk is skipped. */
async function listFilesAsync(dir: string, top = true): Promise<string[]> {
  let entries: fs.Dirent[];
  try {
    entries = await fs.promises.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (!top && (err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFilesAsync(p, false)));
    else if (e.isFile() && CONFIG_FILE.test(e.name)) out.push(p);
  }
  return out;
}

/** Why a new read of a file looks like a write still under way, or undefined. */
function doubtAbout(served: FileResult | undefined, next: FileResult): string | undefined {
  if (!served || served.objects.length === 0) return undefined;
  const defined = next.objects.length + next.errors.filter((e) => e.kind !== undefined).length;
  if (defined < served.objects.length) return `now defines ${defined} object(s) (had ${served.objects.length})`;
  if (next.errors.length > served.errors.length) return `now has ${next.errors.length} error(s) (had ${served.errors.length})`;
  return undefined;
}

interface Settling {
  /** A watch event (or a rescan) asked for another look since the last read started. */
  dirty: boolean;
  done: Promise<void>;
  /** Ends a hold early: the writer is still at it, so look again now. */
  wake?: () => void;
  /** When the last watch event (or rescan) for the file came: the change's time, for the debounce. */
  lastAt: number;
}

/** Emits `change` (with the file that changed and when its change was seen) after the initial load. */
export class FileSource extends EventEmitter implements ConfigSource {
  private readonly files = new CommittedFiles();
  /** state()'s answer while no file changed (it is asked for on every change, and by the JWKS fetch). */
  private stateCache?: { generation: number; state: ConfigState };
  private readonly settling = new Map<string, Settling>();
  private readonly opts: Required<Omit<FileSourceOptions, 'log' | 'watch' | 'limits' | 'events'>>;
  private readonly limits: InputLimits;
  private readonly log: Logger | undefined;
  private readonly events: RecordEvent | undefined;
  private readonly watchEvents: boolean;
  private readonly stopping = new AbortController();
  private readonly counters: FileSourceStats = { rescans: 0, foundByRescan: 0, held: 0, rescanReads: 0 };
  private watcher?: DirWatcher;
  private rescanTimer?: NodeJS.Timeout;
  private rescanning?: Promise<void>;

  constructor(
    readonly dir: string,
    options: FileSourceOptions = {},
  ) {
    super();
    const given = Object.fromEntries(Object.entries(options).filter(([k, v]) => v !== undefined && k !== 'log' && k !== 'watch' && k !== 'limits' && k !== 'events'));
    this.opts = { ...FILE_SOURCE_DEFAULTS, ...given };
    for (const [k, v] of Object.entries(this.opts)) {
      if (!Number.isFinite(v) || v < 0) throw new Error(`folder source: ${k} must be a number >= 0 (got ${v})`);
    }
    this.log = options.log;
    this.events = options.events;
    this.limits = options.limits ?? DEFAULT_INPUT_LIMITS;
    this.watchEvents = options.watch ?? true;
  }

  /** Reads everything once. Throws only if the directory itself cannot be read. */
  load(): void {
    if (!fs.statSync(this.dir).isDirectory()) throw new Error(`--config-dir ${this.dir}: not a directory`);
    this.files.clear();
    for (const f of listFiles(this.dir)) this.readFileNow(f);
  }

  async watch(): Promise<void> {
    if (this.watcher || this.rescanTimer || this.rescanning) return;
    if (this.watchEvents) {
      this.watcher = new DirWatcher(this.dir, {
        file: (p) => {
          if (isConfigName(path.basename(p))) this.look(p);
        },
        dir: (d) => void this.lookBelow(d),
        error: (err) => this.fail(err),
      });
      this.watcher.start();
    }
    // Whatever changed between load() and the watches being set up had no event: look now.
    this.rescanning = this.rescan().finally(() => {
      this.rescanning = undefined;
      this.scheduleRescan();
    });
  }

  /** ConfigSource: follow the folder (same as watch()). */
  start(): Promise<void> {
    return this.watch();
  }

  async close(): Promise<void> {
    this.stopping.abort();
    clearTimeout(this.rescanTimer);
    this.watcher?.close();
    await this.rescanning;
    await Promise.all([...this.settling.values()].map((s) => s.done));
  }

  stats(): FileSourceStats {
    return { ...this.counters };
  }

  /** Resolves once no file is being settled and no rescan runs (tests). */
  async idle(): Promise<void> {
    while (this.settling.size > 0 || this.rescanning) {
      await Promise.all([...this.settling.values()].map((s) => s.done));
      await this.rescanning;
    }
  }

  /** Re-reads every file now and picks up what changed; resolves when that is settled. */
  async rescanNow(): Promise<void> {
    await this.rescan();
    await this.idle();
  }

  /** Startup read: synchronous, taken as it is (the first rescan after start() corrects a torn read). */
  private readFileNow(file: string): void {
    const source = path.relative(this.dir, file);
    let buf: Buffer;
    try {
      const size = fs.statSync(file).size;
      if (size > this.limits.maxFileBytes) {
        // Refused unread; the hash is what observe() gives an oversized file.
        this.files.set(file, { ...oversized(source, size, this.limits), hash: `oversized-${size}` });
        return;
      }
      buf = fs.readFileSync(file);
    } catch (err) {
      // Removed between listing and reading, or unreadable: report, keep the rest.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.files.delete(file);
        return;
      }
      this.files.set(file, { ...unreadable(source, err as Error), hash: `error-${(err as NodeJS.ErrnoException).code ?? 'unknown'}` });
      return;
    }
    const text = buf.toString('utf8');
    const read: Read = this.isMeshFile(file, text) ? { objects: [], errors: [], meshText: text } : loadText(text, source, this.limits);
    // As an informer's initial list does: every object found at start is an add.
    if (this.events) recordDiff([], read.objects, this.events);
    this.files.set(file, { ...read, hash: contentHash(buf) });
  }

  /**
   * `mesh.yaml` at the top of the folder is the MeshConfig (or the ConfigMap `istio` holding it),
   * unless it holds Istio or Kubernetes objects: folders written before meshd read MeshConfig
   * used that name for objects, and those stay objects rather than being lost as a bad MeshConfig.
   */
  private isMeshFile(file: string, text: string): boolean {
    return file === path.join(this.dir, MESH_CONFIG_FILE) && !holdsObjects(text);
  }

  /** A directory appeared or vanished: look at every file known or found below it. */
  private async lookBelow(d: string): Promise<void> {
    for (const f of this.files.keys()) if (f.startsWith(d + path.sep)) this.look(f);
    let found: string[] = [];
    try {
      found = await listFilesAsync(d, false);
    } catch (err) {
      this.fail(err);
    }
    for (const f of found) this.look(f);
  }

  /** Something may have changed in `file`: settle it (again, if it is being settled). */
  private look(file: string): void {
    if (this.stopping.signal.aborted) return;
    const running = this.settling.get(file);
    if (running) {
      running.dirty = true;
      running.lastAt = Date.now();
      running.wake?.();
      return;
    }
    const entry: Settling = { dirty: false, done: Promise.resolve(), lastAt: Date.now() };
    this.settling.set(file, entry);
    entry.done = this.settle(file, entry)
      .catch((err: unknown) => this.fail(err))
      .finally(() => {
        this.settling.delete(file);
        if (entry.dirty) this.look(file);
      });
  }

  private async settle(file: string, entry: Settling): Promise<void> {
    const { signal } = this.stopping;
    let since = Date.now();
    let prev: Observation | undefined;
    let held: string | undefined;
    for (;;) {
      const eventSincePrev = entry.dirty;
      entry.dirty = false;
      const obs = await observe(file, this.limits.maxFileBytes);
      if (signal.aborted) return;
      if (prev && !eventSincePrev && sameObservation(prev, obs)) {
        const next = await this.parse(file, obs);
        if (signal.aborted) return;
        const doubt = next ? doubtAbout(this.files.get(file), next) : undefined;
        if (doubt === undefined || held === obs.hash) {
          this.commit(file, obs, next, doubt, entry.lastAt);
          return;
        }
        // Looks like a write under way: give it time to finish before serving it.
        held = obs.hash;
        this.counters.held++;
        this.log?.debug({ file: path.relative(this.dir, file), doubt }, 'config file looks half-written; waiting');
        prev = obs;
        await this.hold(entry);
        continue;
      }
      if (Date.now() - since >= this.opts.maxSettleMs && !obs.torn) {
        // Written to without pause: serve what is there now (unless it takes objects away), keep watching.
        const next = await this.parse(file, obs);
        if (signal.aborted) return;
        if (!next || doubtAbout(this.files.get(file), next) === undefined) this.commit(file, obs, next, undefined, entry.lastAt);
        since = Date.now();
      }
      prev = obs;
      await pause(this.opts.settleMs, signal);
      if (signal.aborted) return;
    }
  }

  /** Waits the suspect hold, or less if an event for the file comes (or the source closes). */
  private async hold(entry: Settling): Promise<void> {
    const woken = new AbortController();
    const wake = (): void => woken.abort();
    entry.wake = wake;
    this.stopping.signal.addEventListener('abort', wake, { once: true });
    try {
      if (!entry.dirty) await pause(this.opts.suspectHoldMs, woken.signal);
    } finally {
      entry.wake = undefined;
      this.stopping.signal.removeEventListener('abort', wake);
    }
  }

  /** The file's objects, parsed a slice at a time (the event loop keeps turning); undefined when it is gone. */
  private async parse(file: string, obs: Observation): Promise<Read | undefined> {
    if (!obs.exists) return undefined;
    const source = path.relative(this.dir, file);
    if (obs.error !== undefined) return unreadable(source, new Error(obs.error));
    if (obs.oversized) return oversized(source, obs.size, this.limits);
    if (this.isMeshFile(file, obs.text)) return { objects: [], errors: [], meshText: obs.text };
    return loadTextAsync(obs.text, source, this.limits);
  }

  /** `at`: when the change was seen, passed with `change` so the debounce does not wait again for the settle. */
  private commit(file: string, obs: Observation, next: Read | undefined, doubt: string | undefined, at: number): void {
    const source = path.relative(this.dir, file);
    const prev = this.files.get(file);
    if (!next) {
      if (prev && this.events) recordDiff(prev.objects, [], this.events);
      if (this.files.delete(file)) this.emit('change', source, at);
      return;
    }
    if (prev?.hash === obs.hash) return; // same content: nothing to push
    if (this.events) recordDiff(prev?.objects ?? [], next.objects, this.events);
    this.files.set(file, { ...next, hash: obs.hash, ...(obs.stamp ? { stat: obs.stamp } : {}) });
    if (doubt !== undefined) {
      this.log?.warn({ file: source, holdMs: this.opts.suspectHoldMs }, `config file ${source} ${doubt} and stayed so; serving it as it is`);
    }
    this.emit('change', source, at);
  }

  private scheduleRescan(): void {
    if (this.opts.rescanIntervalMs <= 0 || this.stopping.signal.aborted) return;
    this.rescanTimer = setTimeout(() => {
      this.rescanning = this.rescan().finally(() => {
        this.rescanning = undefined;
        this.scheduleRescan();
      });
    }, this.opts.rescanIntervalMs);
    this.rescanTimer.unref();
  }

  /** Compares every file's content hash with what is served; settles those that differ. */
  private async rescan(): Promise<void> {
    let listed: string[];
    try {
      listed = await listFilesAsync(this.dir);
    } catch (err) {
      this.fail(err);
      return;
    }
    // Most rescans look at stats only; one in `rescanReadEvery` reads every file.
    const readAll = this.opts.rescanReadEvery <= 1 || this.counters.rescans % this.opts.rescanReadEvery === 0;
    const found: string[] = [];
    const consider = (f: string): void => {
      if (this.stopping.signal.aborted || this.settling.has(f)) return;
      found.push(path.relative(this.dir, f));
      this.look(f);
    };
    const seen = new Set(listed);
    for (const f of listed) {
      if (this.stopping.signal.aborted) return;
      if (this.settling.has(f)) continue;
      const served = this.files.get(f);
      if (served) {
        if (!readAll && served.stat) {
          const st = await fs.promises.stat(f).catch(() => undefined);
          if (st && sameStamp(stampOf(st), served.stat)) continue;
        }
        this.counters.rescanReads++;
        const obs = await observe(f, this.limits.maxFileBytes);
        if (!obs.torn && obs.hash === served.hash) {
          served.stat = obs.stamp;
          continue;
        }
      }
      consider(f);
    }
    for (const f of [...this.files.keys()]) if (!seen.has(f)) consider(f);
    this.counters.rescans++;
    this.counters.foundByRescan += found.length;
    if (found.length > 0) this.log?.info({ files: found }, 'rescan: files changed without a watch event; reading them');
  }

  /** An `error` event when someone listens (an unheard one would throw), else a log line. */
  private fail(err: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else this.log?.error({ err }, 'folder source error');
  }

  /** All valid objects across files; an object defined twice keeps its first definition. */
  state(): ConfigState {
    if (this.stateCache?.generation === this.files.generation) return this.stateCache.state;
    const state = this.computeState();
    this.stateCache = { generation: this.files.generation, state };
    return state;
  }

  private computeState(): ConfigState {
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
    const mesh = this.files.get(path.join(this.dir, MESH_CONFIG_FILE))?.meshText;
    return { objects, errors, ...(mesh !== undefined ? { mesh: { source: MESH_CONFIG_FILE, text: mesh } } : {}) };
  }
}

/** The files served, with a generation that moves on every change to them. */
class CommittedFiles extends Map<string, Committed> {
  generation = 0;

  override set(file: string, c: Committed): this {
    this.generation++;
    return super.set(file, c);
  }

  override delete(file: string): boolean {
    this.generation++;
    return super.delete(file);
  }

  override clear(): void {
    this.generation++;
    super.clear();
  }
}

function unreadable(source: string, err: Error): FileResult {
  return { objects: [], errors: [{ source, errors: [{ path: '', message: `cannot read file: ${err.message}` }] }] };
}

function oversized(source: string, size: number, limits: InputLimits): FileResult {
  return { objects: [], errors: [{ source, errors: [{ path: '', message: fileTooLarge(size, limits) }] }] };
}
