/**
 * The fault run behind `npm run chaos` and test/chaos.test.ts: a real meshd process on a
 * config folder (127.0.0.1 only), two real grpc-js-xds clients, and a seeded fuzzer writing
 * mutated objects into the folder, with the shapes that once hurt meshd among them.
 *
 * What it checks, all along and at the end:
 * - meshd never exits;
 * - `/ready` answers every poll (its latency is measured and reported, not asserted);
 * - the baseline `reviews` route keeps working: every call reaches its backend;
 * - no connected client NACKs anything (grpc-js-xds refuses what it cannot use, e.g. an
 *   address twice in one ClusterLoadAssignment) — one client dials a service the fuzzed
 *   objects write to;
 * - each shape gets its clear error, in `/debug/configz` and from `meshd validate`;
 * - every fuzzed file goes through the folder source's parser and every decoded object
 *   through the Kubernetes source's path without throwing;
 * - no log line is longer than a bound.
 * It reports meshd's peak memory (VmHWM), /ready latency, log volume and throughput.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { DEFAULT_INPUT_LIMITS } from '../../src/config/limits';
import { toConfigObject, KUBE_KINDS } from '../../src/sources/kube-kinds';
import { loadText } from '../../src/sources/load';
import { startBackends, type BackendSet } from './backends';
import { EDS_ONLY_SERVICE, FUZZ_NAMESPACE, FUZZ_SERVICES, Fuzzer, SHAPES, fuzzHost } from './fuzz';
import { createMeshFixture, type MeshFixture } from './mesh-fixture';
import { startGrpcJsXdsClient, type XdsClient } from './xds-clients';
import { portArgs } from './meshd-process';

const ROOT = path.resolve(__dirname, '..', '..');
const MAIN = path.join(ROOT, 'src', 'main.ts');
const V1 = 'reviews-v1';

export interface ChaosOptions {
  seed: number;
  /** Fuzzed objects to feed (shapes come on top). */
  objects: number;
  /** Objects per file written. */
  perFile?: number;
  /** Files the fuzzer rotates over (bounds what is live at once). */
  rotate?: number;
  /** Check clients and syncz every this many files. */
  checkEvery?: number;
  /** Progress lines (npm run chaos); tests pass nothing. */
  progress?: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  objects: number;
  files: number;
  shapes: number;
  seconds: number;
  readyPolls: number;
  readyFailures: string[];
  readyMaxMs: number;
  readyP99Ms: number;
  /** What the run was doing when /ready was slowest. */
  readySlowestAt: string;
  meshdPeakRssMb: number;
  /** meshd's V8 heap in use (MB) at each checkpoint: after warm-up, then every `checkEvery` files. */
  heapUsedMb: number[];
  meshdExit?: string;
  logBytes: number;
  longestLogLine: number;
  nacks: string[];
  baselineCalls: number;
  baselineFailures: string[];
  shapeProblems: string[];
  validateProblems: string[];
  parsedInProcess: number;
  kubePathObjects: number;
}

interface MeshdChild {
  child: ChildProcessWithoutNullStreams;
  xdsPort: number;
  debugPort: number;
  exited: () => string | undefined;
  logBytes: () => number;
  longestLine: () => number;
  tail: () => string;
}

async function startMeshdChild(configDir: string, caDir: string): Promise<MeshdChild> {
  const args = ['--import', 'tsx', MAIN, '--config-dir', configDir, '--host', '127.0.0.1', ...portArgs(), '--ca-dir', caDir, '--log-level', 'info'];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: 'pipe', env: { ...process.env, NODE_OPTIONS: '' } });
  let exit: string | undefined;
  let bytes = 0;
  let longest = 0;
  let tail = '';
  const watchLines = (stream: NodeJS.ReadableStream): void => {
    const rl = readline.createInterface({ input: stream, crlfDelay: Infinity });
    rl.on('line', (line) => {
      bytes += line.length + 1;
      if (line.length > longest) longest = line.length;
      tail = (tail + line.slice(0, 2000) + '\n').slice(-20_000);
    });
  };
  child.on('exit', (code, signal) => {
    exit = `meshd exited with ${signal ?? `code ${code}`}`;
  });
  const ports = new Promise<{ xds: number; debug: number }>((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout, crlfDelay: Infinity });
    rl.on('line', (line) => {
      const m = /meshd listening: xDS [\d.]+:(\d+), debug http:\/\/[\d.]+:(\d+)/.exec(line);
      if (m) resolve({ xds: Number(m[1]), debug: Number(m[2]) });
    });
    child.on('exit', () => reject(new Error(`meshd exited before listening:\n${tail}`)));
  });
  watchLines(child.stdout);
  watchLines(child.stderr);
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  try {
    const p = await ports;
    return { child, xdsPort: p.xds, debugPort: p.debug, exited: () => exit, logBytes: () => bytes, longestLine: () => longest, tail: () => tail };
  } finally {
    clearTimeout(timer);
  }
}

function peakRssMb(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}

async function heapUsedMb(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(20_000) });
  const m = /^nodejs_heap_size_used_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(await res.text());
  return m ? Math.round(Number(m[1]) / 1024 / 1024) : 0;
}

async function getJson(port: number, p: string): Promise<unknown> {
  const res = await fetch(`http://127.0.0.1:${port}${p}`, { signal: AbortSignal.timeout(20_000) });
  return res.json();
}

/** Polls /ready every `intervalMs` until stopped; records every latency and every failure. */
function readyPoller(port: number, intervalMs: number, where: () => string): { stop: () => Promise<{ latencies: number[]; failures: string[]; slowest: string }> } {
  const latencies: number[] = [];
  const failures: string[] = [];
  let running = true;
  let slowest = '';
  let max = 0;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        const res = await fetch(`http://127.0.0.1:${port}/ready`, { signal: AbortSignal.timeout(10_000) });
        await res.text();
        if (res.status !== 200) failures.push(`status ${res.status}`);
      } catch (err) {
        failures.push(String((err as Error).message ?? err));
      }
      const ms = performance.now() - t0;
      latencies.push(ms);
      if (ms > max) {
        max = ms;
        slowest = where();
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { latencies, failures, slowest };
    },
  };
}

type Syncz = Array<{ proxy: string; types: Record<string, { nack_count?: number; last_nack?: { message?: string } }> }>;

async function nacks(port: number): Promise<string[]> {
  const out: string[] = [];
  for (const p of (await getJson(port, '/debug/syncz')) as Syncz) {
    for (const [t, w] of Object.entries(p.types)) if ((w.nack_count ?? 0) > 0) out.push(`${p.proxy} ${t}: ${w.nack_count} NACK(s), last: ${w.last_nack?.message ?? ''}`);
  }
  return out;
}

function baseObjects(backendPort: number): string {
  const objs: object[] = [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: FUZZ_NAMESPACE } }];
  for (let k = 0; k < FUZZ_SERVICES; k++) {
    objs.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: fuzzHost(k), namespace: FUZZ_NAMESPACE }, spec: { ports: [{ name: 'grpc', port: 9080, targetPort: 9080 }] } });
    objs.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${fuzzHost(k)}-base`, namespace: FUZZ_NAMESPACE, labels: { 'kubernetes.io/service-name': fuzzHost(k) } },
      addressType: 'IPv4',
      ports: [{ name: 'grpc', port: backendPort }],
      endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
    });
  }
  return objs.map((o) => JSON.stringify(o)).join('\n---\n');
}

const KINDS = new Map(KUBE_KINDS.map((k) => [k.kind as string, k]));

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const perFile = opts.perFile ?? 25;
  const rotate = opts.rotate ?? 40;
  const checkEvery = opts.checkEvery ?? 10;
  const say = opts.progress ?? (() => undefined);
  const started = performance.now();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-chaos-'));
  const shapeDir = path.join(tmp, 'shapes');
  fs.mkdirSync(shapeDir);
  const report: ChaosReport = {
    seed: opts.seed,
    objects: 0,
    files: 0,
    shapes: 0,
    seconds: 0,
    readyPolls: 0,
    readyFailures: [],
    readyMaxMs: 0,
    readyP99Ms: 0,
    readySlowestAt: '',
    meshdPeakRssMb: 0,
    heapUsedMb: [],
    logBytes: 0,
    longestLogLine: 0,
    nacks: [],
    baselineCalls: 0,
    baselineFailures: [],
    shapeProblems: [],
    validateProblems: [],
    parsedInProcess: 0,
    kubePathObjects: 0,
  };
  let backends: BackendSet | undefined;
  let fixture: MeshFixture | undefined;
  let meshd: MeshdChild | undefined;
  const clients: XdsClient[] = [];
  let poller: ReturnType<typeof readyPoller> | undefined;
  try {
    backends = await startBackends([V1]);
    const port = backends.get(V1).port;
    fixture = await createMeshFixture({ ports: { v1: port } });
    await fixture.writeFile('00-fuzz-base.yaml', baseObjects(port));
    meshd = await startMeshdChild(fixture.configDir, path.join(tmp, 'ca'));
    const m = meshd;
    say(`meshd pid ${m.child.pid}: xDS 127.0.0.1:${m.xdsPort}, debug 127.0.0.1:${m.debugPort}`);
    const baseline = await startGrpcJsXdsClient({ xdsPort: m.xdsPort });
    clients.push(baseline);
    // Two clients of fuzzed services: one whose routes and rules are fuzzed, one that only
    // EndpointSlices reach (so its ClusterLoadAssignment is not hidden behind subsets).
    const fuzzed = [0, EDS_ONLY_SERVICE].map((k) => startGrpcJsXdsClient({ xdsPort: m.xdsPort, target: `xds:///${fuzzHost(k)}.${FUZZ_NAMESPACE}.svc.cluster.local:9080` }));
    for (const c of await Promise.all(fuzzed)) clients.push(c);
    let doing = 'warm-up';
    poller = readyPoller(m.debugPort, 50, () => doing);

    const alive = (): void => {
      const e = m.exited();
      if (e) throw new Error(`${e}\n--- meshd log (tail) ---\n${m.tail()}`);
    };
    const checkpoint = async (): Promise<void> => {
      alive();
      const r = await baseline.run({ calls: 10, deadlineMs: 5000, waitForReady: true });
      report.baselineCalls += 10;
      if (r.errors > 0 || (r.counts[V1] ?? 0) !== 10) report.baselineFailures.push(JSON.stringify(r));
      // The fuzzed service's calls may fail (its routes are fuzz); what matters is that the
      // client took every resource it was sent.
      await Promise.all(clients.slice(1).map((c) => c.run({ calls: 2, deadlineMs: 500 }).catch(() => undefined)));
      for (const n of await nacks(m.debugPort)) if (!report.nacks.includes(n)) report.nacks.push(n);
      report.heapUsedMb.push(await heapUsedMb(m.debugPort));
    };
    // Warm up: the baseline route works before anything is fuzzed.
    await checkpoint();

    const fuzzer = new Fuzzer(opts.seed);
    const files = Math.ceil(opts.objects / perFile);
    // Shapes spread over the run (several after one file when there are few files).
    const shapeAt = new Map<number, Array<(typeof SHAPES)[number]>>();
    SHAPES.forEach((s, i) => {
      const at = Math.min(files - 1, Math.floor((i * files) / SHAPES.length));
      shapeAt.set(at, [...(shapeAt.get(at) ?? []), s]);
    });
    const written = new Set<string>();
    for (let f = 0; f < files; f++) {
      const count = Math.min(perFile, opts.objects - f * perFile);
      const { text, docs } = fuzzer.fileWithObjects(count);
      const name = `zz-fuzz-${String(f % rotate).padStart(3, '0')}.yaml`;
      // The folder source's parser and the Kubernetes source's path, in this process too.
      try {
        loadText(text, name);
        report.parsedInProcess++;
      } catch (err) {
        report.validateProblems.push(`${name} (seed ${opts.seed}, file ${f}): loadText threw ${(err as Error).message}`);
      }
      for (const d of docs) {
        const k = typeof d.object['kind'] === 'string' ? KINDS.get(d.object['kind']) : undefined;
        if (!k) continue;
        try {
          toConfigObject(k, k.versions[0] as string, d.object);
          report.kubePathObjects++;
        } catch (err) {
          report.validateProblems.push(`kube path, ${k.kind} (seed ${opts.seed}, file ${f}): threw ${(err as Error).message}`);
        }
      }
      doing = `file ${f}`;
      await fixture.writeFile(name, text);
      written.add(name);
      report.objects += count;
      report.files++;
      for (const shape of shapeAt.get(f) ?? []) {
        const t = shape.text();
        fs.writeFileSync(path.join(shapeDir, shape.name), t);
        doing = `file ${f}, shape ${shape.name}`;
        await fixture.writeFile(`zz-shape-${shape.name}`, t);
        report.shapes++;
        say(`file ${f}: shape ${shape.name} (${t.length} characters)`);
      }
      // Past the push debounce's quiet period, so that most files become a served snapshot.
      await new Promise((r) => setTimeout(r, 120));
      if ((f + 1) % checkEvery === 0) {
        await checkpoint();
        say(
          `${report.objects} objects in ${report.files} files; meshd ${peakRssMb(m.child.pid)} MB peak RSS, ${report.heapUsedMb[report.heapUsedMb.length - 1] ?? 0} MB heap in use; NACKs ${report.nacks.length}; baseline failures ${report.baselineFailures.length}`,
        );
      }
    }

    doing = 'waiting for the last files to be served';
    // Quiescence: a marker object is served once everything written before it was read.
    const marker = `chaos-done-${opts.seed}`;
    await fixture.writeFile(
      'zz-zz-marker.yaml',
      `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ${marker}, namespace: ${FUZZ_NAMESPACE}}\nspec:\n  hosts: [marker.example.com]\n  http:\n  - route:\n    - destination: {host: marker.example.com}\n`,
    );
    type Configz = { virtual_services: Array<{ name: string }>; errors: Array<{ source: string; errors: Array<{ path: string; message: string }> }> };
    let configz: Configz | undefined;
    for (let i = 0; i < 600 && !configz; i++) {
      alive();
      const z = (await getJson(m.debugPort, '/debug/configz')) as Configz;
      if (z.virtual_services.some((v) => v.name === marker)) configz = z;
      else await new Promise((r) => setTimeout(r, 200));
    }
    if (!configz) throw new Error('meshd never served the marker written after the last fuzzed file');
    await checkpoint();
    for (const s of SHAPES) {
      if (!s.expect) continue;
      const errs = configz.errors.filter((e) => e.source === `zz-shape-${s.name}`);
      const text = errs.flatMap((e) => e.errors.map((x) => `${x.path}: ${x.message}`)).join('\n');
      if (!s.expect.test(text)) report.shapeProblems.push(`configz for ${s.name}: want ${s.expect}, got ${text.slice(0, 500) || '(no error)'}`);
    }

    // meshd validate, as a command, on every shape and on one fuzzed file.
    const cli = spawnSync(process.execPath, ['--import', 'tsx', MAIN, 'validate', shapeDir, path.join(fixture.configDir, 'zz-fuzz-000.yaml')], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 300_000,
      maxBuffer: 256 * 1024 * 1024,
    });
    if (cli.status !== 1) report.validateProblems.push(`meshd validate exited ${cli.status ?? cli.signal}; stderr: ${cli.stderr.slice(0, 1000)}`);
    if (cli.stderr.trim() !== '') report.validateProblems.push(`meshd validate wrote to stderr: ${cli.stderr.slice(0, 1000)}`);
    for (const s of SHAPES) {
      if (!s.expect) continue;
      const lines = cli.stdout
        .split('\n')
        .filter((l) => l.includes(s.name))
        .join('\n');
      if (!s.expect.test(lines)) report.validateProblems.push(`meshd validate for ${s.name}: want ${s.expect}, got ${lines.slice(0, 500) || '(nothing)'}`);
    }
    const longestCli = Math.max(...cli.stdout.split('\n').map((l) => l.length));
    if (longestCli > DEFAULT_INPUT_LIMITS.maxLogLineLength) report.validateProblems.push(`meshd validate printed a line of ${longestCli} characters`);
    alive();
  } finally {
    const polled = poller ? await poller.stop() : { latencies: [], failures: [], slowest: '' };
    report.readySlowestAt = polled.slowest;
    report.readyPolls = polled.latencies.length;
    report.readyFailures = polled.failures.slice(0, 20);
    const sorted = [...polled.latencies].sort((a, b) => a - b);
    report.readyMaxMs = Math.round(sorted[sorted.length - 1] ?? 0);
    report.readyP99Ms = Math.round(sorted[Math.floor(sorted.length * 0.99)] ?? 0);
    if (meshd) {
      report.meshdPeakRssMb = peakRssMb(meshd.child.pid);
      report.meshdExit = meshd.exited();
      report.logBytes = meshd.logBytes();
      report.longestLogLine = meshd.longestLine();
    }
    for (const c of clients) await c.close().catch(() => undefined);
    if (meshd && !meshd.exited()) {
      meshd.child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 500));
      if (!meshd.exited()) meshd.child.kill('SIGKILL');
    }
    await backends?.close();
    await fixture?.cleanup();
    fs.rmSync(tmp, { recursive: true, force: true });
    report.seconds = Math.round((performance.now() - started) / 100) / 10;
  }
  return report;
}

/** The report as README-ready lines. */
export function describeReport(r: ChaosReport): string {
  return [
    `seed ${r.seed}: ${r.objects} fuzzed objects in ${r.files} files, plus ${r.shapes} shapes, in ${r.seconds} s`,
    `meshd: ${r.meshdExit ?? 'still running at the end'}; peak RSS ${r.meshdPeakRssMb} MB; heap in use ${r.heapUsedMb[0] ?? 0} MB after warm-up, at most ${Math.max(0, ...r.heapUsedMb)} MB, ${r.heapUsedMb[r.heapUsedMb.length - 1] ?? 0} MB at the end; log ${(r.logBytes / 1024).toFixed(0)} KiB, longest line ${r.longestLogLine} characters`,
    `/ready: ${r.readyPolls} polls, ${r.readyFailures.length} failed, max ${r.readyMaxMs} ms (${r.readySlowestAt}), p99 ${r.readyP99Ms} ms`,
    `clients: ${r.baselineCalls} baseline calls, ${r.baselineFailures.length} failed; NACKs: ${r.nacks.length}`,
    `in process: ${r.parsedInProcess} files through the folder parser, ${r.kubePathObjects} objects through the Kubernetes path`,
    `problems: shapes ${r.shapeProblems.length}, validate ${r.validateProblems.length}`,
  ].join('\n');
}
