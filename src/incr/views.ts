/**
 * Tracked views: a snapshot and a proxy that record every read into the innermost running
 * computation (deps.ts). Generators take them in place of the plain objects and cannot tell the
 * difference; the reads they make become the keys their results are reused by.
 */
import type { MeshSnapshot } from '../model/snapshot';
import type { Proxy } from '../model/proxy';
import { type DepSet, Location, type Tracker } from './deps';

/**
 * A Map field of a snapshot (or a Map nested in one) whose lookups are recorded per key and
 * whose iteration is recorded whole. A nested Map comes back tracked too, so reading one host's
 * endpoints of one port depends on that entry alone.
 */
class TrackedMap<K, V> implements ReadonlyMap<K, V> {
  constructor(
    private readonly at: Location,
    private readonly map: ReadonlyMap<K, V>,
    private readonly tracker: Tracker,
  ) {}

  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v instanceof Map) return new TrackedMap(this.at.child(key), v as ReadonlyMap<unknown, unknown>, this.tracker) as unknown as V;
    // Outside a computation nothing is recorded: no place to make.
    const frame = this.tracker.current;
    frame?.readInput(this.at.child(key), v);
    return v;
  }

  has(key: K): boolean {
    // The model's maps never hold undefined values.
    const v = this.map.get(key);
    this.tracker.current?.readInput(this.at.child(key), v);
    return v !== undefined;
  }

  private whole(): ReadonlyMap<K, V> {
    this.tracker.current?.readInput(this.at, this.map);
    return this.map;
  }

  get size(): number {
    return this.whole().size;
  }

  forEach(cb: (value: V, key: K, map: ReadonlyMap<K, V>) => void): void {
    this.whole().forEach((v, k) => cb(v, k, this));
  }

  entries(): MapIterator<[K, V]> {
    return this.whole().entries();
  }

  keys(): MapIterator<K> {
    return this.whole().keys();
  }

  values(): MapIterator<V> {
    return this.whole().values();
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.whole().entries();
  }
}

interface MemoEntry {
  value: unknown;
  deps: DepSet;
}

/**
 * The per-snapshot memo of a tracked view. A hit replays the reads the first computation made
 * into the caller's frame, so a reused derived value still counts as reading its inputs.
 */
class TrackedMemo {
  private readonly values = new Map<string, MemoEntry>();

  constructor(private readonly tracker: Tracker) {}

  get<T>(key: string, compute: () => T): T {
    let e = this.values.get(key);
    if (!e) {
      const r = this.tracker.run(compute);
      e = { value: r.value, deps: r.deps };
      this.values.set(key, e);
    }
    this.tracker.current?.addGroup(e.deps);
    return e.value as T;
  }

  get size(): number {
    return this.values.size;
  }
}

/** A snapshot whose reads are recorded; one per snapshot and engine. */
export function trackedSnapshot(snap: MeshSnapshot, tracker: Tracker): MeshSnapshot {
  const maps = new Map<string, TrackedMap<unknown, unknown>>();
  const fields = new Map<string, Location>();
  const fieldAt = (prop: string): Location => {
    let at = fields.get(prop);
    if (!at) fields.set(prop, (at = new Location(prop, [])));
    return at;
  };
  const memo = new TrackedMemo(tracker);
  // The target is a blank object: a frozen snapshot's properties could not be answered with views.
  return new Proxy(Object.create(null) as MeshSnapshot, {
    get(_blank, prop) {
      if (prop === 'memo') return memo;
      const value: unknown = Reflect.get(snap, prop);
      if (typeof prop !== 'string') return value;
      if (value instanceof Map) {
        let m = maps.get(prop);
        if (!m) maps.set(prop, (m = new TrackedMap(fieldAt(prop), value as ReadonlyMap<unknown, unknown>, tracker)));
        return m;
      }
      tracker.current?.readInput(fieldAt(prop), value);
      return value;
    },
  });
}

/** The canonical text of a proxy facet: equal texts mean equal values. */
export function canonical(value: unknown): string {
  if (value === undefined) return 'u';
  if (typeof value !== 'object' || value === null) return `${typeof value}:${String(value)}`;
  return `j:${JSON.stringify(value, (_k, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as object).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v))}`;
}

/** Canonical facet values of one proxy, computed once per facet. */
export class ProxyFacets {
  private readonly values = new Map<string, string>();

  constructor(readonly proxy: Proxy) {}

  get(facet: string): string {
    let v = this.values.get(facet);
    if (v === undefined) {
      const dot = facet.indexOf('.');
      const raw = dot < 0 ? (this.proxy as unknown as Record<string, unknown>)[facet] : (this.proxy.metadata as Record<string, unknown>)[facet.slice(dot + 1)];
      v = canonical(raw);
      this.values.set(facet, v);
    }
    return v;
  }

  matches(facets: readonly (readonly [string, string])[]): boolean {
    for (const [f, v] of facets) if (this.get(f) !== v) return false;
    return true;
  }
}

/**
 * A proxy whose field reads are recorded as facets (`metadata` per key, as `metadata.<key>`), so
 * a result is shared by every proxy that agrees on the facets it read.
 */
export function trackedProxy(facets: ProxyFacets, tracker: Tracker): Proxy {
  const proxy = facets.proxy;
  const metadata = new Proxy(proxy.metadata, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      // Frozen metadata must answer with its own values; they are recorded, not replaced.
      if (typeof prop === 'string') tracker.current?.readFacet(`metadata.${prop}`, facets.get(`metadata.${prop}`));
      return value;
    },
    ownKeys(target) {
      tracker.current?.readFacet('metadata', facets.get('metadata'));
      return Reflect.ownKeys(target);
    },
  });
  return new Proxy(Object.create(null) as Proxy, {
    get(_blank, prop) {
      if (prop === 'metadata') return metadata;
      const value: unknown = Reflect.get(proxy, prop);
      if (typeof prop === 'string') tracker.current?.readFacet(prop, facets.get(prop));
      return value;
    },
  });
}
