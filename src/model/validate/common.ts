/**
 * Small helpers shared by the validators: JSON type guards, field-path building, and an error
 * sink. Validators read untrusted JSON through these guards and never throw.
 */
import type { FieldError } from '../objects';

export type JsonObject = Readonly<Record<string, unknown>>;

export function isRecord(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A JSON type name for messages: `string`, `number`, `boolean`, `array`, `object`, `null`. */
export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** The last field error of a list that was cut at `max`: `more` left out (at least, if not all were looked for). */
export function moreErrors(more: number, max: number, atLeast = false): string {
  return `and ${atLeast ? 'at least ' : ''}${more} more error${more === 1 ? '' : 's'} (only the first ${max} are kept)`;
}

/** The count in a `moreErrors` message, if `message` is one. */
export function moreErrorsCount(message: string): { more: number; atLeast: boolean } | undefined {
  const m = /^and (at least )?(\d+) more errors? \(only the first \d+ are kept\)$/.exec(message);
  return m ? { more: Number(m[2]), atLeast: m[1] !== undefined } : undefined;
}

/** `base.key`, or `base["key"]` when the key would make the dotted path ambiguous. */
export function pathKey(base: string, key: string): string {
  const simple = /^[A-Za-z0-9_-]+$/.test(key);
  if (simple) return base ? `${base}.${key}` : key;
  return `${base}[${JSON.stringify(key)}]`;
}

/** `base` plus a literal dotted sub-path of field names, e.g. `subPath(p, 'port.number')`. */
export function subPath(base: string, fields: string): string {
  return fields.split('.').reduce(pathKey, base);
}

export function pathIdx(base: string, i: number): string {
  return `${base}[${i}]`;
}

/**
 * Collects field errors, and Istio's warnings (reported, never refused); one per validated
 * object. Keeps at most `max` of each (the rest are counted: one bad list of thousands of items
 * must not make millions of errors).
 */
export class Issues {
  readonly list: FieldError[] = [];
  readonly warnings: FieldError[] = [];
  /** Every error added, kept or not. */
  count = 0;
  private warningCount = 0;

  constructor(readonly max = Infinity) {}

  add(path: string, message: string): void {
    this.count++;
    if (this.list.length < this.max) this.list.push({ path, message });
  }

  /** Some check stopped looking once the limit was reached: the count of the rest is a lower bound. */
  private stopped = false;

  /** The limit is reached (what is added now is counted, not kept). */
  full(): boolean {
    return this.count >= this.max;
  }

  /** For a check that would only add more errors: true when it may stop looking. */
  enough(): boolean {
    if (this.count < this.max) return false;
    this.stopped = true;
    return true;
  }

  /** The kept errors, and a last one saying how many more there were. */
  result(): FieldError[] {
    const more = this.count - this.list.length;
    if (more === 0 && !this.stopped) return this.list;
    return [...this.list, { path: '', message: moreErrors(Math.max(more, 1), this.max, this.stopped) }];
  }

  warn(path: string, message: string): void {
    this.warningCount++;
    if (this.warnings.length < this.max) this.warnings.push({ path, message });
  }

  /** The kept warnings, and a last one saying how many more there were. */
  warningsResult(): FieldError[] {
    const more = this.warningCount - this.warnings.length;
    return more > 0 ? [...this.warnings, { path: '', message: `and ${more} more warning${more === 1 ? '' : 's'} (only the first ${this.max} are kept)` }] : this.warnings;
  }

  /** Adds `message` when it is a string (the result of a `string | undefined` check). */
  addIf(path: string, message: string | undefined): void {
    if (message !== undefined) this.add(path, message);
  }
}

// ---- typed reads: undefined when absent or of the wrong type (the schema pass reports types) ----

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function bool(v: unknown): boolean | undefined {
  return typeof v === 'boolean' ? v : undefined;
}

export function rec(v: unknown): JsonObject | undefined {
  return isRecord(v) ? v : undefined;
}

export function arr(v: unknown): readonly unknown[] | undefined {
  return Array.isArray(v) ? v : undefined;
}

/** The string entries of a map-shaped value (non-string values are skipped). */
export function stringEntries(v: unknown): Array<[string, string]> {
  if (!isRecord(v)) return [];
  return Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string');
}

/** Elements of an array-shaped value that are strings, with their indexes. */
export function stringItems(v: unknown): Array<[number, string]> {
  const a = arr(v) ?? [];
  const out: Array<[number, string]> = [];
  a.forEach((x, i) => {
    if (typeof x === 'string') out.push([i, x]);
  });
  return out;
}

/** Elements of an array-shaped value that are objects, with their indexes. */
export function recordItems(v: unknown): Array<[number, JsonObject]> {
  const a = arr(v) ?? [];
  const out: Array<[number, JsonObject]> = [];
  a.forEach((x, i) => {
    if (isRecord(x)) out.push([i, x]);
  });
  return out;
}

export function has(o: JsonObject, key: string): boolean {
  return o[key] !== undefined && o[key] !== null;
}
