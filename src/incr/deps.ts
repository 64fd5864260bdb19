/**
 * Dependencies recorded while generating: which parts of a snapshot and which facets of a proxy a
 * computation read, and what it saw. A computation whose recorded reads give the same values in a
 * newer snapshot (and for another proxy with the same facets) would compute the same result, so
 * its result is reused. Nothing is keyed by hand: the keys are the reads themselves.
 *
 * Values are compared by identity. That is exact because snapshots are interned (model/intern.ts):
 * a part of a new snapshot equal to the previous one is the previous object.
 */
import type { MeshSnapshot } from '../model/snapshot';

/**
 * A snapshot as dependencies are checked against it: with the one before it and the top-level
 * fields that differ between the two (interned, so an unchanged field is the same object), a set
 * that held in the previous snapshot and read none of the changed fields holds without a look.
 */
export class Revision {
  readonly changed: ReadonlySet<string>;
  private readonly keys = new Map<string, ReadonlySet<unknown> | undefined>();

  constructor(
    readonly snap: MeshSnapshot,
    readonly prev?: MeshSnapshot,
  ) {
    const changed = new Set<string>();
    if (prev) {
      const a = prev as unknown as Record<string, unknown>;
      const b = snap as unknown as Record<string, unknown>;
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) if (a[k] !== b[k]) changed.add(k);
    }
    this.changed = changed;
  }

  /**
   * The entries of changed Map field `field` that differ from the previous snapshot (added,
   * removed, or another object: interned, so an equal entry is the same object); undefined when
   * the field is not a Map in both (every read of it may differ). Computed once per field.
   */
  changedKeys(field: string): ReadonlySet<unknown> | undefined {
    if (this.keys.has(field)) return this.keys.get(field);
    const a = (this.prev as unknown as Record<string, unknown> | undefined)?.[field];
    const b = (this.snap as unknown as Record<string, unknown>)[field];
    let out: Set<unknown> | undefined;
    if (a instanceof Map && b instanceof Map) {
      out = new Set();
      for (const [k, v] of b as ReadonlyMap<unknown, unknown>) if ((a as ReadonlyMap<unknown, unknown>).get(k) !== v || !a.has(k)) out.add(k);
      for (const k of (a as ReadonlyMap<unknown, unknown>).keys()) if (!b.has(k)) out.add(k);
    }
    this.keys.set(field, out);
    return out;
  }
}

/**
 * The first-level keys a large set (or its groups) read of one Map field, with the groups that
 * read each key: a change to other keys of the field leaves the set and those groups holding.
 */
interface KeyIndex {
  /** Read the whole field (or through a non-Map path): any change may matter. */
  whole: boolean;
  /** Groups to look at for a changed key. */
  groups: Map<unknown, DepSet[]>;
  /** Own inputs (their indexes) by key. */
  inputs: Map<unknown, number[]>;
  /** Groups that read the field whole: looked at for any change. */
  wholeGroups: DepSet[];
}

/** Sets with more reads than this keep a per-field key index (built on first need). */
const INDEX_ABOVE = 32;

type FacetPair = readonly [string, string];

const NO_LOCATIONS: readonly Location[] = Object.freeze([]);
const NO_VALUES: readonly unknown[] = Object.freeze([]);
const NO_GROUPS: readonly DepSet[] = Object.freeze([]);
const NO_FACETS: readonly FacetPair[] = Object.freeze([]);

/** What only some sets need: key indexes of large sets, the keys a small set read. */
interface Aux {
  indexes?: Map<string, KeyIndex>;
  keys?: { readonly field: string; readonly keys: readonly unknown[] | undefined };
}

/**
 * What one computation read: snapshot inputs (where, and the value seen), nested dependency
 * sets, proxy facets. There are hundreds of thousands of these at the load-test mesh, so they
 * are lean: reads as two parallel lists, empty lists and equal facet and field lists shared.
 */
export class DepSet {
  /** The snapshot this set was last checked against, and the answer. */
  private checkedAgainst?: MeshSnapshot;
  private checkedOk = false;
  /** The last snapshot this set was found to hold in. */
  private lastHeld?: MeshSnapshot;
  private aux?: Aux;

  constructor(
    /** Where each input read looked, and (same index) the value it saw. */
    readonly locs: readonly Location[],
    readonly values: readonly unknown[],
    readonly groups: readonly DepSet[],
    /** Proxy facets read here and in the groups, as (facet, canonical value) pairs in the order first read. */
    readonly facets: readonly FacetPair[],
    /** Every snapshot field read here or in a nested set. */
    readonly fields: readonly string[],
  ) {}

  /** Whether every input read gives the same value in the revision's snapshot (checked once per snapshot). */
  holdsIn(rev: Revision): boolean {
    const snap = rev.snap;
    if (this.checkedAgainst === snap) return this.checkedOk;
    let ok: boolean;
    if (this.checkedAgainst !== undefined && this.checkedAgainst === rev.prev) {
      // Held or not in the previous snapshot: only reads of changed fields can differ.
      ok = this.checkedOk && (!this.fields.some((f) => rev.changed.has(f)) || this.recheckChanged(rev));
    } else ok = this.recheck(rev);
    this.checkedAgainst = snap;
    this.checkedOk = ok;
    if (ok) this.lastHeld = snap;
    return ok;
  }

  /**
   * For a set that held in the previous snapshot: the groups whose reads include a changed entry
   * (the only ones that may not hold now); undefined when that cannot be told, and every group
   * must be looked at.
   */
  groupsToCheck(rev: Revision): ReadonlySet<DepSet> | undefined {
    if (rev.prev === undefined || this.lastHeld !== rev.prev) return undefined;
    const out = new Set<DepSet>();
    for (const f of this.fields) {
      if (!rev.changed.has(f)) continue;
      const keys = rev.changedKeys(f);
      if (!keys) return undefined;
      const idx = this.keyIndex(f);
      if (idx.whole) return undefined;
      for (const g of idx.wholeGroups) out.add(g);
      for (const k of keys) {
        if (idx.inputs.has(k)) return undefined;
        for (const g of idx.groups.get(k) ?? []) out.add(g);
      }
    }
    return out;
  }

  /** Every read, against the revision's snapshot. */
  private recheck(rev: Revision): boolean {
    for (let i = 0; i < this.locs.length; i++) if (readInput(rev.snap, this.locs[i] as Location) !== this.values[i]) return false;
    for (const g of this.groups) if (!g.holdsIn(rev)) return false;
    return true;
  }

  /**
   * Held in the previous snapshot: only reads of changed fields can differ, and of a changed
   * Map field only reads of its changed entries. A large set looks up the reads of those
   * entries in its key index instead of passing over every read (a class's endpoint part reads
   * thousands of clusters; one endpoint change touches one).
   */
  private recheckChanged(rev: Revision): boolean {
    if (this.locs.length + this.groups.length <= INDEX_ABOVE) {
      for (let i = 0; i < this.locs.length; i++) {
        const at = this.locs[i] as Location;
        if (!rev.changed.has(at.field)) continue;
        const keys = at.path.length > 0 ? rev.changedKeys(at.field) : undefined;
        if (keys && !keys.has(at.path[0])) continue;
        if (readInput(rev.snap, at) !== this.values[i]) return false;
      }
      for (const g of this.groups) if (!g.holdsIn(rev)) return false;
      return true;
    }
    for (const f of this.fields) {
      if (!rev.changed.has(f)) continue;
      const keys = rev.changedKeys(f);
      const idx = this.keyIndex(f);
      if (!keys || idx.whole) {
        // The whole field may matter: every read of it is looked at.
        for (let i = 0; i < this.locs.length; i++) if ((this.locs[i] as Location).field === f && readInput(rev.snap, this.locs[i] as Location) !== this.values[i]) return false;
        for (const g of this.groups) if (g.fields.includes(f) && !g.holdsIn(rev)) return false;
        continue;
      }
      for (const g of idx.wholeGroups) if (!g.holdsIn(rev)) return false;
      for (const k of keys) {
        for (const i of idx.inputs.get(k) ?? []) if (readInput(rev.snap, this.locs[i] as Location) !== this.values[i]) return false;
        for (const g of idx.groups.get(k) ?? []) if (!g.holdsIn(rev)) return false;
      }
    }
    return true;
  }

  /** The key index of field `f` (built once; the set never changes). */
  private keyIndex(f: string): KeyIndex {
    this.aux ??= {};
    const indexes = (this.aux.indexes ??= new Map());
    let idx = indexes.get(f);
    if (idx) return idx;
    idx = { whole: false, groups: new Map(), inputs: new Map(), wholeGroups: [] };
    for (let i = 0; i < this.locs.length; i++) {
      const at = this.locs[i] as Location;
      if (at.field !== f) continue;
      if (at.path.length === 0) idx.whole = true;
      else push(idx.inputs, at.path[0], i);
    }
    for (const g of this.groups) {
      if (!g.fields.includes(f)) continue;
      const keys = g.keysRead(f);
      if (keys === undefined) idx.wholeGroups.push(g);
      else for (const k of keys) push(idx.groups, k, g);
    }
    indexes.set(f, idx);
    return idx;
  }

  /** The first-level keys of Map field `f` read here and in the groups; undefined: read whole. */
  keysRead(f: string): Iterable<unknown> | undefined {
    if (this.locs.length + this.groups.length > INDEX_ABOVE) {
      const idx = this.keyIndex(f);
      if (idx.whole || idx.wholeGroups.length > 0) return undefined;
      return new Set([...idx.inputs.keys(), ...idx.groups.keys()]);
    }
    if (this.aux?.keys?.field === f) return this.aux.keys.keys;
    const keys = this.collectKeys(f);
    const out = keys && [...keys];
    (this.aux ??= {}).keys = { field: f, keys: out };
    return out;
  }

  private collectKeys(f: string): Set<unknown> | undefined {
    const out = new Set<unknown>();
    for (const at of this.locs) {
      if (at.field !== f) continue;
      if (at.path.length === 0) return undefined;
      out.add(at.path[0]);
    }
    for (const g of this.groups) {
      if (!g.fields.includes(f)) continue;
      const keys = g.keysRead(f);
      if (keys === undefined) return undefined;
      for (const k of keys) out.add(k);
    }
    return out;
  }

  /** Every facet in this set and its groups (for a proxy-facet match). */
  allFacets(): readonly FacetPair[] {
    return this.facets;
  }

  /** This set was just made from reads of `snap` (or proven to hold there): it holds in `snap`. */
  markHeld(snap: MeshSnapshot): void {
    this.checkedAgainst = snap;
    this.checkedOk = true;
    this.lastHeld = snap;
  }
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

export function readInput(snap: MeshSnapshot, at: Location): unknown {
  let v = (snap as unknown as Record<string, unknown>)[at.field];
  for (const k of at.path) v = v instanceof Map ? (v as ReadonlyMap<unknown, unknown>).get(k) : undefined;
  return v;
}

/**
 * Where a read looked: a snapshot field, or an entry of a Map field through nested Maps. One
 * object per distinct place per snapshot view (a trie), so the reads of every computation share
 * their paths and a computation's reads are told apart by identity, not by a key built per read.
 */
export class Location {
  private readonly children = new Map<unknown, Location>();

  constructor(
    readonly field: string,
    readonly path: readonly unknown[],
  ) {}

  child(key: unknown): Location {
    let c = this.children.get(key);
    if (!c) this.children.set(key, (c = new Location(this.field, Object.freeze([...this.path, key]))));
    return c;
  }
}

/**
 * Equal facet pairs, facet lists and field lists of the sets made by one tracker, as one object
 * each. Forgotten from time to time (`clear`): sharing saves memory, it is never needed for
 * correctness.
 */
class Interner {
  private pairs = new Map<string, Map<string, FacetPair>>();
  private facetLists = new Map<string, readonly FacetPair[]>();
  private fieldLists = new Map<string, readonly string[]>();

  pair(name: string, value: string): FacetPair {
    let byValue = this.pairs.get(name);
    if (!byValue) this.pairs.set(name, (byValue = new Map()));
    let p = byValue.get(value);
    if (!p) byValue.set(value, (p = Object.freeze([name, value] as const)));
    return p;
  }

  facets(list: FacetPair[]): readonly FacetPair[] {
    if (list.length === 0) return NO_FACETS;
    let key = '';
    for (const [n, v] of list) key += `${n}\0${v}\0`;
    let out = this.facetLists.get(key);
    if (!out) this.facetLists.set(key, (out = Object.freeze(list)));
    return out;
  }

  fields(set: ReadonlySet<string>): readonly string[] {
    const key = [...set].join('\0');
    let out = this.fieldLists.get(key);
    if (!out) this.fieldLists.set(key, (out = Object.freeze([...set])));
    return out;
  }

  clear(): void {
    this.pairs = new Map();
    this.facetLists = new Map();
    this.fieldLists = new Map();
  }
}

/** The reads of one computation while it runs. */
export class Frame {
  private readonly inputs = new Map<Location, unknown>();
  private readonly groups = new Set<DepSet>();
  private readonly facets = new Map<string, string>();

  constructor(private readonly interner: Interner) {}

  readInput(at: Location, value: unknown): void {
    if (!this.inputs.has(at)) this.inputs.set(at, value);
  }

  addGroup(g: DepSet): void {
    if (g.locs.length === 0 && g.groups.length === 0 && g.facets.length === 0) return;
    this.groups.add(g);
  }

  readFacet(name: string, canonical: string): void {
    if (!this.facets.has(name)) this.facets.set(name, canonical);
  }

  close(): DepSet {
    const it = this.interner;
    const groups = this.groups.size > 0 ? [...this.groups] : NO_GROUPS;
    // Facets here first, then the groups' in order, each facet once.
    const facets: FacetPair[] = [];
    for (const [n, v] of this.facets) facets.push(it.pair(n, v));
    for (const g of groups) {
      for (const p of g.facets) {
        if (this.facets.has(p[0])) continue;
        this.facets.set(p[0], p[1]);
        facets.push(p);
      }
    }
    const fields = new Set<string>();
    for (const at of this.inputs.keys()) fields.add(at.field);
    for (const g of groups) for (const f of g.fields) fields.add(f);
    const n = this.inputs.size;
    return new DepSet(n > 0 ? [...this.inputs.keys()] : NO_LOCATIONS, n > 0 ? [...this.inputs.values()] : NO_VALUES, groups, it.facets(facets), it.fields(fields));
  }
}

/** The stack of running computations; reads go to the innermost. One per engine, never global. */
export class Tracker {
  private readonly stack: Frame[] = [];
  private readonly interner = new Interner();
  /** The snapshot tracked reads read: a set made by a run holds in it by construction. */
  snapshot?: MeshSnapshot;

  /** Forgets which equal lists were shared (so values no longer read do not pile up). */
  forgetShared(): void {
    this.interner.clear();
  }

  get current(): Frame | undefined {
    return this.stack[this.stack.length - 1];
  }

  /** Runs `fn` in a new frame and returns its result with what it read. */
  run<T>(fn: () => T): { value: T; deps: DepSet } {
    const frame = new Frame(this.interner);
    this.stack.push(frame);
    try {
      const value = fn();
      const deps = frame.close();
      if (this.snapshot) deps.markHeld(this.snapshot);
      return { value, deps };
    } finally {
      this.stack.pop();
    }
  }
}
