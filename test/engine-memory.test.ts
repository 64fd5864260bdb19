/**
 * What the push engine keeps, in the shapes chosen to keep it small: a proxy's resource set made
 * of several parts is a view over them, read exactly as a map filled part by part.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EncodedResource } from '../src/xds/cache';
import { MergedParts } from '../src/xds/engine';

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
