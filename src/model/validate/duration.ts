/**
 * Durations as Istio accepts them in its CRDs: Go's `time.ParseDuration` syntax (`1.5s`,
 * `100ms`, `1h30m`, `0`), then Istio's ValidateDuration rules (at least 1ms, ms precision).
 */

const UNITS: ReadonlyMap<string, bigint> = new Map([
  ['ns', 1n],
  ['us', 1_000n],
  ['µs', 1_000n],
  ['μs', 1_000n],
  ['ms', 1_000_000n],
  ['s', 1_000_000_000n],
  ['m', 60_000_000_000n],
  ['h', 3_600_000_000_000n],
]);

const COMPONENT = /^([0-9]*)(?:\.([0-9]*))?(ns|us|µs|μs|ms|s|m|h)/;
const MAX_NANOS = (1n << 63n) - 1n;
export const NANOS_PER_MS = 1_000_000n;

/** Nanoseconds, or undefined when `s` is not a Go duration. */
export function parseDuration(s: string): bigint | undefined {
  let rest = s;
  let sign = 1n;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest.startsWith('-')) sign = -1n;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0n;
  if (rest === '') return undefined;
  let total = 0n;
  while (rest.length > 0) {
    const m = COMPONENT.exec(rest);
    if (m === null) return undefined;
    const [whole, intPart = '', frac = '', unitName = ''] = m;
    if (intPart === '' && frac === '') return undefined;
    const unit = UNITS.get(unitName) ?? 0n;
    let v = BigInt(intPart === '' ? '0' : intPart) * unit;
    if (frac !== '') v += (BigInt(frac) * unit) / 10n ** BigInt(frac.length);
    total += v;
    if (total > MAX_NANOS) return undefined;
    rest = rest.slice(whole.length);
  }
  return sign * total;
}

export interface DurationRules {
  /** Minimum in nanoseconds (default 1ms, Istio's ValidateDuration). */
  min?: bigint;
  /** Required precision in nanoseconds (default 1ms). */
  precision?: bigint;
}

/** An error message for a duration string that Istio would reject, or undefined. */
export function durationError(s: string, rules: DurationRules = {}): string | undefined {
  const nanos = parseDuration(s);
  if (nanos === undefined) {
    return `invalid duration ${JSON.stringify(s)}: use a number with a unit (h, m, s, ms, us, ns), e.g. 1.5s, 100ms or 1h`;
  }
  const min = rules.min ?? NANOS_PER_MS;
  const precision = rules.precision ?? NANOS_PER_MS;
  if (nanos < min) return `duration ${JSON.stringify(s)} must be at least ${describeNanos(min)}`;
  if (nanos % precision !== 0n)
    return `duration ${JSON.stringify(s)} must be a whole number of ${describeNanos(precision)} (${precision === NANOS_PER_MS ? 'only ms precision is supported' : 'finer precision is not supported'})`;
  return undefined;
}

function describeNanos(n: bigint): string {
  if (n % 1_000_000_000n === 0n) return `${n / 1_000_000_000n}s`;
  if (n % NANOS_PER_MS === 0n) return `${n / NANOS_PER_MS}ms`;
  return `${n}ns`;
}
