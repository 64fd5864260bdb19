/**
 * npm run chaos [-- --objects N --seed S]: the fault run (test/helpers/chaos.ts) at full size,
 * printing its figures. Exits 1 if any check failed.
 */
import { describeReport, runChaos } from '../test/helpers/chaos';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} must be a whole number`);
  return v;
}

async function main(): Promise<void> {
  const seed = arg('seed', 20240611);
  const objects = arg('objects', 10_000);
  const r = await runChaos({ seed, objects, progress: (l) => process.stderr.write(`chaos: ${l}\n`) });
  process.stdout.write(`${describeReport(r)}\n`);
  const problems = [
    ...(r.meshdExit ? [r.meshdExit] : []),
    ...r.readyFailures.map((f) => `/ready: ${f}`),
    ...r.nacks.map((n) => `NACK: ${n}`),
    ...r.baselineFailures.map((f) => `baseline: ${f}`),
    ...r.shapeProblems,
    ...r.validateProblems,
  ];
  for (const p of problems.slice(0, 50)) process.stdout.write(`problem: ${p}\n`);
  process.exitCode = problems.length > 0 ? 1 : 0;
}

void main();
