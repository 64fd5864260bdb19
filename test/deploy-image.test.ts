/**
 * The container image, without a Docker engine: the file set deploy/Dockerfile assembles is
 * rebuilt in a temporary folder from the Dockerfile's own instructions (the build stage's COPY
 * lines filtered by Dockerfile.dockerignore, `npm run build`, `npm prune --omit=dev`, then the
 * runtime stage's `COPY --from=build` lines), and meshd is started from there the way the
 * image's ENTRYPOINT starts it, as the image's USER. It must answer /ready and serve xDS.
 *
 * Nothing here hard-codes what the image contains: a file the runtime needs and the Dockerfile
 * forgets (proto/, say) makes meshd fail here as it would in the cluster.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient } from './helpers/ads-client';
import { DEPLOY, ROOT } from './helpers/deploy-manifests';
import { portArgs } from './helpers/meshd-process';

interface Stage {
  name?: string;
  from: string;
  workdir: string;
  copies: Array<{ from?: string; sources: string[]; dest: string }>;
  runs: string[];
  env: Record<string, string>;
  user?: string;
  entrypoint?: string[];
}

/** The Dockerfile's stages, with line continuations joined and comments dropped. */
function stages(text: string): Stage[] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const out: Stage[] = [];
  for (const line of lines) {
    const sp = line.indexOf(' ');
    const instr = line.slice(0, sp).toUpperCase();
    const rest = line.slice(sp + 1).trim();
    if (instr === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      assert.ok(m, `FROM ${rest}`);
      out.push({ from: m[1] as string, ...(m[2] ? { name: m[2] } : {}), workdir: '/', copies: [], runs: [], env: {} });
      continue;
    }
    const cur = out.at(-1);
    assert.ok(cur, `${instr} before FROM`);
    switch (instr) {
      case 'WORKDIR':
        cur.workdir = path.posix.resolve(cur.workdir, rest);
        break;
      case 'COPY': {
        const words = rest.split(/\s+/);
        const flags = words.filter((w) => w.startsWith('--'));
        const args = words.filter((w) => !w.startsWith('--'));
        const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
        cur.copies.push({ ...(from ? { from } : {}), sources: args.slice(0, -1), dest: args.at(-1) as string });
        break;
      }
      case 'RUN':
        cur.runs.push(rest);
        break;
      case 'ENV': {
        const m = /^(\S+?)[=\s]+(.*)$/.exec(rest);
        if (m) cur.env[m[1] as string] = m[2] as string;
        break;
      }
      case 'USER':
        cur.user = rest;
        break;
      case 'ENTRYPOINT':
        cur.entrypoint = JSON.parse(rest) as string[];
        break;
    }
  }
  return out;
}

/** .dockerignore patterns (Go filepath.Match per path, a match also excludes what is below). */
function ignoreMatcher(text: string): (rel: string) => boolean {
  const patterns = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const res = patterns.map((p) => {
    const neg = p.startsWith('!');
    const body = (neg ? p.slice(1) : p).replace(/^\/+/, '').replace(/\/+$/, '');
    const re = new RegExp(
      `^${body
        .split('**')
        .map((part) =>
          part
            .replace(/[.+^${}()|[\]\\]/g, '\\$&')
            .replace(/\*/g, '[^/]*')
            .replace(/\?/g, '[^/]'),
        )
        .join('.*')}(/.*)?$`,
    );
    return { neg, re };
  });
  return (rel) => {
    let ignored = false;
    for (const { neg, re } of res) if (re.test(rel)) ignored = !neg;
    return ignored;
  };
}

/** Copies `src` (file or folder, relative to the context) into `dest`, leaving out ignored paths. */
function copyFromContext(context: string, rel: string, dest: string, ignored: (rel: string) => boolean): void {
  const from = path.join(context, rel);
  assert.ok(fs.existsSync(from), `COPY ${rel}: not in the build context`);
  const st = fs.statSync(from);
  if (st.isDirectory()) {
    fs.mkdirSync(dest, { recursive: true });
    for (const e of fs.readdirSync(from)) {
      const r = path.posix.join(rel, e);
      if (!ignored(r)) copyFromContext(context, r, path.join(dest, e), ignored);
    }
    return;
  }
  if (ignored(rel)) return;
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.copyFileSync(from, dest);
}

/** The destination of a COPY source: `dest/` (or several sources) takes the base name. */
function copyTarget(root: string, workdir: string, dest: string, src: string, many: boolean): string {
  const d = path.posix.resolve(workdir, dest);
  return path.join(root, dest.endsWith('/') || many ? path.posix.join(d, path.posix.basename(src)) : d);
}

/** Whether a user other than the owner can reach `p` (every folder on the way lets others in). */
function othersCanReach(p: string): boolean {
  for (let d = path.dirname(fs.realpathSync(p)); ; d = path.dirname(d)) {
    if ((fs.statSync(d).mode & 0o001) === 0) return false;
    if (path.dirname(d) === d) return true;
  }
}

/**
 * What `npm prune --omit=dev` leaves: the lockfile's top-level packages that are not dev-only,
 * linked from the checkout's installed node_modules (copied when the image user could not reach
 * the checkout through the links).
 */
function prunedNodeModules(dir: string): void {
  const copy = !othersCanReach(path.join(ROOT, 'node_modules', 'yaml'));
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  fs.mkdirSync(dir, { recursive: true });
  for (const [key, info] of Object.entries(lock.packages)) {
    const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)$/.exec(key);
    if (!m || info.dev === true) continue;
    const name = m[1] as string;
    const real = path.join(ROOT, 'node_modules', name);
    if (!fs.existsSync(real)) continue; // an optional dependency for another platform
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    if (copy) fs.cpSync(fs.realpathSync(real), path.join(dir, name), { recursive: true, verbatimSymlinks: true });
    else fs.symlinkSync(fs.realpathSync(real), path.join(dir, name));
  }
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-image-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  fs.rmSync(work, { recursive: true, force: true });
});

test('the Dockerfile uses a supported Node base image and runs the compiled code, not the TypeScript', () => {
  const st = stages(fs.readFileSync(path.join(DEPLOY, 'Dockerfile'), 'utf8'));
  for (const s of st) {
    const m = /^node:(\d+)(-[a-z]+)*-slim$/.exec(s.from);
    assert.ok(m, `FROM ${s.from}: want node:<major>-<distro>-slim`);
    // Node 20 is past its end of life; 22 and 24 are maintained LTS lines.
    assert.ok(Number(m[1]) >= 22 && Number(m[1]) % 2 === 0, `FROM ${s.from}: an LTS line that is still maintained (22 or later)`);
  }
  const runtime = st.at(-1) as Stage;
  assert.deepEqual(runtime.entrypoint?.slice(0, 2), ['node', 'bin/meshd.js']);
  const bin = fs.readFileSync(path.join(ROOT, 'bin', 'meshd.js'), 'utf8');
  assert.match(bin, /require\('\.\.\/dist\/main\.js'\)/);
  assert.doesNotMatch(bin, /tsx|ts-node|\.ts['"]/, 'bin/meshd.js must not need a TypeScript loader');
});

test(
  'the image file set starts meshd as the image user: /ready answers and xDS serves',
  { skip: !isRoot || !setpriv ? 'needs root and setpriv to run as the image user' : false, timeout: 180_000 },
  async () => {
    const st = stages(fs.readFileSync(path.join(DEPLOY, 'Dockerfile'), 'utf8'));
    const ignored = ignoreMatcher(fs.readFileSync(path.join(DEPLOY, 'Dockerfile.dockerignore'), 'utf8'));
    const fsRoots = new Map<string, string>();

    // Build stages: COPY from the context, then the RUN steps meshd's build relies on.
    for (const [i, s] of st.slice(0, -1).entries()) {
      const root = path.join(work, `stage-${s.name ?? i}`);
      fsRoots.set(s.name ?? String(i), root);
      for (const c of s.copies) {
        assert.equal(c.from, undefined, 'a build stage copies from the context');
        for (const src of c.sources) copyFromContext(ROOT, src, copyTarget(root, s.workdir, c.dest, src, c.sources.length > 1), ignored);
      }
      const run = s.runs.join(' && ');
      assert.match(run, /\bnpm ci\b/);
      assert.match(run, /\bnpm run build\b/);
      assert.match(run, /\bnpm prune --omit=dev\b/);
      const wd = path.join(root, s.workdir);
      // `npm ci` installs every dependency; `npm run build` is package.json's build script.
      fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(wd, 'node_modules'));
      const pkg = JSON.parse(fs.readFileSync(path.join(wd, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
      const build = /^tsc (.*)$/.exec(pkg.scripts['build'] ?? '');
      assert.ok(build, `build script ${pkg.scripts['build']}: want tsc`);
      const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), ...(build[1] as string).split(/\s+/)], { cwd: wd, encoding: 'utf8' });
      assert.equal(tsc.status, 0, `npm run build: ${tsc.stdout}${tsc.stderr}`);
      // `npm prune --omit=dev`: the dev dependencies (tsx, typescript, types) go.
      fs.unlinkSync(path.join(wd, 'node_modules'));
      prunedNodeModules(path.join(wd, 'node_modules'));
      assert.ok(!fs.existsSync(path.join(wd, 'node_modules', 'tsx')), 'tsx is a dev dependency and is pruned');
    }

    // The runtime stage: only what it copies from the build stage.
    const runtime = st.at(-1) as Stage;
    const image = path.join(work, 'image');
    for (const c of runtime.copies) {
      const fromRoot = fsRoots.get(c.from ?? '');
      assert.ok(fromRoot, `COPY --from=${c.from ?? ''}: no such stage`);
      for (const src of c.sources) {
        const target = copyTarget(image, runtime.workdir, c.dest, src, c.sources.length > 1);
        const from = path.join(fromRoot, src);
        assert.ok(fs.existsSync(from), `COPY --from=${c.from ?? ''} ${src}: the build stage has no such file`);
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.cpSync(from, target, { recursive: true, verbatimSymlinks: true });
      }
    }

    // Config for the folder source, and a writable CA folder (the Deployment uses Kubernetes instead).
    const config = path.join(work, 'config');
    fs.cpSync(path.join(ROOT, 'examples', 'bookinfo'), config, { recursive: true });
    const [uid = '', gid = uid] = (runtime.user ?? '').split(':');
    assert.match(uid, /^\d+$/, `USER ${runtime.user}: want a numeric uid (Kubernetes' runAsNonRoot checks it)`);
    assert.notEqual(Number(uid), 0, 'the image must not run as root');
    const caDir = path.join(work, 'ca');
    fs.mkdirSync(caDir);
    fs.chownSync(caDir, Number(uid), Number(gid));
    for (const d of [work, image, config]) spawnSync('chmod', ['-R', 'a+rX', d]);

    const entry = runtime.entrypoint ?? [];
    assert.equal(entry[0], 'node');
    const child = spawn(
      setpriv as string,
      [
        `--reuid=${uid}`,
        `--regid=${gid}`,
        '--clear-groups',
        '--',
        process.execPath,
        ...entry.slice(1),
        '--config-dir',
        config,
        '--ca-dir',
        caDir,
        ...portArgs({ secureXds: true }),
        '--log-level',
        'warn',
      ],
      { cwd: path.join(image, runtime.workdir), env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: '/nonexistent', ...runtime.env } },
    );
    children.push(child);
    let out = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    const line = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`meshd did not start from the image file set:\n${out}`)), 60_000);
      child.on('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`meshd exited with ${code} from the image file set:\n${out}`));
      });
      const poll = setInterval(() => {
        const m = /meshd listening: .*\n/.exec(out);
        if (m) {
          clearInterval(poll);
          clearTimeout(t);
          resolve(m[0]);
        }
      }, 50);
      child.on('exit', () => clearInterval(poll));
    });
    const m = /xDS 127\.0\.0\.1:(\d+), debug http:\/\/127\.0\.0\.1:(\d+)\/debug/.exec(line);
    assert.ok(m, line);
    const ready = await fetch(`http://127.0.0.1:${m[2]}/ready`);
    assert.equal(ready.status, 200, await ready.text());

    const ads = new AdsClient(new EnvoyProtos(), `127.0.0.1:${m[1]}`, {
      id: 'sidecar~10.1.0.9~productpage-v1-1.default~default.svc.cluster.local',
      metadata: { NAMESPACE: 'default' },
    });
    try {
      const cds = await ads.subscribe(TypeUrl.Cluster, undefined, 20_000);
      assert.ok(
        cds.names.some((n) => n.startsWith('outbound|9080||reviews.')),
        `clusters: ${cds.names.join(', ')}`,
      );
    } finally {
      ads.close();
    }
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, out);
  },
);
