/**
 * meshd as a child process (`node --import tsx src/main.ts ...`), for tests of what only a
 * process shows: signals, exit codes, standard output going away, restarts on the same ports.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';

const ROOT = path.resolve(__dirname, '..', '..');
const MAIN = path.join(ROOT, 'src', 'main.ts');
const STDERR_KEEP = 64 * 1024;

export interface MeshdProcess {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  readonly xdsPort: number;
  readonly debugPort: number;
  /** Resolves with the exit code (or the signal's name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** The last 64 KiB of stderr. */
  stderr(): string;
  /** SIGKILL if still running, and wait for it. Safe to call twice. */
  kill(): Promise<void>;
}

export interface MeshdProcessOptions {
  configDir: string;
  /** 0 (default) picks free ports; a restart passes the ports it had. */
  xdsPort?: number;
  debugPort?: number;
  logLevel?: string;
  extraArgs?: readonly string[];
  /** How long to wait for the "meshd listening" line. Default 30 s. */
  startTimeoutMs?: number;
}

/**
 * meshd's port flags for a test: xDS and debug on free ports (or the ones given), the monitoring
 * port off, the webhook and TLS xDS ports off unless asked for (then on free ports too).
 */
export function portArgs(o: { xds?: number; debug?: number; webhook?: boolean; secureXds?: boolean } = {}): string[] {
  return [
    '--xds-port',
    String(o.xds ?? 0),
    '--debug-port',
    String(o.debug ?? 0),
    '--monitoring-port',
    '-1',
    '--webhook-port',
    o.webhook ? '0' : '-1',
    '--secure-xds-port',
    o.secureXds ? '0' : '-1',
  ];
}

/** A fresh copy of an example folder (meshd watches it; tests may edit it). */
export function copyExample(name: string): string {
  const src = path.join(ROOT, 'examples', name);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `meshd-${name}-`));
  for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(dir, f));
  return dir;
}

/**
 * Starts meshd and resolves once it prints where it listens. Its stdout stays a pipe the caller
 * owns (read from it, pause it, or destroy it); nothing else reads it after the listening line.
 */
export async function startMeshdProcess(opts: MeshdProcessOptions): Promise<MeshdProcess> {
  const caDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-proc-ca-'));
  const args = [
    '--import',
    'tsx',
    MAIN,
    '--config-dir',
    opts.configDir,
    ...portArgs({ xds: opts.xdsPort, debug: opts.debugPort }),
    '--ca-dir',
    caDir,
    '--log-level',
    opts.logLevel ?? 'info',
    ...(opts.extraArgs ?? []),
  ];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b: Buffer) => {
    err = (err + b.toString('utf8')).slice(-STDERR_KEEP);
  });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  void exited.then(() => fs.rmSync(caDir, { recursive: true, force: true }));
  let out = '';
  const ports = await new Promise<{ xds: number; debug: number }>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`meshd did not start within ${opts.startTimeoutMs ?? 30_000} ms`)), opts.startTimeoutMs ?? 30_000);
    const onData = (b: Buffer): void => {
      out += b.toString('utf8');
      const m = /meshd listening: xDS [\d.]+:(\d+), debug http:\/\/[\d.]+:(\d+)\/debug/.exec(out);
      if (!m) return;
      cleanup();
      resolve({ xds: Number(m[1]), debug: Number(m[2]) });
    };
    const onExit = (code: number | null): void => fail(new Error(`meshd exited (${code}) before listening`));
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      child.stdout.pause();
    };
    function fail(e: Error): void {
      cleanup();
      child.kill('SIGKILL');
      reject(new Error(`${e.message}\n--- stdout ---\n${out.slice(-4000)}\n--- stderr ---\n${err.slice(-4000)}`));
    }
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });
  return {
    child,
    xdsPort: ports.xds,
    debugPort: ports.debug,
    exited,
    stderr: () => err,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Resolves with how the process ended and how long it took, or 'timeout' after `ms`. */
export async function exitWithin(p: MeshdProcess, ms: number): Promise<{ code: number | string; ms: number }> {
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([p.exited, new Promise<string>((r) => (timer = setTimeout(() => r('timeout'), ms)))]);
  clearTimeout(timer);
  return { code, ms: Date.now() - t0 };
}
