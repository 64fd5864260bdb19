/**
 * Checks a generated xDS resource (the plain-object form `EnvoyProtos.encode` takes) against
 * Envoy's message types before it is published:
 *
 * - structure: keys that are not fields (protobufjs `fromObject` drops them silently), wrong JS
 *   value kinds, out-of-range integers, enum names that do not exist, several members of one
 *   oneof, and `google.protobuf.Any` values whose `@type` is not in the loaded API;
 * - protoc-gen-validate: the `(validate.rules)` field options, `(validate.required)` oneofs
 *   and the `(validate.disabled)` / `(validate.ignored)` message options, with PGV's semantics
 *   (singular scalars outside oneofs are checked even when absent, against their default).
 *
 * It descends into nested messages, repeated fields, maps, oneofs and Any values (the embedded
 * message is validated with its own rules, as Envoy does when it instantiates an extension).
 * Per-type rule sets are compiled once per validator instance.
 */
import * as protobuf from 'protobufjs';
import { messageName, type EnvoyProtos } from './protos';

export interface RuleViolation {
  /** Field path from the resource root, e.g. `filter_chains[0].filters[1].typed_config.stat_prefix`. */
  path: string;
  /** What is wrong; rule violations start with the rule's name, e.g. `string.min_len: …`. */
  message: string;
}

type Obj = Readonly<Record<string, unknown>>;
type Out = RuleViolation[];
type Num = number | bigint;
type Norm = Num | string | boolean | Uint8Array;
type Check<T> = (v: T, path: string, out: Out) => void;
type ScalarKind =
  | 'double' | 'float' | 'int32' | 'uint32' | 'sint32' | 'fixed32' | 'sfixed32'
  | 'int64' | 'uint64' | 'sint64' | 'fixed64' | 'sfixed64' | 'bool' | 'string' | 'bytes';

/** Per-call state: violations found, whether PGV rules apply at this depth, nesting depth. */
class Ctx {
  readonly out: Out = [];
  rules = true;
  depth = 0;
}

interface Elem {
  visit(v: unknown, path: string, ctx: Ctx): void;
  /** Rules applied when a singular non-oneof field is absent (PGV checks the default value). */
  readonly absent: ((path: string, ctx: Ctx) => void) | undefined;
  /** Comparable key of a value, for `repeated.unique`. */
  readonly key: (v: unknown) => string;
}

interface FieldCheck {
  readonly name: string;
  readonly visit: (v: unknown, path: string, ctx: Ctx) => void;
  readonly absent: ((path: string, ctx: Ctx) => void) | undefined;
}

interface OneofCheck {
  readonly name: string;
  readonly members: readonly string[];
  readonly required: boolean;
}

interface CompiledType {
  readonly name: string;
  readonly isAny: boolean;
  readonly disabled: boolean;
  readonly fields: ReadonlyMap<string, FieldCheck>;
  readonly absent: readonly FieldCheck[];
  readonly oneofs: readonly OneofCheck[];
}

const MAX_DEPTH = 100; // protobufjs' recursion limit
const MAX_CACHED_URLS = 10_000; // bounds the type-URL cache against endless distinct bad URLs
const ANY = '.google.protobuf.Any';
const DURATION = '.google.protobuf.Duration';
const TIMESTAMP = '.google.protobuf.Timestamp';
const WRAPPERS: Readonly<Record<string, ScalarKind>> = Object.freeze({
  '.google.protobuf.DoubleValue': 'double',
  '.google.protobuf.FloatValue': 'float',
  '.google.protobuf.Int64Value': 'int64',
  '.google.protobuf.UInt64Value': 'uint64',
  '.google.protobuf.Int32Value': 'int32',
  '.google.protobuf.UInt32Value': 'uint32',
  '.google.protobuf.BoolValue': 'bool',
  '.google.protobuf.StringValue': 'string',
  '.google.protobuf.BytesValue': 'bytes',
});
const SCALARS: ReadonlySet<string> = new Set(['double', 'float', 'int32', 'uint32', 'sint32', 'fixed32',
  'sfixed32', 'int64', 'uint64', 'sint64', 'fixed64', 'sfixed64', 'bool', 'string', 'bytes']);
const INT_RANGE: Readonly<Record<string, readonly [bigint, bigint]>> = Object.freeze({
  int32: [-(2n ** 31n), 2n ** 31n - 1n], sint32: [-(2n ** 31n), 2n ** 31n - 1n],
  sfixed32: [-(2n ** 31n), 2n ** 31n - 1n], uint32: [0n, 2n ** 32n - 1n], fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n], sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n], uint64: [0n, 2n ** 64n - 1n], fixed64: [0n, 2n ** 64n - 1n],
});
/** protobufjs toObject options for decoding raw `{type_url, value}` Any payloads. */
const RAW_ANY: protobuf.IConversionOptions = Object.freeze({
  enums: String, longs: String, bytes: String, json: true, defaults: false,
});
// protoc-gen-validate's well-known regexes (validate.proto KnownRegex).
const HEADER_NAME_RE = /^:?[0-9a-zA-Z!#$%&'*+-.^_|~`]+$/;
const HEADER_VALUE_RE = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;
const HEADER_STRING_RE = /^[^\u0000\u000A\u000D]*$/; // strict: false
const BASE64_RE = /^(?:[A-Za-z0-9+/\-_]{4})*(?:[A-Za-z0-9+/\-_]{2}(?:==)?|[A-Za-z0-9+/\-_]{3}=?)?$/;
const INT_STR_RE = /^-?\d+$/;

const hasOwn = (o: object, k: PropertyKey): boolean => Object.prototype.hasOwnProperty.call(o, k);
const present = (o: Obj, k: string): boolean => hasOwn(o, k) && o[k] !== null && o[k] !== undefined;
const join = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);
const typeName = (t: protobuf.ReflectionObject): string => t.fullName.replace(/^\./, '');

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}
function obj(x: unknown): Obj | undefined {
  return isObj(x) ? x : undefined;
}
function list(x: unknown): readonly unknown[] | undefined {
  return x === undefined || x === null ? undefined : Array.isArray(x) ? x : [x];
}
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return 'bytes';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}
function combine<T>(cs: Check<T>[]): Check<T> | undefined {
  if (cs.length <= 1) return cs[0];
  return (v, p, out) => {
    for (const c of cs) c(v, p, out);
  };
}
function violation(out: Out, path: string, message: string): void {
  out.push({ path, message });
}

// ---------------------------------------------------------------- options

/** `(validate.rules)` of a field: flattened `options` keys, overlaid with `parsedOptions` (lossless). */
function fieldRules(f: protobuf.ReflectionObject): Obj | undefined {
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
function boolOption(o: protobuf.ReflectionObject, name: string): boolean {
  return o.options?.[name] === true || parsedOption(o, name).includes(true);
}
function deepMerge(into: Record<string, unknown>, from: Obj): Record<string, unknown> {
  for (const [k, v] of Object.entries(from)) {
    const cur = into[k];
    into[k] = isObj(v) && isObj(cur) ? deepMerge({ ...cur }, v) : v;
  }
  return into;
}

// ---------------------------------------------------------------- value kinds

function toBigInt(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : undefined;
  if (typeof v === 'string') return INT_STR_RE.test(v) ? BigInt(v) : undefined;
  if (isObj(v) && typeof v.low === 'number' && typeof v.high === 'number') { // protobufjs Long
    const n = (BigInt(v.high) << 32n) | BigInt(v.low >>> 0);
    return v.unsigned === true ? BigInt.asUintN(64, n) : BigInt.asIntN(64, n);
  }
  return undefined;
}

/** Plain-object value → normalised scalar (number, bigint for 64-bit, Uint8Array for bytes), or undefined. */
function normScalar(kind: ScalarKind, v: unknown): Norm | undefined {
  switch (kind) {
    case 'string':
      return typeof v === 'string' ? v : undefined;
    case 'bool':
      return typeof v === 'boolean' ? v : undefined;
    case 'double':
    case 'float':
      if (typeof v === 'number') return v;
      return v === 'NaN' || v === 'Infinity' || v === '-Infinity' ? Number(v) : undefined;
    case 'bytes':
      if (v instanceof Uint8Array) return v;
      return typeof v === 'string' && BASE64_RE.test(v) ? Buffer.from(v, 'base64') : undefined;
    case 'int32': case 'sint32': case 'sfixed32': case 'uint32': case 'fixed32': {
      if (typeof v !== 'number' || !Number.isInteger(v)) return undefined;
      const [lo, hi] = INT_RANGE[kind];
      return v >= Number(lo) && v <= Number(hi) ? v : undefined;
    }
    default: {
      const n = toBigInt(v);
      const [lo, hi] = INT_RANGE[kind];
      return n !== undefined && n >= lo && n <= hi ? n : undefined;
    }
  }
}
function kindError(kind: ScalarKind, v: unknown): string {
  if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v) && kind.endsWith('64')) {
    return `expected ${kind}, got number ${v} beyond Number.MAX_SAFE_INTEGER (precision lost): pass a string or bigint`;
  }
  const range = INT_RANGE[kind];
  const what = kind === 'bytes' ? 'bytes (Uint8Array or base64 string)'
    : range ? `${kind} (integer ${range[0]}..${range[1]}${kind.endsWith('64') ? ', as number, string or bigint' : ''})`
      : kind;
  return `expected ${what}, got ${describe(v)}`;
}
function defaultScalar(kind: ScalarKind): Norm {
  if (kind === 'string') return '';
  if (kind === 'bool') return false;
  if (kind === 'bytes') return new Uint8Array(0);
  return kind.endsWith('64') && kind !== 'double' ? 0n : 0;
}
function mapKey(kind: ScalarKind, k: string): Norm | undefined {
  if (kind === 'bool') return k === 'true' ? true : k === 'false' ? false : undefined;
  if (kind === 'string') return k;
  if (!INT_STR_RE.test(k)) return undefined;
  return normScalar(kind, kind.endsWith('64') ? k : Number(k));
}
const uniqKey = (n: Norm | undefined): string =>
  n instanceof Uint8Array ? `b:${Buffer.from(n).toString('hex')}` : `${typeof n}:${String(n)}`;

// ---------------------------------------------------------------- rule compilers

function ruleNum(x: unknown): number | undefined {
  return typeof x === 'number' ? x : typeof x === 'string' && x.trim() !== '' && !Number.isNaN(Number(x)) ? Number(x) : undefined;
}
function ruleBig(x: unknown): bigint | undefined {
  if (typeof x === 'number') return Number.isFinite(x) ? BigInt(Math.trunc(x)) : undefined;
  return toBigInt(x);
}
function ruleDuration(x: unknown): bigint | undefined {
  const d = obj(x);
  if (!d) return undefined;
  const s = ruleBig(d.seconds ?? 0);
  const n = ruleBig(d.nanos ?? 0);
  return s === undefined || n === undefined ? undefined : s * 1_000_000_000n + n;
}
function showDuration(n: Num): string {
  const b = BigInt(n);
  return b % 1_000_000_000n === 0n ? `${b / 1_000_000_000n}s` : `${Number(b) / 1e9}s`;
}
/** Duration / Timestamp object → total nanoseconds, or undefined if it is out of range. */
function timeNanos(o: Obj, timestamp: boolean): bigint | undefined {
  const s = toBigInt(o.seconds ?? 0);
  const n = o.nanos ?? 0;
  if (s === undefined || typeof n !== 'number' || !Number.isInteger(n)) return undefined;
  if (timestamp) {
    if (s < -62135596800n || s > 253402300799n || n < 0 || n > 999_999_999) return undefined;
  } else if (s < -315576000000n || s > 315576000000n || Math.abs(n) > 999_999_999 || (s > 0n && n < 0) || (s < 0n && n > 0)) {
    return undefined;
  }
  return s * 1_000_000_000n + BigInt(n);
}

/** const, in, not_in, lt, lte, gt, gte (with PGV's exclusive-range semantics when lt < gt). */
function numericChecks<T extends Num>(
  r: Obj, name: string, conv: (x: unknown) => T | undefined, show: (x: Num) => string = String,
): Check<T>[] {
  const cs: Check<T>[] = [];
  const c = conv(r.const);
  if (c !== undefined) {
    cs.push((v, p, out) => { if (v !== c) violation(out, p, `${name}.const: value must equal ${show(c)}, got ${show(v)}`); });
  }
  for (const [key, mustBeIn] of [['in', true], ['not_in', false]] as const) {
    const vals = list(r[key])?.map(conv).filter((x): x is T => x !== undefined);
    if (!vals || vals.length === 0) continue;
    const set = new Set<Num>(vals);
    const shown = `[${vals.map(show).join(', ')}]`;
    cs.push((v, p, out) => {
      if (set.has(v) !== mustBeIn) violation(out, p, `${name}.${key}: value must ${mustBeIn ? '' : 'not '}be in list ${shown}, got ${show(v)}`);
    });
  }
  const [lt, lte, gt, gte] = [conv(r.lt), conv(r.lte), conv(r.gt), conv(r.gte)];
  const mk = (rule: string, bad: (v: T) => boolean, text: string): Check<T> => (v, p, out) => {
    if (bad(v)) violation(out, p, `${name}.${rule}: value must be ${text}, got ${show(v)}`);
  };
  const hi = lt ?? lte;
  const lo = gt ?? gte;
  if (hi !== undefined && lo !== undefined) {
    const hiIn = lt === undefined; // upper bound inclusive
    const loIn = gt === undefined;
    const rule = `${loIn ? 'gte' : 'gt'}+${hiIn ? 'lte' : 'lt'}`;
    if (hi > lo) {
      const text = `inside range ${loIn ? '[' : '('}${show(lo)}, ${show(hi)}${hiIn ? ']' : ')'}`;
      cs.push(mk(rule, (v) => (loIn ? v < lo : v <= lo) || (hiIn ? v > hi : v >= hi), text));
    } else {
      // Exclusive range: the value must lie outside the gap between the upper and lower bound.
      const text = `outside range ${hiIn ? '(' : '['}${show(hi)}, ${show(lo)}${loIn ? ')' : ']'}`;
      cs.push(mk(rule, (v) => (hiIn ? v > hi : v >= hi) && (loIn ? v < lo : v <= lo), text));
    }
  } else if (lt !== undefined) cs.push(mk('lt', (v) => v >= lt, `less than ${show(lt)}`));
  else if (lte !== undefined) cs.push(mk('lte', (v) => v > lte, `less than or equal to ${show(lte)}`));
  else if (gt !== undefined) cs.push(mk('gt', (v) => v <= gt, `greater than ${show(gt)}`));
  else if (gte !== undefined) cs.push(mk('gte', (v) => v < gte, `greater than or equal to ${show(gte)}`));
  return cs;
}

function countChecks(r: Obj | undefined, name: string, minKey: string, maxKey: string, noun: string): Check<number>[] {
  const cs: Check<number>[] = [];
  const min = ruleNum(r?.[minKey]);
  const max = ruleNum(r?.[maxKey]);
  if (min !== undefined && min > 0) {
    cs.push((n, p, out) => { if (n < min) violation(out, p, `${name}.${minKey}: value must contain at least ${min} ${noun}, got ${n}`); });
  }
  if (max !== undefined) {
    cs.push((n, p, out) => { if (n > max) violation(out, p, `${name}.${maxKey}: value must contain at most ${max} ${noun}, got ${n}`); });
  }
  return cs;
}

function runeCount(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { n--; i++; }
    }
  }
  return n;
}

function parseIPv4(s: string): number[] | undefined {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p))) return undefined;
  const bytes = parts.map(Number);
  return bytes.every((b) => b <= 255) ? bytes : undefined;
}
/** Like Go's net.ParseIP: undefined if invalid, else whether `To4()` would succeed (IPv4 or v4-mapped). */
function parseIP(s: string): { v4: boolean } | undefined {
  if (parseIPv4(s)) return { v4: true };
  if (!s.includes(':')) return undefined;
  let str = s;
  const last = s.lastIndexOf(':');
  if (s.slice(last + 1).includes('.')) {
    const v4 = parseIPv4(s.slice(last + 1));
    if (!v4) return undefined;
    str = `${s.slice(0, last + 1)}${((v4[0] << 8) | v4[1]).toString(16)}:${((v4[2] << 8) | v4[3]).toString(16)}`;
  }
  const halves = str.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string): string[] => (h === '' ? [] : h.split(':'));
  const a = groups(halves[0]);
  const b = halves.length === 2 ? groups(halves[1]) : [];
  if (halves.length === 1 ? a.length !== 8 : a.length + b.length > 7) return undefined;
  if (![...a, ...b].every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  const all = [...a, ...Array<string>(8 - a.length - b.length).fill('0'), ...b].map((g) => parseInt(g, 16));
  return { v4: all.slice(0, 5).every((g) => g === 0) && all[5] === 0xffff };
}
function isHostname(s: string): boolean {
  const h = s.endsWith('.') ? s.slice(0, -1) : s;
  if (s.length > 253 || h === '') return false;
  return h.toLowerCase().split('.').every((l) => /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(l));
}
const CTL_RE = /[\u0000-\u001f\u007f]|%(?![0-9a-fA-F]{2})/;
const FORMATS: ReadonlyArray<readonly [string, (s: string) => boolean, string]> = [
  ['ip', (s) => parseIP(s) !== undefined, 'a valid IP address'],
  ['ipv4', (s) => parseIP(s)?.v4 === true, 'a valid IPv4 address'],
  ['ipv6', (s) => parseIP(s)?.v4 === false, 'a valid IPv6 address'],
  ['email', (s) => { const at = s.lastIndexOf('@'); return at > 0 && at <= 64 && !/[\s<>]/.test(s) && isHostname(s.slice(at + 1)); }, 'a valid email address'],
  ['hostname', isHostname, 'a valid hostname'],
  ['address', (s) => isHostname(s) || parseIP(s) !== undefined, 'a valid hostname, or ip address'],
  ['uri', (s) => /^[A-Za-z][A-Za-z0-9+.-]*:/.test(s) && !CTL_RE.test(s), 'a valid absolute URI'],
  ['uri_ref', (s) => !CTL_RE.test(s), 'a valid URI reference'],
  ['uuid', (s) => /^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$/.test(s), 'a valid UUID'],
];

const POSIX_CLASSES: Readonly<Record<string, string>> = Object.freeze({
  alnum: '0-9A-Za-z', alpha: 'A-Za-z', ascii: '\\x00-\\x7F', blank: '\\t ', cntrl: '\\x00-\\x1F\\x7F',
  digit: '0-9', graph: '!-~', lower: 'a-z', print: ' -~', punct: '!-\\/:-@\\[-`{-~', space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z', word: '0-9A-Za-z_', xdigit: '0-9A-Fa-f',
});
/** RE2 pattern → JS RegExp (partial-match semantics), or undefined when JS cannot express it. */
function compileRe2(src: string): RegExp | undefined {
  let flags = '';
  let s = src;
  const lead = /^\(\?([imsU]+)\)/.exec(s);
  if (lead) {
    if (lead[1].includes('U')) return undefined;
    flags = [...new Set(lead[1])].join('');
    s = s.slice(lead[0].length);
  }
  let out = '';
  let inClass = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') {
      const e = s[++i];
      if (e === undefined) return undefined;
      if (e === 'Q') {
        const end = s.indexOf('\\E', i + 1);
        const lit = s.slice(i + 1, end < 0 ? undefined : end);
        out += lit.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
        i = end < 0 ? s.length : end + 1;
      } else if (!inClass && e === 'z') out += '$';
      else if (!inClass && e === 'A') out += '^';
      else if (e === 'C') return undefined;
      else if ((e === 'p' || e === 'P') && s[i + 1] !== '{' && s[i + 1] !== undefined) out += `\\${e}{${s[++i]}}`;
      else out += `\\${e}`;
    } else if (inClass) {
      const posix = /^\[:(\^?)([a-z]+):\]/.exec(s.slice(i));
      if (posix) {
        const cls = POSIX_CLASSES[posix[2]];
        if (posix[1] === '^' || cls === undefined) return undefined;
        out += cls;
        i += posix[0].length - 1;
      } else {
        if (c === ']') inClass = false;
        out += c === '[' ? '\\[' : c;
      }
    } else if (c === '[') {
      inClass = true;
      out += c;
      if (s[i + 1] === '^') out += s[++i];
      if (s[i + 1] === ']') { out += '\\]'; i++; } // RE2: a leading ']' is literal
    } else if (s.startsWith('(?P<', i)) {
      out += '(?<';
      i += 3;
    } else out += c;
  }
  for (const f of [`${flags}u`, flags]) {
    try {
      return new RegExp(out, f);
    } catch {
      // try the next flag set; RE2 syntax JS cannot compile is skipped
    }
  }
  return undefined;
}

function stringChecks(r: Obj, name: string): Check<string>[] {
  const cs: Check<string>[] = [];
  const push = (rule: string, bad: (s: string) => boolean, text: (s: string) => string): void => {
    cs.push((s, p, out) => { if (bad(s)) violation(out, p, `${name}.${rule}: ${text(s)}`); });
  };
  const str = (k: string): string | undefined => (typeof r[k] === 'string' ? (r[k] as string) : undefined);
  const konst = str('const');
  if (konst !== undefined) push('const', (s) => s !== konst, (s) => `value must equal ${JSON.stringify(konst)}, got ${JSON.stringify(s)}`);
  for (const [key, mustBeIn] of [['in', true], ['not_in', false]] as const) {
    const vals = list(r[key])?.filter((x): x is string => typeof x === 'string');
    if (!vals || vals.length === 0) continue;
    const set = new Set(vals);
    push(key, (s) => set.has(s) !== mustBeIn, (s) => `value must ${mustBeIn ? '' : 'not '}be in list ${JSON.stringify(vals)}, got ${JSON.stringify(s)}`);
  }
  const lengths: ReadonlyArray<readonly [string, (s: string) => number, string, 'eq' | 'min' | 'max']> = [
    ['len', runeCount, 'characters', 'eq'], ['min_len', runeCount, 'characters', 'min'], ['max_len', runeCount, 'characters', 'max'],
    ['len_bytes', (s) => Buffer.byteLength(s, 'utf8'), 'bytes', 'eq'], ['min_bytes', (s) => Buffer.byteLength(s, 'utf8'), 'bytes', 'min'],
    ['max_bytes', (s) => Buffer.byteLength(s, 'utf8'), 'bytes', 'max'],
  ];
  for (const [key, measure, unit, op] of lengths) {
    const n = ruleNum(r[key]);
    if (n === undefined || (op === 'min' && n === 0)) continue;
    const word = op === 'eq' ? 'exactly' : op === 'min' ? 'at least' : 'at most';
    push(key, (s) => { const m = measure(s); return op === 'eq' ? m !== n : op === 'min' ? m < n : m > n; },
      (s) => `value length must be ${word} ${n} ${unit}, got ${measure(s)}`);
  }
  const prefix = str('prefix');
  if (prefix) push('prefix', (s) => !s.startsWith(prefix), () => `value does not have prefix ${JSON.stringify(prefix)}`);
  const suffix = str('suffix');
  if (suffix) push('suffix', (s) => !s.endsWith(suffix), () => `value does not have suffix ${JSON.stringify(suffix)}`);
  const contains = str('contains');
  if (contains) push('contains', (s) => !s.includes(contains), () => `value does not contain substring ${JSON.stringify(contains)}`);
  const notContains = str('not_contains');
  if (notContains) push('not_contains', (s) => s.includes(notContains), () => `value contains substring ${JSON.stringify(notContains)}`);
  for (const [key, ok, what] of FORMATS) {
    if (r[key] === true) push(key, (s) => !ok(s), (s) => `value must be ${what}, got ${JSON.stringify(s)}`);
  }
  const wk = r.well_known_regex;
  const strict = r.strict !== false;
  const header = wk === 'HTTP_HEADER_NAME' || wk === 1 ? 'name' : wk === 'HTTP_HEADER_VALUE' || wk === 2 ? 'value' : undefined;
  if (header !== undefined) {
    const re = !strict ? HEADER_STRING_RE : header === 'name' ? HEADER_NAME_RE : HEADER_VALUE_RE;
    const label = `HTTP_HEADER_${header.toUpperCase()}, strict=${strict}`;
    const what = strict ? `a valid HTTP header ${header}` : 'free of NUL, CR and LF characters';
    push('well_known_regex', (s) => !re.test(s), (s) => `value must be ${what} (${label}), got ${JSON.stringify(s)}`);
  }
  const pattern = str('pattern');
  const re = pattern === undefined ? undefined : compileRe2(pattern);
  if (re) push('pattern', (s) => !re.test(s), () => `value does not match regex pattern ${JSON.stringify(pattern)}`);
  return cs;
}

function ruleBytes(x: unknown): Buffer | undefined {
  if (x instanceof Uint8Array) return Buffer.from(x);
  if (typeof x !== 'string') return undefined;
  return Buffer.from(x, [...x].every((c) => c.charCodeAt(0) < 256) ? 'latin1' : 'utf8');
}
function bytesChecks(r: Obj, name: string): Check<Uint8Array>[] {
  const cs: Check<Uint8Array>[] = [];
  const push = (rule: string, bad: (b: Buffer) => boolean, text: (b: Buffer) => string): void => {
    cs.push((v, p, out) => {
      const b = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      if (bad(b)) violation(out, p, `${name}.${rule}: ${text(b)}`);
    });
  };
  const konst = ruleBytes(r.const);
  if (konst) push('const', (b) => !b.equals(konst), () => `value must equal 0x${konst.toString('hex')}`);
  for (const [key, mustBeIn] of [['in', true], ['not_in', false]] as const) {
    const vals = list(r[key])?.map(ruleBytes).filter((x): x is Buffer => x !== undefined);
    if (!vals || vals.length === 0) continue;
    const set = new Set(vals.map((v) => v.toString('hex')));
    push(key, (b) => set.has(b.toString('hex')) !== mustBeIn, () => `value must ${mustBeIn ? '' : 'not '}be in list [${[...set].map((h) => `0x${h}`).join(', ')}]`);
  }
  for (const [key, op] of [['len', 'eq'], ['min_len', 'min'], ['max_len', 'max']] as const) {
    const n = ruleNum(r[key]);
    if (n === undefined || (op === 'min' && n === 0)) continue;
    const word = op === 'eq' ? 'exactly' : op === 'min' ? 'at least' : 'at most';
    push(key, (b) => (op === 'eq' ? b.length !== n : op === 'min' ? b.length < n : b.length > n),
      (b) => `value length must be ${word} ${n} bytes, got ${b.length}`);
  }
  const prefix = ruleBytes(r.prefix);
  if (prefix?.length) push('prefix', (b) => !b.subarray(0, prefix.length).equals(prefix), () => `value does not have prefix 0x${prefix.toString('hex')}`);
  const suffix = ruleBytes(r.suffix);
  if (suffix?.length) push('suffix', (b) => b.length < suffix.length || !b.subarray(b.length - suffix.length).equals(suffix), () => `value does not have suffix 0x${suffix.toString('hex')}`);
  const contains = ruleBytes(r.contains);
  if (contains?.length) push('contains', (b) => b.indexOf(contains) < 0, () => `value does not contain 0x${contains.toString('hex')}`);
  if (r.ip === true) push('ip', (b) => b.length !== 4 && b.length !== 16, (b) => `value must be a valid IP address (4 or 16 bytes), got ${b.length} bytes`);
  if (r.ipv4 === true) push('ipv4', (b) => b.length !== 4, (b) => `value must be a valid IPv4 address (4 bytes), got ${b.length} bytes`);
  if (r.ipv6 === true) push('ipv6', (b) => b.length !== 16, (b) => `value must be a valid IPv6 address (16 bytes), got ${b.length} bytes`);
  const pattern = typeof r.pattern === 'string' ? r.pattern : undefined;
  const re = pattern === undefined ? undefined : compileRe2(pattern);
  if (re) push('pattern', (b) => !re.test(b.toString('utf8')), () => `value does not match regex pattern ${JSON.stringify(pattern)}`);
  return cs;
}

/** Rules of one scalar kind (`r` is e.g. the `uint32` sub-object) → one check over the normalised value. */
function scalarCheck(kind: ScalarKind, r: Obj, name: string): Check<Norm> | undefined {
  let c: Check<Norm> | undefined;
  if (kind === 'string') c = combine(stringChecks(r, name)) as Check<Norm> | undefined;
  else if (kind === 'bytes') c = combine(bytesChecks(r, name)) as Check<Norm> | undefined;
  else if (kind === 'bool') {
    const k = r.const;
    if (typeof k === 'boolean') c = (v, p, out) => { if (v !== k) violation(out, p, `${name}.const: value must equal ${k}`); };
  } else if (INT_RANGE[kind] && kind.endsWith('64')) c = combine(numericChecks(r, name, ruleBig)) as Check<Norm> | undefined;
  else c = combine(numericChecks(r, name, ruleNum)) as Check<Norm> | undefined;
  if (c === undefined || r.ignore_empty !== true) return c;
  const inner = c;
  const empty = defaultScalar(kind);
  return (v, p, out) => {
    if (v instanceof Uint8Array ? v.length > 0 : v !== empty) inner(v, p, out);
  };
}

function scalarElem(kind: ScalarKind, rules: Obj | undefined, prefix: string): Elem {
  const r = obj(rules?.[kind]);
  const check = r && scalarCheck(kind, r, prefix + kind);
  return {
    visit(v, path, ctx) {
      const n = normScalar(kind, v);
      if (n === undefined) violation(ctx.out, path, kindError(kind, v));
      else if (check !== undefined && ctx.rules) check(n, path, ctx.out);
    },
    absent: check && ((path, ctx) => check(defaultScalar(kind), path, ctx.out)),
    key: (v) => uniqKey(normScalar(kind, v)),
  };
}

function enumElem(e: protobuf.Enum, rules: Obj | undefined, prefix: string): Elem {
  const name = `${prefix}enum`;
  const r = obj(rules?.enum);
  const toNum = (x: unknown): number | undefined =>
    typeof x === 'number' ? x : typeof x === 'string' && hasOwn(e.values, x) ? e.values[x] : undefined;
  const cs: Check<number>[] = r ? numericChecks(r, name, toNum) : [];
  if (r?.defined_only === true) {
    cs.push((n, p, out) => {
      if (!hasOwn(e.valuesById, n)) violation(out, p, `${name}.defined_only: value must be one of the defined enum values of ${typeName(e)}, got ${n}`);
    });
  }
  const check = combine(cs);
  const norm = (v: unknown): number | undefined =>
    typeof v === 'string' ? (hasOwn(e.values, v) ? e.values[v] : undefined)
      : typeof v === 'number' && Number.isInteger(v) && Math.abs(v) < 2 ** 31 ? v : undefined;
  return {
    visit(v, path, ctx) {
      const n = norm(v);
      if (n === undefined) {
        violation(ctx.out, path, typeof v === 'string'
          ? `unknown enum value ${JSON.stringify(v)} for ${typeName(e)} (known: ${Object.keys(e.values).join(', ')})`
          : `expected an enum name or number of ${typeName(e)}, got ${describe(v)}`);
      } else if (check !== undefined && ctx.rules) check(n, path, ctx.out);
    },
    absent: check && ((path, ctx) => check(0, path, ctx.out)),
    key: (v) => `enum:${String(norm(v))}`,
  };
}

// ---------------------------------------------------------------- the validator

export class ResourceValidator {
  private readonly root: protobuf.Root;
  private readonly types = new Map<protobuf.Type, CompiledType>();
  private readonly typeUrls = new Map<string, protobuf.Type | null>();

  /** Accepts an `EnvoyProtos` (only its `root` is used, so any protobufjs Root wrapper works). */
  constructor(protos: Pick<EnvoyProtos, 'root'>) {
    this.root = protos.root;
  }

  /** Checks a plain object (the same form protos.encode takes) against the message type named by typeUrl. */
  validate(typeUrl: string, obj: object): RuleViolation[] {
    const t = this.resolveTypeUrl(typeUrl);
    if (!t) return [{ path: '', message: `unknown message type ${JSON.stringify(messageName(typeUrl))}` }];
    const ctx = new Ctx();
    const ct = this.compiled(t);
    const at = isObj(obj) ? obj['@type'] : undefined;
    if (!ct.isAny && typeof at === 'string' && this.resolveTypeUrl(at) === t) this.visitFields(ct, obj as Obj, '', ctx, '@type');
    else this.visitMessage(ct, obj, '', ctx);
    return ctx.out;
  }

  private resolveTypeUrl(url: string): protobuf.Type | null {
    let t = this.typeUrls.get(url);
    if (t === undefined) {
      const name = url.slice(url.lastIndexOf('/') + 1);
      let found: protobuf.ReflectionObject | null = null;
      try {
        found = name === '' ? null : this.root.lookup(name);
      } catch {
        found = null;
      }
      t = found instanceof protobuf.Type ? found : null;
      if (t !== null || this.typeUrls.size < MAX_CACHED_URLS) this.typeUrls.set(url, t);
    }
    return t;
  }

  private compiled(t: protobuf.Type): CompiledType {
    const cached = this.types.get(t);
    if (cached) return cached;
    const fields = new Map<string, FieldCheck>();
    for (const f of t.fieldsArray) fields.set(f.name, this.compileField(f));
    const oneofs = t.oneofsArray
      .filter((o) => !o.fieldsArray.every((f) => f.options?.proto3_optional === true))
      .map((o) => ({ name: o.name, members: o.fieldsArray.map((f) => f.name), required: boolOption(o, '(validate.required)') }));
    const ct: CompiledType = {
      name: typeName(t),
      isAny: t.fullName === ANY,
      disabled: boolOption(t, '(validate.disabled)') || boolOption(t, '(validate.ignored)'),
      fields,
      absent: [...fields.values()].filter((f) => f.absent !== undefined),
      oneofs,
    };
    this.types.set(t, ct);
    return ct;
  }

  private compileField(f: protobuf.Field): FieldCheck {
    f.resolve();
    const rules = fieldRules(f);
    if (f instanceof protobuf.MapField) return this.mapField(f, rules);
    if (f.repeated) return this.repeatedField(f, rules);
    const e = this.elem(f, rules, '');
    const inOneof = f.partOf !== null && f.partOf !== undefined;
    return { name: f.name, visit: e.visit, absent: inOneof || f.options?.proto3_optional === true ? undefined : e.absent };
  }

  private elem(f: protobuf.FieldBase, rules: Obj | undefined, prefix: string): Elem {
    const rt = f.resolvedType;
    if (rt instanceof protobuf.Type) return this.messageElem(rt, rules, prefix);
    if (rt instanceof protobuf.Enum) return enumElem(rt, rules, prefix);
    if (SCALARS.has(f.type)) return scalarElem(f.type as ScalarKind, rules, prefix);
    throw new Error(`validate-rules: cannot resolve type ${f.type} of ${f.fullName}`);
  }

  private messageElem(t: protobuf.Type, rules: Obj | undefined, prefix: string): Elem {
    const full = t.fullName;
    const mr = obj(rules?.message);
    const skip = mr?.skip === true;
    let required = mr?.required === true ? `${prefix}message.required` : undefined;
    let post: Check<Obj> | undefined;
    const wk = WRAPPERS[full];
    if (skip) required = undefined;
    else if (wk !== undefined) {
      const r = obj(rules?.[wk]);
      const c = r && scalarCheck(wk, r, prefix + wk);
      if (c) {
        post = (o, p, out) => {
          const n = o.value === null || o.value === undefined ? defaultScalar(wk) : normScalar(wk, o.value);
          if (n !== undefined) c(n, p, out);
        };
      }
    } else if (full === DURATION || full === TIMESTAMP) {
      const kind = full === DURATION ? 'duration' : 'timestamp';
      const r = obj(rules?.[kind]);
      if (r) {
        const name = prefix + kind;
        if (r.required === true) required = `${name}.required`;
        const c = combine(numericChecks(r, name, ruleDuration, showDuration));
        post = (o, p, out) => {
          const n = timeNanos(o, kind === 'timestamp');
          if (n === undefined) violation(out, p, `${name}: value is not a valid ${kind}`);
          else c?.(n, p, out);
        };
      }
    } else if (full === ANY) {
      const r = obj(rules?.any);
      if (r) {
        const name = `${prefix}any`;
        if (r.required === true) required = `${name}.required`;
        const inList = list(r.in)?.map(String);
        const notIn = list(r.not_in)?.map(String);
        post = (o, p, out) => {
          const url = typeof o['@type'] === 'string' ? o['@type'] : typeof o.type_url === 'string' ? o.type_url : '';
          if (inList?.length && !inList.includes(url)) violation(out, p, `${name}.in: type URL must be in list ${JSON.stringify(inList)}, got ${JSON.stringify(url)}`);
          if (notIn?.includes(url)) violation(out, p, `${name}.not_in: type URL must not be in list ${JSON.stringify(notIn)}, got ${JSON.stringify(url)}`);
        };
      }
    }
    let ct: CompiledType | undefined;
    const requiredRule = required;
    return {
      visit: (v, path, ctx) => {
        ct ??= this.compiled(t);
        if (skip && ctx.rules) {
          ctx.rules = false;
          this.visitMessage(ct, v, path, ctx);
          ctx.rules = true;
        } else {
          const before = ctx.out.length;
          // Type-specific rules (wrapper value, duration, any) only on a structurally sound value.
          if (this.visitMessage(ct, v, path, ctx) && post !== undefined && ctx.rules && ctx.out.length === before) {
            post(v as Obj, path, ctx.out);
          }
        }
      },
      absent: requiredRule === undefined ? undefined : (path, ctx) => violation(ctx.out, path, `${requiredRule}: value is required`),
      key: (v) => JSON.stringify(v) ?? '',
    };
  }

  private repeatedField(f: protobuf.Field, rules: Obj | undefined): FieldCheck {
    const rr = obj(rules?.repeated);
    const item = this.elem(f, obj(rr?.items), 'repeated.items.');
    const count = combine(countChecks(rr, 'repeated', 'min_items', 'max_items', 'item(s)'));
    const unique = rr?.unique === true;
    const ignoreEmpty = rr?.ignore_empty === true;
    return {
      name: f.name,
      visit(v, path, ctx) {
        if (!Array.isArray(v)) {
          violation(ctx.out, path, `expected an array (repeated ${f.type}), got ${describe(v)}`);
          return;
        }
        for (let i = 0; i < v.length; i++) {
          const x: unknown = v[i];
          if (x === null || x === undefined) violation(ctx.out, `${path}[${i}]`, `repeated ${f.type} element must not be ${String(x)}`);
          else item.visit(x, `${path}[${i}]`, ctx);
        }
        if (!ctx.rules || (ignoreEmpty && v.length === 0)) return;
        count?.(v.length, path, ctx.out);
        if (unique) {
          const seen = new Map<string, number>();
          v.forEach((x: unknown, i) => {
            const k = item.key(x);
            const j = seen.get(k);
            if (j === undefined) seen.set(k, i);
            else violation(ctx.out, `${path}[${i}]`, `repeated.unique: repeated value must contain unique items, item ${i} repeats item ${j}`);
          });
        }
      },
      absent: count === undefined || ignoreEmpty ? undefined : (path, ctx) => count(0, path, ctx.out),
    };
  }

  private mapField(f: protobuf.MapField, rules: Obj | undefined): FieldCheck {
    const mr = obj(rules?.map);
    const keyKind = f.keyType as ScalarKind;
    const kr = obj(obj(mr?.keys)?.[keyKind]);
    const keyCheck = kr && scalarCheck(keyKind, kr, `map.keys.${keyKind}`);
    const value = this.elem(f, obj(mr?.values), 'map.values.');
    const count = combine(countChecks(mr, 'map', 'min_pairs', 'max_pairs', 'pair(s)'));
    const noSparse = mr?.no_sparse === true;
    const ignoreEmpty = mr?.ignore_empty === true;
    return {
      name: f.name,
      visit(v, path, ctx) {
        if (!isObj(v)) {
          violation(ctx.out, path, `expected an object (map<${keyKind}, ${f.type}>), got ${describe(v)}`);
          return;
        }
        const keys = Object.keys(v);
        for (const k of keys) {
          const p = `${path}[${JSON.stringify(k)}]`;
          const nk = mapKey(keyKind, k);
          if (nk === undefined) violation(ctx.out, p, `map key ${JSON.stringify(k)} is not a valid ${keyKind}`);
          else if (keyCheck !== undefined && ctx.rules) keyCheck(nk, p, ctx.out);
          const x = v[k];
          if (x === null || x === undefined) {
            violation(ctx.out, p, noSparse ? 'map.no_sparse: map values must not be null' : `map value must not be ${String(x)}`);
          } else value.visit(x, p, ctx);
        }
        if (ctx.rules && !(ignoreEmpty && keys.length === 0)) count?.(keys.length, path, ctx.out);
      },
      absent: count === undefined || ignoreEmpty ? undefined : (path, ctx) => count(0, path, ctx.out),
    };
  }

  /** Checks that v is an object and walks it; returns false if it is not an object. */
  private visitMessage(ct: CompiledType, v: unknown, path: string, ctx: Ctx): boolean {
    if (!isObj(v)) {
      violation(ctx.out, path, `expected an object (${ct.name}), got ${describe(v)}`);
      return false;
    }
    if (ctx.depth >= MAX_DEPTH) {
      violation(ctx.out, path, `message nesting deeper than ${MAX_DEPTH} levels`);
      return false;
    }
    ctx.depth++;
    if (ct.isAny) this.visitAny(v, path, ctx);
    else this.visitFields(ct, v, path, ctx, undefined);
    ctx.depth--;
    return true;
  }

  private visitFields(ct: CompiledType, o: Obj, path: string, ctx: Ctx, skipKey: string | undefined): void {
    const saved = ctx.rules;
    if (ct.disabled) ctx.rules = false;
    for (const key of Object.keys(o)) {
      if (key === skipKey) continue;
      const f = ct.fields.get(key);
      if (f === undefined) {
        violation(ctx.out, join(path, key), `unknown field ${JSON.stringify(key)}: not a field of ${ct.name}`);
        continue;
      }
      const v = o[key];
      if (v !== null && v !== undefined) f.visit(v, join(path, key), ctx);
    }
    if (ctx.rules) {
      for (const f of ct.absent) if (!present(o, f.name)) f.absent?.(join(path, f.name), ctx);
    }
    for (const oo of ct.oneofs) {
      const set = oo.members.filter((m) => present(o, m));
      if (set.length > 1) {
        violation(ctx.out, join(path, oo.name), `oneof ${oo.name}: at most one of ${oo.members.join(', ')} may be set, got ${set.join(', ')}`);
      } else if (set.length === 0 && oo.required && ctx.rules) {
        violation(ctx.out, join(path, oo.name), `oneof ${oo.name} (validate.required): exactly one of ${oo.members.join(', ')} must be set`);
      }
    }
    ctx.rules = saved;
  }

  private visitAny(o: Obj, path: string, ctx: Ctx): void {
    const saved = ctx.rules;
    const at = o['@type'];
    if (at !== undefined && at !== null) {
      if (typeof at !== 'string') {
        violation(ctx.out, join(path, '@type'), `expected a type URL string, got ${describe(at)}`);
        return;
      }
      const t = this.resolveTypeUrl(at);
      if (!t) {
        violation(ctx.out, path, `unresolvable @type ${JSON.stringify(at)}: no such message type in the loaded Envoy API`);
        return;
      }
      // Envoy validates an extension's config when it instantiates it, whatever its parent's rules.
      ctx.rules = true;
      this.visitFields(this.compiled(t), o, path, ctx, '@type');
      ctx.rules = saved;
      return;
    }
    for (const k of Object.keys(o)) {
      if (k !== 'type_url' && k !== 'value' && k !== '@type') violation(ctx.out, join(path, k), `unknown field ${JSON.stringify(k)}: google.protobuf.Any without "@type"`);
    }
    const url = o.type_url;
    if (url === undefined || url === null || url === '') {
      violation(ctx.out, path, 'google.protobuf.Any has no @type: write it as {"@type": "type.googleapis.com/…", ...fields}');
      return;
    }
    if (typeof url !== 'string') {
      violation(ctx.out, join(path, 'type_url'), `expected a type URL string, got ${describe(url)}`);
      return;
    }
    const t = this.resolveTypeUrl(url);
    if (!t) {
      violation(ctx.out, path, `unresolvable @type ${JSON.stringify(url)}: no such message type in the loaded Envoy API`);
      return;
    }
    const bytes = normScalar('bytes', o.value ?? new Uint8Array(0));
    if (!(bytes instanceof Uint8Array)) {
      violation(ctx.out, join(path, 'value'), kindError('bytes', o.value));
      return;
    }
    let decoded: Obj;
    try {
      decoded = t.toObject(t.decode(bytes), RAW_ANY);
    } catch (e) {
      violation(ctx.out, join(path, 'value'), `does not decode as ${typeName(t)}: ${(e as Error).message}`);
      return;
    }
    ctx.rules = true;
    this.visitFields(this.compiled(t), decoded, path, ctx, undefined);
    ctx.rules = saved;
  }
}
