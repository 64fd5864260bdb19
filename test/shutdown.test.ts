/**
 * A shutdown finishes in bounded time whatever standard output does: its reader gone (EPIPE) or
 * alive but not reading (a full pipe). meshd runs as a process serving a copy of bookinfo, with
 * proxies connected that make it log (requests for an unknown type are logged as warnings), so
 * log lines are waiting to be written when SIGTERM comes.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { after, test } from 'node:test';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient } from './helpers/ads-client';
import { type MeshdProcess, copyExample, exitWithin, startMeshdProcess } from './helpers/meshd-process';

const protos = new EnvoyProtos();
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function bookinfo(): string {
  const dir = copyExample('bookinfo');
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Connects `n` proxies, then has each ask for `perClient` unknown types: that many warnings logged. */
async function makeItLog(m: MeshdProcess, n: number, perClient: number): Promise<AdsClient[]> {
  const clients = Array.from(
    { length: n },
    (_, i) => new AdsClient(protos, `127.0.0.1:${m.xdsPort}`, { id: `sidecar~10.0.0.${i + 1}~p${i}.default~default.svc.cluster.local`, metadata: { NAMESPACE: 'default' } }),
  );
  cleanups.push(() => clients.forEach((c) => c.close()));
  await Promise.all(clients.map((c) => c.subscribe(TypeUrl.Cluster, undefined, 15_000)));
  for (let k = 0; k < perClient; k++) for (const c of clients) c.send({ type_url: `type.googleapis.com/meshd.test.Unknown${k}`, resource_names: [] });
  // The last requests have reached meshd once a later one is answered.
  await Promise.all(clients.map((c) => c.subscribe(TypeUrl.Listener, undefined, 15_000)));
  return clients;
}

test('meshd exits within 10 s of SIGTERM after its stdout reader is gone', { timeout: 60_000 }, async () => {
  const m = await startMeshdProcess({ configDir: bookinfo() });
  cleanups.push(() => m.kill());
  // Nobody reads stdout (the helper paused it): a backlog of log lines builds up, then the
  // reader goes away for good.
  await makeItLog(m, 40, 50);
  m.child.stdout.destroy();
  m.child.kill('SIGTERM');
  const { code, ms } = await exitWithin(m, 10_000);
  assert.notEqual(code, 'timeout', `meshd still running 10 s after SIGTERM\n${m.stderr().slice(-2000)}`);
  assert.equal(code, 0, `exit code (after ${ms} ms)\n${m.stderr().slice(-2000)}`);
});

test('meshd exits within 10 s of SIGTERM when its stdout reader has closed before anything was logged', { timeout: 60_000 }, async () => {
  const m = await startMeshdProcess({ configDir: bookinfo() });
  cleanups.push(() => m.kill());
  m.child.stdout.destroy();
  await makeItLog(m, 5, 5);
  m.child.kill('SIGTERM');
  const { code, ms } = await exitWithin(m, 10_000);
  assert.equal(code, 0, `exit code (after ${ms} ms)\n${m.stderr().slice(-2000)}`);
});

test('meshd keeps serving and exits within 10 s of SIGTERM while its stdout reader is alive but not reading', { timeout: 60_000 }, async () => {
  const m = await startMeshdProcess({ configDir: bookinfo() });
  cleanups.push(() => m.kill());
  const clients = await makeItLog(m, 40, 50);
  // The pipe is full: serving goes on (logging never blocks it).
  const late = new AdsClient(protos, `127.0.0.1:${m.xdsPort}`, { id: 'sidecar~10.0.1.1~late.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default' } });
  cleanups.push(() => late.close());
  const cds = await late.subscribe(TypeUrl.Cluster, undefined, 10_000);
  assert.ok(cds.resources.length > 0, 'a proxy that connects now is served');
  const ready = await fetch(`http://127.0.0.1:${m.debugPort}/ready`);
  assert.equal(ready.status, 200);
  m.child.kill('SIGTERM');
  const { code, ms } = await exitWithin(m, 10_000);
  assert.notEqual(code, 'timeout', `meshd still running 10 s after SIGTERM\n${m.stderr().slice(-2000)}`);
  assert.equal(code, 0, `exit code (after ${ms} ms)\n${m.stderr().slice(-2000)}`);
  for (const c of clients) c.close();
});
