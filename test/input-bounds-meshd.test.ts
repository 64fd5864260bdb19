/**
 * Bounded input against a running meshd, with a real proxyless client (@grpc/grpc-js-xds)
 * routing calls to real backends on 127.0.0.1: the defects once found by fuzzing, each as
 * meshd met it — through its watched folder.
 *
 *   backends reviews-v1/v2 · config folder: Service reviews, Pods, one EndpointSlice per
 *   version and a copy of v1's (the same address twice), a DestinationRule, no VirtualService
 *   (calls spread over v1 and v2) · meshd in this process, its log captured
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { type MeshdHandle, startMeshd } from '../src/main';
import { startBackends, type BackendSet } from './helpers/backends';
import { SHAPES } from './helpers/fuzz';
import { createMeshFixture, type MeshFixture } from './helpers/mesh-fixture';
import { closeInOrder } from './helpers/teardown';
import { startGrpcJsXdsClient, type CallResult, type XdsClient } from './helpers/xds-clients';

const V1 = 'reviews-v1';
const V2 = 'reviews-v2';

interface Env {
  backends: BackendSet;
  fixture: MeshFixture;
  meshd: MeshdHandle;
  client: XdsClient;
}
const env: Partial<Env> = {};
const logLines: string[] = [];

function e(): Env {
  return env as Env;
}

type Configz = { virtual_services: Array<{ name: string }>; errors: Array<{ source: string; name?: string; errors: Array<{ path: string; message: string }> }> };

async function getJson<T>(p: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${e().meshd.debugPort}${p}`, { signal: AbortSignal.timeout(10_000) });
  return (await res.json()) as T;
}

/** The problems meshd reports for `source`, once it reports any (or fail after `ms`). */
async function errorsFor(source: string, ms = 20_000): Promise<Configz['errors']> {
  const until = Date.now() + ms;
  for (;;) {
    const z = await getJson<Configz>('/debug/configz');
    const errs = z.errors.filter((x) => x.source === source);
    if (errs.length > 0) return errs;
    if (Date.now() > until) assert.fail(`meshd reported nothing for ${source} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function nackCount(): Promise<number> {
  type Syncz = Array<{ proxy: string; types: Record<string, { nack_count?: number }> }>;
  const s = await getJson<Syncz>('/debug/syncz');
  return s.flatMap((p) => Object.values(p.types).map((t) => t.nack_count ?? 0)).reduce((a, b) => a + b, 0);
}

/** Calls reach both versions (no VirtualService: the default route spreads them). */
function spread(r: CallResult): boolean {
  return r.errors === 0 && (r.counts[V1] ?? 0) > 0 && (r.counts[V2] ?? 0) > 0 && Object.keys(r.counts).length === 2;
}

before(async () => {
  env.backends = await startBackends([V1, V2]);
  const v1 = env.backends.get(V1).port;
  env.fixture = await createMeshFixture({ ports: { v1, v2: env.backends.get(V2).port }, noVirtualService: true });
  // v1's address and port in a second slice of the same Service.
  await env.fixture.writeObjects('endpointslices-copy.yaml', [
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'reviews-v1-copy', namespace: 'default', labels: { 'kubernetes.io/service-name': 'reviews' } },
      addressType: 'IPv4',
      ports: [{ name: 'grpc', port: v1, protocol: 'TCP' }],
      endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'reviews-v1', namespace: 'default' } }],
    },
  ]);
  const logger = pino({ level: 'info', base: { app: 'meshd' } }, { write: (s: string) => void logLines.push(s) });
  env.meshd = await startMeshd({ configDir: env.fixture.configDir, xdsPort: 0, debugPort: 0, monitoringPort: -1, logger });
  env.client = await startGrpcJsXdsClient({ xdsPort: env.meshd.xdsPort });
});

after(async () => {
  await closeInOrder([() => env.client?.close(), () => env.meshd?.close(), () => env.backends?.close(), () => env.fixture?.cleanup()]);
});

test('defect: one address in two EndpointSlices: grpc-js-xds takes the ClusterLoadAssignment (no NACK) and calls reach every backend', async () => {
  const r = await e().client.run({ calls: 60, waitForReady: true, deadlineMs: 5000 });
  assert.ok(spread(r), `calls should reach ${V1} and ${V2}: ${JSON.stringify(r)}\n${e().client.stderr().slice(-2000)}`);
  assert.equal(await nackCount(), 0, 'the client NACKed nothing');
});

test('defect: routes under spec.__proto__ are refused with their field path and reroute nothing; an edit to them is refused too', async () => {
  const proto = (subset: string): string =>
    `{"apiVersion":"networking.istio.io/v1","kind":"VirtualService","metadata":{"name":"sneaky","namespace":"default"},"spec":{"__proto__":{"hosts":["reviews"],"http":[{"route":[{"destination":{"host":"reviews","subset":"${subset}"}}]}]}}}`;
  await e().fixture.writeFile('zz-proto.json', proto('v2'));
  const errs = await errorsFor('zz-proto.json');
  assert.equal(errs[0]?.name, 'sneaky');
  assert.deepEqual(errs[0]?.errors, [{ path: 'spec.__proto__', message: 'the key "__proto__" is not allowed' }]);
  const z = await getJson<Configz>('/debug/configz');
  assert.deepEqual(
    z.virtual_services.map((v) => v.name),
    [],
    'no VirtualService is served',
  );
  assert.ok(spread(await e().client.run({ calls: 60, deadlineMs: 5000 })), 'traffic still spreads over v1 and v2 (not all to v2)');
  await e().fixture.writeFile('zz-proto.json', proto('v1'));
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual((await errorsFor('zz-proto.json'))[0]?.errors, [{ path: 'spec.__proto__', message: 'the key "__proto__" is not allowed' }]);
  assert.ok(spread(await e().client.run({ calls: 60, deadlineMs: 5000 })));
  await e().fixture.removeFile('zz-proto.json');
});

test('defect: a VirtualService with one host 3,000 times and megabyte names: meshd keeps serving, reports them bounded, logs short lines', async () => {
  for (const name of ['one-host-3000-times.json', 'megabyte-key-and-name.json']) {
    const s = SHAPES.find((x) => x.name === name);
    assert.ok(s?.expect);
    await e().fixture.writeFile(`zz-${name}`, s.text());
    const errs = await errorsFor(`zz-${name}`);
    const text = errs.flatMap((x) => x.errors.map((f) => `${f.path}: ${f.message}`)).join('\n');
    assert.match(text, s.expect);
    for (const x of errs) assert.ok(x.errors.length <= 101, `${x.errors.length} errors kept`);
  }
  assert.ok(spread(await e().client.run({ calls: 60, deadlineMs: 5000 })), 'valid config is still served');
  const longest = Math.max(...logLines.map((l) => l.length));
  // A config problem's line is cut at 4 KiB; its record's other fields at 1 KiB each.
  assert.ok(longest < 16 * 1024, `longest log line: ${longest} characters`);
  assert.ok(
    logLines.some((l) => l.includes('config left out') && l.includes('more characters')),
    'the cut lines say they were cut',
  );
  assert.equal(e().meshd.ready(), true);
});

test('defect: /ready and xDS answer while large files are parsed; a 100,000-document file and a 50 MB file are refused', async (t) => {
  const latencies: number[] = [];
  const failures: string[] = [];
  let polling = true;
  const poll = (async () => {
    while (polling) {
      const t0 = performance.now();
      try {
        const res = await fetch(`http://127.0.0.1:${e().meshd.debugPort}/ready`, { signal: AbortSignal.timeout(10_000) });
        await res.text();
        if (res.status !== 200) failures.push(`status ${res.status}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
      latencies.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  // 10,000 valid documents of 500 bytes (5 MB), and the two that must be refused.
  const labels = Array.from({ length: 20 }, (_, i) => `    label-${i}: value-${i}`).join('\n');
  const many = Array.from({ length: 10_000 }, (_, i) => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bulk-${i}\n  labels:\n${labels}\n`).join('---\n');
  const flood = SHAPES.find((x) => x.name === '100000-documents.yaml');
  const huge = SHAPES.find((x) => x.name === 'fifty-megabytes.yaml');
  assert.ok(flood?.expect && huge?.expect);
  await e().fixture.writeFile('zz-many.yaml', many);
  await e().fixture.writeFile('zz-flood.yaml', flood.text());
  await e().fixture.writeFile('zz-huge.yaml', huge.text());
  const calls = e().client.run({ calls: 200, concurrency: 2, staggerMs: 10, deadlineMs: 5000 });
  assert.match((await errorsFor('zz-flood.yaml'))[0]?.errors[0]?.message ?? '', flood.expect);
  assert.match((await errorsFor('zz-huge.yaml'))[0]?.errors[0]?.message ?? '', huge.expect);
  const until = Date.now() + 30_000;
  while ((e().meshd.snapshot()?.namespaceLabels.size ?? 0) < 10_000 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  assert.ok((e().meshd.snapshot()?.namespaceLabels.size ?? 0) >= 10_000, 'the 10,000 valid documents are served');
  const during = await calls;
  polling = false;
  await poll;
  const sorted = [...latencies].sort((a, b) => a - b);
  t.diagnostic(
    `/ready: ${latencies.length} polls while parsing, max ${Math.round(sorted[sorted.length - 1] ?? 0)} ms, p99 ${Math.round(sorted[Math.floor(sorted.length * 0.99)] ?? 0)} ms`,
  );
  assert.deepEqual(failures, [], '/ready answered every poll');
  assert.ok(latencies.length > 5);
  assert.equal(during.errors, 0, `xDS-routed calls during the parse: ${JSON.stringify(during)}`);
  assert.equal(await nackCount(), 0);
});
