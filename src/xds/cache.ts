/** Encoded resources as the engine (engine.ts) keeps and serves them, and the check they pass. */
import type { TypeUrl } from './protos';
import type { RuleViolation } from './validate-rules';

export interface EncodedResource {
  name: string;
  bytes: Uint8Array;
  /** sha1 of bytes, hex; content identity for change detection. */
  hash: string;
  /** Names of the resources it points at (a listener's routes, an EDS cluster's assignment). */
  refs?: readonly string[];
}

/**
 * On a resource map read from other maps in turn without copying them (no name in two of them):
 * those maps, so what is made per map (the wire wrappers of a whole set) is shared by every set
 * made of it.
 */
export const PARTS = Symbol('the disjoint maps a resource map reads from');

export interface RejectedResource {
  name: string;
  typeUrl: TypeUrl;
  errors: readonly RuleViolation[];
  /** When EnvoyFilter patches made the resource: their `namespace/name`. */
  envoyFilters?: readonly string[];
}

export interface ResourceChecker {
  validate(typeUrl: string, obj: object): RuleViolation[];
}
