/**
 * google.protobuf.Struct (as protobufjs decodes it) → plain JS values. protobufjs supplies the
 * Struct family from its own bundled definitions, whose fields are camelCase whatever keepCase says.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

interface PbValue {
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: PbStruct;
  listValue?: { values?: PbValue[] };
}
export interface PbStruct {
  fields?: Record<string, PbValue>;
}

const has = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

function valueToJs(v: PbValue): JsonValue {
  // Decoded messages carry only the member that was set as an own property (proto3 oneof).
  if (has(v, 'stringValue')) return v.stringValue ?? '';
  if (has(v, 'numberValue')) return v.numberValue ?? 0;
  if (has(v, 'boolValue')) return v.boolValue ?? false;
  if (has(v, 'structValue')) return structToJs(v.structValue);
  if (has(v, 'listValue')) return (v.listValue?.values ?? []).map(valueToJs);
  return null;
}

export function structToJs(s: PbStruct | undefined | null): { [k: string]: JsonValue } {
  const out: { [k: string]: JsonValue } = {};
  // A client's `__proto__` key would replace the object's prototype: it is dropped.
  for (const [k, v] of Object.entries(s?.fields ?? {})) if (k !== '__proto__') out[k] = valueToJs(v);
  return out;
}
