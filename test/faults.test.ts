/**
 * Faults meshd must survive without losing or hanging anything, on 127.0.0.1 and bounded:
 *
 * - killed with SIGKILL while real xDS clients (grpc-js-xds, in their own processes) are connected
 *   and routing real calls: the clients keep routing on what they have, a meshd restarted on the
 *   same ports gets them back, and they ACK the same config; SIGTERM then exits 0 within 10 s;
 * - malformed traffic on the xDS port (garbage bytes, HTTP/1.1, a broken HTTP/2 preface, messages
 *   that are not protobuf, unknown type URLs, a 1 MB node metadata, thousands of streams opened
 *   and dropped): a well-behaved proxy connected throughout keeps getting every push, `/ready`
 *   keeps answering, and the connections meshd keeps come back to that one proxy.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { startMeshd } from '../src/meshd';
import { ADS_PATH } from '../src/xds/server';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient } from './helpers/ads-client';
import { startBackends } from './helpers/backends';
import { only } from './helpers/e2e';
import { createMeshFixture, routeAllTo } from './helpers/mesh-fixture';
import { copyExample, exitWithin, startMeshdProcess } from './helpers/meshd-process';
import { closeInOrder } from './helpers/teardown';
import { runUntil, startGrpcJsXdsClient, type XdsClient } from './helpers/xds-clients';

const protos = new EnvoyProtos();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const cleanups: Array<() => unknown> = [];
after(async () => {
  await closeInOrder(cleanups.splice(0).reverse());
});

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(100);
  }
}

interface SynczEntry {
  proxy?: string;
  types: Record<string, { status: string; acked_version?: string; resources?: number }>;
}

async function syncz(debugPort: number): Promise<SynczEntry[]> {
  const r = await fetch(`http://127.0.0.1:${debugPort}/debug/syncz`);
  return (await r.json()) as SynczEntry[];
}

/** Per client: type → acked version, once every type it watches is SYNCED (else undefined). */
async function syncedConfig(debugPort: number, ids: readonly string[]): Promise<Record<string, Record<string, string>> | undefined> {
  const entries = await syncz(debugPort);
  const out: Record<string, Record<string, string>> = {};
  for (const id of ids) {
    const e = entries.filter((x) => x.proxy === id);
    if (e.length !== 1) return undefined;
    const types = Object.entries((e[0] as SynczEntry).types);
    if (types.length < 4 || types.some(([, t]) => t.status !== 'SYNCED')) return undefined;
    // The content part of each version (`<sequence>-<hash>`): the same config has the same hash.
    out[id] = Object.fromEntries(types.map(([k, t]) => [k, (t.acked_version ?? '').replace(/^\d+-/, '')]));
  }
  return out;
}

test(
  'meshd killed with SIGKILL under connected clients: a restart on the same ports gets them back on the same config; SIGTERM exits 0 within 10 s',
  { timeout: 90_000 },
  async () => {
    const backends = await startBackends(['reviews-v1', 'reviews-v2']);
    cleanups.push(() => backends.close());
    const fixture = await createMeshFixture({ ports: { v1: backends.get('reviews-v1').port, v2: backends.get('reviews-v2').port }, http: routeAllTo('v2') });
    cleanups.push(() => fixture.cleanup());
    const first = await startMeshdProcess({ configDir: fixture.configDir, logLevel: 'warn' });
    cleanups.push(() => first.kill());
    const clients: XdsClient[] = await Promise.all([1, 2].map((i) => startGrpcJsXdsClient({ xdsPort: first.xdsPort, podName: `restart-client-${i}` })));
    cleanups.push(() => Promise.all(clients.map((c) => c.close())));
    const ids = clients.map((c) => c.nodeId);
    for (const c of clients) await runUntil(c, { calls: 20, waitForReady: true }, only('reviews-v2'), { what: 'calls routed to v2', timeoutMs: 20_000 });
    const before = await until('both clients SYNCED', () => syncedConfig(first.debugPort, ids), 20_000);

    first.child.kill('SIGKILL');
    assert.equal((await exitWithin(first, 10_000)).code, 'SIGKILL');
    // The data plane keeps the config it has while the control plane is down.
    for (const c of clients) assert.ok(only('reviews-v2')(await c.run({ calls: 10 })), 'calls still routed to v2 while meshd is down');

    const second = await startMeshdProcess({ configDir: fixture.configDir, xdsPort: first.xdsPort, debugPort: first.debugPort, logLevel: 'warn' });
    cleanups.push(() => second.kill());
    assert.equal(second.xdsPort, first.xdsPort);
    const after = await until('both clients back and SYNCED', () => syncedConfig(second.debugPort, ids), 30_000);
    assert.deepEqual(after, before, 'the clients ACKed the same config (same versions of every type) after the restart');
    for (const c of clients) assert.ok(only('reviews-v2')(await c.run({ calls: 10 })));
    // The restarted meshd pushes to them: a change still arrives.
    await fixture.writeVirtualService(routeAllTo('v1'));
    for (const c of clients) await runUntil(c, { calls: 10 }, only('reviews-v1'), { what: 'the change after the restart', timeoutMs: 15_000 });

    second.child.kill('SIGTERM');
    const { code, ms } = await exitWithin(second, 10_000);
    assert.equal(code, 0, `SIGTERM: exit code ${code} after ${ms} ms\n${second.stderr().slice(-2000)}`);
  },
);

/** Writes `bytes` on a raw TCP connection to the port, then waits until meshd closes it (or 2 s). */
function rawConnection(port: number, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    const done = (): void => {
      clearTimeout(t);
      s.destroy();
      resolve();
    };
    const t = setTimeout(done, 2000);
    s.on('data', () => undefined);
    s.on('error', done);
    s.on('close', done);
  });
}

test('malformed traffic on the xDS port never stops meshd serving a well-behaved proxy', { timeout: 60_000 }, async () => {
  const dir = copyExample('bookinfo');
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const meshd = await startMeshd({ configDir: dir, xdsPort: 0, debugPort: 0, monitoringPort: -1, debounceQuietMs: 20, logger: pino({ level: 'silent' }) });
  cleanups.push(() => meshd.close());
  const addr = `127.0.0.1:${meshd.xdsPort}`;
  const good = new AdsClient(protos, addr, { id: 'sidecar~10.244.0.10~productpage-v1.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default' } });
  cleanups.push(() => good.close());
  await good.subscribe(TypeUrl.Cluster);
  await good.subscribe(TypeUrl.Route, ['9080']);

  // Throughout: /ready answers, and every edit reaches the good proxy.
  const readyFailures: string[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      try {
        const r = await fetch(`http://127.0.0.1:${meshd.debugPort}/ready`, { signal: AbortSignal.timeout(2000) });
        if (r.status !== 200) readyFailures.push(`HTTP ${r.status}`);
      } catch (err) {
        readyFailures.push(String(err));
      }
      await sleep(50);
    }
  })();
  const steps = ['5-traffic-shifting-50-v3', '6-traffic-shifting-v3', '1-request-routing-all-v1'];
  let edit = 0;
  const pushArrives = async (what: string): Promise<void> => {
    const step = steps[edit++ % steps.length] as string;
    const from = path.join(__dirname, '..', 'examples', 'traffic-management', step, 'virtualservice-reviews.yaml');
    fs.writeFileSync(path.join(dir, '.next.tmp'), fs.readFileSync(from));
    fs.renameSync(path.join(dir, '.next.tmp'), path.join(dir, 'virtualservice-reviews.yaml'));
    const r = await good.next(TypeUrl.Route, 10_000).catch((err: unknown) => assert.fail(`no push to the good proxy ${what}: ${String(err)}`));
    good.ack(r, ['9080']);
  };

  const protoRequest = (o: Record<string, unknown>): Buffer => Buffer.from(protos.DiscoveryRequest.encode(protos.DiscoveryRequest.fromObject(o)).finish());
  const bigRequest = protoRequest({ node: { id: 'x', metadata: { fields: { BLOB: { stringValue: 'x'.repeat(1024 * 1024) } } } } });
  assert.ok(bigRequest.length > 1024 * 1024, 'the 1 MB metadata is encoded');
  const port = meshd.xdsPort;
  // 1. Garbage bytes, an HTTP/1.1 request, and an HTTP/2 preface followed by garbage, on raw sockets.
  await Promise.all([
    ...Array.from({ length: 30 }, () => rawConnection(port, randomBytes(64 * 1024))),
    ...Array.from({ length: 10 }, () =>
      rawConnection(port, Buffer.from(`POST ${ADS_PATH} HTTP/1.1\r\nHost: meshd\r\nContent-Type: application/grpc\r\nContent-Length: 5\r\n\r\nhello`)),
    ),
    ...Array.from({ length: 10 }, () => rawConnection(port, Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), randomBytes(16 * 1024)]))),
  ]);
  await pushArrives('after garbage, HTTP/1.1 and broken HTTP/2 connections');

  // 2. Messages that are not protobuf, requests for unknown types, and a 1 MB node metadata.
  const raw = (serialize: (m: Buffer) => Buffer): { client: grpc.Client; open: () => grpc.ClientDuplexStream<Buffer, Buffer> } => {
    const client = new grpc.Client(addr, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 8 * 1024 * 1024 });
    cleanups.push(() => client.close());
    return { client, open: () => client.makeBidiStreamRequest(ADS_PATH, serialize, (b: Buffer) => b, new grpc.Metadata()) };
  };
  const bytesClient = raw((b) => b);
  const streams: Array<grpc.ClientDuplexStream<Buffer, Buffer>> = [];
  for (let i = 0; i < 20; i++) {
    const s = bytesClient.open();
    s.on('error', () => undefined);
    s.on('data', () => undefined);
    s.write(randomBytes(1 + ((i * 997) % 4096)));
    streams.push(s);
  }
  const unknown = bytesClient.open();
  unknown.on('error', () => undefined);
  unknown.on('data', () => undefined);
  unknown.write(protoRequest({ node: { id: 'sidecar~10.0.0.99~odd.default~default.svc.cluster.local' }, type_url: 'type.googleapis.com/no.Such' }));
  for (let i = 0; i < 500; i++)
    unknown.write(protoRequest({ type_url: `type.googleapis.com/${randomBytes(8).toString('hex')}`, resource_names: [randomBytes(40).toString('base64')] }));
  streams.push(unknown);
  const big = { fields: { BLOB: { stringValue: 'x'.repeat(1024 * 1024) }, NAMESPACE: { stringValue: 'default' } } };
  for (let i = 0; i < 3; i++) {
    const s = bytesClient.open();
    s.on('error', () => undefined);
    s.on('data', () => undefined);
    s.write(protoRequest({ node: { id: `sidecar~10.0.0.${100 + i}~big.default~default.svc.cluster.local`, metadata: big }, type_url: TypeUrl.Cluster }));
    streams.push(s);
  }
  // The proxies with 1 MB metadata are served like any other (their metadata is theirs to send).
  const bigOnes = await until(
    'the 1 MB-metadata proxies to be served',
    async () => {
      const n = (await syncz(meshd.debugPort)).filter((e) => e.proxy?.includes('~big.') && e.types['CDS']?.status === 'STALE').length;
      return n === 3 ? n : undefined;
    },
    10_000,
  );
  assert.equal(bigOnes, 3);
  await pushArrives('with malformed messages, unknown types and 1 MB node metadata');

  // 3. Streams opened and dropped by the thousand (half after a valid first request).
  for (let round = 0; round < 4; round++) {
    const batch: Array<grpc.ClientDuplexStream<Buffer, Buffer>> = [];
    for (let i = 0; i < 500; i++) {
      const s = bytesClient.open();
      s.on('error', () => undefined);
      s.on('data', () => undefined);
      if (i % 2 === 0)
        s.write(
          protoRequest({
            node: { id: `sidecar~10.1.${round}.${i % 250}~churn-${i}.default~default.svc.cluster.local`, metadata: { fields: { NAMESPACE: { stringValue: 'default' } } } },
            type_url: TypeUrl.Cluster,
          }),
        );
      batch.push(s);
    }
    await sleep(20);
    for (const s of batch) s.cancel();
  }
  await pushArrives('after 2,000 streams opened and dropped');

  for (const s of streams) s.cancel();
  bytesClient.client.close();
  // Every dropped stream is forgotten: only the good proxy remains.
  const connected = async (): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${meshd.debugPort}/metrics`)).text();
    // pilot_xds is by proxy version (istiod's label): the connected proxies are the sum.
    return [...text.matchAll(/^pilot_xds\{[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
  };
  await until('only the good proxy connected', async () => ((await connected()) === 1 && (await syncz(meshd.debugPort)).length === 1 ? true : undefined), 10_000);
  await pushArrives('at the end');
  polling = false;
  await poller;
  assert.deepEqual(readyFailures, [], '/ready answered 200 throughout');
  assert.equal(good.ended, false, 'the good proxy stayed connected');
});
