/**
 * Envoy matchers as istiod's authz matcher package builds them: string matchers with Istio's
 * `*` wildcards (prefix `x*`, suffix `*x`, `*` = present / `.+`), header and host matchers,
 * CIDR ranges and metadata matchers.
 */
import { isIPv4 } from 'node:net';
import type { ProtoObject } from '../types';

export const SPIFFE_PREFIX = 'spiffe://';

export function regexMatcher(regex: string): ProtoObject {
  return { safe_regex: { regex } };
}

/** Go's regexp.QuoteMeta. */
export function quoteMeta(s: string): string {
  return s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

/**
 * StringMatcherWithPrefix: `*` → `.+`; `*x` → suffix (with a prefix: the regex
 * `<prefix>.*<x>`); `x*` → prefix; else exact; `prefix` goes in front of the value.
 */
export function stringMatcher(v: string, prefix = ''): ProtoObject {
  if (v === '*') return regexMatcher('.+');
  if (v.startsWith('*')) return prefix ? regexMatcher(`${quoteMeta(prefix)}.*${quoteMeta(v.slice(1))}`) : { suffix: v.slice(1) };
  if (v.endsWith('*')) return { prefix: prefix + v.slice(0, -1) };
  return { exact: prefix + v };
}

/** HeaderMatcher: `*` → present; `*x` suffix; `x*` prefix; else exact. */
export function headerMatcher(name: string, v: string, ignoreCase = false): ProtoObject {
  if (v === '*') return { name, present_match: true };
  const m: ProtoObject = v.startsWith('*') ? { suffix: v.slice(1) } : v.endsWith('*') ? { prefix: v.slice(0, -1) } : { exact: v };
  if (ignoreCase) m.ignore_case = true;
  return { name, string_match: m };
}

/** HostMatcher: a header matcher on `:authority`, case-insensitive. */
export function hostMatcher(v: string): ProtoObject {
  return headerMatcher(':authority', v, true);
}

/** `10.0.0.1` or `10.0.0.0/16` (IPv6 too) → CidrRange. */
export function cidrRange(v: string): ProtoObject {
  const [addr = '', bits] = v.split('/');
  const len = bits !== undefined ? Number(bits) : isIPv4(addr) ? 32 : 128;
  return { address_prefix: addr, prefix_len: { value: len } };
}

/** A metadata matcher on a string under `filter` at `path`. */
export function metadataMatcher(filter: string, path: readonly string[], value: ProtoObject): ProtoObject {
  return { filter, path: path.map((key) => ({ key })), value };
}
