/**
 * Results kept across snapshots, by what they read. A slot (one kind of computation, e.g. "the
 * outbound clusters of a sidecar" or "cluster X") holds variants: one per distinct set of proxy
 * facet values the computation read. A variant is reused for a proxy whose facets match and while
 * its snapshot reads still hold; otherwise it is computed again.
 */
import type { DepSet, Revision } from './deps';
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

/** One slot: variants indexed by the set of facet names read, then by their values. */
class Slot<V> {
  readonly byNames = new Map<string, { names: readonly string[]; byValues: Map<string, Variant<V>> }>();

  find(facets: ProxyFacets): Variant<V> | undefined {
    for (const { names, byValues } of this.byNames.values()) {
      const v = byValues.get(valuesOf(facets, names));
      if (v) return v;
    }
    return undefined;
  }

  add(v: Variant<V>): void {
    const sig = v.facetNames.join('\0');
    let idx = this.byNames.get(sig);
    if (!idx) this.byNames.set(sig, (idx = { names: v.facetNames, byValues: new Map() }));
    idx.byValues.set(v.facetValues, v);
  }

  remove(v: Variant<V>): void {
    const idx = this.byNames.get(v.facetNames.join('\0'));
    if (idx?.byValues.get(v.facetValues) === v) idx.byValues.delete(v.facetValues);
    if (idx && idx.byValues.size === 0) this.byNames.delete(v.facetNames.join('\0'));
  }

  get empty(): boolean {
    return this.byNames.size === 0;
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
    const { value, deps } = compute(found);
    const read = deps.allFacets();
    const v: Variant<V> = { deps, value, facetNames: read.map(([n]) => n), facetValues: read.map(([, val]) => val + '\0').join(''), lastUsed: seq };
    slot.add(v);
    return v;
  }

  /** Drops variants not used since snapshot `minSeq`. */
  prune(minSeq: number): void {
    for (const [key, slot] of this.slots) {
      for (const idx of [...slot.byNames.values()]) for (const v of [...idx.byValues.values()]) if (v.lastUsed < minSeq) slot.remove(v);
      if (slot.empty) this.slots.delete(key);
    }
  }

  stats(): SlotStats {
    let variants = 0;
    for (const s of this.slots.values()) for (const idx of s.byNames.values()) variants += idx.byValues.size;
    return { slots: this.slots.size, variants, hits: this.hits, computed: this.computed };
  }
}
