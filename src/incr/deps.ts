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
 * A read of snapshot field `field` that saw `value`: the field itself (`path` empty), or the
 * entry at `path` of a Map field, through nested Maps (`endpoints` → host → port).
 */
export interface InputRead {
  readonly field: string;
  readonly path: readonly unknown[];
  readonly value: unknown;
}

/**
 * A snapshot as dependencies are checked against it: with the one before it and the top-level
 * fields that differ between the two (interned, so an unchanged field is the same object), a set
 * that held in the previous snapshot and read none of the changed fields holds without a look.
 */
export class Revision {
  readonly changed: ReadonlySet<string>;

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
}

/** What one computation read: snapshot inputs, nested dependency sets, proxy facets. */
export class DepSet {
  /** The snapshot this set was last checked against, and the answer. */
  private checkedAgainst?: MeshSnapshot;
  private checkedOk = false;
  /** Every snapshot field read here or in a nested set. */
  readonly fields: readonly string[];

  constructor(
    readonly inputs: readonly InputRead[],
    readonly groups: readonly DepSet[],
    /** Proxy facets read, as (facet, canonical value) pairs in the order first read. */
    readonly facets: readonly (readonly [string, string])[],
  ) {
    const fields = new Set<string>();
    for (const r of inputs) fields.add(r.field);
    for (const g of groups) for (const f of g.fields) fields.add(f);
    this.fields = [...fields];
  }

  /** Whether every input read gives the same value in the revision's snapshot (checked once per snapshot). */
  holdsIn(rev: Revision): boolean {
    const snap = rev.snap;
    if (this.checkedAgainst === snap) return this.checkedOk;
    let ok: boolean;
    if (this.checkedAgainst !== undefined && this.checkedAgainst === rev.prev) {
      // Held or not in the previous snapshot: only reads of changed fields can differ.
      ok = this.checkedOk && (!this.fields.some((f) => rev.changed.has(f)) || this.recheck(rev, true));
    } else ok = this.recheck(rev, false);
    this.checkedAgainst = snap;
    this.checkedOk = ok;
    return ok;
  }

  private recheck(rev: Revision, changedOnly: boolean): boolean {
    for (const r of this.inputs) {
      if (changedOnly && !rev.changed.has(r.field)) continue;
      if (readInput(rev.snap, r) !== r.value) return false;
    }
    for (const g of this.groups) if (!g.holdsIn(rev)) return false;
    return true;
  }

  /** Every facet in this set and its groups (for a proxy-facet match). */
  allFacets(): (readonly [string, string])[] {
    const out = new Map<string, string>();
    const walk = (d: DepSet): void => {
      for (const [f, v] of d.facets) if (!out.has(f)) out.set(f, v);
      for (const g of d.groups) walk(g);
    };
    walk(this);
    return [...out];
  }
}

export function readInput(snap: MeshSnapshot, r: InputRead): unknown {
  let v = (snap as unknown as Record<string, unknown>)[r.field];
  for (const k of r.path) v = v instanceof Map ? (v as ReadonlyMap<unknown, unknown>).get(k) : undefined;
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

/** The reads of one computation while it runs. */
export class Frame {
  private readonly inputs = new Map<Location, InputRead>();
  private readonly groups = new Set<DepSet>();
  private readonly facets = new Map<string, string>();

  readInput(at: Location, value: unknown): void {
    if (!this.inputs.has(at)) this.inputs.set(at, { field: at.field, path: at.path, value });
  }

  addGroup(g: DepSet): void {
    if (g.inputs.length === 0 && g.groups.length === 0 && g.facets.length === 0) return;
    this.groups.add(g);
  }

  readFacet(name: string, canonical: string): void {
    if (!this.facets.has(name)) this.facets.set(name, canonical);
  }

  close(): DepSet {
    return new DepSet([...this.inputs.values()], [...this.groups], [...this.facets]);
  }
}

/** The stack of running computations; reads go to the innermost. One per engine, never global. */
export class Tracker {
  private readonly stack: Frame[] = [];

  get current(): Frame | undefined {
    return this.stack[this.stack.length - 1];
  }

  /** Runs `fn` in a new frame and returns its result with what it read. */
  run<T>(fn: () => T): { value: T; deps: DepSet } {
    const frame = new Frame();
    this.stack.push(frame);
    try {
      const value = fn();
      return { value, deps: frame.close() };
    } finally {
      this.stack.pop();
    }
  }
}
