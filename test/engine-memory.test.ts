/**
 * What the push engine keeps, in the shapes chosen to keep it small: a proxy's resource set made
 * of several parts is a view over them, read exactly as a map filled part by part.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EncodedResource } from '../src/xds/cache';
import { MergedParts } from '../src/xds/engine';
import { DepSet, Revision } from '../src/incr/deps';
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
    names.map((n) => [n, f.get(n)] as const),
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
