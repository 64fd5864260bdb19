/**
 * Value kinds of protobuf scalars in plain-object form: normalisation (the JS forms protobufjs
 * `fromObject` accepts), type errors, proto3 defaults, map keys and `repeated.unique` keys.
 */
import * as common from './common';
import type { Norm, ScalarKind } from './common';

// Per-call helpers bound once; see the note in ./common.ts on named imports under tsx.
const { describe, isObj } = common;

const SCALARS: ReadonlySet<string> = new Set([
  'double',
  'float',
  'int32',
  'uint32',
  'sint32',
  'fixed32',
  'sfixed32',
  'int64',
  'uint64',
  'sint64',
  'fixed64',
  'sfixed64',
  'bool',
  'string',
  'bytes',
]);
export const INT_RANGE: Readonly<Record<string, readonly [bigint, bigint]>> = Object.freeze({
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  sint32: [-(2n ** 31n), 2n ** 31n - 1n],
  sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
});
const BASE64_RE = /^(?:[A-Za-z0-9+/\-_]{4})*(?:[A-Za-z0-9+/\-_]{2}(?:==)?|[A-Za-z0-9+/\-_]{3}=?)?$/;
const INT_STR_RE = /^-?\d+$/;

/** Whether a protobufjs field type name is a scalar kind. */
export function isScalarKind(type: string): type is ScalarKind {
  return SCALARS.has(type);
}

export function toBigInt(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : undefined;
  if (typeof v === 'string') return INT_STR_RE.test(v) ? BigInt(v) : undefined;
  if (isObj(v) && typeof v.low === 'number' && typeof v.high === 'number') {
    // protobufjs Long
    const n = (BigInt(v.high) << 32n) | BigInt(v.low >>> 0);
    return v.unsigned === true ? BigInt.asUintN(64, n) : BigInt.asIntN(64, n);
  }
  return undefined;
}

/** Plain-object value → normalised scalar (number, bigint for 64-bit, Uint8Array for bytes), or undefined. */
export function normScalar(kind: ScalarKind, v: unknown): Norm | undefined {
  switch (kind) {
    case 'string':
      return typeof v === 'string' ? v : undefined;
    case 'bool':
      return typeof v === 'boolean' ? v : undefined;
    case 'double':
    case 'float':
      if (typeof v === 'number') return v;
      return v === 'NaN' || v === 'Infinity' || v === '-Infinity' ? Number(v) : undefined;
    case 'bytes':
      if (v instanceof Uint8Array) return v;
      return typeof v === 'string' && BASE64_RE.test(v) ? Buffer.from(v, 'base64') : undefined;
    case 'int32':
    case 'sint32':
    case 'sfixed32':
    case 'uint32':
    case 'fixed32': {
      if (typeof v !== 'number' || !Number.isInteger(v)) return undefined;
      const [lo, hi] = INT_RANGE[kind];
      return v >= Number(lo) && v <= Number(hi) ? v : undefined;
    }
    default: {
      const n = toBigInt(v);
      const [lo, hi] = INT_RANGE[kind];
      return n !== undefined && n >= lo && n <= hi ? n : undefined;
    }
  }
}
export function kindError(kind: ScalarKind, v: unknown): string {
  if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v) && kind.endsWith('64')) {
    return `expected ${kind}, got number ${v} beyond Number.MAX_SAFE_INTEGER (precision lost): pass a string or bigint`;
  }
  const range = INT_RANGE[kind];
  const what =
    kind === 'bytes'
      ? 'bytes (Uint8Array or base64 string)'
      : range
        ? `${kind} (integer ${range[0]}..${range[1]}${kind.endsWith('64') ? ', as number, string or bigint' : ''})`
        : kind;
  return `expected ${what}, got ${describe(v)}`;
}
export function defaultScalar(kind: ScalarKind): Norm {
  if (kind === 'string') return '';
  if (kind === 'bool') return false;
  if (kind === 'bytes') return new Uint8Array(0);
  return kind.endsWith('64') && kind !== 'double' ? 0n : 0;
}
export function mapKey(kind: ScalarKind, k: string): Norm | undefined {
  if (kind === 'bool') return k === 'true' ? true : k === 'false' ? false : undefined;
  if (kind === 'string') return k;
  if (!INT_STR_RE.test(k)) return undefined;
  return normScalar(kind, kind.endsWith('64') ? k : Number(k));
}
export const uniqKey = (n: Norm | undefined): string => (n instanceof Uint8Array ? `b:${Buffer.from(n).toString('hex')}` : `${typeof n}:${String(n)}`);
