/**
 * The processes around a benchmark run: building meshd, starting it and finding its ports,
 * /proc figures (RSS, CPU), an HTTP/2 ping probe for event-loop stalls, and a bounded wait.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as path from 'node:path';
import * as readline from 'node:readline';

export const REPO = path.resolve(__dirname, '..', '..');

/** Polls `check` every `everyMs` until it returns a value; undefined after `timeoutMs`. */
export async function waitFor<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs: number, everyMs = 20): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() >= end) return undefined;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** Runs `tsc -p tsconfig.build.json` when dist/ is missing or older than src/ (or when forced). */
export function buildIfStale(force: boolean, log: (s: string) => void): void {
  const main = path.join(REPO, 'dist', 'main.js');
  const stale = !fs.existsSync(main) || newestMtime(path.join(REPO, 'src')) > fs.statSync(main).mtimeMs;
  if (!force && !stale) return;
  log(`building meshd (${force ? 'forced' : 'dist/ is older than src/'}): npx tsc -p tsconfig.build.json`);
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO, encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`meshd build failed (exit ${r.status ?? r.signal}):\n${(r.stdout + r.stderr).split('\n').slice(0, 30).join('\n')}`);
}

export interface ProcFigures {
  rssMb: number;
  cpuSeconds: number;
}

const TICKS = 100; // USER_HZ on Linux

/** RSS (VmRSS) and CPU time (utime + stime) of a process, or undefined once it is gone. */
export function procFigures(pid: number | undefined): ProcFigures | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the command name: state is field 3, utime field 14, stime field 15.
    const cpu = (Number(fields[11]) + Number(fields[12])) / TICKS;
    return { rssMb: rssKb / 1024, cpuSeconds: cpu };
  } catch {
    return undefined;
  }
}

/** Fraction of all CPUs busy over `ms` (from /proc/stat), e.g. to see other load before a run. */
export async function cpuBusy(ms: number): Promise<number | undefined> {
  const read = (): number[] | undefined => {
    try {
      const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
      const n = line.trim().split(/\s+/).slice(1).map(Number);
      const idle = (n[3] ?? 0) + (n[4] ?? 0);
      return [n.reduce((a, b) => a + b, 0), idle];
    } catch {
      return undefined;
    }
  };
  const a = read();
  await new Promise((r) => setTimeout(r, ms));
  const b = read();
  if (!a || !b || b[0] === a[0]) return undefined;
  return 1 - ((b[1] as number) - (a[1] as number)) / ((b[0] as number) - (a[0] as number));
}

export interface Meshd {
  proc: ChildProcess;
  xds: string;
  debug: string;
  /** warn/error lines meshd logged and its stderr: the first 10 and the last 10 kept. */
  problems: string[];
  lastProblems: string[];
  problemCount: number;
  exited: () => string | undefined;
}

/** Starts `node bin/meshd.js`, reads its ports from stdout and waits for /ready. */
export async function startMeshd(configDir: string, caDir: string, extra: string[], nodeArgs: string[], timeoutMs: number): Promise<Meshd> {
  const args = [
    ...nodeArgs,
    path.join(REPO, 'bin', 'meshd.js'),
    '--config-dir',
    configDir,
    '--xds-port',
    '0',
    '--debug-port',
    '0',
    '--monitoring-port',
    '-1',
    '--secure-xds-port',
    '-1',
    '--webhook-port',
    '-1',
    '--log-level',
    'warn',
    '--ca-dir',
    caDir,
    ...extra,
  ];
  const proc = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let xds: string | undefined;
  let debug: string | undefined;
  let exit: string | undefined;
  const m: Meshd = { proc, xds: '', debug: '', problems: [], lastProblems: [], problemCount: 0, exited: () => exit };
  const problem = (line: string): void => {
    m.problemCount++;
    const short = line.length > 400 ? `${line.slice(0, 400)}…` : line;
    if (m.problems.length < 10) m.problems.push(short);
    else {
      m.lastProblems.push(short);
      if (m.lastProblems.length > 10) m.lastProblems.shift();
    }
  };
  readline.createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    if (line.startsWith('{')) {
      try {
        const o = JSON.parse(line) as { msg?: string; level?: number; xds?: string; debug?: string };
        if (o.msg === 'meshd is serving') [xds, debug] = [o.xds, o.debug];
        if ((o.level ?? 0) >= 40) problem(line);
      } catch {
        problem(line);
      }
      return;
    }
    // The CLI's own line (pino's 'meshd is serving' is info level, below --log-level warn).
    const plain = /^meshd listening: xDS (\S+), debug (http:\/\/[^/\s,]+)/.exec(line);
    if (plain) [xds, debug] = [plain[1], plain[2]];
  });
  readline.createInterface({ input: proc.stderr as NodeJS.ReadableStream }).on('line', problem);
  proc.on('exit', (code, signal) => (exit = `meshd exited (${signal ?? `code ${code}`})`));
  const ports = await waitFor(() => (exit ? exit : xds && debug ? [xds, debug] : undefined), timeoutMs);
  if (!Array.isArray(ports)) {
    proc.kill('SIGKILL');
    throw new Error(`${ports ?? 'timeout waiting for meshd to listen'}${m.problems.length ? `:\n${m.problems.join('\n')}` : ''}`);
  }
  [m.xds, m.debug] = ports as [string, string];
  const ready = await waitFor(
    async () => {
      if (exit) return exit;
      const ok = await fetch(`${m.debug}/ready`, { signal: AbortSignal.timeout(5000) }).then(
        (r) => r.status === 200,
        () => false,
      );
      return ok ? 'ready' : undefined;
    },
    timeoutMs,
    100,
  );
  if (ready !== 'ready') {
    proc.kill('SIGKILL');
    throw new Error(ready ?? 'timeout waiting for meshd /ready');
  }
  return m;
}

/** Stops a child: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(proc: ChildProcess, graceMs = 5000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(timer);
}

/**
 * HTTP/2 PING round trips on a separate connection to a server's port, one in flight at a
 * time, every 50 ms: the server's event loop answers them, so the RTT bounds its stalls.
 */
export class PingProbe {
  private session?: http2.ClientHttp2Session;
  private timer?: NodeJS.Timeout;
  private sentAt?: number;
  private max = 0;
  private stopped = false;
  private pings = 0;

  constructor(private readonly addr: string) {
    this.connect();
    this.timer = setInterval(() => this.tick(), 50);
  }

  private connect(): void {
    if (this.stopped) return;
    const s = http2.connect(`http://${this.addr}`);
    s.on('error', () => undefined);
    s.on('close', () => {
      if (this.session === s) this.session = undefined;
      this.sentAt = undefined;
    });
    this.session = s;
  }

  private tick(): void {
    if (!this.session) this.connect();
    const s = this.session;
    if (!s || this.sentAt !== undefined || s.connecting) return;
    const sent = performance.now();
    this.sentAt = sent;
    const ok = s.ping((err) => {
      if (this.sentAt !== sent) return;
      this.sentAt = undefined;
      if (!err) {
        this.pings++;
        this.max = Math.max(this.max, performance.now() - sent);
      }
    });
    if (!ok) this.sentAt = undefined;
  }

  /** Largest RTT (ms) since the last reset, counting a ping still in flight; null if no ping got through. */
  maxMs(): number | null {
    const inFlight = this.sentAt !== undefined ? performance.now() - this.sentAt : 0;
    return this.pings === 0 && inFlight === 0 ? null : Math.max(this.max, inFlight);
  }

  reset(): void {
    this.max = 0;
    this.pings = 0;
  }

  close(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.session?.close();
    this.session?.destroy();
  }
}
