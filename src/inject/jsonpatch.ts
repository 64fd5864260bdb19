/**
 * RFC 6902 JSON Patch between two JSON documents (what a mutating webhook returns), and its
 * application. The diff recurses into objects; in arrays it keeps elements that are unchanged,
 * recurses into elements matched by `name`, and inserts or removes the rest, so that an
 * injected pod's patch reads as "add istio-init at 0, add istio-proxy at the end".
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

export type PatchOp = { op: 'add'; path: string; value: unknown } | { op: 'replace'; path: string; value: unknown } | { op: 'remove'; path: string };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 6901: `~` → `~0`, `/` → `~1` (annotation keys contain slashes). */
export function escapePointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescapePointer(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObj(a) && isObj(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

const nameOf = (v: unknown): unknown => (isObj(v) ? v['name'] : undefined);

function diffInto(a: unknown, b: unknown, path: string, out: PatchOp[]): void {
  if (deepEqual(a, b)) return;
  if (isObj(a) && isObj(b)) {
    for (const k of Object.keys(a)) if (a[k] !== undefined && b[k] === undefined) out.push({ op: 'remove', path: `${path}/${escapePointer(k)}` });
    for (const [k, v] of Object.entries(b)) {
      if (v === undefined) continue;
      if (a[k] === undefined) out.push({ op: 'add', path: `${path}/${escapePointer(k)}`, value: v });
      else diffInto(a[k], v, `${path}/${escapePointer(k)}`, out);
    }
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    // Invariant: the array at `path` is b[0..j) followed by a[i..).
    let i = 0;
    for (let j = 0; j < b.length; j++) {
      const next = a[i];
      if (i < a.length && deepEqual(next, b[j])) {
        i++;
      } else if (i < a.length && nameOf(next) !== undefined && nameOf(next) === nameOf(b[j]) && !b.slice(j + 1).some((x) => nameOf(x) === nameOf(next))) {
        diffInto(next, b[j], `${path}/${j}`, out);
        i++;
      } else {
        out.push({ op: 'add', path: `${path}/${j}`, value: b[j] });
      }
    }
    for (; i < a.length; i++) out.push({ op: 'remove', path: `${path}/${b.length}` });
    return;
  }
  out.push({ op: 'replace', path, value: b });
}

/** The operations that turn `before` into `after`. */
export function createPatch(before: unknown, after: unknown): PatchOp[] {
  const out: PatchOp[] = [];
  diffInto(before, after, '', out);
  return out;
}

/** Applies a patch to a copy of `doc` (add/replace/remove, as the API server does). Throws on a bad path. */
export function applyPatch<T>(doc: T, ops: readonly PatchOp[]): T {
  let root: unknown = structuredClone(doc);
  for (const op of ops) {
    if (op.path === '') {
      if (op.op === 'remove') throw new Error('cannot remove the document root');
      root = structuredClone(op.value);
      continue;
    }
    const tokens = op.path.split('/').slice(1).map(unescapePointer);
    const last = tokens.pop() as string;
    let parent: unknown = root;
    for (const t of tokens) {
      parent = Array.isArray(parent) ? parent[Number(t)] : isObj(parent) ? parent[t] : undefined;
      if (parent === undefined) throw new Error(`${op.op} ${op.path}: ${t} does not exist`);
    }
    if (Array.isArray(parent)) {
      const idx = last === '-' ? parent.length : Number(last);
      if (!Number.isInteger(idx) || idx < 0 || idx > parent.length || (op.op !== 'add' && idx >= parent.length)) throw new Error(`${op.op} ${op.path}: index out of range`);
      if (op.op === 'add') parent.splice(idx, 0, structuredClone(op.value));
      else if (op.op === 'replace') parent[idx] = structuredClone(op.value);
      else parent.splice(idx, 1);
    } else if (isObj(parent)) {
      if (op.op !== 'add' && !(last in parent)) throw new Error(`${op.op} ${op.path}: no such member`);
      if (op.op === 'remove') delete parent[last];
      else parent[last] = structuredClone(op.value);
    } else {
      throw new Error(`${op.op} ${op.path}: parent is not an object or array`);
    }
  }
  return root as T;
}
