/**
 * Envoy's proto JSON (what an EnvoyFilter patch value is written in: lowerCamel or proto field
 * names, durations as "5s", wrappers as bare values, Struct as plain JSON, Any as `@type` plus
 * the message's fields) → meshd's resource shape (proto field names, Duration as
 * {seconds, nanos}, wrappers as {value}, Any as `{'@type', …fields}`), walking the message types
 * of Envoy's API. What istiod's BuildXDSObjectFromStruct does with jsonpb; an unknown field or an
 * Any type Envoy's API does not have is an error, naming the field path.
 */
import * as protobuf from 'protobufjs';
import type { ProtoObject, ProtoValue } from '../types';

/** What the conversion needs: message types by full name or type URL. */
export interface ProtoTypes {
  type(name: string): protobuf.Type;
}

export class PatchValueError extends Error {}

const WRAPPERS = new Set(
  ['DoubleValue', 'FloatValue', 'Int64Value', 'UInt64Value', 'Int32Value', 'UInt32Value', 'BoolValue', 'StringValue', 'BytesValue'].map((n) => `.google.protobuf.${n}`),
);

type Json = null | boolean | number | string | readonly Json[] | { readonly [k: string]: Json };

function isObj(v: unknown): v is { readonly [k: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** A field by its proto name or its JSON (lowerCamel) name. */
export function fieldOf(t: protobuf.Type, key: string): protobuf.Field | undefined {
  const direct = t.fields[key];
  if (direct) return direct;
  for (const f of t.fieldsArray) if (camel(f.name) === key || (f.options?.['json_name'] as string | undefined) === key) return f;
  return undefined;
}

/** The name a type gives a field spelled `snake` (protobufjs's own google.protobuf types are camelCase). */
function own(t: protobuf.Type, snake: string): string {
  return t.fields[snake] ? snake : camel(snake);
}

export function parseDurationJson(s: string, path: string): ProtoObject {
  const m = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(s);
  if (!m) throw new PatchValueError(`${path}: invalid duration ${JSON.stringify(s)} (want e.g. "1.5s")`);
  const sign = m[1] ? -1 : 1;
  const seconds = Number(m[2]) * sign;
  const nanos = m[3] ? Number(m[3].padEnd(9, '0')) * sign : 0;
  return nanos !== 0 ? { seconds, nanos } : { seconds };
}

function jsonToValue(t: protobuf.Type, v: Json, types: ProtoTypes): ProtoObject {
  if (v === null) return { [own(t, 'null_value')]: 'NULL_VALUE' };
  if (typeof v === 'number') return { [own(t, 'number_value')]: v };
  if (typeof v === 'string') return { [own(t, 'string_value')]: v };
  if (typeof v === 'boolean') return { [own(t, 'bool_value')]: v };
  if (Array.isArray(v)) return { [own(t, 'list_value')]: jsonToList(types.type('google.protobuf.ListValue'), v, types) };
  return { [own(t, 'struct_value')]: jsonToStruct(types.type('google.protobuf.Struct'), v as { readonly [k: string]: Json }, types) };
}

function jsonToList(_t: protobuf.Type, v: readonly Json[], types: ProtoTypes): ProtoObject {
  const value = types.type('google.protobuf.Value');
  return { values: v.map((e) => jsonToValue(value, e, types)) };
}

function jsonToStruct(_t: protobuf.Type, v: { readonly [k: string]: Json }, types: ProtoTypes): ProtoObject {
  const value = types.type('google.protobuf.Value');
  const fields: ProtoObject = {};
  for (const [k, e] of Object.entries(v)) if (k !== '__proto__') fields[k] = jsonToValue(value, e, types);
  return { fields };
}

function scalar(f: protobuf.Field, v: Json, path: string): ProtoValue {
  if (f.resolvedType instanceof protobuf.Enum) {
    const e = f.resolvedType;
    if (typeof v === 'string') {
      if (e.values[v] === undefined) throw new PatchValueError(`${path}: unknown value ${JSON.stringify(v)} for enum ${e.fullName.slice(1)}`);
      return v;
    }
    if (typeof v === 'number') return v;
    throw new PatchValueError(`${path}: want an enum name or number`);
  }
  switch (f.type) {
    case 'bool':
      if (typeof v !== 'boolean') throw new PatchValueError(`${path}: want a boolean`);
      return v;
    case 'string':
    case 'bytes':
      if (typeof v !== 'string') throw new PatchValueError(`${path}: want a string`);
      return v;
    case 'double':
    case 'float':
      if (typeof v === 'number') return v;
      if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
      throw new PatchValueError(`${path}: want a number`);
    default: {
      // Integers; 64-bit ones may be strings in proto JSON.
      const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n)) throw new PatchValueError(`${path}: want an integer`);
      return n;
    }
  }
}

function convertField(f: protobuf.Field, v: Json, path: string, types: ProtoTypes): ProtoValue {
  const rt = f.resolvedType;
  if (rt instanceof protobuf.Type) return convertMessage(rt, v, path, types);
  return scalar(f, v, path);
}

/** One message's JSON → meshd's shape. */
export function convertMessage(t: protobuf.Type, v: Json, path: string, types: ProtoTypes): ProtoObject {
  const full = t.fullName;
  if (full === '.google.protobuf.Duration') {
    if (typeof v === 'string') return parseDurationJson(v, path);
  } else if (WRAPPERS.has(full)) {
    if (!isObj(v)) return { value: scalar(t.fields['value'] as protobuf.Field, v, path) };
  } else if (full === '.google.protobuf.Struct') {
    if (!isObj(v)) throw new PatchValueError(`${path}: want an object`);
    return jsonToStruct(t, v, types);
  } else if (full === '.google.protobuf.Value') {
    return jsonToValue(t, v, types);
  } else if (full === '.google.protobuf.ListValue') {
    if (!Array.isArray(v)) throw new PatchValueError(`${path}: want a list`);
    return jsonToList(t, v as readonly Json[], types);
  } else if (full === '.google.protobuf.Any') {
    return convertAny(v, path, types);
  }
  if (!isObj(v)) throw new PatchValueError(`${path}: want an object for ${full.slice(1)}`);
  const out: ProtoObject = {};
  for (const [k, e] of Object.entries(v)) {
    const f = fieldOf(t, k);
    if (!f) throw new PatchValueError(`${path ? `${path}.` : ''}${k}: unknown field in ${full.slice(1)}`);
    // null is "not set" in proto JSON (google.protobuf.Value aside, handled above).
    if (e === null) continue;
    const at = `${path ? `${path}.` : ''}${k}`;
    if (f.map) {
      if (!isObj(e)) throw new PatchValueError(`${at}: want an object`);
      const m: ProtoObject = {};
      for (const [mk, mv] of Object.entries(e)) if (mk !== '__proto__') m[mk] = convertField(f, mv, `${at}.${mk}`, types);
      out[f.name] = m;
    } else if (f.repeated) {
      if (!Array.isArray(e)) throw new PatchValueError(`${at}: want a list`);
      out[f.name] = (e as readonly Json[]).map((x, i) => convertField(f, x, `${at}[${i}]`, types));
    } else {
      out[f.name] = convertField(f, e, at, types);
    }
  }
  return out;
}

/** An Any: `@type` names the message; its fields (or `value`, for the well-known types) follow. */
export function convertAny(v: Json, path: string, types: ProtoTypes): ProtoObject {
  if (!isObj(v)) throw new PatchValueError(`${path}: want an object with @type`);
  const url = v['@type'];
  if (typeof url !== 'string' || url === '') throw new PatchValueError(`${path}: @type is required`);
  let t: protobuf.Type;
  try {
    t = types.type(url);
  } catch {
    throw new PatchValueError(`${path}: referenced type unknown: could not resolve Any message type: ${url}`);
  }
  const rest: { [k: string]: Json } = {};
  for (const [k, e] of Object.entries(v)) if (k !== '@type') rest[k] = e;
  const special = t.fullName === '.google.protobuf.Duration' || t.fullName === '.google.protobuf.Struct' || t.fullName === '.google.protobuf.Value' || WRAPPERS.has(t.fullName);
  const body = special && 'value' in rest ? convertMessage(t, rest['value'] as Json, `${path}.value`, types) : convertMessage(t, rest, path, types);
  return { '@type': url, ...body };
}
