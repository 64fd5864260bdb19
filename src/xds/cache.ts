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
