/**
 * Pure helpers of the fake Kubernetes API server: JSON merge patch (RFC 7386), JSON patch
 * (RFC 6902), label and field selectors, and deep clone/equality on JSON values.
 */

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** Structural equality of two JSON values (key order ignored). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => jsonEqual(a[k], b[k]));
  }
  return false;
}

/** RFC 7386: objects merge recursively, null deletes, anything else replaces. */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** A JSON patch failed (bad path, failed `test`): the server answers 422. */
export class PatchError extends Error {}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`invalid JSON pointer ${JSON.stringify(path)}`);
  return path
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(doc: Json, parts: string[]): { parent: Json; key: string } {
  let cur: Json = doc;
  for (const p of parts.slice(0, -1)) {
    const next: Json | undefined = Array.isArray(cur) ? cur[Number(p)] : isObject(cur) ? cur[p] : undefined;
    if (next === undefined) throw new PatchError(`path /${parts.join('/')} does not exist`);
    cur = next;
  }
  return { parent: cur, key: parts[parts.length - 1] as string };
}

function getAt(doc: Json, path: string): Json {
  let cur: Json | undefined = doc;
  for (const p of pointer(path)) cur = Array.isArray(cur) ? cur[Number(p)] : isObject(cur) ? cur[p] : undefined;
  if (cur === undefined) throw new PatchError(`path ${path} does not exist`);
  return cur;
}

function removeAt(doc: Json, path: string): Json {
  const { parent, key } = parentOf(doc, pointer(path));
  if (Array.isArray(parent)) {
    const i = Number(key);
    if (!Number.isInteger(i) || i < 0 || i >= parent.length) throw new PatchError(`path ${path} does not exist`);
    return parent.splice(i, 1)[0] as Json;
  }
  if (!isObject(parent) || !(key in parent)) throw new PatchError(`path ${path} does not exist`);
  const old = parent[key] as Json;
  delete parent[key];
  return old;
}

function addAt(doc: Json, path: string, value: Json, replace: boolean): Json {
  const parts = pointer(path);
  if (parts.length === 0) return value;
  const { parent, key } = parentOf(doc, parts);
  if (Array.isArray(parent)) {
    const i = key === '-' ? parent.length : Number(key);
    if (!Number.isInteger(i) || i < 0 || i > parent.length || (replace && i >= parent.length)) throw new PatchError(`path ${path} is out of range`);
    parent.splice(i, replace ? 1 : 0, value);
  } else if (isObject(parent)) {
    if (replace && !(key in parent)) throw new PatchError(`path ${path} does not exist`);
    parent[key] = value;
  } else {
    throw new PatchError(`path ${path}: parent is not a container`);
  }
  return doc;
}

/** RFC 6902 JSON patch: add, remove, replace, move, copy, test. */
export function jsonPatch(target: Json, ops: unknown): Json {
  if (!Array.isArray(ops)) throw new PatchError('a JSON patch must be an array of operations');
  let doc = clone(target);
  for (const raw of ops) {
    if (!isObject(raw) || typeof raw['op'] !== 'string' || typeof raw['path'] !== 'string') throw new PatchError(`invalid operation ${JSON.stringify(raw)}`);
    const path = raw['path'];
    switch (raw['op']) {
      case 'add':
        doc = addAt(doc, path, clone(raw['value'] ?? null), false);
        break;
      case 'replace':
        doc = addAt(doc, path, clone(raw['value'] ?? null), true);
        break;
      case 'remove':
        removeAt(doc, path);
        break;
      case 'move':
      case 'copy': {
        const from = String(raw['from'] ?? '');
        const v = raw['op'] === 'move' ? removeAt(doc, from) : clone(getAt(doc, from));
        doc = addAt(doc, path, v, false);
        break;
      }
      case 'test':
        if (!jsonEqual(getAt(doc, path), raw['value'])) throw new PatchError(`test operation failed at ${path}`);
        break;
      default:
        throw new PatchError(`unknown operation ${JSON.stringify(raw['op'])}`);
    }
  }
  return doc;
}

// ---- selectors ----

type Requirement = { key: string; op: '=' | '!=' | 'in' | 'notin' | 'exists' | '!exists'; values: string[] };

/** Splits on commas outside parentheses. */
function splitTerms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((t) => t.trim()).filter((t) => t !== '');
}

/** Parses a label selector (`a=b,c!=d,e,!f,g in (x,y),h notin (z)`); throws on syntax errors. */
export function parseLabelSelector(s: string): Requirement[] {
  return splitTerms(s).map((t): Requirement => {
    let m = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(t);
    if (m) return { key: m[1] as string, op: m[2] as 'in' | 'notin', values: (m[3] as string).split(',').map((v) => v.trim()) };
    m = /^([^\s!=]+)\s*(==|=|!=)\s*(\S*)$/.exec(t);
    if (m) return { key: m[1] as string, op: m[2] === '!=' ? '!=' : '=', values: [m[3] as string] };
    m = /^(!?)([^\s!=()]+)$/.exec(t);
    if (m) return { key: m[2] as string, op: m[1] ? '!exists' : 'exists', values: [] };
    throw new Error(`unable to parse requirement: ${JSON.stringify(t)}`);
  });
}

export function matchesSelector(reqs: readonly Requirement[], labels: Readonly<Record<string, string>>): boolean {
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    const v = labels[r.key];
    switch (r.op) {
      case '=':
        return has && v === r.values[0];
      case '!=':
        return !has || v !== r.values[0];
      case 'in':
        return has && r.values.includes(v as string);
      case 'notin':
        return !has || !r.values.includes(v as string);
      case 'exists':
        return has;
      case '!exists':
        return !has;
    }
    return false;
  });
}

/** Field selectors as the API server supports them for every type: metadata.name / metadata.namespace. */
export function fieldSelectorFields(obj: JsonObject): Record<string, string> {
  const meta = isObject(obj['metadata']) ? obj['metadata'] : {};
  return { 'metadata.name': String(meta['name'] ?? ''), 'metadata.namespace': String(meta['namespace'] ?? '') };
}

export function parseFieldSelector(s: string): Requirement[] {
  const reqs = parseLabelSelector(s);
  for (const r of reqs) {
    if (r.op !== '=' && r.op !== '!=') throw new Error(`field selector ${JSON.stringify(s)}: only =, == and != are supported`);
    if (r.key !== 'metadata.name' && r.key !== 'metadata.namespace') throw new Error(`field label not supported: ${r.key}`);
  }
  return reqs;
}
