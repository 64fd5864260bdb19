/**
 * A small structural schema, walked once per object: JSON types, integer ranges, enums, and
 * (for closed objects) unknown fields, the way Kubernetes' strict field validation and Istio's
 * strict decoding reject them. Semantic rules run afterwards and assume nothing about types.
 */
import { Issues, isRecord, pathIdx, pathKey, typeName } from './common';

export type Schema =
  | { readonly t: 'string'; readonly values?: readonly string[] }
  | { readonly t: 'int'; readonly min: number; readonly max: number }
  | { readonly t: 'number' }
  | { readonly t: 'bool' }
  | { readonly t: 'intOrString' }
  | { readonly t: 'any' }
  | { readonly t: 'array'; readonly items: Schema }
  | { readonly t: 'map'; readonly values: Schema }
  | { readonly t: 'object'; readonly fields: Readonly<Record<string, Schema>>; readonly open: boolean };

export const str: Schema = { t: 'string' };
export const bool: Schema = { t: 'bool' };
export const number: Schema = { t: 'number' };
export const any: Schema = { t: 'any' };
export const intOrString: Schema = { t: 'intOrString' };
/** protobuf int32 / uint32 ranges. */
export const i32: Schema = { t: 'int', min: -2147483648, max: 2147483647 };
export const u32: Schema = { t: 'int', min: 0, max: 4294967295 };

export function oneOf(...values: string[]): Schema {
  return { t: 'string', values };
}
export function arrayOf(items: Schema): Schema {
  return { t: 'array', items };
}
export function mapOf(values: Schema): Schema {
  return { t: 'map', values };
}
/** An object whose unknown fields are errors (Istio CRDs). */
export function closed(fields: Record<string, Schema>): Schema {
  return { t: 'object', fields, open: false };
}
/** An object whose unknown fields are ignored (Kubernetes kinds where meshd reads a few fields). */
export function open(fields: Record<string, Schema>): Schema {
  return { t: 'object', fields, open: true };
}

/** Walks `value` against `schema`, reporting into `issues`. `null` object fields count as unset. */
export function checkSchema(value: unknown, schema: Schema, path: string, issues: Issues): void {
  switch (schema.t) {
    case 'any':
      return;
    case 'string':
      if (typeof value !== 'string') return issues.add(path, mustBe('a string', value));
      if (schema.values && !schema.values.includes(value)) {
        issues.add(path, `must be one of ${schema.values.join(', ')} (got ${JSON.stringify(value)})`);
      }
      return;
    case 'bool':
      if (typeof value !== 'boolean') issues.add(path, mustBe('true or false', value));
      return;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) issues.add(path, mustBe('a number', value));
      return;
    case 'int':
      return checkInt(value, schema.min, schema.max, path, issues);
    case 'intOrString':
      if (typeof value === 'string') return;
      return checkInt(value, -2147483648, 2147483647, path, issues, 'an integer or a string');
    case 'array':
      if (!Array.isArray(value)) return issues.add(path, mustBe('a list', value));
      value.forEach((item, i) => {
        if (item === null) issues.add(pathIdx(path, i), 'must not be null');
        else checkSchema(item, schema.items, pathIdx(path, i), issues);
      });
      return;
    case 'map':
      if (!isRecord(value)) return issues.add(path, mustBe('a map', value));
      for (const [k, v] of Object.entries(value)) {
        if (v === null) issues.add(pathKey(path, k), 'must not be null');
        else checkSchema(v, schema.values, pathKey(path, k), issues);
      }
      return;
    case 'object':
      if (!isRecord(value)) return issues.add(path, mustBe('an object', value));
      for (const [k, v] of Object.entries(value)) {
        // Own fields only: `constructor` or `toString` are not fields of any kind.
        const field = Object.prototype.hasOwnProperty.call(schema.fields, k) ? schema.fields[k] : undefined;
        if (field === undefined) {
          // Past the error limit the message is not kept: spare the spelling suggestions.
          if (!schema.open) issues.add(pathKey(path, k), issues.full() ? '' : unknownField(k, Object.keys(schema.fields)));
          continue;
        }
        if (v !== null && v !== undefined) checkSchema(v, field, pathKey(path, k), issues);
      }
      return;
  }
}

function checkInt(value: unknown, min: number, max: number, path: string, issues: Issues, what = 'an integer'): void {
  if (typeof value !== 'number' || !Number.isInteger(value)) return issues.add(path, mustBe(what, value));
  if (value < min || value > max) issues.add(path, `must be between ${min} and ${max} (got ${value})`);
}

function mustBe(what: string, got: unknown): string {
  const shown = typeof got === 'string' || typeof got === 'number' ? ` ${JSON.stringify(got)}` : '';
  return `must be ${what} (got ${typeName(got)}${shown})`;
}

/** Longer keys get no suggestion (no field name is this long; edit distance is quadratic). */
const SUGGEST_MAX_KEY = 64;

function unknownField(key: string, known: string[]): string {
  if (key.length > SUGGEST_MAX_KEY) return `unknown field "${key}"`;
  const near = known
    .map((k) => ({ k, d: editDistance(key.toLowerCase(), k.toLowerCase()) }))
    .filter((x) => x.d <= Math.max(1, Math.floor(x.k.length / 3)))
    .sort((a, b) => a.d - b.d)[0];
  const hint = near ? ` (did you mean "${near.k}"?)` : '';
  return `unknown field "${key}"${hint}`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/**
 * An Istio object's `spec`, walked against its schema. Returns it for the semantic checks, or
 * undefined (after reporting why) when it is missing or not an object.
 */
export function checkSpec(body: Readonly<Record<string, unknown>>, schema: Schema, issues: Issues): Readonly<Record<string, unknown>> | undefined {
  const spec = body['spec'];
  if (spec === undefined || spec === null) {
    issues.add('spec', 'spec is required');
    return undefined;
  }
  checkSchema(spec, schema, 'spec', issues);
  return isRecord(spec) ? spec : undefined;
}
