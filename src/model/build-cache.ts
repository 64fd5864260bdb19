/**
 * What one snapshot build keeps for the next, so a change costs in proportion to what changed:
 * the objects of each kind, each stage's result with the inputs it read, and per-key results
 * within a stage (one service's endpoints).
 *
 * Nothing is keyed by hand: a stage is handed a `kind` function that records which kinds it
 * read, and it is run again when one of those kinds' objects, or one of the values it was given,
 * is not the very same as last time. Sources keep an unchanged object as the same object, and a
 * kind whose objects are all the same (in the same order) keeps the same list, so "the same
 * inputs" is an identity check. A stage's result is interned against its previous one
 * (model/intern.ts), so a stage run again whose result did not change hands the very same
 * objects on to the stages after it, which then are not run again either.
 */
import { share } from './intern';
import type { ConfigError, ConfigObject } from './objects';

export type Kinds = (kind: string) => readonly ConfigObject[];

interface StageRecord {
  readonly kinds: ReadonlyMap<string, readonly ConfigObject[]>;
  readonly given: readonly unknown[];
  readonly value: unknown;
  readonly errors: readonly ConfigError[];
}

interface KeyedRecord {
  readonly given: readonly unknown[];
  readonly value: unknown;
}

const NONE: readonly ConfigObject[] = Object.freeze([]);

/** The same values, one by one: objects (and arrays of objects) by identity. */
function sameGiven(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    if (!Array.isArray(x) || !Array.isArray(y) || x.length !== y.length) return false;
    for (let j = 0; j < x.length; j++) if (x[j] !== y[j]) return false;
  }
  return true;
}

export class BuildCache {
  private lists = new Map<string, readonly ConfigObject[]>();
  private stages = new Map<string, StageRecord>();
  private nextStages = new Map<string, StageRecord>();
  private keyed = new Map<string, Map<unknown, KeyedRecord>>();
  private nextKeyed = new Map<string, Map<unknown, KeyedRecord>>();
  private seen = new Map<unknown, unknown>();
  /** Stage runs and reuses, for tests and diagnosis. */
  readonly counters = { run: 0, reused: 0 };

  /**
   * Starts a build with the objects of each kind, each list sorted: a list holding the same
   * objects as last build's is last build's list. Returns the build's `kind` function.
   */
  begin(byKind: ReadonlyMap<string, readonly ConfigObject[]>): Kinds {
    const lists = new Map<string, readonly ConfigObject[]>();
    for (const [k, list] of byKind) {
      const prev = this.lists.get(k);
      lists.set(k, prev && sameGiven([prev], [list]) ? prev : list);
    }
    this.lists = lists;
    this.nextStages = new Map();
    this.nextKeyed = new Map();
    this.seen = new Map();
    return (k) => lists.get(k) ?? NONE;
  }

  /** Ends the build: what the stages and keys of this build did not use is forgotten. */
  end(): void {
    this.stages = this.nextStages;
    this.keyed = this.nextKeyed;
    this.seen = new Map();
  }

  /**
   * Stage `name`'s result: last build's, when every kind it read has the same objects and
   * `given` holds the same values; otherwise computed with `kind` recording what it reads (its
   * errors kept, to be reported again while the result is reused) and interned against last
   * build's result.
   */
  stage<T>(name: string, kind: Kinds, given: readonly unknown[], errors: ConfigError[], compute: (kind: Kinds, errors: ConfigError[]) => T): T {
    const prev = this.stages.get(name);
    if (prev && sameGiven(prev.given, given) && [...prev.kinds].every(([k, list]) => kind(k) === list)) {
      this.counters.reused++;
      this.nextStages.set(name, prev);
      errors.push(...prev.errors);
      return prev.value as T;
    }
    this.counters.run++;
    const read = new Map<string, readonly ConfigObject[]>();
    const own: ConfigError[] = [];
    const tracked: Kinds = (k) => {
      const list = kind(k);
      read.set(k, list);
      return list;
    };
    const computed = compute(tracked, own);
    const value = prev ? share(prev.value, computed, this.seen) : computed;
    this.nextStages.set(name, { kinds: read, given: [...given], value, errors: own });
    errors.push(...own);
    return value;
  }

  /**
   * One keyed result within a stage (say, one service's endpoints): last build's when `given`
   * holds the same values, else computed and interned against last build's.
   */
  byKey<T>(space: string, key: unknown, given: readonly unknown[], compute: () => T): T {
    let next = this.nextKeyed.get(space);
    if (!next) this.nextKeyed.set(space, (next = new Map()));
    const prev = this.keyed.get(space)?.get(key);
    if (prev && sameGiven(prev.given, given)) {
      next.set(key, prev);
      return prev.value as T;
    }
    const computed = compute();
    const value = prev ? share(prev.value, computed, this.seen) : computed;
    next.set(key, { given: [...given], value });
    return value;
  }
}
