/**
 * The folder source converges on the files' final content, whatever way they are written: in
 * place (writeFileSync, truncate then write with a gap, half a file then the rest, copyFileSync,
 * the `cp` command) or removed and created again, in bursts with no pause. After the last write
 * of each round settles, the snapshot meshd serves holds exactly the last content of every file.
 * A file seen empty or half-written never takes its objects away without a word, a change no
 * watch event reported is found by the rescan, and content equal to what is served pushes nothing.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import pino from 'pino';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { FileSource } from '../src/sources/file-source';
import { mulberry32 } from './helpers/random-mesh';

const run = promisify(execFile);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** One VirtualService whose content names the edit that wrote it (fixed width: same-size rewrites are common). */
function vs(file: number, j: number, edit: number): string {
  const w = 10 + (edit % 80);
  return [
    'apiVersion: networking.istio.io/v1',
    'kind: VirtualService',
    'metadata:',
    `  name: vs-${file}-${j}`,
    '  namespace: default',
    'spec:',
    '  hosts:',
    `  - svc-${file}-${j}`,
    '  http:',
    '  - match:',
    '    - headers:',
    '        end-user:',
    `          exact: edit-${String(edit).padStart(6, '0')}`,
    '    route:',
    '    - destination:',
    `        host: svc-${file}-${j}`,
    `      weight: ${w}`,
    '    - destination:',
    `        host: svc-${file}-${j}-canary`,
    `      weight: ${100 - w}`,
    '',
  ].join('\n');
}

interface Written {
  edit: number;
  count: number;
}

function fileText(file: number, w: Written): string {
  return Array.from({ length: w.count }, (_, j) => vs(file, j, w.edit)).join('---\n');
}

/** What a file's last write says meshd must serve: `name → edit` for each of its objects. */
function expectedOf(file: number, w: Written): string[] {
  return Array.from({ length: w.count }, (_, j) => `vs-${file}-${j}=edit-${String(w.edit).padStart(6, '0')}/${10 + (w.edit % 80)}`);
}

/** What meshd serves for a file's objects, in the same form. */
function servedOf(m: MeshdHandle, file: number): string[] {
  const out: string[] = [];
  for (const v of m.snapshot()?.virtualServices ?? []) {
    if (!v.meta.name.startsWith(`vs-${file}-`)) continue;
    const http = v.spec.http?.[0];
    const exact = (http?.match?.[0]?.headers?.['end-user'] as { exact?: string } | undefined)?.exact;
    out.push(`${v.meta.name}=${exact}/${http?.route?.[0]?.weight}`);
  }
  return out.sort();
}

type Method = 'writeFileSync' | 'truncate-then-write' | 'half-then-rest' | 'copyFileSync' | 'cp' | 'remove+create';

/** Writes `text` to `file` the way an operator's tool would. `gap` separates the two steps. */
async function write(method: Method, file: string, text: string, gap: number, staging: string): Promise<void> {
  switch (method) {
    case 'writeFileSync':
      fs.writeFileSync(file, text);
      return;
    case 'truncate-then-write': {
      const fd = fs.openSync(file, 'r+');
      try {
        fs.ftruncateSync(fd, 0);
        if (gap > 0) await sleep(gap);
        fs.writeSync(fd, text, 0);
      } finally {
        fs.closeSync(fd);
      }
      return;
    }
    case 'half-then-rest': {
      // `cat > file`: opened with truncation, written in two pieces.
      const fd = fs.openSync(file, 'w');
      try {
        const half = Math.floor(text.length / 2);
        fs.writeSync(fd, text.slice(0, half));
        if (gap > 0) await sleep(gap);
        fs.writeSync(fd, text.slice(half));
      } finally {
        fs.closeSync(fd);
      }
      return;
    }
    case 'copyFileSync':
      fs.writeFileSync(staging, text);
      fs.copyFileSync(staging, file);
      return;
    case 'cp':
      fs.writeFileSync(staging, text);
      await run('cp', [staging, file]);
      return;
    case 'remove+create':
      fs.unlinkSync(file);
      if (gap > 0) await sleep(gap);
      fs.writeFileSync(file, text);
      return;
  }
}

const METHODS: readonly Method[] = [
  'writeFileSync',
  'truncate-then-write',
  'half-then-rest',
  'copyFileSync',
  'remove+create',
  'writeFileSync',
  'truncate-then-write',
  'copyFileSync',
  'cp',
];

test('1,000+ in-place rewrites of config files: the served snapshot always ends on the last content of every file', { timeout: 120_000 }, async () => {
  const seed = Number(process.env['FOLDER_SEED'] ?? Date.now() % 1_000_000);
  const rnd = mulberry32(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const dir = tempDir('meshd-folder-');
  const staging = path.join(tempDir('meshd-folder-staging-'), 'next.yaml');
  const FILES = 6;
  const last = new Map<number, Written>();
  for (let f = 0; f < FILES; f++) {
    last.set(f, { edit: 0, count: 2 });
    fs.writeFileSync(path.join(dir, `vs-${f}.yaml`), fileText(f, { edit: 0, count: 2 }));
  }
  // The rescan is off: convergence here comes from settling on watch events alone.
  const meshd = await startMeshd({
    configDir: dir,
    xdsPort: 0,
    debugPort: 0,
    monitoringPort: -1,
    debounceQuietMs: 20,
    configRescanIntervalMs: 0,
    logger: pino({ level: 'silent' }),
  });
  const lost: string[] = [];
  const byMethod = new Map<Method, number>();
  let writes = 0;
  let edit = 0;
  const converged = async (timeoutMs: number): Promise<string[]> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const wrong: string[] = [];
      for (const [f, w] of last) {
        const want = expectedOf(f, w);
        const got = servedOf(meshd, f);
        if (JSON.stringify(want) !== JSON.stringify(got)) wrong.push(`vs-${f}.yaml: wrote ${want.join(',')}; served ${got.join(',') || 'nothing'}`);
      }
      if (wrong.length === 0 || Date.now() > end) return wrong;
      await sleep(10);
    }
  };
  const writeOne = async (f: number, method: Method, gap: number): Promise<void> => {
    const w: Written = { edit: ++edit, count: rnd() < 0.2 ? 1 : 2 };
    await write(method, path.join(dir, `vs-${f}.yaml`), fileText(f, w), gap, staging);
    last.set(f, w);
    writes++;
    byMethod.set(method, (byMethod.get(method) ?? 0) + 1);
  };
  try {
    await meshd.whenReady();
    // At least 24 rounds and 1,000 writes; round 12 is a burst.
    for (let round = 0; (round < 24 || writes < 1000) && lost.length < 3; round++) {
      if (round === 12) {
        // A burst: hundreds of edits of one file with no pause, as an editor's autosave or a script.
        for (let i = 0; i < 400; i++) await writeOne(0, i % 3 === 0 ? 'truncate-then-write' : 'writeFileSync', 0);
      } else {
        const order: number[] = [];
        for (let f = 0; f < FILES; f++) for (let k = int(1, 8); k > 0; k--) order.push(f);
        order.sort(() => rnd() - 0.5);
        for (const f of order) {
          await writeOne(f, METHODS[int(0, METHODS.length - 1)] as Method, int(0, 3) === 0 ? 0 : int(1, 15));
          if (rnd() < 0.5) await sleep(int(0, 8));
        }
      }
      const wrong = await converged(5000);
      if (wrong.length > 0) lost.push(`round ${round}: ${wrong.join('; ')}`);
    }
    assert.deepEqual(lost, [], `seed ${seed}: ${lost.length} round(s) ended without the last write served (${writes} writes: ${JSON.stringify(Object.fromEntries(byMethod))})`);
    await (meshd.source as FileSource).idle();
    assert.deepEqual(await converged(0), [], 'still the last content once every read has settled');
    assert.deepEqual(meshd.snapshot()?.errors, [], 'no half-written file was served as an error');
  } finally {
    await meshd.close();
  }
});

/** A pino logger whose lines land in an array. */
function capture(): { log: pino.Logger; lines: Array<{ level: number; msg: string; file?: string }> } {
  const lines: Array<{ level: number; msg: string; file?: string }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as { level: number; msg: string });
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

/** Resolves once `cond` holds, or fails after `ms`. */
async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const edits = (src: FileSource): Array<string | undefined> => src.state().objects.map((o) => JSON.stringify(o).match(/edit-\d+/)?.[0]);

test('a file seen empty or half-written does not take its objects away; one that stays so is served with a warning', { timeout: 30_000 }, async () => {
  const dir = tempDir('meshd-folder-half-');
  const file = path.join(dir, 'vs.yaml');
  fs.writeFileSync(file, fileText(1, { edit: 1, count: 2 }));
  const { log, lines } = capture();
  const src = new FileSource(dir, { settleMs: 30, suspectHoldMs: 1000, rescanIntervalMs: 0, log });
  src.load();
  // Every state the source ever published.
  const published: string[][] = [];
  src.on('change', () =>
    published.push(
      src
        .state()
        .objects.map((o) => o.metadata.name)
        .sort(),
    ),
  );
  await src.start();
  try {
    // Truncated, then written again 200 ms later (several quiet periods).
    let fd = fs.openSync(file, 'r+');
    fs.ftruncateSync(fd, 0);
    await sleep(200);
    fs.writeSync(fd, fileText(1, { edit: 2, count: 2 }), 0);
    fs.closeSync(fd);
    await until('edit 2', () => edits(src).join() === 'edit-000002,edit-000002');
    // Half of it written, the rest 200 ms later: the first document alone parses.
    const text = fileText(1, { edit: 3, count: 2 });
    fd = fs.openSync(file, 'w');
    fs.writeSync(fd, text.slice(0, text.indexOf('---')));
    await sleep(200);
    fs.writeSync(fd, text.slice(text.indexOf('---')));
    fs.closeSync(fd);
    await until('edit 3', () => edits(src).join() === 'edit-000003,edit-000003');
    await src.idle();
    assert.deepEqual(
      published.filter((p) => p.length !== 2),
      [],
      'an object went missing while its file was being written',
    );
    assert.equal(src.stats().held, 2, 'the empty and the half-written reads were held');
    assert.deepEqual(
      lines.filter((l) => l.level >= 40),
      [],
      'no warning for a write that finished',
    );

    // Emptied for good: after the hold it is served as it is, and a warning names the file.
    fs.truncateSync(file, 0);
    await until('the emptied file to be served', () => src.state().objects.length === 0);
    const warn = lines.find((l) => l.level === 40);
    assert.ok(warn, 'a warning says the file lost its objects');
    assert.match(warn.msg, /vs\.yaml now defines 0 object\(s\) \(had 2\)/);
  } finally {
    await src.close();
  }
});

test('unchanged content publishes nothing; a change made before the watch starts is found by the first rescan', { timeout: 30_000 }, async () => {
  const dir = tempDir('meshd-folder-rescan-');
  const file = path.join(dir, 'vs.yaml');
  fs.writeFileSync(file, fileText(2, { edit: 1, count: 1 }));
  const src = new FileSource(dir, { settleMs: 20, rescanIntervalMs: 0 });
  src.load();
  let changes = 0;
  src.on('change', () => changes++);
  // Written after the initial read and before any watch: no event will ever say so.
  fs.writeFileSync(file, fileText(2, { edit: 2, count: 1 }));
  fs.writeFileSync(path.join(dir, 'new.yaml'), fileText(4, { edit: 1, count: 1 }));
  await src.start();
  try {
    await src.idle();
    assert.deepEqual(edits(src), ['edit-000001', 'edit-000002'], 'both files as written');
    assert.equal(src.stats().foundByRescan, 2);
    assert.equal(changes, 2);

    // The same bytes written again, in place and by remove+create, and a touch: nothing is published.
    fs.writeFileSync(file, fileText(2, { edit: 2, count: 1 }));
    fs.unlinkSync(file);
    fs.writeFileSync(file, fileText(2, { edit: 2, count: 1 }));
    const now = new Date();
    fs.utimesSync(file, now, now);
    await sleep(200);
    await src.idle();
    await src.rescanNow();
    assert.equal(changes, 2, 'rewriting the same content published a change');
  } finally {
    await src.close();
  }
});

test('without watch events the periodic rescan alone converges (file systems without inotify)', { timeout: 30_000 }, async () => {
  const dir = tempDir('meshd-folder-poll-');
  const file = path.join(dir, 'vs.yaml');
  fs.writeFileSync(file, fileText(3, { edit: 1, count: 2 }));
  const src = new FileSource(dir, { settleMs: 20, rescanIntervalMs: 100, watch: false });
  src.load();
  await src.start();
  try {
    for (let edit = 2; edit <= 6; edit++) {
      const w = { edit, count: edit % 2 === 0 ? 1 : 2 };
      await write(edit % 2 === 0 ? 'truncate-then-write' : 'remove+create', file, fileText(3, w), 5, '');
      await until(
        `edit ${edit}`,
        () =>
          edits(src).join() ===
          Array(w.count)
            .fill(`edit-${String(edit).padStart(6, '0')}`)
            .join(),
      );
    }
    fs.unlinkSync(file);
    await until('the removal', () => src.state().objects.length === 0);
    assert.ok(src.stats().foundByRescan >= 6);
  } finally {
    await src.close();
  }
});

test('meshd --config-rescan-interval reaches the folder source', { timeout: 30_000 }, async () => {
  const dir = tempDir('meshd-folder-periodic-');
  fs.writeFileSync(path.join(dir, 'vs.yaml'), fileText(5, { edit: 1, count: 1 }));
  const meshd = await startMeshd({ configDir: dir, xdsPort: 0, debugPort: 0, monitoringPort: -1, configRescanIntervalMs: 50, logger: pino({ level: 'silent' }) });
  try {
    const src = meshd.source as FileSource;
    await until('a few rescans', () => src.stats().rescans >= 3);
  } finally {
    await meshd.close();
  }
});

test('a rescan reads only files whose stat changed, and every few rescans reads them all', { timeout: 30_000 }, async () => {
  const dir = tempDir('meshd-folder-stamp-');
  for (let i = 1; i <= 3; i++) fs.writeFileSync(path.join(dir, `f${i}.yaml`), fileText(i, { edit: 1, count: 1 }));
  const src = new FileSource(dir, { settleMs: 20, rescanIntervalMs: 0, rescanReadEvery: 3, watch: false });
  src.load();
  await src.start();
  try {
    const reads = async (): Promise<number> => {
      const before = src.stats().rescanReads;
      await src.rescanNow();
      return src.stats().rescanReads - before;
    };
    await src.idle();
    assert.equal(src.stats().rescanReads, 3, 'the first rescan (at start) reads every file and learns their stats');
    assert.equal(await reads(), 0, 'nothing changed: no file read');
    // The same size, another content: the stat (mtime, ctime) still tells.
    fs.writeFileSync(path.join(dir, 'f2.yaml'), fileText(2, { edit: 2, count: 1 }));
    assert.equal(await reads(), 1, 'only the changed file is read');
    assert.deepEqual(edits(src).sort(), ['edit-000001', 'edit-000001', 'edit-000002']);
    assert.equal(await reads(), 3, 'every third rescan reads every file, whatever the stats say');
    assert.equal(await reads(), 0);
  } finally {
    await src.close();
  }
});
