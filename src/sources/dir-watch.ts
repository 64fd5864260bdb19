/**
 * Watches a folder tree with one `fs.watch` per directory (inotify on Linux). A directory watch
 * reports every write, creation and removal of the files in it whatever inode they have, so a
 * file replaced by remove+create or a rename keeps being watched (a watch on the file itself is
 * lost with its inode). Events are hints only: the folder source reads the file to learn what
 * happened. Names starting with a dot are ignored, as the folder source ignores them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface DirWatchHandlers {
  /** The file at this path may have been written, created or removed. */
  file(p: string): void;
  /** Anything below this directory may have changed (it appeared, it vanished, or an event came without a name). */
  dir(p: string): void;
  /** The root cannot be watched any more. */
  error(err: Error): void;
}

export class DirWatcher {
  private readonly watchers = new Map<string, fs.FSWatcher>();
  private closed = false;

  constructor(
    private readonly root: string,
    private readonly handlers: DirWatchHandlers,
  ) {}

  /** Watches the root and every directory below it. Throws if the root cannot be watched. */
  start(): void {
    this.add(this.root, true);
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  /** Directories watched right now. */
  size(): number {
    return this.watchers.size;
  }

  private add(d: string, top: boolean): void {
    if (this.closed || this.watchers.has(d)) return;
    let w: fs.FSWatcher;
    try {
      w = fs.watch(d, (type, name) => this.onEvent(d, type, name === null ? null : String(name)));
    } catch (err) {
      if (top) throw err;
      return; // gone already
    }
    w.on('error', (err: Error) => {
      this.drop(d);
      if (d === this.root) this.handlers.error(err);
      else this.handlers.dir(d);
    });
    this.watchers.set(d, w);
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (!e.name.startsWith('.') && e.isDirectory()) this.add(path.join(d, e.name), false);
  }

  /** Stops watching `d` and everything below it. */
  private drop(d: string): void {
    for (const [p, w] of [...this.watchers]) {
      if (p === d || p.startsWith(d + path.sep)) {
        w.close();
        this.watchers.delete(p);
      }
    }
  }

  private onEvent(d: string, type: string, name: string | null): void {
    if (this.closed) return;
    if (name === null || name === '') {
      this.handlers.dir(d);
      return;
    }
    if (name.split(path.sep).some((part) => part.startsWith('.'))) return;
    const p = path.join(d, name);
    if (type === 'rename' || this.watchers.has(p)) {
      let isDir = false;
      try {
        isDir = fs.statSync(p).isDirectory();
      } catch {
        // gone
      }
      if (isDir) {
        if (!this.watchers.has(p)) {
          this.add(p, false);
          this.handlers.dir(p);
        }
        return;
      }
      if (this.watchers.has(p)) {
        // A watched directory was removed or moved away (its watch would follow it elsewhere).
        this.drop(p);
        this.handlers.dir(p);
        return;
      }
    }
    this.handlers.file(p);
  }
}
