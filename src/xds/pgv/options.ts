/** Reading protoc-gen-validate options (`(validate.rules)`, `(validate.required)`, ...) off protobufjs reflection objects. */
import type * as protobuf from 'protobufjs';
import { hasOwn, isObj, type Obj } from './common';

/** `(validate.rules)` of a field: flattened `options` keys, overlaid with `parsedOptions` (lossless). */
export function fieldRules(f: protobuf.ReflectionObject): Obj | undefined {
  let merged: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(f.options ?? {})) {
    if (k === '(validate.rules)' && isObj(v)) merged = deepMerge(merged ?? {}, v);
    else if (k.startsWith('(validate.rules).')) {
      merged ??= {};
      let at = merged;
      const parts = k.slice('(validate.rules).'.length).split('.');
      for (const part of parts.slice(0, -1)) {
        const next = at[part];
        at = isObj(next) ? (next as Record<string, unknown>) : (at[part] = {});
      }
      at[parts[parts.length - 1]] = v;
    }
  }
  for (const r of parsedOption(f, '(validate.rules)')) if (isObj(r)) merged = deepMerge(merged ?? {}, r);
  return merged;
}
function parsedOption(o: protobuf.ReflectionObject, name: string): unknown[] {
  const parsed: unknown = o.parsedOptions;
  if (!Array.isArray(parsed)) return [];
  return parsed.filter((p): p is Obj => isObj(p) && hasOwn(p, name)).map((p) => p[name]);
}
export function boolOption(o: protobuf.ReflectionObject, name: string): boolean {
  return o.options?.[name] === true || parsedOption(o, name).includes(true);
}
function deepMerge(into: Record<string, unknown>, from: Obj): Record<string, unknown> {
  for (const [k, v] of Object.entries(from)) {
    const cur = into[k];
    into[k] = isObj(v) && isObj(cur) ? deepMerge({ ...cur }, v) : v;
  }
  return into;
}
