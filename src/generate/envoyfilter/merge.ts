/**
 * proto.Merge on meshd's resource shape, as istiod's pkg/proto/merge does it: repeated fields
 * append, map entries are replaced, messages merge field by field, scalars replace (a proto3
 * scalar at its default value counts as unset and replaces nothing), setting one member of a
 * oneof clears the others, and a Duration or an Any is replaced whole. Never mutates its inputs.
 */
import * as protobuf from 'protobufjs';
import type { ProtoObject, ProtoValue } from '../types';
import type { ProtoTypes } from './proto-json';

function isObj(v: ProtoValue | undefined): v is ProtoObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Whether a set proto3 scalar holds its default (and so is not "populated"). */
function isDefault(f: protobuf.Field, v: ProtoValue): boolean {
  if (f.partOf || f.options?.['proto3_optional']) return false;
  if (f.resolvedType instanceof protobuf.Enum) {
    const zero = Object.entries(f.resolvedType.values).find(([, n]) => n === 0)?.[0];
    return v === 0 || v === zero;
  }
  return v === 0 || v === '' || v === false;
}

export function protoMerge(t: protobuf.Type, dst: ProtoObject, src: ProtoObject, types: ProtoTypes): ProtoObject {
  if (t.fullName === '.google.protobuf.Any') return mergeAnyReplace(dst, src);
  if (t.fullName === '.google.protobuf.Duration') return { ...src };
  const out: ProtoObject = { ...dst };
  for (const [k, v] of Object.entries(src)) {
    if (v === undefined) continue;
    const f = t.fields[k];
    if (!f) {
      out[k] = v;
      continue;
    }
    if (f.partOf && !f.partOf.name.startsWith('_')) for (const other of f.partOf.fieldsArray) if (other.name !== k) delete out[other.name];
    const rt = f.resolvedType;
    if (f.map) {
      out[k] = { ...(isObj(out[k]) ? out[k] : {}), ...(isObj(v) ? v : {}) };
    } else if (f.repeated) {
      const before = Array.isArray(out[k]) ? out[k] : [];
      out[k] = [...before, ...(Array.isArray(v) ? v : [])];
    } else if (rt instanceof protobuf.Type) {
      const cur = out[k];
      out[k] = isObj(cur) && isObj(v) ? protoMerge(rt, cur, v, types) : v;
    } else if (!isDefault(f, v)) {
      out[k] = v;
    } else if (f.partOf) {
      out[k] = v;
    }
  }
  return out;
}

/** proto.Merge of two Anys: type_url and value are both replaced, so the source wins whole. */
function mergeAnyReplace(_dst: ProtoObject, src: ProtoObject): ProtoObject {
  return { ...src };
}

/**
 * istiod's util.MergeAnyWithAny: both Anys unpacked to their message, merged, packed again. The
 * source's type is taken to be the destination's (istiod swaps the type URL before merging).
 */
export function mergeAnyWithAny(dst: ProtoObject, src: ProtoObject, types: ProtoTypes): ProtoObject {
  const url = dst['@type'];
  if (typeof url !== 'string') return { ...src };
  const t = types.type(url);
  const strip = (o: ProtoObject): ProtoObject => {
    const r: ProtoObject = { ...o };
    delete r['@type'];
    return r;
  };
  return { '@type': url, ...protoMerge(t, strip(dst), strip(src), types) };
}
