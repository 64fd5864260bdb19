/** Results of a scale run, and their markdown table. */
import { typeSummary } from './collect';

export interface ChangeSample {
  phase: number;
  /** Write (or trigger) → last ACK of the change, ms; null on timeout or nothing received. */
  latencyMs: number | null;
  proxies: number;
  responses: number;
  bytes: number;
  types: number[];
  cpuSeconds: number | null;
  timedOut: boolean;
}

export interface Series {
  label: string;
  samples: ChangeSample[];
}

export interface TargetResult {
  cold: { ms: number | null; proxiesFull: number; responses: number; bytes: number; cpuSeconds: number | null; stallMs: number | null };
  changes: Record<string, Series>;
  /** null: no PING answered (probe failed). */
  stallChangesMs: number | null;
  rssSteadyMb: number | null;
  rssAfterMb: number | null;
}

export interface Results {
  command: string;
  machine: { cpus: number; model: string; memoryGb: number; node: string; platform: string; loadAvgAtStart: number[] };
  mesh: Record<string, number | boolean>;
  proxies: number;
  meshd: TargetResult;
  noop: Record<string, ChangeSample>;
  floor?: TargetResult;
  notes: string[];
  meshdProblems: { count: number; first: string[] };
}

/** Nearest-rank percentile; null if there are no values. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return 'timeout';
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
}

export function fmtBytes(b: number): string {
  if (b >= 1e9) return `${(b / 1e9).toFixed(2)} GB`;
  if (b >= 1e6) return `${(b / 1e6).toFixed(1)} MB`;
  if (b >= 1e3) return `${(b / 1e3).toFixed(1)} kB`;
  return `${b} B`;
}

const ratio = (a: number | null | undefined, b: number | null | undefined): string =>
  a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0 ? '—' : `${(a / b).toFixed(1)}×`;
const avg = (xs: readonly number[]): number | null => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : null);
const fmtCpu = (s: number | null): string => (s === null ? 'n/a' : s >= 1 ? `${s.toFixed(2)} s` : `${(s * 1000).toFixed(0)} ms`);

function latencies(s: Series | undefined): { values: number[]; timeouts: number } {
  const values = (s?.samples ?? []).flatMap((x) => (x.latencyMs === null ? [] : [x.latencyMs]));
  return { values, timeouts: (s?.samples.length ?? 0) - values.length };
}

/** p50/p99/max rows of one change series, with the floor's and the ratio. */
function changeRows(key: string, r: Results): string[][] {
  const m = r.meshd.changes[key];
  if (!m || m.samples.length === 0) return [];
  const f = r.floor?.changes[key];
  const ml = latencies(m);
  const fl = latencies(f);
  const rows: string[][] = [];
  for (const [name, p] of [
    ['p50', 50],
    ['p99', 99],
    ['max', 100],
  ] as const) {
    const a = ml.timeouts && p >= 99 ? null : percentile(ml.values, p);
    const b = f ? (fl.timeouts && p >= 99 ? null : percentile(fl.values, p)) : undefined;
    rows.push([`${m.label} → last ACK, ${name}`, fmtMs(a), b === undefined ? '—' : fmtMs(b), ratio(a, b)]);
  }
  const per = (s: Series, get: (x: ChangeSample) => number): number => avg(s.samples.map(get)) ?? 0;
  const types = m.samples.reduce((acc, x) => acc.map((n, i) => n + (x.types[i] ?? 0)), [0, 0, 0, 0, 0]);
  rows.push([
    `${m.label}: proxies / responses / bytes per change (types)`,
    `${per(m, (x) => x.proxies).toFixed(0)} / ${per(m, (x) => x.responses).toFixed(0)} / ${fmtBytes(per(m, (x) => x.bytes))} (${typeSummary(types)})`,
    f ? `${per(f, (x) => x.proxies).toFixed(0)} / ${per(f, (x) => x.responses).toFixed(0)} / ${fmtBytes(per(f, (x) => x.bytes))}` : '—',
    '',
  ]);
  const mc = avg(m.samples.flatMap((x) => (x.cpuSeconds === null ? [] : [x.cpuSeconds])));
  const fc = f ? avg(f.samples.flatMap((x) => (x.cpuSeconds === null ? [] : [x.cpuSeconds]))) : null;
  rows.push([`${m.label}: server CPU per change`, fmtCpu(mc), f ? fmtCpu(fc) : '—', ratio(mc, fc)]);
  return rows;
}

export function table(r: Results): string {
  const rows: string[][] = [];
  const { meshd: m, floor: f } = r;
  rows.push([`Cold start: all ${r.proxies} proxies ACKed CDS+EDS+LDS+RDS`, fmtMs(m.cold.ms), f ? fmtMs(f.cold.ms) : '—', ratio(m.cold.ms, f?.cold.ms)]);
  rows.push(['Cold start: responses / bytes to all proxies', `${m.cold.responses} / ${fmtBytes(m.cold.bytes)}`, f ? `${f.cold.responses} / ${fmtBytes(f.cold.bytes)}` : '—', '']);
  rows.push(['Cold start: server CPU', fmtCpu(m.cold.cpuSeconds), f ? fmtCpu(f.cold.cpuSeconds) : '—', ratio(m.cold.cpuSeconds, f?.cold.cpuSeconds)]);
  for (const key of ['route', 'edsLocal', 'edsExported']) rows.push(...changeRows(key, r));
  for (const [key, label] of [
    ['identical', 'No-op change, identical rewrite'],
    ['annotation', 'No-op change, ignored annotation'],
  ] as const) {
    const s = r.noop[key];
    if (s)
      rows.push([
        `${label}: responses / bytes (expect 0)`,
        `${s.responses} / ${fmtBytes(s.bytes)}${s.responses ? ` (${typeSummary(s.types)} to ${s.proxies} proxies)` : ''}`,
        '—',
        '',
      ]);
  }
  const mb = (x: number | null): string => (x === null ? 'n/a' : `${x.toFixed(0)} MB`);
  rows.push(['Server RSS, steady after cold start', mb(m.rssSteadyMb), f ? `${mb(f.rssSteadyMb)} (holds the recordings)` : '—', '']);
  rows.push(['Server RSS, after all changes', mb(m.rssAfterMb), f ? mb(f.rssAfterMb) : '—', '']);
  const stall = (x: number | null): string => (x === null ? 'n/a' : fmtMs(x));
  rows.push(['Max event-loop stall (PING RTT), cold start', stall(m.cold.stallMs), f ? stall(f.cold.stallMs) : '—', ratio(m.cold.stallMs, f?.cold.stallMs)]);
  rows.push(['Max event-loop stall (PING RTT), changes', stall(m.stallChangesMs), f ? stall(f.stallChangesMs) : '—', ratio(m.stallChangesMs, f?.stallChangesMs)]);
  const head = ['Measurement', 'meshd', 'floor (replay)', 'meshd / floor'];
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`];
  for (const row of rows) lines.push(`| ${row.map(esc).join(' | ')} |`);
  return lines.join('\n');
}

export function render(r: Results): string {
  const out: string[] = [];
  out.push(`Command: ${r.command}`);
  out.push(
    `Machine: ${r.machine.cpus} × ${r.machine.model}, ${r.machine.memoryGb.toFixed(1)} GB RAM, Node ${r.machine.node} (${r.machine.platform}); load average at start ${r.machine.loadAvgAtStart.map((x) => x.toFixed(2)).join(' ')}`,
  );
  out.push(
    `Mesh: ${Object.entries(r.mesh)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')} → ${r.proxies} proxies`,
  );
  out.push('');
  out.push(table(r));
  if (r.notes.length) out.push('', ...r.notes.map((n) => `- ${n}`));
  if (r.meshdProblems.count) out.push('', `meshd logged ${r.meshdProblems.count} warning/error line(s); first (and last) ones:`, ...r.meshdProblems.first.map((l) => `  ${l}`));
  return out.join('\n') + '\n';
}
