/**
 * What meshd needs from a config source (a folder, a Kubernetes API server): the current
 * valid objects and the problems found, and a `change` event whenever either may differ.
 */
import type { ConfigError, ConfigObject, FieldError } from '../model/objects';
import { objectError } from '../model/objects';
import { validateObject } from '../model/validate';
import { DEFAULT_INPUT_LIMITS, type InputLimits } from '../config/limits';
import { boundErrors } from './bounds';
import type { ParseResult } from './parse';
import type { MeshConfigText } from '../model/build-mesh';

export interface ConfigState {
  objects: readonly ConfigObject[];
  errors: readonly ConfigError[];
  /** The MeshConfig text the source holds (folder: `mesh.yaml`; Kubernetes: ConfigMap `istio`), if any. */
  mesh?: MeshConfigText;
}

export interface ConfigSource {
  /**
   * Reads the initial state. Resolves once it is complete (every file read; every kind's
   * initial list done); rejects only if the source cannot be used at all.
   */
  load(): void | Promise<void>;
  /** Starts following changes; `change` is emitted (with what changed) after this. */
  start(): Promise<void>;
  /** The valid objects and the problems found, right now. */
  state(): ConfigState;
  on(event: 'change', listener: (what: string) => void): this;
  on(event: 'error', listener: (err: unknown) => void): this;
  close(): Promise<void>;
}

/** One object's field errors (a validator that throws is reported, never passed on). */
export function validateOne(o: ConfigObject, limits: InputLimits = DEFAULT_INPUT_LIMITS): FieldError[] {
  try {
    return validateObject(o, limits.maxErrorsPerObject);
  } catch (err) {
    // A validator bug must not take the source down: leave the object out and say why.
    return [{ path: '', message: `internal validation error: ${(err as Error).message}` }];
  }
}

/**
 * Parsed objects → valid objects in, invalid ones reported with field paths (any source);
 * every error bounded (count per object, length of each string).
 */
export function validated(parsed: ParseResult, limits: InputLimits = DEFAULT_INPUT_LIMITS): { objects: ConfigObject[]; errors: ConfigError[] } {
  const objects: ConfigObject[] = [];
  const errors: ConfigError[] = [...parsed.errors];
  for (const o of parsed.objects) {
    const fieldErrors = validateOne(o, limits);
    if (fieldErrors.length > 0) errors.push(objectError(o, fieldErrors));
    else objects.push(o);
  }
  return { objects, errors: boundErrors(errors, limits) };
}
