/**
 * Bounds every source applies to what it read, whatever the reader:
 *
 * - `checkTree`: a decoded value (from YAML, or JSON from the API server) nests no deeper than
 *   the limit and has no `__proto__` key (which, assigned into a plain object, would replace
 *   its prototype: fields that JSON does not show, and reads that see them). Walked with an
 *   explicit stack, so a value nested 100,000 deep costs a loop, not the call stack.
 * - `boundErrors`: at most `maxErrorsPerObject` field errors per object (then "and N more"),
 *   and no message, path, name or source longer than `maxMessageLength`.
 */
import type { InputLimits } from '../config/limits';
import { LIMIT_FLAGS } from '../config/limits';
import type { ConfigError, FieldError } from '../model/objects';
import { moreErrors, moreErrorsCount, pathIdx, pathKey } from '../model/validate/common';

/** Keys refused anywhere in an object. */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__']);

interface Frame {
  value: unknown;
  depth: number;
  parent: Frame | undefined;
  key: string | number;
}

function framePath(f: Frame | undefined, base: string): string {
  const keys: Array<string | number> = [];
  for (let x = f; x?.parent !== undefined; x = x.parent) keys.push(x.key);
  let p = base;
  for (let i = keys.length - 1; i >= 0; i--) {
    const k = keys[i] as string | number;
    p = typeof k === 'number' ? pathIdx(p, k) : pathKey(p, k);
  }
  return p;
}

/**
 * Depth and forbidden keys of a decoded value; `[]` when within bounds. Stops at the first
 * value nested too deep (its path is where to look); forbidden keys are all reported (up to
 * the error limit).
 */
export function checkTree(value: unknown, limits: Pick<InputLimits, 'maxDepth' | 'maxErrorsPerObject'>, base = '', maxNodes = Infinity): FieldError[] {
  const errors: FieldError[] = [];
  const stack: Frame[] = [{ value, depth: 1, parent: undefined, key: '' }];
  let nodes = 0;
  while (stack.length > 0) {
    const f = stack.pop() as Frame;
    const v = f.value;
    if (typeof v !== 'object' || v === null) continue;
    if (++nodes > maxNodes) {
      // Only shared (aliased) values can hold more mappings and lists than their text has characters.
      errors.push({ path: base, message: `holds more than ${maxNodes} mappings and lists; the object is refused` });
      return errors;
    }
    if (f.depth > limits.maxDepth) {
      errors.push({ path: framePath(f, base), message: `nested deeper than ${limits.maxDepth} levels of mappings and lists; the object is refused (${LIMIT_FLAGS.maxDepth})` });
      return errors;
    }
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) {
        const item: unknown = v[i];
        if (typeof item === 'object' && item !== null) stack.push({ value: item, depth: f.depth + 1, parent: f, key: i });
      }
      continue;
    }
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i >= 0; i--) {
      const k = keys[i] as string;
      if (FORBIDDEN_KEYS.has(k)) {
        if (errors.length < limits.maxErrorsPerObject) errors.push({ path: pathKey(framePath(f, base), k), message: `the key "${k}" is not allowed` });
        continue;
      }
      const item: unknown = (v as Record<string, unknown>)[k];
      if (typeof item === 'object' && item !== null) stack.push({ value: item, depth: f.depth + 1, parent: f, key: k });
    }
  }
  return errors;
}

/** What expanding a value's shared parts (YAML aliases) would cost. */
export interface SharedCost {
  /** Nodes (mappings, lists and the values in them) that expansion adds to the distinct ones. */
  added: number;
  /** A value that contains itself (an alias to its own ancestor). */
  cycle: boolean;
}

/**
 * The cost of expanding a value that may share sub-values (YAML aliases give the same object
 * for every alias): post-order with one memo entry per distinct mapping or list, so a billion
 * laughs is measured in a few hundred steps, never expanded. A mapping or list counts one,
 * plus one per value in it (an alias of a wide mapping costs as much as its width).
 */
export function sharedCost(value: unknown): SharedCost {
  if (typeof value !== 'object' || value === null) return { added: 0, cycle: false };
  const size = new Map<object, number>();
  const IN_PROGRESS = -1;
  let distinct = 0;
  const stack: Array<{ node: object; exit: boolean }> = [{ node: value, exit: false }];
  const children = (node: object): unknown[] => (Array.isArray(node) ? node : Object.values(node));
  while (stack.length > 0) {
    const { node, exit } = stack.pop() as { node: object; exit: boolean };
    if (!exit) {
      const known = size.get(node);
      if (known === IN_PROGRESS) return { added: 0, cycle: true };
      if (known !== undefined) continue;
      size.set(node, IN_PROGRESS);
      stack.push({ node, exit: true });
      distinct++;
      for (const c of children(node)) {
        if (typeof c !== 'object' || c === null) {
          distinct++;
          continue;
        }
        if (size.get(c) === IN_PROGRESS) return { added: 0, cycle: true };
        stack.push({ node: c, exit: false });
      }
      continue;
    }
    let total = 1;
    for (const c of children(node)) total += typeof c === 'object' && c !== null ? (size.get(c) ?? 0) : 1;
    size.set(node, total);
  }
  return { added: (size.get(value) ?? 0) - distinct, cycle: false };
}

/** Why a file over the size limit is refused (it is not read). */
export function fileTooLarge(bytes: number, limits: Pick<InputLimits, 'maxFileBytes'>): string {
  return `the file is ${bytes} bytes, more than the limit of ${limits.maxFileBytes}; it is refused unread (${LIMIT_FLAGS.maxFileBytes})`;
}

/** `s`, or its start and how much was left out. */
export function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  const note = ` … (${s.length - max} more characters)`;
  return s.slice(0, Math.max(0, max - note.length)) + note;
}

/** At most `max` field errors, then one saying how many more there were; strings bounded. */
export function boundFieldErrors(errors: readonly FieldError[], limits: Pick<InputLimits, 'maxErrorsPerObject' | 'maxMessageLength'>): FieldError[] {
  const max = limits.maxErrorsPerObject;
  let list = errors;
  let more = 0;
  let atLeast = false;
  // Already cut (validation stops collecting at its limit): count what it left out.
  const last = list[list.length - 1];
  const counted = last && last.path === '' ? moreErrorsCount(last.message) : undefined;
  if (counted !== undefined) {
    list = list.slice(0, -1);
    more = counted.more;
    atLeast = counted.atLeast;
  }
  if (list.length > max) {
    more += list.length - max;
    list = list.slice(0, max);
  }
  const out = list.map((e) => ({ path: truncate(e.path, limits.maxMessageLength), message: truncate(e.message, limits.maxMessageLength) }));
  if (more > 0) out.push({ path: '', message: moreErrors(more, max, atLeast) });
  return out;
}

/** Every ConfigError bounded: its field errors (count and length) and the strings naming it. */
export function boundErrors(errors: readonly ConfigError[], limits: Pick<InputLimits, 'maxErrorsPerObject' | 'maxMessageLength'>): ConfigError[] {
  const max = limits.maxMessageLength;
  return errors.map((e) => {
    const out: ConfigError = { ...e, source: truncate(e.source, max), errors: boundFieldErrors(e.errors, limits) };
    if (e.kind !== undefined) out.kind = truncate(e.kind, max);
    if (e.namespace !== undefined) out.namespace = truncate(e.namespace, max);
    if (e.name !== undefined) out.name = truncate(e.name, max);
    if (e.apiVersion !== undefined) out.apiVersion = truncate(e.apiVersion, max);
    return out;
  });
}
