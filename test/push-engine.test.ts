/**
 * The push engine (src/xds/engine.ts) without a server: a long-lived engine fed a sequence of
 * interned snapshots must serve exactly what a fresh engine computes from scratch for the same
 * snapshot, while reusing work; unchanged inputs give the very same ResourceSet objects; an
 * endpoint-only change touches EDS alone; and a resource that fails its checks keeps its last
 * good version.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Proxy, type ProxyMetadata, parseProxy } from '../src/model/proxy';
import type { MeshSnapshot } from '../src/model/snapshot';
import { ConfigEngine, type ProxyHandle, type ResourceSet } from '../src/xds/engine';
import { EnvoyProtos, PUSH_ORDER, SHORT_TYPE, type TypeUrl } from '../src/xds/protos';
import { ResourceValidator } from '../src/xds/validate-rules';
import { issue, makeCa } from './helpers/certs';
import { MeshModel, PROXIES, Rng, SnapshotMaker, randomChange } from './helpers/random-mesh';

/** A proxy as the server attaches it once verified: a gateway may be sent its namespace's credentials. */
function verified(id: string, metadata: ProxyMetadata): Proxy {
  const p = parseProxy(id, metadata);
  return p.type === 'router' ? { ...p, credentialNamespace: p.namespace } : p;
}

const protos = new EnvoyProtos();
const checker = new ResourceValidator(protos);
const ca = makeCa();
const CREDENTIALS = [0, 1].map(() => ({ ...issue(ca, ['shop.example.com']), ca: ca.cert }));

type Proxied = { id: string; names: Record<string, string[]> | undefined; handle: ProxyHandle };
type Hashes = ReadonlyMap<string, string>;

function requested(p: { names?: Record<string, string[]> }, t: TypeUrl): Set<string> | undefined {
  const n = p.names?.[SHORT_TYPE[t]];
  return n ? new Set(n) : undefined;
}

function hashesOf(set: ResourceSet): Hashes {
  return new Map([...set.resources].map(([n, r]) => [n, r.hash]));
}

function attachAll(engine: ConfigEngine): Proxied[] {
  return PROXIES.map((p) => ({ id: p.id, names: p.names, handle: engine.attach(verified(p.id, p.metadata)) }));
}

/** Every served type's resource set, per proxy (id → type → set). */
function sets(engine: ConfigEngine, proxies: Proxied[]): Map<string, Map<TypeUrl, ResourceSet>> {
  const out = new Map<string, Map<TypeUrl, ResourceSet>>();
  for (const p of proxies) {
    const byType = new Map<TypeUrl, ResourceSet>();
    for (const t of PUSH_ORDER) if (engine.serves(p.handle, t)) byType.set(t, engine.resources(p.handle, t, requested(p, t)));
    out.set(p.id, byType);
  }
  return out;
}

/** What a fresh engine (no history) serves each proxy for `snap`: one engine per proxy. */
function fromScratch(snap: MeshSnapshot): { sets: Map<string, Map<TypeUrl, Hashes>>; computed: number } {
  const out = new Map<string, Map<TypeUrl, Hashes>>();
  let computed = 0;
  for (const p of PROXIES) {
    const fresh = new ConfigEngine({ protos, checker });
    fresh.setSnapshot(snap);
    const byType = new Map<TypeUrl, Hashes>();
    for (const [t, set] of sets(fresh, [{ id: p.id, names: p.names, handle: fresh.attach(verified(p.id, p.metadata)) }]).get(p.id) ?? []) byType.set(t, hashesOf(set));
    out.set(p.id, byType);
    computed += fresh.stats().resources.computed + fresh.stats().parts.computed;
  }
  return { sets: out, computed };
}

function diff(got: Hashes, want: Hashes): string[] {
  const out: string[] = [];
  for (const [n, h] of want) if (got.get(n) !== h) out.push(got.has(n) ? `changed ${n}` : `missing ${n}`);
  for (const n of got.keys()) if (!want.has(n)) out.push(`extra ${n}`);
  return out;
}

function sameHashes(a: Hashes | undefined, b: Hashes | undefined): boolean {
  return a !== undefined && b !== undefined && diff(a, b).length === 0;
}

test('incremental == from scratch over 70 random changes of a generated mesh, with work reused', () => {
  const model = new MeshModel(CREDENTIALS);
  const maker = new SnapshotMaker();
  const rng = new Rng(0x5eed);
  const engine = new ConfigEngine({ protos, checker });
  engine.setSnapshot(maker.build(model));
  const proxies = attachAll(engine);
  const failures: string[] = [];
  let previous: Map<string, Map<TypeUrl, Hashes>> | undefined;
  let changedOutputs = 0;
  let unchangedOutputs = 0;
  let freshComputed = 0;
  const compare = (step: number, what: string): void => {
    const got = sets(engine, proxies);
    const want = fromScratch(engine.snapshot() as MeshSnapshot);
    freshComputed += want.computed;
    assert.deepEqual(engine.currentRejections(), [], `change #${step} (${what}): the generated mesh has no invalid resources`);
    let any = false;
    for (const [id, byType] of want.sets) {
      for (const [t, w] of byType) {
        const g = got.get(id)?.get(t);
        const d = g ? diff(hashesOf(g), w) : ['type missing'];
        if (d.length > 0 && failures.length < 10) failures.push(`change #${step} (${what}): ${id} ${SHORT_TYPE[t]}: ${d.slice(0, 8).join(', ')}`);
        if (previous && !sameHashes(previous.get(id)?.get(t), w)) any = true;
      }
    }
    if (previous) {
      if (any) changedOutputs++;
      else unchangedOutputs++;
    }
    previous = want.sets;
  };
  compare(0, 'initial');
  const hitsAfterFirst = engine.stats().resources.hits;
  for (let i = 1; i <= 70; i++) {
    const what = randomChange(model, rng);
    engine.setSnapshot(maker.build(model));
    compare(i, what);
  }
  assert.deepEqual(failures, [], 'the long-lived engine serves what a fresh one computes');
  // The sequence exercised something: most changes altered some proxy's output.
  assert.ok(changedOutputs >= 35, `only ${changedOutputs} of 70 changes altered any output`);
  assert.ok(unchangedOutputs >= 1, 'some changes (annotations, invisible services) alter nothing');
  // And the long-lived engine did not just recompute everything (or the test would prove little).
  const stats = engine.stats();
  assert.ok(stats.resources.hits > hitsAfterFirst, `resource builds were reused (hits ${hitsAfterFirst} → ${stats.resources.hits})`);
  const computed = stats.resources.computed + stats.parts.computed;
  assert.ok(computed < freshComputed / 2, `the long-lived engine computed ${computed} results, fresh engines ${freshComputed}`);
});

// The engine compares a result with a fresh build only when it assembles a new ResourceSet; a
// long-lived handle whose parts are all reused returns its last set unchecked. So besides the
// long-lived handles, every step attaches new ones (proxies connecting), whose sets are new.
test('checkFromScratch: the engine compares new results with a fresh build and finds no difference', () => {
  const model = new MeshModel(CREDENTIALS);
  const maker = new SnapshotMaker();
  const rng = new Rng(7);
  const engine = new ConfigEngine({ protos, checker, checkFromScratch: true });
  engine.setSnapshot(maker.build(model));
  const proxies = attachAll(engine);
  sets(engine, proxies);
  for (let i = 1; i <= 30; i++) {
    const what = randomChange(model, rng);
    engine.setSnapshot(maker.build(model));
    assert.doesNotThrow(() => sets(engine, proxies), `change #${i} (${what}), long-lived handles`);
    assert.doesNotThrow(() => sets(engine, attachAll(engine)), `change #${i} (${what}), new handles`);
  }
  assert.ok(engine.stats().resources.hits > 0, 'results were reused (and so checked)');
});

/** Sets per proxy and type, before and after one change. */
function around(change: (m: MeshModel) => void): {
  before: Map<string, Map<TypeUrl, ResourceSet>>;
  after: Map<string, Map<TypeUrl, ResourceSet>>;
  engine: ConfigEngine;
  snap: MeshSnapshot;
} {
  const model = new MeshModel(CREDENTIALS);
  const maker = new SnapshotMaker();
  const engine = new ConfigEngine({ protos, checker });
  engine.setSnapshot(maker.build(model));
  const proxies = attachAll(engine);
  const before = sets(engine, proxies);
  change(model);
  const snap = maker.build(model);
  engine.setSnapshot(snap);
  return { before, after: sets(engine, proxies), engine, snap };
}

/** Proxy id → the short types whose ResourceSet is not the same object as before. */
function notIdentical(r: ReturnType<typeof around>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [id, byType] of r.before) {
    const changed = [...byType].filter(([t, set]) => r.after.get(id)?.get(t) !== set).map(([t]) => SHORT_TYPE[t]);
    if (changed.length > 0) out[id] = changed;
  }
  return out;
}

test('an annotation-only change: every proxy gets the very same ResourceSet objects for every type', () => {
  const r = around((m) => {
    const s = m.services.get('beta/books');
    assert.ok(s);
    s.note = 'changed';
  });
  assert.deepEqual(notIdentical(r), {});
});

test("a change to a service not exported to a namespace leaves that namespace's proxies' ResourceSets identical", () => {
  const r = around((m) => {
    const s = m.services.get('gamma/hidden');
    assert.ok(s);
    assert.deepEqual(s.exportTo, ['.']);
    s.ports = [{ name: 'http', port: 8081 }];
    for (const e of s.endpoints) e.ip = m.newIp();
  });
  const changed = notIdentical(r);
  const inGamma = PROXIES.filter((p) => p.id.includes('.gamma~')).map((p) => p.id);
  assert.deepEqual(Object.keys(changed).sort(), inGamma, 'only the proxy in gamma sees gamma/hidden');
  assert.ok(changed[inGamma[0] ?? '']?.includes('CDS'), 'and its clusters changed');
});

test('a refreshed JWKS rebuilds and changes only the listener of the one workload whose policy names it', () => {
  const model = new MeshModel(CREDENTIALS);
  const maker = new SnapshotMaker();
  const engine = new ConfigEngine({ protos, checker });
  engine.setSnapshot(maker.build(model));
  const proxies = attachAll(engine);
  const before = sets(engine, proxies);
  const computed = (): number => engine.stats().resources.computed + engine.stats().parts.computed;
  const work = computed();
  model.jwks.set('a', { version: 2 });
  engine.setSnapshot(maker.build(model));
  const after = sets(engine, proxies);
  const changed: Record<string, string[]> = {};
  for (const [id, byType] of before) {
    const types = [...byType].filter(([t, set]) => after.get(id)?.get(t) !== set).map(([t]) => SHORT_TYPE[t]);
    if (types.length > 0) changed[id] = types;
  }
  const web = 'sidecar~10.0.0.1~web-v1.alpha~alpha.svc.cluster.local';
  assert.deepEqual(changed, { [web]: ['LDS'] });
  const lds = [...(after.get(web)?.entries() ?? [])].find(([t]) => SHORT_TYPE[t] === 'LDS');
  assert.ok(lds && JSON.stringify(protos.decode(lds[0], lds[1].resources.get('virtualInbound')?.bytes ?? new Uint8Array())).includes('a-2'), 'the new keys are inlined');
  // Work proportional to the change: web's inbound listener (and the part holding it), nothing for the others.
  assert.ok(computed() - work <= 2, `${computed() - work} results computed for one refreshed JWKS`);
});

test('an endpoint-only change (an EndpointSlice address) changes EDS and leaves CDS, LDS and RDS identical', () => {
  const books = 'outbound|9080||books.beta.svc.cluster.local';
  let moved = '';
  const r = around((m) => {
    const e = m.services.get('beta/books')?.endpoints[0];
    assert.ok(e);
    moved = e.ip = m.newIp();
  });
  for (const [id, byType] of r.after) {
    for (const [t, set] of byType) {
      const short = SHORT_TYPE[t];
      const before = r.before.get(id)?.get(t);
      if (short === 'EDS') {
        const eds = set.resources.get(books);
        if (!eds) continue;
        assert.notEqual(set, before, `${id}: EDS is a new set`);
        assert.notEqual(eds.hash, before?.resources.get(books)?.hash, `${id}: books' assignment changed`);
        assert.ok(JSON.stringify(protos.decode(t, eds.bytes)).includes(moved), `${id}: with the new address`);
        for (const [n, res] of set.resources) if (n !== books && !n.includes('books')) assert.equal(res, before?.resources.get(n), `${id}: ${n} is the same object`);
      } else {
        assert.equal(set, before, `${id}: ${short} is the very same ResourceSet`);
      }
    }
  }
  const withBooks = [...r.after.values()].filter((byType) => [...byType.values()].some((s) => s.resources.has(books))).length;
  assert.ok(withBooks >= 4, `books is served to most proxies (${withBooks})`);
});

test("a Secret whose key is not its certificate's pair is withheld, and the last good version keeps being served", () => {
  const model = new MeshModel(CREDENTIALS);
  const maker = new SnapshotMaker();
  const engine = new ConfigEngine({ protos, checker });
  engine.setSnapshot(maker.build(model));
  const gw = PROXIES.find((p) => p.id.startsWith('router~'));
  assert.ok(gw);
  const sds = [...PUSH_ORDER].find((t) => SHORT_TYPE[t] === 'SDS') as TypeUrl;
  const h = engine.attach(verified(gw.id, gw.metadata));
  const cred = 'kubernetes://shop-cred';
  const good = engine.resources(h, sds, requested(gw, sds)).resources.get(cred);
  assert.ok(good, 'the valid credential is served');

  const other = CREDENTIALS[1];
  assert.ok(other);
  model.credentialOverride = { cert: CREDENTIALS[0]?.cert ?? '', key: other.key, ca: ca.cert };
  const broken = maker.build(model);
  engine.setSnapshot(broken);
  const kept = engine.resources(h, sds, requested(gw, sds)).resources.get(cred);
  assert.equal(kept?.hash, good.hash, 'the last good certificate is still served');
  const rejected = engine.currentRejections().find((x) => x.name === cred);
  assert.ok(
    rejected?.errors.some((e) => e.message.includes('not a key pair')),
    JSON.stringify(engine.currentRejections()),
  );
  // A fresh engine has no last good version: the broken one is not served at all.
  const fresh = new ConfigEngine({ protos, checker });
  fresh.setSnapshot(broken);
  assert.equal(fresh.resources(fresh.attach(verified(gw.id, gw.metadata)), sds, requested(gw, sds)).resources.has(cred), false);

  // Fixed with another valid pair: that one is served and the rejection is gone.
  model.credentialOverride = undefined;
  model.credential = 1;
  engine.setSnapshot(maker.build(model));
  const next = engine.resources(h, sds, requested(gw, sds)).resources.get(cred);
  assert.ok(next && next.hash !== good.hash, 'the new certificate is served');
  assert.deepEqual(engine.currentRejections(), []);
});

test("unused results are swept by maintain(), off a change's path, or after a while without it", () => {
  const model = new MeshModel(CREDENTIALS);
  const maker = new SnapshotMaker();
  const rng = new Rng(0x5ee9);
  const engine = new ConfigEngine({ protos, checker });
  engine.setSnapshot(maker.build(model));
  const proxies = attachAll(engine);
  sets(engine, proxies);
  const variants = (): number => engine.stats().resources.variants + engine.stats().parts.variants;
  const kept = variants();
  // Nobody asks for anything any more: every result goes unused.
  const step = (): void => {
    randomChange(model, rng);
    engine.setSnapshot(maker.build(model));
  };
  for (let i = 0; i < 12; i++) step();
  assert.equal(variants(), kept, 'setSnapshot does not sweep while a sweep is only due');
  engine.maintain();
  assert.ok(variants() < kept / 2, `maintain() swept: ${kept} → ${variants()}`);
  // Again, without maintain(): once due for as many snapshots again, setSnapshot sweeps itself.
  sets(engine, proxies);
  const again = variants();
  for (let i = 0; i < 24; i++) step();
  assert.ok(variants() < again / 2, `swept without maintain(): ${again} → ${variants()}`);
});
