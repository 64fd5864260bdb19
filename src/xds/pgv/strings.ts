/**
 * String and bytes rule compilers: const / in / not_in, lengths, affixes, well-known formats
 * (IP, hostname, URI, ...), PGV's well-known HTTP header regexes and RE2 patterns.
 */
import * as common from './common';
import type { Check, Obj } from './common';
import { ruleNum } from './numeric';
import { compileRe2 } from './re2';

// Per-call helpers bound once; see the note in ./common.ts on named imports under tsx.
const { list, violation } = common;

// protoc-gen-validate's well-known regexes (validate.proto KnownRegex).
const HEADER_NAME_RE = /^:?[0-9a-zA-Z!#$%&'*+-.^_|~`]+$/;
const HEADER_VALUE_RE = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;
const HEADER_STRING_RE = /^[^\u0000\u000A\u000D]*$/; // strict: false

function runeCount(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
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
  return h
    .toLowerCase()
    .split('.')
    .every((l) => /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(l));
}
const CTL_RE = /[\u0000-\u001f\u007f]|%(?![0-9a-fA-F]{2})/;
const FORMATS: ReadonlyArray<readonly [string, (s: string) => boolean, string]> = Object.freeze([
  ['ip', (s) => parseIP(s) !== undefined, 'a valid IP address'],
  ['ipv4', (s) => parseIP(s)?.v4 === true, 'a valid IPv4 address'],
  ['ipv6', (s) => parseIP(s)?.v4 === false, 'a valid IPv6 address'],
  [
    'email',
    (s) => {
      const at = s.lastIndexOf('@');
      return at > 0 && at <= 64 && !/[\s<>]/.test(s) && isHostname(s.slice(at + 1));
    },
    'a valid email address',
  ],
  ['hostname', isHostname, 'a valid hostname'],
  ['address', (s) => isHostname(s) || parseIP(s) !== undefined, 'a valid hostname, or ip address'],
  ['uri', (s) => /^[A-Za-z][A-Za-z0-9+.-]*:/.test(s) && !CTL_RE.test(s), 'a valid absolute URI'],
  ['uri_ref', (s) => !CTL_RE.test(s), 'a valid URI reference'],
  ['uuid', (s) => /^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$/.test(s), 'a valid UUID'],
]);

export function stringChecks(r: Obj, name: string): Check<string>[] {
  const cs: Check<string>[] = [];
  const push = (rule: string, bad: (s: string) => boolean, text: (s: string) => string): void => {
    cs.push((s, p, out) => {
      if (bad(s)) violation(out, p, `${name}.${rule}: ${text(s)}`);
    });
  };
  const str = (k: string): string | undefined => (typeof r[k] === 'string' ? (r[k] as string) : undefined);
  const konst = str('const');
  if (konst !== undefined)
    push(
      'const',
      (s) => s !== konst,
      (s) => `value must equal ${JSON.stringify(konst)}, got ${JSON.stringify(s)}`,
    );
  for (const [key, mustBeIn] of [
    ['in', true],
    ['not_in', false],
  ] as const) {
    const vals = list(r[key])?.filter((x): x is string => typeof x === 'string');
    if (!vals || vals.length === 0) continue;
    const set = new Set(vals);
    push(
      key,
      (s) => set.has(s) !== mustBeIn,
      (s) => `value must ${mustBeIn ? '' : 'not '}be in list ${JSON.stringify(vals)}, got ${JSON.stringify(s)}`,
    );
  }
  const lengths: ReadonlyArray<readonly [string, (s: string) => number, string, 'eq' | 'min' | 'max']> = [
    ['len', runeCount, 'characters', 'eq'],
    ['min_len', runeCount, 'characters', 'min'],
    ['max_len', runeCount, 'characters', 'max'],
    ['len_bytes', (s) => Buffer.byteLength(s, 'utf8'), 'bytes', 'eq'],
    ['min_bytes', (s) => Buffer.byteLength(s, 'utf8'), 'bytes', 'min'],
    ['max_bytes', (s) => Buffer.byteLength(s, 'utf8'), 'bytes', 'max'],
  ];
  for (const [key, measure, unit, op] of lengths) {
    const n = ruleNum(r[key]);
    if (n === undefined || (op === 'min' && n === 0)) continue;
    const word = op === 'eq' ? 'exactly' : op === 'min' ? 'at least' : 'at most';
    push(
      key,
      (s) => {
        const m = measure(s);
        return op === 'eq' ? m !== n : op === 'min' ? m < n : m > n;
      },
      (s) => `value length must be ${word} ${n} ${unit}, got ${measure(s)}`,
    );
  }
  const prefix = str('prefix');
  if (prefix)
    push(
      'prefix',
      (s) => !s.startsWith(prefix),
      () => `value does not have prefix ${JSON.stringify(prefix)}`,
    );
  const suffix = str('suffix');
  if (suffix)
    push(
      'suffix',
      (s) => !s.endsWith(suffix),
      () => `value does not have suffix ${JSON.stringify(suffix)}`,
    );
  const contains = str('contains');
  if (contains)
    push(
      'contains',
      (s) => !s.includes(contains),
      () => `value does not contain substring ${JSON.stringify(contains)}`,
    );
  const notContains = str('not_contains');
  if (notContains)
    push(
      'not_contains',
      (s) => s.includes(notContains),
      () => `value contains substring ${JSON.stringify(notContains)}`,
    );
  for (const [key, ok, what] of FORMATS) {
    if (r[key] === true)
      push(
        key,
        (s) => !ok(s),
        (s) => `value must be ${what}, got ${JSON.stringify(s)}`,
      );
  }
  const wk = r.well_known_regex;
  const strict = r.strict !== false;
  const header = wk === 'HTTP_HEADER_NAME' || wk === 1 ? 'name' : wk === 'HTTP_HEADER_VALUE' || wk === 2 ? 'value' : undefined;
  if (header !== undefined) {
    const re = !strict ? HEADER_STRING_RE : header === 'name' ? HEADER_NAME_RE : HEADER_VALUE_RE;
    const label = `HTTP_HEADER_${header.toUpperCase()}, strict=${strict}`;
    const what = strict ? `a valid HTTP header ${header}` : 'free of NUL, CR and LF characters';
    push(
      'well_known_regex',
      (s) => !re.test(s),
      (s) => `value must be ${what} (${label}), got ${JSON.stringify(s)}`,
    );
  }
  const pattern = str('pattern');
  const re = pattern === undefined ? undefined : compileRe2(pattern);
  if (re)
    push(
      'pattern',
      (s) => !re.test(s),
      () => `value does not match regex pattern ${JSON.stringify(pattern)}`,
    );
  return cs;
}

function ruleBytes(x: unknown): Buffer | undefined {
  if (x instanceof Uint8Array) return Buffer.from(x);
  if (typeof x !== 'string') return undefined;
  return Buffer.from(x, [...x].every((c) => c.charCodeAt(0) < 256) ? 'latin1' : 'utf8');
}
export function bytesChecks(r: Obj, name: string): Check<Uint8Array>[] {
  const cs: Check<Uint8Array>[] = [];
  const push = (rule: string, bad: (b: Buffer) => boolean, text: (b: Buffer) => string): void => {
    cs.push((v, p, out) => {
      const b = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      if (bad(b)) violation(out, p, `${name}.${rule}: ${text(b)}`);
    });
  };
  const konst = ruleBytes(r.const);
  if (konst)
    push(
      'const',
      (b) => !b.equals(konst),
      () => `value must equal 0x${konst.toString('hex')}`,
    );
  for (const [key, mustBeIn] of [
    ['in', true],
    ['not_in', false],
  ] as const) {
    const vals = list(r[key])
      ?.map(ruleBytes)
      .filter((x): x is Buffer => x !== undefined);
    if (!vals || vals.length === 0) continue;
    const set = new Set(vals.map((v) => v.toString('hex')));
    push(
      key,
      (b) => set.has(b.toString('hex')) !== mustBeIn,
      () => `value must ${mustBeIn ? '' : 'not '}be in list [${[...set].map((h) => `0x${h}`).join(', ')}]`,
    );
  }
  for (const [key, op] of [
    ['len', 'eq'],
    ['min_len', 'min'],
    ['max_len', 'max'],
  ] as const) {
    const n = ruleNum(r[key]);
    if (n === undefined || (op === 'min' && n === 0)) continue;
    const word = op === 'eq' ? 'exactly' : op === 'min' ? 'at least' : 'at most';
    push(
      key,
      (b) => (op === 'eq' ? b.length !== n : op === 'min' ? b.length < n : b.length > n),
      (b) => `value length must be ${word} ${n} bytes, got ${b.length}`,
    );
  }
  const prefix = ruleBytes(r.prefix);
  if (prefix?.length)
    push(
      'prefix',
      (b) => !b.subarray(0, prefix.length).equals(prefix),
      () => `value does not have prefix 0x${prefix.toString('hex')}`,
    );
  const suffix = ruleBytes(r.suffix);
  if (suffix?.length)
    push(
      'suffix',
      (b) => b.length < suffix.length || !b.subarray(b.length - suffix.length).equals(suffix),
      () => `value does not have suffix 0x${suffix.toString('hex')}`,
    );
  const contains = ruleBytes(r.contains);
  if (contains?.length)
    push(
      'contains',
      (b) => b.indexOf(contains) < 0,
      () => `value does not contain 0x${contains.toString('hex')}`,
    );
  if (r.ip === true)
    push(
      'ip',
      (b) => b.length !== 4 && b.length !== 16,
      (b) => `value must be a valid IP address (4 or 16 bytes), got ${b.length} bytes`,
    );
  if (r.ipv4 === true)
    push(
      'ipv4',
      (b) => b.length !== 4,
      (b) => `value must be a valid IPv4 address (4 bytes), got ${b.length} bytes`,
    );
  if (r.ipv6 === true)
    push(
      'ipv6',
      (b) => b.length !== 16,
      (b) => `value must be a valid IPv6 address (16 bytes), got ${b.length} bytes`,
    );
  const pattern = typeof r.pattern === 'string' ? r.pattern : undefined;
  const re = pattern === undefined ? undefined : compileRe2(pattern);
  if (re)
    push(
      'pattern',
      (b) => !re.test(b.toString('utf8')),
      () => `value does not match regex pattern ${JSON.stringify(pattern)}`,
    );
  return cs;
}
