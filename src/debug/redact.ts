/**
 * Envoy's redaction of sensitive fields in config dumps (MessageUtil::redact): every field
 * Envoy's protos mark `(udpa.annotations.sensitive)` (private keys, passwords, session ticket
 * keys, generic secrets) has each string and bytes value inside it replaced by `[redacted]`.
 * Works on decoded resources (bytes as base64, Any as `{'@type': …}`), driven by the protos.
 */
import type * as protobuf from 'protobufjs';
import type { EnvoyProtos } from '../xds/protos';

const SENSITIVE = '(udpa.annotations.sensitive)';
const REDACTED = '[redacted]';
const REDACTED_BYTES = Buffer.from(REDACTED, 'utf8').toString('base64');

type Json = unknown;

/** Every string/bytes leaf below a sensitive field → `[redacted]` (bytes: the base64 of it). */
function wipe(value: Json, type: protobuf.Type | undefined): Json {
  if (Array.isArray(value)) return value.map((v) => wipe(v, type));
  if (typeof value === 'string') return REDACTED;
  if (!value || typeof value !== 'object') return value;
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(value as Record<string, Json>)) {
    if (k === '@type') {
      out[k] = v;
      continue;
    }
    const field = type?.fields[k];
    if (field?.type === 'bytes') out[k] = Array.isArray(v) ? v.map(() => REDACTED_BYTES) : REDACTED_BYTES;
    else out[k] = wipe(v, field?.resolvedType && 'fields' in field.resolvedType ? (field.resolvedType as protobuf.Type) : undefined);
  }
  return out;
}

function typeOfAny(protos: EnvoyProtos, obj: Record<string, Json>): protobuf.Type | undefined {
  const url = obj['@type'];
  if (typeof url !== 'string') return undefined;
  try {
    return protos.type(url);
  } catch {
    return undefined;
  }
}

/** A copy of a decoded message of `type` with its sensitive fields redacted. */
function redactMessage(protos: EnvoyProtos, value: Json, type: protobuf.Type | undefined): Json {
  if (Array.isArray(value)) return value.map((v) => redactMessage(protos, v, type));
  if (!value || typeof value !== 'object') return value;
  const obj = value as Record<string, Json>;
  // An Any carries its own type; unknown types are wiped whole rather than shown.
  const t = type?.fullName === '.google.protobuf.Any' || (!type && '@type' in obj) ? typeOfAny(protos, obj) : type;
  if (!t) return '@type' in obj ? wipe(obj, undefined) : obj;
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(obj)) {
    const field = t.fields[k];
    if (!field) {
      out[k] = v;
      continue;
    }
    const sub = field.resolvedType && 'fields' in field.resolvedType ? (field.resolvedType as protobuf.Type) : undefined;
    const isMap = 'keyType' in field && v !== null && typeof v === 'object';
    if (field.options?.[SENSITIVE] === true) out[k] = field.type === 'bytes' ? REDACTED_BYTES : wipe(v, sub);
    else if (isMap) out[k] = Object.fromEntries(Object.entries(v as Record<string, Json>).map(([mk, mv]) => [mk, sub ? redactMessage(protos, mv, sub) : mv]));
    else out[k] = sub ? redactMessage(protos, v, sub) : v;
  }
  return out;
}

/** A decoded resource of `typeUrl` (as `protos.decode` returns it) with Envoy's sensitive fields redacted. */
export function redactSensitive(protos: EnvoyProtos, typeUrl: string, resource: Record<string, unknown>): Record<string, unknown> {
  return redactMessage(protos, resource, protos.type(typeUrl)) as Record<string, unknown>;
}
