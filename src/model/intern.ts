/**
 * Structural sharing between snapshots: every part of a new snapshot that equals the matching
 * part of the previous one is replaced by the previous object. Afterwards, equal means
 * identical, so a dependency on a part of the model is checked with `===` (incr/deps.ts), and
 * whatever was generated from unchanged parts is reused as it is.
 */

type Shared = Map<unknown, unknown>;

function isPlain(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as object | null;
  return proto === Object.prototype || proto === null;
}

/**
 * `next` with every part equal to the corresponding part of `prev` taken from `prev`. `seen`
 * maps objects of `next` already shared (a service appears in several indexes).
 */
export function share<T>(prev: unknown, next: T, seen: Shared = new Map()): T {
  if (prev === next) return next;
  if (typeof next !== 'object' || next === null) return next;
  const done = seen.get(next);
  if (done !== undefined) return done as T;
  const out = shareObject(prev, next, seen);
  seen.set(next, out);
  return out as T;
}

function shareObject(prev: unknown, next: object, seen: Shared): unknown {
  if (typeof prev !== 'object' || prev === null) return shareFresh(next, seen);
  if (Array.isArray(next)) {
    if (!Array.isArray(prev)) return shareFresh(next, seen);
    let same = prev.length === next.length;
    const out = next.map((v: unknown, i) => {
      const s = share(prev[i], v, seen);
      if (s !== prev[i]) same = false;
      return s;
    });
    return same ? prev : out;
  }
  if (next instanceof Map) {
    if (!(prev instanceof Map)) return shareFresh(next, seen);
    let same = prev.size === next.size;
    const out = new Map<unknown, unknown>();
    for (const [k, v] of next) {
      const p: unknown = prev.get(k);
      const s = share(p, v, seen);
      if (s !== p || (p === undefined && !prev.has(k))) same = false;
      out.set(k, s);
    }
    return same ? prev : out;
  }
  if (next instanceof Set) {
    if (!(prev instanceof Set) || prev.size !== next.size) return next;
    for (const v of next) if (!prev.has(v)) return next;
    return prev;
  }
  if (!isPlain(next) || !isPlain(prev)) return next;
  const keys = Object.keys(next);
  const prevRec = prev as Record<string, unknown>;
  let same = keys.length === Object.keys(prevRec).length;
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    const p = prevRec[k];
    const s = share(p, (next as Record<string, unknown>)[k], seen);
    if (s !== p || (p === undefined && !(k in prevRec))) same = false;
    out[k] = s;
  }
  return same ? prev : out;
}

/** A part with no counterpart: keep it, but share what it reaches that was shared already. */
function shareFresh(next: object, seen: Shared): unknown {
  if (Array.isArray(next)) {
    let changed = false;
    const out = next.map((v: unknown) => {
      const s = typeof v === 'object' && v !== null ? (seen.get(v) ?? v) : v;
      if (s !== v) changed = true;
      return s;
    });
    return changed ? out : next;
  }
  return next;
}
