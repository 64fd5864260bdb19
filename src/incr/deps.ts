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

/** A read of snapshot field `field` (whole, or one key of a Map field) that saw `value`. */
export interface InputRead {
  readonly field: string;
  /** The Map key read; undefined for a read of the whole field (iteration, arrays, scalars). */
  readonly key: unknown;
  readonly whole: boolean;
  readonly value: unknown;
}

/** What one computation read: snapshot inputs, nested dependency sets, proxy facets. */
export class DepSet {
  /** The snapshot this set was last checked against, and the answer. */
  private checkedAgainst?: MeshSnapshot;
  private checkedOk = false;

  constructor(
    readonly inputs: readonly InputRead[],
    readonly groups: readonly DepSet[],
    /** Proxy facets read, as (facet, canonical value) pairs in the order first read. */
    readonly facets: readonly (readonly [string, string])[],
  ) {}

  /** Whether every input read gives the same value in `snap` (checked once per snapshot). */
  holdsIn(snap: MeshSnapshot): boolean {
    if (this.checkedAgainst === snap) return this.checkedOk;
    let ok = true;
    for (const r of this.inputs) {
      if (readInput(snap, r) !== r.value) {
        ok = false;
        break;
      }
    }
    if (ok) for (const g of this.groups) if (!g.holdsIn(snap)) ok = false;
    this.checkedAgainst = snap;
    this.checkedOk = ok;
    return ok;
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

  /** Number of input reads, including nested groups (each group once). */
  size(seen = new Set<DepSet>()): number {
    if (seen.has(this)) return 0;
    seen.add(this);
    let n = this.inputs.length;
    for (const g of this.groups) n += g.size(seen);
    return n;
  }
}

export function readInput(snap: MeshSnapshot, r: InputRead): unknown {
  const v = (snap as unknown as Record<string, unknown>)[r.field];
  if (r.whole) return v;
  return (v as ReadonlyMap<unknown, unknown>).get(r.key);
}

/** The reads of one computation while it runs. */
export class Frame {
  private readonly inputs = new Map<unknown, Map<unknown, InputRead>>();
  private readonly wholes = new Map<string, InputRead>();
  private readonly groups = new Set<DepSet>();
  private readonly facets = new Map<string, string>();

  readInput(field: string, whole: boolean, key: unknown, value: unknown): void {
    if (whole) {
      if (!this.wholes.has(field)) this.wholes.set(field, { field, key: undefined, whole: true, value });
      return;
    }
    let byKey = this.inputs.get(field);
    if (!byKey) this.inputs.set(field, (byKey = new Map()));
    if (!byKey.has(key)) byKey.set(key, { field, key, whole: false, value });
  }

  addGroup(g: DepSet): void {
    if (g.inputs.length === 0 && g.groups.length === 0 && g.facets.length === 0) return;
    this.groups.add(g);
  }

  readFacet(name: string, canonical: string): void {
    if (!this.facets.has(name)) this.facets.set(name, canonical);
  }

  close(): DepSet {
    const inputs: InputRead[] = [...this.wholes.values()];
    for (const byKey of this.inputs.values()) inputs.push(...byKey.values());
    return new DepSet(inputs, [...this.groups], [...this.facets]);
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
