/**
 * Scale benchmark: meshd at Istio's load-test point (1000 services × 5 endpoints, 2000 proxies)
 * against the transport floor, in one run. meshd runs as its own process on a generated config
 * folder; client workers hold one gRPC connection and ADS stream per proxy; the floor server
 * then replays the exact bytes meshd sent, so meshd / floor is what meshd adds over the transport.
 *
 *   npm run bench -- --services 100 --sidecars 100 --grpc 20 --vs 30 --dr 30 --changes 3 --workers 2
 *
 * Every wait is bounded (--timeout), all traffic stays on 127.0.0.1, and the run exits by itself.
 */
import { type ChildProcess, fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Workers } from './collect';
import { type FromFloor, type ToFloor, wallNow } from './ipc';
import { type MeshSize, ROUTE_SERVICE, atomicWrite, endpointTargets, proxySpecs, sliceFile, sliceYaml, vsFile, vsYaml, writeMesh } from './mesh';
import { type Meshd, PingProbe, buildIfStale, cpuBusy, procFigures, startMeshd, stopChild } from './procs';
import { type ChangeSample, type Results, type Series, type TargetResult, fmtMs, render } from './report';

const USAGE = `Usage: npm run bench -- [options]
  --services N (1000) --endpoints E per service (5) --namespaces N (20) --vs N (300) --dr N (300)
  --sidecars N (1700) --grpc N (300) --changes N (10) --workers N (4) --delta
  --sidecar-scope (a Sidecar per namespace: egress ./* and istio-system/*)
  --meshd-arg=ARG (repeatable; extra meshd flag, e.g. --meshd-arg=--log-level=error)
  --meshd-node-arg=ARG (repeatable; Node flag for meshd's process, e.g. --meshd-node-arg=--max-old-space-size=8192)
  --json FILE  --timeout S (120, each wait)  --quiet-ms MS (1000)  --noop-window MS (3000)
  --confirm-ms MS (2000: after quiescence, watch this long for stragglers of the same change)
  --deadline S (3600, whole run)  --no-floor  --build (force)  --no-build  --keep (keep the temp folder)`;

const { values: v } = parseArgs({
  options: {
    services: { type: 'string', default: '1000' },
    endpoints: { type: 'string', default: '5' },
    namespaces: { type: 'string', default: '20' },
    vs: { type: 'string', default: '300' },
    dr: { type: 'string', default: '300' },
    sidecars: { type: 'string', default: '1700' },
    grpc: { type: 'string', default: '300' },
    changes: { type: 'string', default: '10' },
    workers: { type: 'string', default: '4' },
    delta: { type: 'boolean', default: false },
    'sidecar-scope': { type: 'boolean', default: false },
    'meshd-arg': { type: 'string', multiple: true, default: [] },
    'meshd-node-arg': { type: 'string', multiple: true, default: [] },
    json: { type: 'string' },
    timeout: { type: 'string', default: '120' },
    'quiet-ms': { type: 'string', default: '1000' },
    'noop-window': { type: 'string', default: '3000' },
    'confirm-ms': { type: 'string', default: '2000' },
    deadline: { type: 'string', default: '3600' },
    'no-floor': { type: 'boolean', default: false },
    build: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (v.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
function int(name: string, s: string, min: number): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`--${name} must be an integer ≥ ${min}\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
}
const mesh: MeshSize = {
  services: int('services', v.services, 3),
  endpoints: int('endpoints', v.endpoints, 1),
  namespaces: int('namespaces', v.namespaces, 1),
  vs: int('vs', v.vs, 0),
  dr: int('dr', v.dr, 0),
  sidecars: int('sidecars', v.sidecars, 0),
  grpc: int('grpc', v.grpc, 0),
  sidecarScope: v['sidecar-scope'],
};
const CHANGES = int('changes', v.changes, 1);
const TIMEOUT = int('timeout', v.timeout, 1) * 1000;
const QUIET = int('quiet-ms', v['quiet-ms'], 50);
const NOOP_WINDOW = int('noop-window', v['noop-window'], 0);
const CONFIRM = int('confirm-ms', v['confirm-ms'], 0);
const delta = v.delta;
const meshdArgs = v['meshd-arg'].flatMap((a) => a.split(/\s+/).filter(Boolean));
const meshdNodeArgs = v['meshd-node-arg'].flatMap((a) => a.split(/\s+/).filter(Boolean));

const log = (s: string): void => void process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const children: ChildProcess[] = [];
let workers: Workers | undefined;
let root = '';
let meshdProc: Meshd | undefined;

/** meshd's exit and what it logged, for a failure message. */
function meshdState(): string {
  if (!meshdProc) return '';
  const lines = [...meshdProc.problems, ...(meshdProc.lastProblems.length ? ['…', ...meshdProc.lastProblems] : [])];
  return `\n${meshdProc.exited() ?? 'meshd still running'}${lines.length ? `; it logged ${meshdProc.problemCount} warning/error line(s):\n  ${lines.join('\n  ')}` : ''}`;
}

function cleanup(): void {
  workers?.exit();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (root && !v.keep) fs.rmSync(root, { recursive: true, force: true });
}
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});
setTimeout(
  () => {
    log(`deadline of ${v.deadline} s reached; stopping`);
    cleanup();
    process.exit(2);
  },
  int('deadline', v.deadline, 10) * 1000,
).unref();

/** A bounded wait that may fail: logs and returns whether it completed. */
function note(ok: boolean, what: string, notes: string[]): boolean {
  if (!ok) notes.push(`${what}: timeout after ${TIMEOUT / 1000} s`);
  return ok;
}

/** Runs one measured change: a phase, the trigger, then quiescence. */
async function change(w: Workers, name: string, pid: number | undefined, trigger: () => void, expectSome: boolean, notes: string[]): Promise<ChangeSample> {
  const phase = await w.phase(name, TIMEOUT);
  const p = w.phases[phase] as NonNullable<(typeof w.phases)[number]>;
  const cpu0 = procFigures(pid)?.cpuSeconds;
  p.startAt = wallNow();
  trigger();
  const { ok, gaps } = await w.quiet(phase, { quietMs: QUIET, minMs: expectSome ? 0 : NOOP_WINDOW, expectSome, timeoutMs: TIMEOUT, confirmMs: CONFIRM });
  const cpu1 = procFigures(pid)?.cpuSeconds;
  if (expectSome) note(ok, name, notes);
  if (gaps) notes.push(`${name}: responses stopped for over ${QUIET} ms ${gaps} time(s) and then resumed; the last ACK after the gap is the one reported`);
  const latencyMs = ok && p.lastAck !== undefined ? p.lastAck - p.startAt : null;
  const what = p.responses === 0 && ok ? 'nothing received' : `${fmtMs(latencyMs)} to ${p.proxies.size} proxies`;
  log(`${name}: ${what}, ${p.responses} responses, ${p.bytes} bytes`);
  return {
    phase,
    latencyMs,
    proxies: p.proxies.size,
    responses: p.responses,
    bytes: p.bytes,
    types: [...p.types],
    cpuSeconds: cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : null,
    timedOut: !ok,
  };
}

/** Cold start against addr: every proxy connects at once; time until all are full. */
async function coldStart(
  w: Workers,
  addr: string,
  pid: number | undefined,
  probe: PingProbe,
  record: boolean,
  name: string,
  notes: string[],
): Promise<{ phase: number; cold: TargetResult['cold'] }> {
  const cpu0 = procFigures(pid)?.cpuSeconds;
  probe.reset();
  const phase = w.connect(addr, record, name);
  const t0 = (w.phases[phase] as { startAt: number }).startAt;
  const fullAt = await w.untilFull(phase, w.proxies.length, TIMEOUT);
  const p = w.phases[phase] as NonNullable<(typeof w.phases)[number]>;
  if (fullAt === undefined && !w.fatal(phase)) note(false, `${name} (${p.full}/${w.proxies.length} proxies full)`, notes);
  if (fullAt !== undefined) note((await w.quiet(phase, { quietMs: QUIET, minMs: 0, expectSome: true, timeoutMs: TIMEOUT, confirmMs: CONFIRM })).ok, `${name} quiescence`, notes);
  const cpu1 = procFigures(pid)?.cpuSeconds;
  const ms = fullAt === undefined ? null : fullAt - t0;
  log(`${name}: ${fmtMs(ms)}, ${p.full}/${w.proxies.length} proxies full, ${p.responses} responses, ${p.bytes} bytes`);
  return {
    phase,
    cold: { ms, proxiesFull: p.full, responses: p.responses, bytes: p.bytes, cpuSeconds: cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : null, stallMs: probe.maxMs() },
  };
}

/** Notes (once per target) the streams that failed, by status code. */
function streamErrors(w: Workers, target: string, notes: string[]): void {
  const errs = w.errors.splice(0);
  if (errs.length === 0) return;
  const byCode = new Map<string, number>();
  for (const e of errs) byCode.set(`code ${e.code} (${e.details})`, (byCode.get(`code ${e.code} (${e.details})`) ?? 0) + 1);
  notes.push(`${errs.length} proxy stream(s) to ${target} failed: ${[...byCode].map(([k, n]) => `${n}× ${k}`).join('; ')}`);
}

function abortOnStreamFailure(w: Workers, phase: number, target: string): void {
  const err = w.fatal(phase);
  if (!err) return;
  if (err.code === 12) {
    process.stdout.write(
      `${target} does not implement ${delta ? 'DeltaAggregatedResources (delta xDS)' : 'StreamAggregatedResources'}: UNIMPLEMENTED (${err.details}). Nothing to measure.\n`,
    );
    cleanup();
    process.exit(0);
  }
  throw new Error(`every proxy's stream to ${target} failed; last: code ${err.code} ${err.details}${target === 'meshd' ? meshdState() : ''}`);
}

async function main(): Promise<void> {
  const notes: string[] = [];
  const loadAvgAtStart = os.loadavg();
  const busy = await cpuBusy(1000);
  if (busy !== undefined && busy > 0.2)
    notes.push(`the machine was ${(busy * 100).toFixed(0)}% busy in the second before the run: other processes compete with meshd and the clients`);
  if (!v['no-build']) buildIfStale(v.build, log);
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-scale-'));
  const configDir = path.join(root, 'config');
  const recDir = path.join(root, 'rec');
  fs.mkdirSync(configDir);
  fs.mkdirSync(recDir);
  const objects = writeMesh(configDir, mesh);
  const proxies = proxySpecs(mesh);
  const { local: LOCAL_SERVICE, exported: EXPORTED_SERVICE } = endpointTargets(mesh);
  if (proxies.length < mesh.sidecars + mesh.grpc) notes.push(`only ${mesh.services * mesh.endpoints} pods: sidecars capped at that`);
  log(`mesh: ${objects} objects in ${configDir}; ${proxies.length} proxies`);

  const meshd: Meshd = (meshdProc = await startMeshd(configDir, path.join(root, 'ca'), meshdArgs, meshdNodeArgs, TIMEOUT));
  children.push(meshd.proc);
  const pid = meshd.proc.pid;
  log(`meshd ready: xDS ${meshd.xds}, debug ${meshd.debug}, pid ${pid}`);
  const probe = new PingProbe(meshd.xds);
  const w = (workers = new Workers(proxies, int('workers', v.workers, 1), delta));
  if (!(await w.ready(TIMEOUT))) throw new Error('client workers did not start');
  const record = !v['no-floor'];

  // Cold start.
  const { cold } = await coldStart(w, meshd.xds, pid, probe, record, 'cold start', notes);
  abortOnStreamFailure(w, 0, 'meshd');
  const rssSteadyMb = procFigures(pid)?.rssMb ?? null;

  // Changes.
  probe.reset();
  const series: Record<string, Series> = {
    route: { label: 'Route change', samples: [] },
    edsLocal: { label: 'Endpoint change (ns-local svc)', samples: [] },
    edsExported: { label: 'Endpoint change (exported svc)', samples: [] },
  };
  notes.push(
    `Route change: ${vsFile(ROUTE_SERVICE)} (exported svc-${ROUTE_SERVICE}) rewritten, weights 90/10 ↔ 80/20. Endpoint changes: ${sliceFile(LOCAL_SERVICE)} (svc-${LOCAL_SERVICE}, exportTo ".") and ${sliceFile(EXPORTED_SERVICE)} (svc-${EXPORTED_SERVICE}), last endpoint's address moved and back.`,
    `Change latency = file write → last ACK of any response after it, once nothing arrived for ${QUIET} ms (and nothing more in a further ${CONFIRM} ms); the idle waits are excluded. meshd's figures include its file watcher and debounce (default quiet period 100 ms); the floor's start when the replay is triggered.`,
    `No-op changes: ${sliceFile(EXPORTED_SERVICE)} rewritten byte-identical; a bench/touch annotation added to ${vsFile(ROUTE_SERVICE)}; responses counted over at least ${NOOP_WINDOW} ms, then ${QUIET} ms quiet + ${CONFIRM} ms.`,
    'Floor: a bare @grpc/grpc-js server replaying, per proxy and in order, the exact response bytes that proxy got from meshd (cold start: each one once the proxy has subscribed to its type; changes: all at once on a trigger, yielding every 16 MB). Same client workers.',
  );
  const write = (file: string, text: string) => () => atomicWrite(configDir, file, text);
  for (let c = 0; c < CHANGES; c++) {
    if (mesh.vs > ROUTE_SERVICE)
      series.route?.samples.push(await change(w, `route-${c}`, pid, write(vsFile(ROUTE_SERVICE), vsYaml(mesh, ROUTE_SERVICE, c % 2 === 0 ? 80 : 90)), true, notes));
  }
  for (let c = 0; c < CHANGES; c++)
    series.edsLocal?.samples.push(await change(w, `eds-local-${c}`, pid, write(sliceFile(LOCAL_SERVICE), sliceYaml(mesh, LOCAL_SERVICE, c % 2 === 0)), true, notes));
  for (let c = 0; c < CHANGES; c++)
    series.edsExported?.samples.push(await change(w, `eds-exported-${c}`, pid, write(sliceFile(EXPORTED_SERVICE), sliceYaml(mesh, EXPORTED_SERVICE, c % 2 === 0)), true, notes));
  if (mesh.vs <= ROUTE_SERVICE) notes.push('--vs 0: no route changes measured');
  const noop: Record<string, ChangeSample> = {};
  const sliceNow = fs.readFileSync(path.join(configDir, sliceFile(EXPORTED_SERVICE)), 'utf8');
  noop['identical'] = await change(w, 'noop-identical', pid, write(sliceFile(EXPORTED_SERVICE), sliceNow), false, notes);
  if (mesh.vs > ROUTE_SERVICE) {
    const weight = CHANGES % 2 === 1 ? 80 : 90;
    noop['annotation'] = await change(w, 'noop-annotation', pid, write(vsFile(ROUTE_SERVICE), vsYaml(mesh, ROUTE_SERVICE, weight, 1)), false, notes);
  }
  streamErrors(w, 'meshd', notes);
  if (meshd.exited()) notes.push(`${meshd.exited()} during the run`);
  const meshdResult: TargetResult = { cold, changes: series, stallChangesMs: probe.maxMs(), rssSteadyMb, rssAfterMb: procFigures(pid)?.rssMb ?? null };
  probe.close();
  if (record) log(`recorded ${w.recordedBytes} response bytes (${w.uniqueBytes} after interning)`);
  await w.close(TIMEOUT);
  const files = record ? await w.dump(recDir, TIMEOUT) : [];
  await stopChild(meshd.proc);

  // Transport floor: the same clients against a server that replays meshd's bytes.
  let floorResult: TargetResult | undefined;
  if (record)
    floorResult = await runFloor(
      w,
      files,
      proxies.map((p) => p.id),
      series,
      notes,
    );

  const results: Results = {
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model ?? 'unknown',
      memoryGb: os.totalmem() / 2 ** 30,
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      loadAvgAtStart,
    },
    mesh: { ...mesh, changes: CHANGES, workers: int('workers', v.workers, 1), delta },
    proxies: proxies.length,
    meshd: meshdResult,
    noop,
    floor: floorResult,
    notes,
    meshdProblems: { count: meshd.problemCount, first: [...meshd.problems, ...meshd.lastProblems] },
  };
  process.stdout.write(render(results));
  if (v.json) fs.writeFileSync(v.json, JSON.stringify(results, null, 2) + '\n');
}

async function runFloor(w: Workers, files: string[], ids: string[], meshdSeries: Record<string, Series>, notes: string[]): Promise<TargetResult | undefined> {
  const proc = fork(path.join(__dirname, 'floor.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(proc);
  const replies: FromFloor[] = [];
  let wake: () => void = () => undefined;
  proc.on('message', (m: FromFloor) => {
    replies.push(m);
    wake();
  });
  const next = (t: FromFloor['t']): Promise<FromFloor | undefined> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), TIMEOUT);
      const check = (): void => {
        const i = replies.findIndex((r) => r.t === t || r.t === 'error');
        if (i < 0) return;
        clearTimeout(timer);
        resolve(replies.splice(i, 1)[0]);
      };
      wake = check;
      check();
    });
  const send = (m: ToFloor): void => void proc.send(m);
  send({ t: 'load', files, ids, delta, coldPhase: 0 });
  const listening = await next('listening');
  if (listening?.t !== 'listening') {
    notes.push(`floor server failed to start: ${listening?.t === 'error' ? listening.message : 'timeout'}`);
    return undefined;
  }
  const addr = `127.0.0.1:${listening.port}`;
  log(`floor server on ${addr}: ${listening.responses} recorded responses, ${listening.bytes} bytes`);
  const pid = proc.pid;
  const probe = new PingProbe(addr);
  const { phase: coldPhase, cold } = await coldStart(w, addr, pid, probe, false, 'floor cold start', notes);
  abortOnStreamFailure(w, coldPhase, 'floor server');
  const rssSteadyMb = procFigures(pid)?.rssMb ?? null;
  probe.reset();
  const changes: Record<string, Series> = {};
  for (const [key, s] of Object.entries(meshdSeries)) {
    const out: Series = { label: s.label, samples: [] };
    for (const sample of s.samples) {
      if (sample.responses === 0) continue;
      const name = `floor ${w.phases[sample.phase]?.name ?? sample.phase}`;
      out.samples.push(await change(w, name, pid, () => send({ t: 'push', phase: sample.phase }), true, notes));
    }
    changes[key] = out;
  }
  streamErrors(w, 'floor server', notes);
  const result: TargetResult = { cold, changes, stallChangesMs: probe.maxMs(), rssSteadyMb, rssAfterMb: procFigures(pid)?.rssMb ?? null };
  probe.close();
  await w.close(TIMEOUT);
  send({ t: 'stop' });
  await stopChild(proc, 3000);
  return result;
}

main()
  .then(() => {
    cleanup();
    process.exit(0);
  })
  .catch((err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    cleanup();
    process.exit(1);
  });
