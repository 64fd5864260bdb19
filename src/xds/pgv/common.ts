/**
 * Shared vocabulary of the PGV rule compilers: the violation record, the check signature, the
 * per-call walk state, and small helpers over plain-object values.
 *
 * Modules whose code runs on every validate() call bind the helpers they import once, as
 * module-level constants (`import * as common from './common'; const { isObj } = common;`),
 * rather than using named imports directly: under tsx (esbuild's CommonJS interop) every use of a
 * named import is a chain of getters with a megamorphic property lookup, which made validate()
 * about 25% slower than the single-file version. tsc's output is fast either way.
 */
import type * as protobuf from 'protobufjs';

export interface RuleViolation {
  /** Field path from the resource root, e.g. `filter_chains[0].filters[1].typed_config.stat_prefix`. */
  path: string;
  /** What is wrong; rule violations start with the rule's name, e.g. `string.min_len: …`. */
  message: string;
}

export type Obj = Readonly<Record<string, unknown>>;
export type Out = RuleViolation[];
export type Num = number | bigint;
/** A scalar value after normalisation: number, bigint (64-bit integers), string, boolean or bytes. */
export type Norm = Num | string | boolean | Uint8Array;
/** A compiled rule (or set of rules): appends violations of value `v` at `path` to `out`. */
export type Check<T> = (v: T, path: string, out: Out) => void;
export type ScalarKind =
  'double' | 'float' | 'int32' | 'uint32' | 'sint32' | 'fixed32' | 'sfixed32' | 'int64' | 'uint64' | 'sint64' | 'fixed64' | 'sfixed64' | 'bool' | 'string' | 'bytes';

/** Per-call state: violations found, whether PGV rules apply at this depth, nesting depth. */
export class Ctx {
  readonly out: Out = [];
  rules = true;
  depth = 0;
}

/** How one element type (scalar, enum or message) is checked, wherever it occurs. */
export interface Elem {
  visit(v: unknown, path: string, ctx: Ctx): void;
  /** Rules applied when a singular non-oneof field is absent (PGV checks the default value). */
  readonly absent: ((path: string, ctx: Ctx) => void) | undefined;
  /** Comparable key of a value, for `repeated.unique`. */
  readonly key: (v: unknown) => string;
}

/** How one field of a message type is checked. */
export interface FieldCheck {
  readonly name: string;
  readonly visit: (v: unknown, path: string, ctx: Ctx) => void;
  readonly absent: ((path: string, ctx: Ctx) => void) | undefined;
}

export const hasOwn = (o: object, k: PropertyKey): boolean => Object.prototype.hasOwnProperty.call(o, k);
export const typeName = (t: protobuf.ReflectionObject): string => t.fullName.replace(/^\./, '');

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}
export function obj(x: unknown): Obj | undefined {
  return isObj(x) ? x : undefined;
}
export function list(x: unknown): readonly unknown[] | undefined {
  return x === undefined || x === null ? undefined : Array.isArray(x) ? x : [x];
}
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return 'bytes';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}
export function combine<T>(cs: Check<T>[]): Check<T> | undefined {
  if (cs.length <= 1) return cs[0];
  return (v, p, out) => {
    for (const c of cs) c(v, p, out);
  };
}
export function violation(out: Out, path: string, message: string): void {
  out.push({ path, message });
}
