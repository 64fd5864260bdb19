/**
 * Compilers from a field's `(validate.rules)` to its checks: scalar and enum elements, the rules
 * of message-typed fields (including wrappers, Duration, Timestamp and Any), repeated fields and maps.
 * Message elements themselves are built by the validator, which owns the per-type compilation.
 */
import type * as protobuf from 'protobufjs';
import * as common from './common';
import type { Check, Elem, FieldCheck, Norm, Obj, ScalarKind } from './common';
import * as numeric from './numeric';
import { bytesChecks, stringChecks } from './strings';
import * as values from './values';

// Per-call helpers bound once; see the note in ./common.ts on named imports under tsx.
const { combine, describe, hasOwn, isObj, list, obj, typeName, violation } = common;
const { countChecks, numericChecks, ruleBig, ruleDuration, ruleNum, showDuration, timeNanos } = numeric;
const { INT_RANGE, defaultScalar, kindError, mapKey, normScalar, uniqKey } = values;

export const ANY = '.google.protobuf.Any';
const DURATION = '.google.protobuf.Duration';
const TIMESTAMP = '.google.protobuf.Timestamp';
const WRAPPERS: Readonly<Record<string, ScalarKind>> = Object.freeze({
  '.google.protobuf.DoubleValue': 'double',
  '.google.protobuf.FloatValue': 'float',
  '.google.protobuf.Int64Value': 'int64',
  '.google.protobuf.UInt64Value': 'uint64',
  '.google.protobuf.Int32Value': 'int32',
  '.google.protobuf.UInt32Value': 'uint32',
  '.google.protobuf.BoolValue': 'bool',
  '.google.protobuf.StringValue': 'string',
  '.google.protobuf.BytesValue': 'bytes',
});

/** Rules of one scalar kind (`r` is e.g. the `uint32` sub-object) → one check over the normalised value. */
export function scalarCheck(kind: ScalarKind, r: Obj, name: string): Check<Norm> | undefined {
  let c: Check<Norm> | undefined;
  if (kind === 'string') c = combine(stringChecks(r, name)) as Check<Norm> | undefined;
  else if (kind === 'bytes') c = combine(bytesChecks(r, name)) as Check<Norm> | undefined;
  else if (kind === 'bool') {
    const k = r.const;
    if (typeof k === 'boolean')
      c = (v, p, out) => {
        if (v !== k) violation(out, p, `${name}.const: value must equal ${k}`);
      };
  } else if (INT_RANGE[kind] && kind.endsWith('64')) c = combine(numericChecks(r, name, ruleBig)) as Check<Norm> | undefined;
  else c = combine(numericChecks(r, name, ruleNum)) as Check<Norm> | undefined;
  if (c === undefined || r.ignore_empty !== true) return c;
  const inner = c;
  const empty = defaultScalar(kind);
  return (v, p, out) => {
    if (v instanceof Uint8Array ? v.length > 0 : v !== empty) inner(v, p, out);
  };
}

export function scalarElem(kind: ScalarKind, rules: Obj | undefined, prefix: string): Elem {
  const r = obj(rules?.[kind]);
  const check = r && scalarCheck(kind, r, prefix + kind);
  return {
    visit(v, path, ctx) {
      const n = normScalar(kind, v);
      if (n === undefined) violation(ctx.out, path, kindError(kind, v));
      else if (check !== undefined && ctx.rules) check(n, path, ctx.out);
    },
    absent: check && ((path, ctx) => check(defaultScalar(kind), path, ctx.out)),
    key: (v) => uniqKey(normScalar(kind, v)),
  };
}

export function enumElem(e: protobuf.Enum, rules: Obj | undefined, prefix: string): Elem {
  const name = `${prefix}enum`;
  const r = obj(rules?.enum);
  const toNum = (x: unknown): number | undefined => (typeof x === 'number' ? x : typeof x === 'string' && hasOwn(e.values, x) ? e.values[x] : undefined);
  const cs: Check<number>[] = r ? numericChecks(r, name, toNum) : [];
  if (r?.defined_only === true) {
    cs.push((n, p, out) => {
      if (!hasOwn(e.valuesById, n)) violation(out, p, `${name}.defined_only: value must be one of the defined enum values of ${typeName(e)}, got ${n}`);
    });
  }
  const check = combine(cs);
  const norm = (v: unknown): number | undefined =>
    typeof v === 'string' ? (hasOwn(e.values, v) ? e.values[v] : undefined) : typeof v === 'number' && Number.isInteger(v) && Math.abs(v) < 2 ** 31 ? v : undefined;
  return {
    visit(v, path, ctx) {
      const n = norm(v);
      if (n === undefined) {
        violation(
          ctx.out,
          path,
          typeof v === 'string'
            ? `unknown enum value ${JSON.stringify(v)} for ${typeName(e)} (known: ${Object.keys(e.values).join(', ')})`
            : `expected an enum name or number of ${typeName(e)}, got ${describe(v)}`,
        );
      } else if (check !== undefined && ctx.rules) check(n, path, ctx.out);
    },
    absent: check && ((path, ctx) => check(0, path, ctx.out)),
    key: (v) => `enum:${String(norm(v))}`,
  };
}

/** Rules of a message-typed field: `message.skip` / `message.required` and a well-known type's own rules. */
export interface MessageRules {
  /** `message.skip`: PGV rules are off inside the value (structural checks still run). */
  readonly skip: boolean;
  /** Rule an absent value violates (`message.required`, `duration.required`, ...), if any. */
  readonly required: string | undefined;
  /** Type-specific rules (wrapper value, duration, timestamp, any) for a structurally sound value. */
  readonly post: Check<Obj> | undefined;
}

export function messageRules(full: string, rules: Obj | undefined, prefix: string): MessageRules {
  const mr = obj(rules?.message);
  const skip = mr?.skip === true;
  let required = mr?.required === true ? `${prefix}message.required` : undefined;
  let post: Check<Obj> | undefined;
  const wk = WRAPPERS[full];
  if (skip) required = undefined;
  else if (wk !== undefined) {
    const r = obj(rules?.[wk]);
    const c = r && scalarCheck(wk, r, prefix + wk);
    if (c) {
      post = (o, p, out) => {
        const n = o.value === null || o.value === undefined ? defaultScalar(wk) : normScalar(wk, o.value);
        if (n !== undefined) c(n, p, out);
      };
    }
  } else if (full === DURATION || full === TIMESTAMP) {
    const kind = full === DURATION ? 'duration' : 'timestamp';
    const r = obj(rules?.[kind]);
    if (r) {
      const name = prefix + kind;
      if (r.required === true) required = `${name}.required`;
      const c = combine(numericChecks(r, name, ruleDuration, showDuration));
      post = (o, p, out) => {
        const n = timeNanos(o, kind === 'timestamp');
        if (n === undefined) violation(out, p, `${name}: value is not a valid ${kind}`);
        else c?.(n, p, out);
      };
    }
  } else if (full === ANY) {
    const r = obj(rules?.any);
    if (r) {
      const name = `${prefix}any`;
      if (r.required === true) required = `${name}.required`;
      const inList = list(r.in)?.map(String);
      const notIn = list(r.not_in)?.map(String);
      post = (o, p, out) => {
        const url = typeof o['@type'] === 'string' ? o['@type'] : typeof o.type_url === 'string' ? o.type_url : '';
        if (inList?.length && !inList.includes(url)) violation(out, p, `${name}.in: type URL must be in list ${JSON.stringify(inList)}, got ${JSON.stringify(url)}`);
        if (notIn?.includes(url)) violation(out, p, `${name}.not_in: type URL must not be in list ${JSON.stringify(notIn)}, got ${JSON.stringify(url)}`);
      };
    }
  }
  return { skip, required, post };
}

/** A repeated (non-map) field; `elemOf` compiles the element type with the given rules and rule-name prefix. */
export function repeatedField(f: protobuf.Field, rules: Obj | undefined, elemOf: (rules: Obj | undefined, prefix: string) => Elem): FieldCheck {
  const rr = obj(rules?.repeated);
  const item = elemOf(obj(rr?.items), 'repeated.items.');
  const count = combine(countChecks(rr, 'repeated', 'min_items', 'max_items', 'item(s)'));
  const unique = rr?.unique === true;
  const ignoreEmpty = rr?.ignore_empty === true;
  return {
    name: f.name,
    visit(v, path, ctx) {
      if (!Array.isArray(v)) {
        violation(ctx.out, path, `expected an array (repeated ${f.type}), got ${describe(v)}`);
        return;
      }
      for (let i = 0; i < v.length; i++) {
        const x: unknown = v[i];
        if (x === null || x === undefined) violation(ctx.out, `${path}[${i}]`, `repeated ${f.type} element must not be ${String(x)}`);
        else item.visit(x, `${path}[${i}]`, ctx);
      }
      if (!ctx.rules || (ignoreEmpty && v.length === 0)) return;
      count?.(v.length, path, ctx.out);
      if (unique) {
        const seen = new Map<string, number>();
        v.forEach((x: unknown, i) => {
          const k = item.key(x);
          const j = seen.get(k);
          if (j === undefined) seen.set(k, i);
          else violation(ctx.out, `${path}[${i}]`, `repeated.unique: repeated value must contain unique items, item ${i} repeats item ${j}`);
        });
      }
    },
    absent: count === undefined || ignoreEmpty ? undefined : (path, ctx) => count(0, path, ctx.out),
  };
}

/** A map field; `elemOf` compiles the value type with the given rules and rule-name prefix. */
export function mapField(f: protobuf.MapField, rules: Obj | undefined, elemOf: (rules: Obj | undefined, prefix: string) => Elem): FieldCheck {
  const mr = obj(rules?.map);
  const keyKind = f.keyType as ScalarKind;
  const kr = obj(obj(mr?.keys)?.[keyKind]);
  const keyCheck = kr && scalarCheck(keyKind, kr, `map.keys.${keyKind}`);
  const value = elemOf(obj(mr?.values), 'map.values.');
  const count = combine(countChecks(mr, 'map', 'min_pairs', 'max_pairs', 'pair(s)'));
  const noSparse = mr?.no_sparse === true;
  const ignoreEmpty = mr?.ignore_empty === true;
  return {
    name: f.name,
    visit(v, path, ctx) {
      if (!isObj(v)) {
        violation(ctx.out, path, `expected an object (map<${keyKind}, ${f.type}>), got ${describe(v)}`);
        return;
      }
      const keys = Object.keys(v);
      for (const k of keys) {
        const p = `${path}[${JSON.stringify(k)}]`;
        const nk = mapKey(keyKind, k);
        if (nk === undefined) violation(ctx.out, p, `map key ${JSON.stringify(k)} is not a valid ${keyKind}`);
        else if (keyCheck !== undefined && ctx.rules) keyCheck(nk, p, ctx.out);
        const x = v[k];
        if (x === null || x === undefined) {
          violation(ctx.out, p, noSparse ? 'map.no_sparse: map values must not be null' : `map value must not be ${String(x)}`);
        } else value.visit(x, p, ctx);
      }
      if (ctx.rules && !(ignoreEmpty && keys.length === 0)) count?.(keys.length, path, ctx.out);
    },
    absent: count === undefined || ignoreEmpty ? undefined : (path, ctx) => count(0, path, ctx.out),
  };
}
