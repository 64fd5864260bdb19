/**
 * istioctl's output shapes: Go's tabwriter tables (each column as wide as its widest cell plus
 * the padding; the last column unpadded) and `-o json|yaml`.
 */
import * as YAML from 'yaml';

export type OutputFormat = 'short' | 'json' | 'yaml';

export function parseOutput(v: string, allowed: readonly string[]): string {
  if (!allowed.includes(v)) throw new Error(`--output must be one of ${allowed.join(', ')} (got ${JSON.stringify(v)})`);
  return v;
}

/** Rows of cells as tabwriter prints them with padding `padding` and ' ' as the pad character. */
export function tabulate(rows: readonly (readonly string[])[], padding: number): string {
  const widths: number[] = [];
  for (const r of rows) {
    r.forEach((c, i) => {
      if (i < r.length - 1) widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  }
  return rows.map((r) => r.map((c, i) => (i < r.length - 1 ? c.padEnd((widths[i] ?? 0) + padding) : c)).join('') + '\n').join('');
}

/** istioctl's JSON (4-space indent) or YAML of a value. */
export function printValue(value: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? `${JSON.stringify(value, null, 4)}\n` : YAML.stringify(value, { lineWidth: 0 });
}
