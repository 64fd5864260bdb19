/**
 * YAML text → one decoded value (or the reasons it has none) per document, a batch of
 * documents at a time, so a caller can yield to the event loop between batches.
 *
 * Two readers, as before: js-yaml (about ten times quicker) reads each batch; the careful
 * `yaml` library reads a document js-yaml refuses, to say what is wrong with its line and
 * column. Before either runs, a scan (yaml-scan.ts) has cut the text into documents and
 * estimated how deep each nests; a document whose estimate is past what the recursive readers
 * can take is refused unread. After reading, every value is checked (bounds.ts): its real
 * depth, `__proto__` keys, and, where the text has anchors, what expanding its aliases would
 * add (each alias is the same object until the value is copied, so this is measured on the
 * shared graph, never by expanding it).
 */
import * as jsyaml from 'js-yaml';
import type { InputLimits } from '../config/limits';
import { LIMIT_FLAGS } from '../config/limits';
import type { FieldError } from '../model/objects';
import { checkTree, sharedCost } from './bounds';
import { FLOW_COLON, parseYamlDocuments } from './yaml-flow';
import { scanYaml, type YamlScan, type YamlSegment } from './yaml-scan';

/**
 * One document: its value, or why it is refused (then `value`, if set, is only for naming the
 * object, and must not be read deeply). No value and no errors: an empty document.
 */
export interface DecodedDocument {
  document: number;
  value?: unknown;
  errors?: FieldError[];
}

export interface ReadOptions {
  /** Skip js-yaml (tests compare the two readers). */
  careful?: boolean;
  /**
   * Nesting the recursive readers are trusted with (the scan's estimate). Both readers recurse
   * a few frames per level and reach the end of Node's stack at several hundred levels.
   */
  readerDepth?: number;
  /** Text per batch (characters). */
  batchChars?: number;
  /** The careful reader's largest input (characters): it needs ~60 bytes of memory per input byte. */
  carefulMaxChars?: number;
}

const DEFAULT_READER_DEPTH = 200;
const DEFAULT_BATCH_CHARS = 64 * 1024;
/** Enough for any object the API server stores (~1.5 MiB); the careful reader needs ~60 bytes per byte. */
const DEFAULT_CAREFUL_MAX_CHARS = 2 * 1024 * 1024;

/** YAML 1.2's core schema with merge keys: what the `yaml` library reads with `merge: true`. */
// js-yaml exports its built-in types at run time; its type declarations leave them out.
const FAST_SCHEMA = jsyaml.CORE_SCHEMA.extend({ implicit: [(jsyaml as unknown as { types: { merge: jsyaml.Type } }).types.merge] });

/** An anchor or alias anywhere: values may share parts, and are measured as a graph. */
const ANCHOR_OR_ALIAS = /(^|[\s[{,:-])[&*][^\s,\]}]/m;

function lineError(message: string, line: number, col: number): FieldError {
  return { path: '', message: `YAML syntax error: ${message} (line ${line}, column ${col})` };
}

/** The careful reader's error, its line moved from the batch to the file. */
function yamlError(e: { message: string; linePos?: [{ line: number; col: number }, ...unknown[]] }, lineOffset: number): FieldError {
  const first = (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '').replace(/:$/, '');
  const pos = e.linePos?.[0];
  return pos ? lineError(first, pos.line + lineOffset, pos.col) : { path: '', message: `YAML syntax error: ${first}` };
}

interface Batch {
  start: number;
  end: number;
  line: number;
  /** The first document's index. */
  document: number;
  documents: number;
  segments: YamlSegment[];
}

export class YamlReader {
  readonly scan: YamlScan;
  private readonly batches: Batch[] = [];
  private next = 0;
  /** Alias expansion still allowed in this file. */
  private aliasBudget: number;
  private readonly readerDepth: number;
  private readonly carefulMaxChars: number;

  constructor(
    private readonly text: string,
    private readonly limits: InputLimits,
    private readonly opts: ReadOptions = {},
  ) {
    this.readerDepth = Math.max(limits.maxDepth, opts.readerDepth ?? DEFAULT_READER_DEPTH);
    this.carefulMaxChars = opts.carefulMaxChars ?? DEFAULT_CAREFUL_MAX_CHARS;
    this.aliasBudget = limits.maxAliasNodes;
    this.scan = scanYaml(text, limits.maxDepth);
    const batchChars = opts.batchChars ?? DEFAULT_BATCH_CHARS;
    let document = 0;
    let cur: Batch | undefined;
    for (const s of this.scan.segments) {
      // A document the readers must not see goes alone, so that the others are read.
      const alone = s.depth > this.readerDepth;
      if (!cur || alone || cur.segments.some((x) => x.depth > this.readerDepth) || cur.end - cur.start + (s.end - s.start) > batchChars) {
        cur = { start: s.start, end: s.end, line: s.line, document, documents: 0, segments: [] };
        this.batches.push(cur);
      }
      cur.end = s.end;
      cur.documents += s.documents;
      cur.segments.push(s);
      document += s.documents;
    }
  }

  /** The next batch of documents, in order; undefined when the text is done. */
  read(): DecodedDocument[] | undefined {
    const b = this.batches[this.next++];
    if (!b) return undefined;
    const only = b.segments.length === 1 ? b.segments[0] : undefined;
    if (only && only.depth > this.readerDepth) {
      const at = only.deepLine !== undefined ? ` at line ${only.deepLine + 1}` : '';
      const errors = [
        { path: '', message: `nested deeper than ${this.limits.maxDepth} levels of mappings and lists${at}; the document is refused unread (${LIMIT_FLAGS.maxDepth})` },
      ];
      return Array.from({ length: Math.max(1, b.documents) }, (_, i) => ({ document: b.document + i, errors }));
    }
    const text = this.text.slice(b.start, b.end);
    const shared = ANCHOR_OR_ALIAS.test(text);
    return this.decode(b).map((d) => this.bounded(d, shared, text.length + 1));
  }

  private decode(b: Batch): DecodedDocument[] {
    const text = this.text.slice(b.start, b.end);
    // A colon right before a flow indicator: the careful reader reads it as Kubernetes does
    // (yaml-flow.ts); past its size limit, js-yaml reads it as YAML 1.2 does.
    const kubernetesFlow = FLOW_COLON.test(text) && text.length <= this.carefulMaxChars;
    if (!this.opts.careful && !kubernetesFlow) {
      const fast = fastDocuments(text);
      if (fast && fast.length === b.documents) return fast.map((value, i) => ({ document: b.document + i, value }));
      if (b.segments.length > 1) {
        // Find the document that failed: each on its own.
        let document = b.document;
        const out: DecodedDocument[] = [];
        for (const s of b.segments) {
          out.push(...this.decode({ start: s.start, end: s.end, line: s.line, document, documents: s.documents, segments: [s] }));
          document += s.documents;
        }
        return out;
      }
      if (text.length > this.carefulMaxChars) return [{ document: b.document, errors: [fastError(text, b.line)] }];
    }
    return carefulDocuments(text, b);
  }

  /** Depth, forbidden keys and alias expansion of one decoded value. */
  private bounded(d: DecodedDocument, shared: boolean, textNodes: number): DecodedDocument {
    if (d.value === undefined || d.value === null || d.errors) return d;
    // Without aliases, a value has no more mappings and lists than its text has characters.
    let maxNodes = textNodes;
    if (shared) {
      const cost = sharedCost(d.value);
      if (cost.cycle)
        return { document: d.document, value: d.value, errors: [{ path: '', message: 'a YAML alias refers to a node that contains it (a cycle); the document is refused' }] };
      if (cost.added > this.aliasBudget) {
        return {
          document: d.document,
          value: d.value,
          errors: [
            {
              path: '',
              message: `YAML aliases expand to ${cost.added} more nodes, past what is left of the file's limit of ${this.limits.maxAliasNodes}; the document is refused (${LIMIT_FLAGS.maxAliasNodes})`,
            },
          ],
        };
      }
      this.aliasBudget -= cost.added;
      maxNodes += cost.added;
    }
    const errors = checkTree(d.value, this.limits, '', maxNodes);
    return errors.length > 0 ? { document: d.document, value: d.value, errors } : d;
  }
}

function fastDocuments(text: string): unknown[] | undefined {
  try {
    const docs: unknown[] = [];
    jsyaml.loadAll(text, (d) => docs.push(d), { schema: FAST_SCHEMA });
    return docs;
  } catch {
    return undefined;
  }
}

/** js-yaml's reason and place, for a document too large for the careful reader. */
function fastError(text: string, lineOffset: number): FieldError {
  try {
    jsyaml.loadAll(text, () => undefined, { schema: FAST_SCHEMA });
  } catch (e) {
    const err = e as { reason?: string; message?: string; mark?: { line: number; column: number } };
    const reason = err.reason ?? String(err.message ?? e).split('\n')[0] ?? 'cannot read';
    return err.mark ? lineError(reason, err.mark.line + 1 + lineOffset, err.mark.column + 1) : { path: '', message: `YAML syntax error: ${reason}` };
  }
  return { path: '', message: 'YAML syntax error: the document could not be read' };
}

function carefulDocuments(text: string, b: Batch): DecodedDocument[] {
  return parseYamlDocuments(text).map((doc, i) => {
    const document = b.document + i;
    if (doc.errors.length > 0) return { document, errors: doc.errors.map((e) => yamlError(e, b.line)) };
    try {
      // Aliases stay shared objects (bounded() measures them); the library's own count is off.
      return { document, value: doc.toJS({ maxAliasCount: -1 }) };
    } catch (e) {
      return { document, errors: [{ path: '', message: `cannot read document: ${(e as Error).message}` }] };
    }
  });
}
