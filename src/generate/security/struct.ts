/**
 * Plain JSON → google.protobuf.Struct in the shape meshd's protobufjs root encodes. protobufjs
 * defines the Struct family itself, in camelCase (`stringValue`), whatever keepCase says, and
 * silently drops snake_case keys there; src/xds/struct.ts reads the same spelling back.
 */
import type { ProtoObject, ProtoValue } from '../types';

export type JsonLike = null | boolean | number | string | JsonLike[] | { [k: string]: JsonLike };

function value(v: JsonLike): ProtoObject {
  if (v === null) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
  return { structValue: toStruct(v) };
}

export function toStruct(o: { [k: string]: JsonLike }): ProtoObject {
  const fields: Record<string, ProtoValue> = {};
  for (const [k, v] of Object.entries(o)) fields[k] = value(v);
  return { fields };
}
