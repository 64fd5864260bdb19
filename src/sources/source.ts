/**
 * What meshd needs from a config source (a folder, a Kubernetes API server): the current
 * valid objects and the problems found, and a `change` event whenever either may differ.
 */
import type { ConfigError, ConfigObject, FieldError } from '../model/objects';
import { objectError } from '../model/objects';
import { validateObject } from '../model/validate';
import type { ParseResult } from './parse';

export interface ConfigState {
  objects: readonly ConfigObject[];
  errors: readonly ConfigError[];
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

/** Parsed objects → valid objects in, invalid ones reported with field paths (any source). */
export function validated(parsed: ParseResult): { objects: ConfigObject[]; errors: ConfigError[] } {
  const objects: ConfigObject[] = [];
  const errors: ConfigError[] = [...parsed.errors];
  for (const o of parsed.objects) {
    let fieldErrors: FieldError[];
    try {
      fieldErrors = validateObject(o);
    } catch (err) {
      // A validator bug must not take the source down: leave the object out and say why.
      fieldErrors = [{ path: '', message: `internal validation error: ${(err as Error).message}` }];
    }
    if (fieldErrors.length > 0) errors.push(objectError(o, fieldErrors));
    else objects.push(o);
  }
  return { objects, errors };
}
