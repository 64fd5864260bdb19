/**
 * Proto3 JSON (what Envoy reads from a bootstrap file: durations as "1s", Struct as plain JSON,
 * wrappers as bare values, Any with "@type") → the plain-object form protobufjs and the
 * validate.rules checker take. Driven by the message types, so a key that is not a field is
 * kept as is for the checker to report.
 */
import * as protobuf from 'protobufjs';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const WRAPPERS = new Set(
  ['DoubleValue', 'FloatValue', 'Int64Value', 'UInt64Value', 'Int32Value', 'UInt32Value', 'BoolValue', 'StringValue', 'BytesValue'].map((n) => `.google.protobuf.${n}`),
);

function duration(s: unknown): unknown {
  if (typeof s !== 'string') return s;
  const m = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(s);
  if (!m) throw new Error(`not a proto3 JSON duration: ${JSON.stringify(s)}`);
  const sign = m[1] === '-' ? -1 : 1;
  return { seconds: sign * Number(m[2]), nanos: sign * Number((m[3] ?? '').padEnd(9, '0')) };
}

function structValue(root: protobuf.Root, v: unknown): Obj {
  const t = root.lookupType('google.protobuf.Value');
  const f = (snake: string, camel: string): string => (t.fields[snake] ? snake : camel);
  if (v === null) return { [f('null_value', 'nullValue')]: 'NULL_VALUE' };
  if (typeof v === 'number') return { [f('number_value', 'numberValue')]: v };
  if (typeof v === 'string') return { [f('string_value', 'stringValue')]: v };
  if (typeof v === 'boolean') return { [f('bool_value', 'boolValue')]: v };
  if (Array.isArray(v)) return { [f('list_value', 'listValue')]: { values: v.map((x) => structValue(root, x)) } };
  return { [f('struct_value', 'structValue')]: struct(root, v) };
}

function struct(root: protobuf.Root, v: unknown): Obj {
  if (!isObj(v)) throw new Error('a Struct must be a JSON object');
  const fields: Obj = {};
  for (const [k, x] of Object.entries(v)) fields[k] = structValue(root, x);
  return { fields };
}

function value(root: protobuf.Root, field: protobuf.FieldBase, v: unknown): unknown {
  field.resolve();
  const rt = field.resolvedType;
  if (!(rt instanceof protobuf.Type)) return v;
  const name = rt.fullName;
  if (name === '.google.protobuf.Duration') return duration(v);
  if (name === '.google.protobuf.Struct') return struct(root, v);
  if (name === '.google.protobuf.Value') return structValue(root, v);
  if (WRAPPERS.has(name)) return isObj(v) ? v : { value: v };
  return message(root, rt, v);
}

/** Converts `v` (proto3 JSON of message type `t`). */
export function message(root: protobuf.Root, t: protobuf.Type, v: unknown): unknown {
  if (!isObj(v)) return v;
  if (t.fullName === '.google.protobuf.Any') {
    const url = v['@type'];
    if (typeof url !== 'string') return v;
    const inner = root.lookupType(url.slice(url.lastIndexOf('/') + 1));
    const { '@type': _drop, ...rest } = v;
    return { '@type': url, ...(message(root, inner, rest) as Obj) };
  }
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) {
    const field = t.fields[k];
    if (!field) {
      out[k] = x;
    } else if (field instanceof protobuf.MapField) {
      out[k] = isObj(x) ? Object.fromEntries(Object.entries(x).map(([mk, mv]) => [mk, value(root, field, mv)])) : x;
    } else if (field.repeated) {
      out[k] = Array.isArray(x) ? x.map((e) => value(root, field, e)) : x;
    } else {
      out[k] = value(root, field, x);
    }
  }
  return out;
}
