/**
 * How the folder source reads a file that may be in the middle of being written: one
 * observation is a stat, the content and a second stat; a file is taken once two observations a
 * quiet period apart agree on size, mtime and content hash and no watch event came between them.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';

export interface Observation {
  exists: boolean;
  size: number;
  mtimeMs: number;
  /** sha256 of the content. */
  hash: string;
  /** The file changed while it was read: this observation equals no other. */
  torn: boolean;
  text: string;
  /** Why the file could not be read (other than it being gone). */
  error?: string;
  /** Larger than the size limit: not read (`text` is empty, `hash` stands for size and mtime). */
  oversized?: boolean;
  /** The stat after the read (for a whole, untorn read): inode, size, mtime, ctime. */
  stamp?: { readonly ino: number; readonly size: number; readonly mtimeMs: number; readonly ctimeMs: number };
}

export function contentHash(buf: Buffer | string): string {
  return createHash('sha256').update(buf).digest('hex');
}

/**
 * Reads a file with a stat before and after: a write that lands during the read is noticed.
 * A file over `maxBytes` is not read at all.
 */
export async function observe(file: string, maxBytes = Infinity): Promise<Observation> {
  try {
    const before = await fsp.stat(file);
    if (!before.isFile()) return absent();
    if (before.size > maxBytes) return { exists: true, size: before.size, mtimeMs: before.mtimeMs, hash: `oversized-${before.size}`, torn: false, text: '', oversized: true };
    const buf = await fsp.readFile(file);
    const after = await fsp.stat(file);
    const torn = before.size !== after.size || before.mtimeMs !== after.mtimeMs || buf.length !== after.size;
    const stamp = torn ? undefined : { ino: after.ino, size: after.size, mtimeMs: after.mtimeMs, ctimeMs: after.ctimeMs };
    return { exists: true, size: after.size, mtimeMs: after.mtimeMs, hash: contentHash(buf), torn, text: buf.toString('utf8'), ...(stamp ? { stamp } : {}) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return absent();
    return { exists: true, size: -1, mtimeMs: -1, hash: `error-${code ?? 'unknown'}`, torn: false, text: '', error: (err as Error).message };
  }
}

function absent(): Observation {
  return { exists: false, size: -1, mtimeMs: -1, hash: 'absent', torn: false, text: '' };
}

/** Two observations describe the same, complete file (or the same absence). */
export function sameObservation(a: Observation, b: Observation): boolean {
  return a.exists === b.exists && a.size === b.size && a.mtimeMs === b.mtimeMs && a.hash === b.hash && !a.torn && !b.torn;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
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
