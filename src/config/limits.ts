/**
 * What one input may cost: bounds on file size, documents, nesting, YAML alias expansion,
 * errors per object and message length. They are options (flags for the ones an operator
 * would tune), passed down to the sources as parameters.
 *
 * Why these defaults:
 * - 16 MiB per file: a Kubernetes object is at most ~1.5 MiB (etcd's request limit); a file of
 *   ten such objects, or thousands of ordinary ones, fits; parsing it takes about a second.
 * - 10,000 documents per file (List items count as documents): ten times a large hand-written
 *   bundle, while a file of 100,000 tiny documents (half a gigabyte once parsed) is refused.
 * - depth 64: the deepest Istio or Kubernetes field meshd reads is about 12 levels down
 *   (a Pod's env valueFrom, an AuthorizationPolicy's rule conditions); 64 leaves room for
 *   anything real, and keeps every recursive reader far from the stack's end.
 * - 10,000 nodes (mappings, lists and the values in them) added by YAML aliases per file:
 *   merge keys (`<<: *defaults`) over hundreds of objects fit; an alias bomb (each level ten
 *   times the last) or a wide mapping aliased over and over is stopped before it is copied.
 * - 100 errors per object: enough to fix a file, then "and N more errors".
 * - 1,024 characters per message (and per field path, name, source), 4,096 per log line: a
 *   value quoted back in an error stays readable, and no log line can carry a file.
 */
export interface InputLimits {
  /** Largest config file read (bytes); a larger one is refused without being read. */
  maxFileBytes: number;
  /** Most documents per file (a List's items count one each); a file with more is refused. */
  maxDocumentsPerFile: number;
  /** Deepest nesting of mappings and lists in one object (the object itself is depth 1). */
  maxDepth: number;
  /** Most nodes (mappings, lists and the values in them) YAML aliases may add by expansion, per file. */
  maxAliasNodes: number;
  /** Most field errors kept per object; the rest are counted in a last "and N more" entry. */
  maxErrorsPerObject: number;
  /** Longest message, field path, object name or source kept in an error (characters). */
  maxMessageLength: number;
  /** Longest log line written about a config problem (characters). */
  maxLogLineLength: number;
}

export const DEFAULT_INPUT_LIMITS: Readonly<InputLimits> = Object.freeze({
  maxFileBytes: 16 * 1024 * 1024,
  maxDocumentsPerFile: 10_000,
  maxDepth: 64,
  maxAliasNodes: 10_000,
  maxErrorsPerObject: 100,
  maxMessageLength: 1024,
  maxLogLineLength: 4096,
});

/** The flag that sets each limit (for messages that say how to raise it). */
export const LIMIT_FLAGS: Readonly<Record<keyof InputLimits, string>> = Object.freeze({
  maxFileBytes: '--max-file-bytes',
  maxDocumentsPerFile: '--max-documents-per-file',
  maxDepth: '--max-depth',
  maxAliasNodes: '--max-alias-nodes',
  maxErrorsPerObject: '--max-errors-per-object',
  maxMessageLength: 'maxMessageLength',
  maxLogLineLength: 'maxLogLineLength',
});

/** Lower bounds that keep meshd usable (e.g. a message must fit its own "… more" marker). */
const MINIMUM: Readonly<InputLimits> = Object.freeze({
  maxFileBytes: 1024,
  maxDocumentsPerFile: 1,
  maxDepth: 8,
  maxAliasNodes: 0,
  maxErrorsPerObject: 1,
  maxMessageLength: 80,
  maxLogLineLength: 200,
});

/** Upper bounds past which a limit no longer protects anything (or the parsers' stack ends). */
const MAXIMUM: Readonly<InputLimits> = Object.freeze({
  maxFileBytes: 512 * 1024 * 1024,
  maxDocumentsPerFile: 1_000_000,
  maxDepth: 200,
  maxAliasNodes: 10_000_000,
  maxErrorsPerObject: 100_000,
  maxMessageLength: 1024 * 1024,
  maxLogLineLength: 1024 * 1024,
});

/** Defaults filled in, every value checked; throws naming the flag of the first bad one. */
export function inputLimits(partial: Partial<InputLimits> = {}): InputLimits {
  const out: InputLimits = { ...DEFAULT_INPUT_LIMITS };
  for (const key of Object.keys(DEFAULT_INPUT_LIMITS) as Array<keyof InputLimits>) {
    const v = Object.prototype.hasOwnProperty.call(partial, key) ? partial[key] : undefined;
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v < MINIMUM[key] || v > MAXIMUM[key]) {
      throw new Error(`${LIMIT_FLAGS[key]}: ${String(v)} must be an integer from ${MINIMUM[key]} to ${MAXIMUM[key]}`);
    }
    out[key] = v;
  }
  return out;
}
