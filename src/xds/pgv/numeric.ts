/**
 * Numeric rule compilers: const / in / not_in / ranges (over numbers, bigints, enum numbers and
 * Duration/Timestamp nanoseconds) and the item/pair count rules of repeated fields and maps.
 */
import * as common from './common';
import type { Check, Num, Obj } from './common';
import * as values from './values';

// Per-call helpers bound once; see the note in ./common.ts on named imports under tsx.
const { list, obj, violation } = common;
const { toBigInt } = values;

export function ruleNum(x: unknown): number | undefined {
  return typeof x === 'number' ? x : typeof x === 'string' && x.trim() !== '' && !Number.isNaN(Number(x)) ? Number(x) : undefined;
}
export function ruleBig(x: unknown): bigint | undefined {
  if (typeof x === 'number') return Number.isFinite(x) ? BigInt(Math.trunc(x)) : undefined;
  return toBigInt(x);
}
export function ruleDuration(x: unknown): bigint | undefined {
  const d = obj(x);
  if (!d) return undefined;
  const s = ruleBig(d.seconds ?? 0);
  const n = ruleBig(d.nanos ?? 0);
  return s === undefined || n === undefined ? undefined : s * 1_000_000_000n + n;
}
export function showDuration(n: Num): string {
  const b = BigInt(n);
  return b % 1_000_000_000n === 0n ? `${b / 1_000_000_000n}s` : `${Number(b) / 1e9}s`;
}
/** Duration / Timestamp object → total nanoseconds, or undefined if it is out of range. */
export function timeNanos(o: Obj, timestamp: boolean): bigint | undefined {
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
export function numericChecks<T extends Num>(r: Obj, name: string, conv: (x: unknown) => T | undefined, show: (x: Num) => string = String): Check<T>[] {
  const cs: Check<T>[] = [];
  const c = conv(r.const);
  if (c !== undefined) {
    cs.push((v, p, out) => {
      if (v !== c) violation(out, p, `${name}.const: value must equal ${show(c)}, got ${show(v)}`);
    });
  }
  for (const [key, mustBeIn] of [
    ['in', true],
    ['not_in', false],
  ] as const) {
    const vals = list(r[key])
      ?.map(conv)
      .filter((x): x is T => x !== undefined);
    if (!vals || vals.length === 0) continue;
    const set = new Set<Num>(vals);
    const shown = `[${vals.map(show).join(', ')}]`;
    cs.push((v, p, out) => {
      if (set.has(v) !== mustBeIn) violation(out, p, `${name}.${key}: value must ${mustBeIn ? '' : 'not '}be in list ${shown}, got ${show(v)}`);
    });
  }
  const [lt, lte, gt, gte] = [conv(r.lt), conv(r.lte), conv(r.gt), conv(r.gte)];
  const mk =
    (rule: string, bad: (v: T) => boolean, text: string): Check<T> =>
    (v, p, out) => {
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

export function countChecks(r: Obj | undefined, name: string, minKey: string, maxKey: string, noun: string): Check<number>[] {
  const cs: Check<number>[] = [];
  const min = ruleNum(r?.[minKey]);
  const max = ruleNum(r?.[maxKey]);
  if (min !== undefined && min > 0) {
    cs.push((n, p, out) => {
      if (n < min) violation(out, p, `${name}.${minKey}: value must contain at least ${min} ${noun}, got ${n}`);
    });
  }
  if (max !== undefined) {
    cs.push((n, p, out) => {
      if (n > max) violation(out, p, `${name}.${maxKey}: value must contain at most ${max} ${noun}, got ${n}`);
    });
  }
  return cs;
}
