/**
 * The ADS server's push behaviour and flow control, with the real AdsServer and ConfigEngine and
 * fake streams in place of gRPC: a client that stops reading costs bounded memory, does not hold
 * up the others and gets only the newest config once it reads again; a change is sent only to
 * the clients whose output it changed, as only the types it changed; and a request is never
 * answered inside its handler, only by the push queue.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import pino from 'pino';
import type { MeshSnapshot } from '../src/model/snapshot';
import type { DeltaDiscoveryRequestMsg, DeltaDiscoveryResponseMsg, DiscoveryRequestMsg, DiscoveryResponseMsg } from '../src/xds/connection';
import { ConfigEngine } from '../src/xds/engine';
import { XdsMetrics } from '../src/xds/metrics';
import { EnvoyProtos, SHORT_TYPE, TypeUrl } from '../src/xds/protos';
import { AdsServer } from '../src/xds/server';
import type { PbStruct } from '../src/xds/struct';
import { ResourceValidator } from '../src/xds/validate-rules';
import { issue, makeCa } from './helpers/certs';
import { MeshModel, SnapshotMaker } from './helpers/random-mesh';

const protos = new EnvoyProtos();
const checker = new ResourceValidator(protos);
const ca = makeCa();
const CREDENTIALS = [{ ...issue(ca, ['shop.example.com']), ca: ca.cert }];

const WEB = { id: 'sidecar~10.0.0.1~web-v1.alpha~alpha.svc.cluster.local', metadata: { NAMESPACE: 'alpha', LABELS: { app: 'web', version: 'v1' } } };
const BOOKS = { id: 'sidecar~10.1.0.2~books-v2.beta~beta.svc.cluster.local', metadata: { NAMESPACE: 'beta', LABELS: { app: 'books', version: 'v2' } } };
const LEGACY = { id: 'sidecar~10.2.0.1~legacy-v1.gamma~gamma.svc.cluster.local', metadata: { NAMESPACE: 'gamma' } };
const HIDDEN_CLA = 'outbound|8080||hidden.gamma.svc.cluster.local';
/** A guard against a broken queue that never goes idle (not a timing assertion). */
const GUARD = { timeout: 30_000 };

type Msg = DiscoveryResponseMsg | DeltaDiscoveryResponseMsg;

/** A server-side stream whose writes are recorded; `holding` keeps their callbacks (a client that stopped reading). */
class FakeStream extends EventEmitter {
  readonly written: Msg[] = [];
  private held: (() => void)[] = [];
  holding = false;

  write(msg: unknown, cb: (err?: Error | null) => void): boolean {
    this.written.push(msg as Msg);
    // A reading client: the message is on its way at once.
    if (this.holding) this.held.push(() => cb());
    else cb();
    return true;
  }

  end(): void {
    this.emit('close');
  }

  getPeer(): string {
    return 'fake:0';
  }

  /** The client reads again: what was written goes out, and so does whatever follows. */
  release(): void {
    this.holding = false;
    const held = this.held;
    this.held = [];
    for (const f of held) f();
  }
}

function struct(v: Record<string, unknown>): PbStruct {
  const fields: NonNullable<PbStruct['fields']> = {};
  for (const [k, x] of Object.entries(v)) fields[k] = typeof x === 'string' ? { stringValue: x } : { structValue: struct(x as Record<string, unknown>) };
  return { fields };
}

class FakeClient {
  readonly stream = new FakeStream();
  private first = true;
  private seen = 0;

  constructor(
    server: AdsServer,
    readonly protocol: 'sotw' | 'delta',
    readonly node: { id: string; metadata: Record<string, unknown> },
  ) {
    if (protocol === 'sotw') server.handleSotw(this.stream);
    else server.handleDelta(this.stream);
  }

  request(req: DiscoveryRequestMsg | DeltaDiscoveryRequestMsg): void {
    const msg = this.first ? { ...req, node: { id: this.node.id, metadata: struct(this.node.metadata) } } : req;
    this.first = false;
    this.stream.emit('data', msg);
  }

  /** Messages written since the last call. */
  take(): Msg[] {
    const out = this.stream.written.slice(this.seen);
    this.seen = this.stream.written.length;
    return out;
  }
}

const types = (ms: Msg[]): string[] => ms.map((m) => SHORT_TYPE[m.type_url as TypeUrl] ?? m.type_url);
const versionOf = (m: Msg): string => ('version_info' in m ? m.version_info : m.system_version_info);
const bytesOf = (m: Msg): number => ('version_info' in m ? m.resources.reduce((s, r) => s + r.value.length, 0) : m.resources.reduce((s, r) => s + r.resource.value.length, 0));

function setup(maxQueuedBytes?: number): { server: AdsServer; engine: ConfigEngine; model: MeshModel; next: () => MeshSnapshot } {
  const model = new MeshModel(CREDENTIALS);
  const maker = new SnapshotMaker();
  const engine = new ConfigEngine({ protos, checker });
  engine.setSnapshot(maker.build(model));
  const server = new AdsServer({
    protos,
    watcher: engine,
    metrics: new XdsMetrics(undefined, false),
    log: pino({ level: 'silent' }),
    ...(maxQueuedBytes !== undefined ? { maxQueuedBytes } : {}),
  });
  return { server, engine, model, next: () => maker.build(model) };
}

/** Serves a new snapshot and pushes it, as meshd does; resolves when the queue is idle. */
async function change(s: ReturnType<typeof setup>, edit: (m: MeshModel) => void): Promise<MeshSnapshot> {
  edit(s.model);
  const snap = s.next();
  s.engine.setSnapshot(snap);
  await s.server.push({ snap, triggeredAt: Date.now(), reason: 'config' });
  return snap;
}

/** Subscribes a SotW client to CDS and LDS (wildcard), EDS for every EDS cluster and RDS by name; ACKs all. */
async function subscribeAll(s: ReturnType<typeof setup>, c: FakeClient, rds: string[]): Promise<void> {
  c.request({ type_url: TypeUrl.Cluster });
  await s.server.idle();
  const [cds] = c.take() as DiscoveryResponseMsg[];
  assert.ok(cds);
  const eds = cds.resources
    .map((r) => protos.decode(TypeUrl.Cluster, r.value))
    .filter((x) => x.type === 'EDS')
    .map((x) => String(x.name));
  c.request({ type_url: TypeUrl.Cluster, response_nonce: cds.nonce, version_info: cds.version_info });
  c.request({ type_url: TypeUrl.Endpoint, resource_names: eds });
  c.request({ type_url: TypeUrl.Listener });
  c.request({ type_url: TypeUrl.Route, resource_names: rds });
  await s.server.idle();
  const rest = c.take() as DiscoveryResponseMsg[];
  assert.deepEqual(types(rest), ['EDS', 'LDS', 'RDS']);
  for (const r of rest)
    c.request({
      type_url: r.type_url,
      response_nonce: r.nonce,
      version_info: r.version_info,
      resource_names: r.type_url === TypeUrl.Endpoint ? eds : r.type_url === TypeUrl.Route ? rds : [],
    });
  await s.server.idle();
  assert.deepEqual(c.take(), [], 'ACKs are not answered');
}

test('a client that stops reading gets bounded writes, does not hold up others, and then only the newest config', GUARD, async () => {
  const s = setup(1);
  const stuck = new FakeClient(s.server, 'sotw', WEB);
  const healthy = new FakeClient(s.server, 'sotw', BOOKS);
  stuck.stream.holding = true;
  for (const c of [stuck, healthy]) {
    c.request({ type_url: TypeUrl.Cluster });
    c.request({ type_url: TypeUrl.Listener });
  }
  await s.server.idle();
  const first = stuck.take();
  assert.deepEqual(types(first), ['CDS'], 'the first response is written; with it unread, the second waits');
  const firstBytes = bytesOf(first[0] as Msg);
  assert.deepEqual(types(healthy.take()), ['CDS', 'LDS']);
  const conn = s.server.connectionList().find((c) => c.proxy?.id === WEB.id);
  assert.ok(conn);

  const versions: string[] = [];
  for (let i = 1; i <= 5; i++) {
    const snap = await change(s, (m) => {
      const dr = m.drs.get('alpha/cart');
      assert.ok(dr);
      dr.maxConnections = 100 + i;
    });
    versions.push(snap.version);
    const got = healthy.take();
    assert.deepEqual(types(got), ['CDS'], `push ${i}: the healthy client gets the changed clusters`);
    assert.equal(versionOf(got[0] as Msg), snap.version);
    assert.deepEqual(stuck.take(), [], `push ${i}: nothing more is written to the stuck client`);
    assert.ok(conn.queuedBytes <= 1 + firstBytes, `push ${i}: ${conn.queuedBytes} bytes queued`);
  }
  assert.equal(s.server.queuedConnections(), 1, 'the stuck client waits in the queue');

  stuck.stream.release();
  await s.server.idle();
  const after = stuck.take();
  assert.deepEqual(types(after), ['CDS', 'LDS'], 'once it reads: one CDS and the LDS it was owed, not one per snapshot');
  for (const m of after) assert.equal(versionOf(m), versions[versions.length - 1], 'at the newest version');
  assert.equal(conn.queuedBytes, 0);
  assert.equal(s.server.queuedConnections(), 0);
  await s.server.close();
});

test('an endpoint-only change sends EDS alone, and only to the clients that have that service', GUARD, async () => {
  const s = setup();
  const legacy = new FakeClient(s.server, 'sotw', LEGACY);
  const web = new FakeClient(s.server, 'sotw', WEB);
  const books = new FakeClient(s.server, 'delta', BOOKS);
  await subscribeAll(s, legacy, ['8080']);
  await subscribeAll(s, web, ['8080']);
  for (const t of [TypeUrl.Cluster, TypeUrl.Endpoint, TypeUrl.Listener, TypeUrl.Route]) books.request({ type_url: t, resource_names_subscribe: ['*'] });
  await s.server.idle();
  assert.deepEqual(types(books.take()), ['CDS', 'EDS', 'LDS', 'RDS']);

  // gamma/hidden is exported to gamma alone: only the proxy in gamma has its endpoints.
  let moved = '';
  await change(s, (m) => {
    const e = m.services.get('gamma/hidden')?.endpoints[0];
    assert.ok(e);
    moved = e.ip = m.newIp();
  });
  const got = legacy.take() as DiscoveryResponseMsg[];
  assert.deepEqual(types(got), ['EDS'], 'EDS alone');
  const names = got[0]?.resources.map((r) => String(protos.decode(TypeUrl.Endpoint, r.value).cluster_name));
  assert.deepEqual(names, [HIDDEN_CLA], 'only the assignment that changed');
  assert.ok(JSON.stringify(protos.decode(TypeUrl.Endpoint, got[0]?.resources[0]?.value ?? new Uint8Array())).includes(moved));
  assert.deepEqual(web.take(), [], 'alpha cannot see gamma/hidden');
  assert.deepEqual(books.take(), [], 'nor can beta');
  await s.server.close();
});

test("a change that leaves a proxy's output unchanged sends it nothing", GUARD, async () => {
  const s = setup();
  const web = new FakeClient(s.server, 'sotw', WEB);
  const legacy = new FakeClient(s.server, 'delta', LEGACY);
  await subscribeAll(s, web, ['8080', '80']);
  for (const t of [TypeUrl.Cluster, TypeUrl.Endpoint, TypeUrl.Listener, TypeUrl.Route]) legacy.request({ type_url: t, resource_names_subscribe: ['*'] });
  await s.server.idle();
  legacy.take();

  await change(s, (m) => {
    const svc = m.services.get('beta/books');
    assert.ok(svc);
    svc.note = 'annotation only';
  });
  assert.deepEqual(web.take(), [], 'an annotation changes nothing anyone is sent');
  assert.deepEqual(legacy.take(), []);

  // A port of gamma/hidden: the proxy in gamma gets new clusters, the one in alpha nothing.
  await change(s, (m) => {
    const svc = m.services.get('gamma/hidden');
    assert.ok(svc);
    svc.ports = [{ name: 'http', port: 8081 }];
  });
  assert.deepEqual(web.take(), []);
  const got = legacy.take() as DeltaDiscoveryResponseMsg[];
  assert.ok(types(got).includes('CDS'), `the proxy in gamma is sent its changes (${types(got).join(',')})`);
  const cds = got.find((m) => m.type_url === TypeUrl.Cluster);
  assert.ok(cds?.removed_resources.includes('outbound|8080||hidden.gamma.svc.cluster.local'));
  assert.deepEqual(
    cds?.resources.map((r) => r.name),
    ['outbound|8081||hidden.gamma.svc.cluster.local'],
    'only the new cluster is sent',
  );
  await s.server.close();
});

for (const protocol of ['sotw', 'delta'] as const) {
  test(`${protocol}: an initial subscription is answered by the push queue, not inside the request handler`, GUARD, async () => {
    const s = setup();
    const c = new FakeClient(s.server, protocol, WEB);
    c.request(protocol === 'sotw' ? { type_url: TypeUrl.Cluster } : { type_url: TypeUrl.Cluster, resource_names_subscribe: [] });
    assert.equal(c.stream.written.length, 0, 'nothing written synchronously');
    assert.equal(s.server.queuedConnections(), 1, 'the connection waits in the push queue');
    await s.server.idle();
    assert.deepEqual(types(c.take()), ['CDS']);
    assert.equal(s.server.queuedConnections(), 0);
    await s.server.close();
  });
}
