/** The meshd command line: validate, flag errors, and printing where it listens. */
import assert from 'node:assert/strict';
import * as https from 'node:https';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { portArgs } from './helpers/meshd-process';

const ROOT = path.join(__dirname, '..');
const MAIN = path.join(ROOT, 'src', 'main.ts');

function meshd(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('meshd --version and meshctl version print the version of package.json', () => {
  const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const d = meshd(['--version']);
  assert.equal(d.status, 0, d.stderr);
  assert.equal(d.stdout, `${version}\n`);
  const c = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'cli', 'meshctl.ts'), 'version'], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  assert.equal(c.status, 0, c.stderr);
  assert.equal(c.stdout, `client version: ${version}\n`);
});

test('meshd validate accepts the bookinfo example', () => {
  const r = meshd(['validate', 'examples/bookinfo']);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^\d+ object\(s\) valid$/m);
});

test('meshd validate names file, object and field path of each error and exits 1', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-cli-'));
  try {
    const f = path.join(dir, 'bad.yaml');
    fs.writeFileSync(
      f,
      'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: r, namespace: shop }\nspec:\n  host: reviews\n  subsets:\n  - { name: v1 }\n  - { name: v1 }\n---\napiVersion: v1\nkind: Widget\nmetadata: { name: w }\n',
    );
    const r = meshd(['validate', f]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /bad\.yaml: DestinationRule shop\/r: spec\.subsets\[1\]\.name: .*v1/);
    // Not an Istio kind nor one meshd reads: skipped with a note, as istioctl skips it.
    assert.match(r.stdout, /bad\.yaml: Widget default\/w: skipped: v1 Widget is not an Istio kind/);
    assert.equal(meshd(['validate', path.join(dir, 'missing.yaml')]).status, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('meshd refuses a bad port flag with a clear message', () => {
  const r = meshd(['--config-dir', 'examples/bookinfo', '--xds-port', '70000']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--xds-port must be a port number/);
  const d = meshd(['--config-dir', 'examples/bookinfo', '--config-rescan-interval', 'soon']);
  assert.notEqual(d.status, 0);
  assert.match(d.stderr, /--config-rescan-interval must be a duration such as 0, 500ms, 5s or 1m/);
});

test('meshd --jwks-ca-file must name a PEM file of CA certificates', () => {
  const missing = meshd(['--config-dir', 'examples/bookinfo', ...portArgs(), '--jwks-ca-file', '/nonexistent/ca.pem']);
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /--jwks-ca-file \/nonexistent\/ca\.pem: ENOENT/);
  const notPem = meshd(['--config-dir', 'examples/bookinfo', ...portArgs(), '--jwks-ca-file', 'package.json']);
  assert.match(notPem.stderr, /--jwks-ca-file package\.json: no PEM certificate in it/);
});

test('meshd --config-dir with port 0 prints the ports it chose and serves until SIGTERM', async (t) => {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      MAIN,
      '--config-dir',
      'examples/bookinfo',
      ...portArgs({ webhook: true, secureXds: true }),
      '--ca-dir',
      fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-cli-ca-')),
      '--log-level',
      'warn',
    ],
    { cwd: ROOT },
  );
  // A failed assertion must not leave the process running (it would hold the test run open).
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  const line = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 20_000);
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /meshd listening: .*\n/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[0]);
      }
    });
  });
  const m = /xDS 127\.0\.0\.1:(\d+), debug http:\/\/127\.0\.0\.1:(\d+)\/debug/.exec(line);
  assert.ok(m, line);
  assert.notEqual(Number(m[1]), 0);
  const ready = await fetch(`http://127.0.0.1:${m[2]}/ready`);
  assert.equal(ready.status, 200);
  // The admission webhooks listen over TLS on the port printed (their CA is tested elsewhere).
  const w = /webhooks https:\/\/127\.0\.0\.1:(\d+)/.exec(line);
  assert.ok(w && Number(w[1]) > 0, line);
  // The webhook certificate is issued by the CA just after start; until then handshakes fail (the
  // API server retries), so does this, for a bounded time.
  const post = (): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port: Number(w[1]), path: '/validate', method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end('{}');
    });
  let status: number;
  for (const deadline = Date.now() + 15_000; ;) {
    try {
      status = await post();
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  assert.equal(status, 400, 'a body that is not an AdmissionReview is refused with 400');
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});
