/**
 * Canonical proto3 JSON (https://protobuf.dev/programming-guides/json/) of a decoded message, as
 * Envoy's admin `/config_dump` and Go's protojson print it, driven by the protobufjs types:
 *
 * - field names lowerCamelCase (protoc's json_name rule, or the field's `json_name`);
 * - scalars at their default are left out, unless the field tracks presence (a oneof member, a
 *   proto3 `optional`); 64-bit integers are strings; bytes are base64; enums are their names;
 *   NaN and the infinities are strings; a float prints the shortest text that reads back to it;
 * - the well-known types: Duration `"1.5s"`, Timestamp RFC 3339 in UTC, wrappers as their bare
 *   value, Struct/Value/ListValue as plain JSON, FieldMask as a comma list, Any as the embedded
 *   message's fields beside `@type` (or `{"@type", "value"}` for an embedded well-known type).
 *
 * protobufjs's own toObject has no well-known-type mapping but Any's, so this walks the
 * reflection itself; the tests check its output against Google's own proto3 JSON parser.
 */
import * as protobuf from 'protobufjs';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

/** Finds the message type of an Any's type URL; undefined: not known. */
export type TypeResolver = (typeUrl: string) => protobuf.Type | undefined;

export class ProtoJsonError extends Error {
  readonly code = 'PROTO_JSON';
}

const WRAPPERS = new Set(['DoubleValue', 'FloatValue', 'Int64Value', 'UInt64Value', 'Int32Value', 'UInt32Value', 'BoolValue', 'StringValue', 'BytesValue']);
const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

/** protoc's ToJsonName: each `_` is dropped and the character after it upper-cased. */
export function jsonName(field: protobuf.FieldBase): string {
  const explicit = field.options?.['json_name'];
  if (typeof explicit === 'string') return explicit;
  let out = '';
  let upper = false;
  for (const c of field.name) {
    if (c === '_') upper = true;
    else {
      out += upper ? c.toUpperCase() : c;
      upper = false;
    }
  }
  return out;
}

const isLong = (v: unknown): v is protobuf.Long => typeof v === 'object' && v !== null && 'low' in v && 'high' in v;

function bigOf(v: unknown): bigint {
  if (isLong(v)) {
    const lo = BigInt(v.low >>> 0);
    const hi = BigInt(v.high >>> 0);
    const u = (hi << 32n) | lo;
    return v.unsigned ? u : BigInt.asIntN(64, u);
  }
  if (typeof v === 'number') return BigInt(Math.trunc(v));
  if (typeof v === 'string') return BigInt(v);
  return 0n;
}

/** The shortest decimal that reads back to the same 32-bit float. */
function shortestFloat(v: number): number {
  for (let p = 1; p <= 9; p++) {
    const c = Number(v.toPrecision(p));
    if (Math.fround(c) === v) return c;
  }
  return v;
}

function floating(v: number, single: boolean): JsonValue {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  return single ? shortestFloat(v) : v;
}

function bytesOf(v: unknown): Buffer {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (typeof v === 'string') return Buffer.from(v, 'base64');
  return Buffer.alloc(0);
}

/** Fraction digits as proto3 JSON prints them: none, 3, 6 or 9. */
function fraction(nanos: number): string {
  if (nanos === 0) return '';
  if (nanos % 1_000_000 === 0) return `.${String(nanos / 1_000_000).padStart(3, '0')}`;
  if (nanos % 1_000 === 0) return `.${String(nanos / 1_000).padStart(6, '0')}`;
  return `.${String(nanos).padStart(9, '0')}`;
}

function duration(m: Record<string, unknown>): string {
  const seconds = bigOf(m['seconds']);
  const nanos = Number(m['nanos'] ?? 0);
  if ((seconds > 0n && nanos < 0) || (seconds < 0n && nanos > 0) || Math.abs(nanos) > 999_999_999) throw new ProtoJsonError(`invalid Duration: ${seconds}s ${nanos}ns`);
  const negative = seconds < 0n || nanos < 0;
  const abs = seconds < 0n ? -seconds : seconds;
  return `${negative ? '-' : ''}${abs}${fraction(Math.abs(nanos))}s`;
}

function timestamp(m: Record<string, unknown>): string {
  const seconds = bigOf(m['seconds']);
  const nanos = Number(m['nanos'] ?? 0);
  // 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z
  if (seconds < -62135596800n || seconds > 253402300799n || nanos < 0 || nanos > 999_999_999) throw new ProtoJsonError(`invalid Timestamp: ${seconds}s ${nanos}ns`);
  const iso = new Date(Number(seconds) * 1000).toISOString(); // …T12:34:56.000Z
  return `${iso.slice(0, 19)}${fraction(nanos)}Z`;
}

export class ProtoJson {
  constructor(private readonly resolve: TypeResolver) {}

  /** The proto3 JSON of `message`, a decoded message (or plain object of the same shape) of `type`. */
  message(type: protobuf.Type, message: object): JsonValue {
    const m = message as Record<string, unknown>;
    const wkt = this.wellKnown(type, m);
    if (wkt !== undefined) return wkt;
    const out: { [k: string]: JsonValue } = {};
    for (const field of type.fieldsArray) {
      field.resolve();
      const has = Object.prototype.hasOwnProperty.call(m, field.name);
      const v = has ? m[field.name] : undefined;
      if (v === undefined || v === null) continue;
      if (field instanceof protobuf.MapField) {
        const entries = Object.entries(v as Record<string, unknown>);
        if (entries.length === 0) continue;
        out[jsonName(field)] = Object.fromEntries(entries.map(([k, x]) => [k, this.value(field, x)]));
      } else if (field.repeated) {
        const list = v as unknown[];
        if (list.length === 0) continue;
        out[jsonName(field)] = list.map((x) => this.value(field, x));
      } else {
        // A field that tracks presence (oneof member, proto3 optional, message) is shown when set;
        // other scalars only when not at their default.
        const tracked = field.partOf !== null || field.resolvedType instanceof protobuf.Type;
        if (!tracked && isDefault(field, v)) continue;
        out[jsonName(field)] = this.value(field, v);
      }
    }
    return out;
  }

  private value(field: protobuf.FieldBase, v: unknown): JsonValue {
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Type) return this.message(rt, v as object);
    if (rt instanceof protobuf.Enum) {
      if (rt.fullName === '.google.protobuf.NullValue') return null;
      const n = typeof v === 'string' ? rt.values[v] : Number(v);
      return (n !== undefined ? rt.valuesById[n] : undefined) ?? (typeof v === 'string' ? v : Number(v));
    }
    return scalar(field.type, v);
  }

  /** Any, Duration, Timestamp, wrappers, Struct, Value, ListValue, FieldMask; undefined for other types. */
  private wellKnown(type: protobuf.Type, m: Record<string, unknown>): JsonValue | undefined {
    const name = type.fullName;
    if (!name.startsWith('.google.protobuf.')) return undefined;
    const short = name.slice('.google.protobuf.'.length);
    const get = (snake: string, camel: string): unknown => m[snake] ?? m[camel];
    switch (short) {
      case 'Any':
        return this.any(get('type_url', 'typeUrl'), get('value', 'value'));
      case 'Duration':
        return duration(m);
      case 'Timestamp':
        return timestamp(m);
      case 'Struct':
        return this.struct(m);
      case 'Value':
        return this.structValue(m);
      case 'ListValue':
        return ((m['values'] as unknown[] | undefined) ?? []).map((x) => this.structValue(x as Record<string, unknown>));
      case 'FieldMask':
        return ((m['paths'] as string[] | undefined) ?? []).map((p) => p.replace(/_([a-z0-9])/g, (_s, c: string) => c.toUpperCase())).join(',');
      default:
        if (!WRAPPERS.has(short)) return undefined;
        return scalar(type.fields['value']?.type ?? 'string', m['value'] ?? defaultOf(type.fields['value']?.type ?? 'string'));
    }
  }

  private any(typeUrl: unknown, value: unknown): JsonValue {
    if (typeof typeUrl !== 'string' || typeUrl === '') return {};
    const inner = this.resolve(typeUrl);
    if (!inner) throw new ProtoJsonError(`Any of unknown type ${typeUrl}: cannot print it as proto3 JSON`);
    const decoded = inner.decode(bytesOf(value)) as unknown as Record<string, unknown>;
    const json = this.message(inner, decoded);
    if (this.wellKnown(inner, decoded) !== undefined) return { '@type': typeUrl, value: json };
    return { '@type': typeUrl, ...(json as { [k: string]: JsonValue }) };
  }

  private struct(m: Record<string, unknown>): JsonValue {
    const out: { [k: string]: JsonValue } = {};
    for (const [k, v] of Object.entries((m['fields'] as Record<string, unknown> | undefined) ?? {})) out[k] = this.structValue(v as Record<string, unknown>);
    return out;
  }

  private structValue(v: Record<string, unknown>): JsonValue {
    const own = (k: string): boolean => Object.prototype.hasOwnProperty.call(v, k);
    if (own('null_value') || own('nullValue')) return null;
    if (own('number_value') || own('numberValue')) {
      const n = Number(v['number_value'] ?? v['numberValue']);
      if (!Number.isFinite(n)) throw new ProtoJsonError(`a Struct number must be finite, not ${n}`);
      return n;
    }
    if (own('string_value') || own('stringValue')) return String(v['string_value'] ?? v['stringValue']);
    if (own('bool_value') || own('boolValue')) return Boolean(v['bool_value'] ?? v['boolValue']);
    if (own('struct_value') || own('structValue')) return this.struct((v['struct_value'] ?? v['structValue']) as Record<string, unknown>);
    if (own('list_value') || own('listValue')) {
      const l = (v['list_value'] ?? v['listValue']) as { values?: unknown[] };
      return (l.values ?? []).map((x) => this.structValue(x as Record<string, unknown>));
    }
    throw new ProtoJsonError('a google.protobuf.Value with no kind set has no JSON form');
  }
}

function defaultOf(type: string): unknown {
  if (type === 'bool') return false;
  if (type === 'string') return '';
  if (type === 'bytes') return new Uint8Array(0);
  return 0;
}

function isDefault(field: protobuf.FieldBase, v: unknown): boolean {
  if (field.resolvedType instanceof protobuf.Enum) return Number(typeof v === 'string' ? field.resolvedType.values[v] : v) === 0;
  if (LONG_TYPES.has(field.type)) return bigOf(v) === 0n;
  if (field.type === 'bytes') return bytesOf(v).length === 0;
  if (field.type === 'string') return v === '';
  if (field.type === 'bool') return v === false;
  // 0 and -0 alike.
  return v === 0;
}

function scalar(type: string, v: unknown): JsonValue {
  if (LONG_TYPES.has(type)) return String(bigOf(v));
  switch (type) {
    case 'double':
      return floating(Number(v), false);
    case 'float':
      return floating(Number(v), true);
    case 'bool':
      return Boolean(v);
    case 'string':
      return String(v);
    case 'bytes':
      return bytesOf(v).toString('base64');
    default:
      return Number(v);
  }
}
