/** google.protobuf.Struct (as protobufjs decodes it) → plain JS values. */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

interface PbValue {
  number_value?: number;
  string_value?: string;
  bool_value?: boolean;
  struct_value?: PbStruct;
  list_value?: { values?: PbValue[] };
}
export interface PbStruct {
  fields?: Record<string, PbValue>;
}

const has = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

function valueToJs(v: PbValue): JsonValue {
  // Decoded messages carry only the member that was set as an own property (proto3 oneof).
  if (has(v, 'string_value')) return v.string_value ?? '';
  if (has(v, 'number_value')) return v.number_value ?? 0;
  if (has(v, 'bool_value')) return v.bool_value ?? false;
  if (has(v, 'struct_value')) return structToJs(v.struct_value);
  if (has(v, 'list_value')) return (v.list_value?.values ?? []).map(valueToJs);
  return null;
}

export function structToJs(s: PbStruct | undefined | null): { [k: string]: JsonValue } {
  const out: { [k: string]: JsonValue } = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = valueToJs(v);
  return out;
}
