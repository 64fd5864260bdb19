/**
 * Results kept across snapshots, by what they read. A slot (one kind of computation, e.g. "the
 * outbound clusters of a sidecar" or "cluster X") holds variants: one per distinct set of proxy
 * facet values the computation read. A variant is reused for a proxy whose facets match and while
 * its snapshot reads still hold; otherwise it is computed again.
 */
import { DepSet, type Revision } from './deps';
import type { ProxyFacets } from './views';

export interface Variant<V> {
  readonly deps: DepSet;
  readonly value: V;
  /** The facet names this variant's computation read, and the values it saw. */
  readonly facetNames: readonly string[];
  readonly facetValues: string;
  /** Sequence number of the last snapshot it was used in. */
  lastUsed: number;
}

/**
 * The variants of one slot that read the same facet names, by the values they saw. Most hold one
 * variant (a resource every proxy builds alike), so a map is made only for a second one.
 */
interface Index<V> {
  readonly names: readonly string[];
  readonly sig: string;
  one?: Variant<V>;
  many?: Map<string, Variant<V>>;
}

/** One slot: variants indexed by the set of facet names read, then by their values. */
class Slot<V> {
  /** Few per slot (usually one), so a list rather than a map. */
  readonly indexes: Index<V>[] = [];

  find(facets: ProxyFacets): Variant<V> | undefined {
    for (const idx of this.indexes) {
      const values = valuesOf(facets, idx.names);
      const v = idx.many ? idx.many.get(values) : idx.one;
      if (v && v.facetValues === values) return v;
    }
    return undefined;
  }

  index(names: readonly string[], sig: string): Index<V> {
    let idx = this.indexes.find((i) => i.sig === sig);
    if (!idx) this.indexes.push((idx = { names, sig }));
    return idx;
  }

  add(idx: Index<V>, v: Variant<V>): void {
    if (idx.many) idx.many.set(v.facetValues, v);
    else if (!idx.one || idx.one.facetValues === v.facetValues) idx.one = v;
    else {
      idx.many = new Map([
        [idx.one.facetValues, idx.one],
        [v.facetValues, v],
      ]);
      idx.one = undefined;
    }
  }

  remove(v: Variant<V>): void {
    const at = this.indexes.findIndex((i) => i.names === v.facetNames || i.sig === v.facetNames.map((n) => n + '\0').join(''));
    const idx = this.indexes[at];
    if (!idx) return;
    if (idx.many) {
      if (idx.many.get(v.facetValues) === v) idx.many.delete(v.facetValues);
      if (idx.many.size === 0) idx.many = undefined;
    } else if (idx.one === v) idx.one = undefined;
    if (!idx.one && !idx.many) this.indexes.splice(at, 1);
  }

  *variants(): IterableIterator<Variant<V>> {
    for (const idx of this.indexes) {
      if (idx.one) yield idx.one;
      if (idx.many) yield* idx.many.values();
    }
  }

  get empty(): boolean {
    return this.indexes.length === 0;
  }
}

function valuesOf(facets: ProxyFacets, names: readonly string[]): string {
  let s = '';
  for (const n of names) s += facets.get(n) + '\0';
  return s;
}

export interface SlotStats {
  slots: number;
  variants: number;
  hits: number;
  computed: number;
}

export class Slots<V> {
  private readonly slots = new Map<string, Slot<V>>();
  /** Facet-name lists by their joined names, and facet-value strings: one object per distinct one. */
  private readonly names = new Map<string, readonly string[]>();
  private readonly strings = new Map<string, string>();
  private hits = 0;
  private computed = 0;

  /**
   * The value of slot `key` for a proxy with `facets` in `snap`: reused when a variant matches,
   * else computed. `compute` returns the value and what it read; `previous` is the variant it
   * replaces (for a last good value), if any.
   */
  get(key: string, facets: ProxyFacets, rev: Revision, seq: number, compute: (previous: Variant<V> | undefined) => { value: V; deps: DepSet }): Variant<V> {
    let slot = this.slots.get(key);
    if (!slot) this.slots.set(key, (slot = new Slot()));
    const found = slot.find(facets);
    if (found && found.deps.holdsIn(rev)) {
      found.lastUsed = seq;
      this.hits++;
      return found;
    }
    if (found) slot.remove(found);
    this.computed++;
    const computed = compute(found);
    const value = computed.value;
    // Sets are made lean where they are made (incr/deps.ts): shared facet lists and empty lists.
    const deps = computed.deps;
    const read = deps.allFacets();
    let sig = '';
    let values = '';
    for (const [n, val] of read) {
      sig += n + '\0';
      values += val + '\0';
    }
    // The names read, and the values seen, are shared by every variant that read the same: one
    // array and one string each, not one per variant.
    let names = this.names.get(sig);
    if (!names) this.names.set(sig, (names = Object.freeze(read.map(([n]) => n))));
    const idx = slot.index(names, sig);
    const v: Variant<V> = { deps, value, facetNames: idx.names, facetValues: this.intern(values), lastUsed: seq };
    slot.add(idx, v);
    return v;
  }

  private intern(s: string): string {
    const known = this.strings.get(s);
    if (known !== undefined) return known;
    this.strings.set(s, s);
    return s;
  }

  /** Drops variants not used since snapshot `minSeq`. */
  prune(minSeq: number): void {
    // The shared names and values are kept while a variant uses them.
    this.names.clear();
    this.strings.clear();
    for (const [key, slot] of this.slots) {
      for (const v of [...slot.variants()]) {
        if (v.lastUsed < minSeq) slot.remove(v);
        else this.intern(v.facetValues);
      }
      for (const idx of slot.indexes) this.names.set(idx.sig, idx.names);
      if (slot.empty) this.slots.delete(key);
    }
  }

  stats(): SlotStats {
    let variants = 0;
    for (const s of this.slots.values()) for (const idx of s.indexes) variants += idx.many ? idx.many.size : idx.one ? 1 : 0;
    return { slots: this.slots.size, variants, hits: this.hits, computed: this.computed };
  }
}
