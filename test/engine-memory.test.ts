/**
 * What the push engine keeps, in the shapes chosen to keep it small: a proxy's resource set made
 * of several parts is a view over them, read exactly as a map filled part by part; variants share
 * what they read; encoded contents are found while in use and kept, beyond that, up to a bound.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import type { EncodedResource } from '../src/xds/cache';
import { MergedParts } from '../src/xds/engine';
import { ContentCache } from '../src/xds/content-cache';
import { TypeUrl } from '../src/xds/protos';
import { WireCache } from '../src/xds/wire';
import { DepSet, Location, Revision, Tracker } from '../src/incr/deps';
import { Slots } from '../src/incr/slots';
import { ProxyFacets } from '../src/incr/views';
import type { MeshSnapshot } from '../src/model/snapshot';
import type { Proxy } from '../src/model/proxy';

const r = (name: string, tag = ''): EncodedResource => ({ name, bytes: new Uint8Array(), hash: `${name}${tag}` });

function filled(parts: ReadonlyMap<string, EncodedResource>[]): Map<string, EncodedResource> {
  const m = new Map<string, EncodedResource>();
  for (const p of parts) for (const [n, v] of p) m.set(n, v);
  return m;
}

function assertSameMap(view: ReadonlyMap<string, EncodedResource>, want: Map<string, EncodedResource>): void {
  assert.equal(view.size, want.size);
  assert.deepEqual([...view.keys()], [...want.keys()]);
  assert.deepEqual([...view.values()], [...want.values()]);
  assert.deepEqual([...view], [...want]);
  assert.deepEqual([...view.entries()], [...want.entries()]);
  const seen: string[] = [];
  view.forEach((v, k, m) => {
    assert.equal(m, view);
    assert.equal(v, want.get(k));
    seen.push(k);
  });
  assert.deepEqual(seen, [...want.keys()]);
  for (const n of ['a', 'b', 'c', 'd', 'e', 'missing']) {
    assert.equal(view.has(n), want.has(n), n);
    assert.equal(view.get(n), want.get(n), n);
  }
}

test('a set made of disjoint parts reads as the parts filled into one map, in order', () => {
  const outbound = new Map([
    ['a', r('a')],
    ['b', r('b')],
  ]);
  const inbound = new Map([['c', r('c')]]);
  const parts = [outbound, inbound];
  assertSameMap(new MergedParts(parts), filled(parts));
});

test('a name in several parts: the later part wins it, at the place the first part gave it', () => {
  const p1 = new Map([
    ['a', r('a', '1')],
    ['b', r('b', '1')],
    ['c', r('c', '1')],
  ]);
  const p2 = new Map([
    ['d', r('d', '2')],
    ['b', r('b', '2')],
  ]);
  const p3 = new Map([
    ['a', r('a', '3')],
    ['e', r('e', '3')],
  ]);
  const parts = [p1, p2, p3];
  const view = new MergedParts(parts);
  assertSameMap(view, filled(parts));
  assert.equal(view.get('b')?.hash, 'b2');
  assert.equal(view.get('a')?.hash, 'a3');
  assert.deepEqual([...view.keys()], ['a', 'b', 'c', 'd', 'e']);
});

test('empty parts count for nothing', () => {
  const parts = [new Map<string, EncodedResource>(), new Map([['a', r('a')]]), new Map<string, EncodedResource>()];
  assertSameMap(new MergedParts(parts), filled(parts));
  assertSameMap(new MergedParts([]), new Map());
});

/** A proxy with only the fields these tests read as facets. */
function facetsOf(namespace: string, labels: Record<string, string> = {}): ProxyFacets {
  return new ProxyFacets({ namespace, labels, metadata: {} } as unknown as Proxy);
}

/** A result that read the given facets of `f`, and nothing of the snapshot. */
function readFacets(f: ProxyFacets, names: readonly string[]): DepSet {
  return new DepSet(
    [],
    [],
    [],
    names.map((n) => [n, f.get(n)] as const),
    [],
  );
}

test('slots: a variant per set of facet values read, shared by proxies that agree, and found again after a sweep', () => {
  const slots = new Slots<string>();
  const rev = new Revision({} as MeshSnapshot);
  let computed = 0;
  const get = (key: string, f: ProxyFacets, seq: number, names: readonly string[] = ['namespace']) =>
    slots.get(key, f, rev, seq, () => {
      computed++;
      return { value: `${key}@${f.get('namespace')}#${computed}`, deps: readFacets(f, names) };
    });
  const a1 = get('c', facetsOf('a'), 1);
  const a2 = get('c', facetsOf('a', { app: 'x' }), 1);
  assert.equal(a2, a1, 'a proxy of the same namespace shares the variant');
  const b = get('c', facetsOf('b'), 1);
  assert.notEqual(b, a1);
  const c = get('c', facetsOf('c'), 1);
  assert.equal(computed, 3);
  assert.equal(get('c', facetsOf('b'), 2), b, 'found again once a slot holds several');
  assert.equal(get('c', facetsOf('a'), 2), a1);
  // The facet names are one array for every variant that read them, across slots too.
  const other = get('d', facetsOf('a'), 2);
  assert.equal(b.facetNames, a1.facetNames);
  assert.equal(other.facetNames, a1.facetNames);
  assert.deepEqual(a1.facetNames, ['namespace']);
  assert.equal(slots.stats().variants, 4);
  // Variants not used since seq 2 go; the rest are found again, with their names still shared.
  slots.prune(2);
  assert.equal(slots.stats().variants, 3, 'the unused variant of namespace c is dropped');
  assert.equal(get('c', facetsOf('a'), 3), a1);
  assert.equal(get('c', facetsOf('b'), 3), b);
  assert.notEqual(get('c', facetsOf('c'), 3), c, 'a dropped variant is computed again');
  // Variants of one slot that read other facets are indexed apart, and each is found by its own.
  const labelled = get('e', facetsOf('a', { app: 'x' }), 3, ['namespace', 'labels']);
  const plain = get('e', facetsOf('a', { app: 'y' }), 3);
  assert.notEqual(plain, labelled);
  assert.equal(get('e', facetsOf('a', { app: 'x' }), 3), labelled);
  assert.equal(get('e', facetsOf('a', { app: 'z' }), 3), plain);
  assert.deepEqual(labelled.facetNames, ['namespace', 'labels']);
  slots.prune(4);
  assert.equal(slots.stats().variants, 0);
  assert.equal(slots.stats().slots, 0, 'an empty slot goes too');
});

/** The garbage collector, for the tests that need collected objects gone. */
function collector(): () => Promise<void> {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  // Finalisation callbacks run in a later task, after the collection.
  return async () => {
    gc();
    await new Promise((r) => setTimeout(r, 10));
    gc();
    await new Promise((r) => setTimeout(r, 10));
  };
}

test('content cache: contents in use are found whatever the bound; beyond it, only the most recent unused ones stay', async () => {
  const gc = collector();
  const content = (n: number): { bytes: Uint8Array } => ({ bytes: new Uint8Array(n) });
  const cache = new ContentCache<{ bytes: Uint8Array }>({ maxBytes: 3000, maxEntries: 100, sizeOf: (v) => v.bytes.length });
  // In use: held here, as a served set holds its resources.
  const inUse = content(2000);
  cache.set('used', inUse);
  for (let i = 0; i < 5; i++) cache.set(`old-${i}`, content(1000));
  assert.equal(cache.get('used'), inUse, 'found, though more recent contents filled the bound');
  assert.ok(cache.held().bytes <= 3000);
  await gc();
  assert.equal(cache.get('used'), inUse);
  assert.ok(cache.get('old-4'), 'the most recent unused content is still held');
  assert.equal(cache.get('old-0'), undefined, 'an older unused one is gone');
  assert.equal(cache.size, 4, 'the keys of collected contents go too (used, old-2..4)');
  // A key given to a new content after its old one was dropped keeps the new one.
  const again = content(10);
  cache.set('old-0', again);
  await gc();
  assert.equal(cache.get('old-0'), again);
});

test('content cache: a bound of 0 keeps only contents in use', async () => {
  const gc = collector();
  const cache = new ContentCache<{ bytes: Uint8Array }>({ maxBytes: 0, maxEntries: 100, sizeOf: (v) => v.bytes.length });
  const kept = { bytes: new Uint8Array(1) };
  cache.set('a', kept);
  cache.set('b', { bytes: new Uint8Array(1) });
  await gc();
  assert.equal(cache.get('a'), kept);
  assert.equal(cache.get('b'), undefined);
  assert.equal(cache.size, 1);
});

test("a set read from parts is sent as its parts' kept lists one after another, and keeps no list of its own", () => {
  const wire = new WireCache();
  const outbound = new Map([
    ['a', r('a')],
    ['b', r('b')],
  ]);
  const inbound = new Map([['c', r('c')]]);
  const view = new MergedParts([outbound, inbound]);
  const whole = wire.whole(view, TypeUrl.Cluster);
  const plain = wire.whole(new Map([...outbound, ...inbound]), TypeUrl.Cluster);
  assert.deepEqual(whole.resources, plain.resources);
  assert.deepEqual(whole.anys, plain.anys);
  assert.deepEqual(whole.lists, [wire.whole(outbound, TypeUrl.Cluster).resources, wire.whole(inbound, TypeUrl.Cluster).resources]);
  assert.equal(whole.lists?.[0], wire.whole(outbound, TypeUrl.Cluster).resources, "the part's list is kept and shared");
  assert.notEqual(wire.whole(view, TypeUrl.Cluster).resources, whole.resources, 'the set’s own list is made when asked for');
  // Parts that share a name are merged as a map would be, and then the set has its list kept.
  const overlapping = new MergedParts([outbound, new Map([['a', r('a', '2')]])]);
  const w2 = wire.whole(overlapping, TypeUrl.Cluster);
  assert.equal(w2.lists, undefined);
  assert.deepEqual(
    w2.resources.map((x) => x.hash),
    ['a2', 'b'],
  );
});

test('dependency sets made by one tracker share equal facet and field lists, and empty lists', () => {
  const tracker = new Tracker();
  const at = new Location('endpoints', []);
  const run = (ns: string, read: boolean): DepSet =>
    tracker.run(() => {
      tracker.current?.readFacet('namespace', `string:${ns}`);
      if (read) tracker.current?.readInput(at, ns);
    }).deps;
  const a = run('a', true);
  const b = run('a', true);
  assert.notEqual(a, b);
  assert.equal(a.facets, b.facets, 'one facet list for equal facets read');
  assert.equal(a.fields, b.fields, 'one field list for equal fields read');
  assert.deepEqual(a.facets, [['namespace', 'string:a']]);
  assert.notEqual(run('b', true).facets, a.facets);
  const empty1 = run('a', false);
  const empty2 = run('c', false);
  assert.equal(empty1.locs, empty2.locs, 'one empty list of reads');
  assert.equal(empty1.groups, empty2.groups);
  // A nested set's facets are its parent's too, in the order first read.
  const outer = tracker.run(() => {
    tracker.current?.readFacet('labels', 'x');
    tracker.current?.addGroup(a);
  }).deps;
  assert.deepEqual(outer.facets, [
    ['labels', 'x'],
    ['namespace', 'string:a'],
  ]);
});
