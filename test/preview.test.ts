/**
 * `meshctl x preview` against a running meshd with real ADS clients: a change's effect per class
 * of connected proxies (which resources a push would add, remove or change, and how many proxies
 * would get one), computed without touching what is served: no push is sent and the live config
 * stays as it was.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import type { PreviewReport } from '../src/debug/preview';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient } from './helpers/ads-client';

const ROOT = path.join(__dirname, '..');
const MESHCTL = path.join(ROOT, 'src', 'cli', 'meshctl.ts');
const protos = new EnvoyProtos();
const PRODUCTPAGE = 'sidecar~127.0.0.10~productpage-v1.default~default.svc.cluster.local';
const DETAILS = 'sidecar~127.0.0.12~details-v1.default~default.svc.cluster.local';
const RATINGS = 'sidecar~127.0.0.11~ratings-v1.default~default.svc.cluster.local';
const T = { timeout: 60_000 };

let dir: string;
let meshd: MeshdHandle;
const clients: AdsClient[] = [];

const ALL_TO_V3 = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v3}
`;

function meshctl(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', MESHCTL, ...args], { cwd: ROOT, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function preview(text: string, mode: 'apply' | 'delete' = 'apply'): Promise<PreviewReport> {
  const res = await fetch(`http://127.0.0.1:${meshd.debugPort}/debug/preview?mode=${mode}`, { method: 'POST', headers: { 'content-type': 'text/yaml' }, body: text });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as PreviewReport;
}

async function syncz(): Promise<string> {
  return (await fetch(`http://127.0.0.1:${meshd.debugPort}/debug/syncz`)).text();
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-preview-'));
  fs.cpSync(path.join(ROOT, 'examples', 'bookinfo'), dir, { recursive: true });
  meshd = await startMeshd({ configDir: dir, xdsPort: 0, secureXdsPort: -1, debugPort: 0, monitoringPort: -1, webhookPort: -1, logger: pino({ level: 'silent' }) });
  // Two proxies that route HTTP on 9080 (RDS subscribed) and one that only has clusters and listeners.
  for (const id of [PRODUCTPAGE, DETAILS]) {
    const c = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id, metadata: { NAMESPACE: 'default' } });
    clients.push(c);
    await c.subscribe(TypeUrl.Cluster);
    await c.subscribe(TypeUrl.Listener);
    await c.subscribe(TypeUrl.Route, ['9080']);
  }
  const r = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id: RATINGS, metadata: { NAMESPACE: 'default' } });
  clients.push(r);
  await r.subscribe(TypeUrl.Cluster);
  await r.subscribe(TypeUrl.Listener);
});

after(async () => {
  for (const c of clients) c.close();
  await meshd?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('a VirtualService edit: the proxies with RDS 9080 form one class whose push changes route 9080; the rest get none', T, async () => {
  const before = await syncz();
  const r = await preview(ALL_TO_V3);
  assert.equal(r.proxies, 3);
  assert.equal(r.pushed, 2);
  assert.deepEqual(r.changeErrors, []);
  assert.deepEqual(
    r.classes.map((c) => ({ n: c.proxies, changes: c.changes, examples: [...c.examples].sort() })),
    [
      { n: 2, changes: { RDS: { added: [], removed: [], changed: ['9080'] } }, examples: [DETAILS, PRODUCTPAGE].sort() },
      { n: 1, changes: {}, examples: [RATINGS] },
    ],
  );
  // Nothing was applied: no push went out, and the served route still sends jason to v2.
  assert.equal(await syncz(), before);
  const dump = await (await fetch(`http://127.0.0.1:${meshd.debugPort}/debug/config_dump?proxyID=${encodeURIComponent(PRODUCTPAGE)}`)).text();
  assert.match(dump, /outbound\|9080\|v2\|reviews\.default\.svc\.cluster\.local/);
});

test('a new subset adds a cluster for every proxy with CDS; deleting a VirtualService changes the routes', T, async () => {
  const dr = fs.readFileSync(path.join(dir, 'destinationrules.yaml'), 'utf8');
  const withV4 = dr.replace(/(name: reviews\b[\s\S]*?subsets:\n)/, '$1  - name: v4\n    labels: {version: v4}\n');
  assert.notEqual(withV4, dr, 'the reviews DestinationRule was found');
  const added = await preview(withV4);
  assert.equal(added.pushed, 3);
  for (const c of added.classes) assert.deepEqual(c.changes['CDS']?.added, ['outbound|9080|v4|reviews.default.svc.cluster.local']);

  const vs = fs.readFileSync(path.join(dir, 'virtualservice-reviews.yaml'), 'utf8');
  const removed = await preview(vs, 'delete');
  assert.equal(removed.pushed, 2);
  assert.deepEqual(removed.classes[0]?.changes, { RDS: { added: [], removed: [], changed: ['9080'] } });
  const nothing = await preview(vs.replace('name: reviews\n', 'name: no-such-vs\n'), 'delete');
  assert.deepEqual(nothing.missing, ['VirtualService/default/no-such-vs']);
  assert.equal(nothing.pushed, 0);
});

test('meshctl x preview prints the classes; an invalid change is reported with its field path and exits 1', T, async () => {
  const addr = ['--meshd-address', `127.0.0.1:${meshd.debugPort}`];
  const ok = await meshctl(['x', 'preview', ...addr, '-f', '-'], ALL_TO_V3);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^2 of 3 connected proxies would receive a push/m);
  assert.match(ok.stdout, /^2 sidecar proxies \(.*\):\n {2}RDS ~ 9080$/m);
  assert.match(ok.stdout, /^1 sidecar proxy \(sidecar~127\.0\.0\.11~ratings-v1\.default~default\.svc\.cluster\.local\):\n {2}no change$/m);
  const bad = await meshctl(['x', 'preview', ...addr, '-f', '-'], ALL_TO_V3.replace('subset: v3}', 'subset: v3}\n      weight: -5'));
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /^Error: VirtualService default\/reviews \(preview\): spec\.http\[0\]\.route\[0\]\.weight: /m);
  const json = await meshctl(['x', 'preview', ...addr, '-f', '-', '-o', 'json'], ALL_TO_V3);
  assert.equal((JSON.parse(json.stdout) as PreviewReport).pushed, 2);
});
