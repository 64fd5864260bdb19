/**
 * Text → ConfigObjects. Reads multi-document YAML (`---`) or JSON (JSON is YAML), including
 * `kind: List` / `*List` documents with `items`. Checks only what every object needs (kind,
 * apiVersion, metadata); field-level validation is `validateObject`'s job.
 *
 * Every problem becomes a ConfigError naming the file, the 0-based document index (and the
 * `items` index for lists); one bad document never hides the others.
 */
import { DEFAULT_INPUT_LIMITS, type InputLimits, LIMIT_FLAGS } from '../config/limits';
import {
  ISTIO_NETWORKING_VERSIONS,
  ISTIO_SECURITY_VERSIONS,
  ISTIO_TELEMETRY_VERSIONS,
  ISTIO_EXTENSIONS_VERSIONS,
  KIND_VERSIONS,
  KNOWN_KINDS,
  type ConfigError,
  type ConfigObject,
  type FieldError,
  type Kind,
  type ObjectMeta,
} from '../model/objects';
import { checkTree, fileTooLarge } from './bounds';
import { type ReadOptions, YamlReader } from './yaml-read';

export interface ParseResult {
  objects: ConfigObject[];
  errors: ConfigError[];
}

type JsonObject = Record<string, unknown>;

/** Accepted apiVersions per API group (the core group is empty). */
const GROUP_VERSIONS: Readonly<Record<string, readonly string[]>> = {
  '': ['v1'],
  'discovery.k8s.io': ['v1'],
  'networking.istio.io': ISTIO_NETWORKING_VERSIONS,
  'security.istio.io': ISTIO_SECURITY_VERSIONS,
  'telemetry.istio.io': ISTIO_TELEMETRY_VERSIONS,
  'extensions.istio.io': ISTIO_EXTENSIONS_VERSIONS,
};

function isRecord(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  return Array.isArray(v) ? 'array' : typeof v;
}

function fieldPath(prefix: string, path: string): string {
  return prefix === '' ? path : path === '' ? prefix : `${prefix}.${path}`;
}

/**
 * Drops null-valued mapping entries (as the Kubernetes API server does for non-nullable
 * fields), so that typed readers see absent rather than null; freezes the result. Runs only on
 * values checkTree passed: bounded depth, no `__proto__` key, aliases within their limit.
 */
function clean(v: unknown): unknown {
  if (Array.isArray(v)) return Object.freeze(v.map(clean));
  if (isRecord(v)) {
    const out: JsonObject = {};
    for (const [k, val] of Object.entries(v)) {
      if (val !== null && val !== undefined) out[k] = clean(val);
    }
    return Object.freeze(out);
  }
  return v;
}

export interface ParseOptions extends ReadOptions {
  /** Input limits (defaults: DEFAULT_INPUT_LIMITS). */
  limits?: InputLimits;
}

/** Reads a file's text a batch of documents at a time; `done()` gives the result. */
class TextParser {
  private readonly reader?: YamlReader;
  private readonly result: ParseResult = { objects: [], errors: [] };
  private objectCount = 0;
  private refused?: ConfigError;

  constructor(
    text: string,
    private readonly source: string,
    private readonly limits: InputLimits,
    opts: ReadOptions,
  ) {
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > limits.maxFileBytes) {
      this.refused = fileError(source, fileTooLarge(bytes, limits));
      return;
    }
    this.reader = new YamlReader(text, limits, opts);
    const docs = this.reader.scan.documents;
    if (docs > limits.maxDocumentsPerFile) this.refused = tooManyDocuments(source, docs, limits);
  }

  /** Reads the next batch; false when there is nothing left. */
  step(): boolean {
    if (this.refused || !this.reader) return false;
    const batch = this.reader.read();
    if (!batch) return false;
    for (const d of batch) {
      if (d.errors) {
        this.result.errors.push({ source: this.source, document: d.document, ...whoOf(d.value), errors: d.errors });
        this.objectCount++;
      } else if (d.value !== null && d.value !== undefined) {
        this.objectCount += readDocument(d.value, this.source, d.document, this.result);
      }
      if (this.objectCount > this.limits.maxDocumentsPerFile) {
        this.refused = tooManyDocuments(this.source, this.objectCount, this.limits, true);
        return false;
      }
    }
    return true;
  }

  done(): ParseResult {
    return this.refused ? { objects: [], errors: [this.refused] } : this.result;
  }
}

function fileError(source: string, message: string): ConfigError {
  return { source, errors: [{ path: '', message }] };
}

function tooManyDocuments(source: string, n: number, limits: InputLimits, atLeast = false): ConfigError {
  const held = atLeast ? `more than ${limits.maxDocumentsPerFile} documents (List items count one each)` : `${n} documents, more than the limit of ${limits.maxDocumentsPerFile}`;
  return fileError(source, `the file holds ${held}; it is refused (${LIMIT_FLAGS.maxDocumentsPerFile})`);
}

/** `careful`: skip the fast reader (tests compare the two). */
export function parseDocuments(text: string, source: string, opts: ParseOptions = {}): ParseResult {
  const p = new TextParser(text, source, opts.limits ?? DEFAULT_INPUT_LIMITS, opts);
  while (p.step()) {
    // one batch at a time
  }
  return p.done();
}

/**
 * parseDocuments a batch at a time, yielding to the event loop whenever `sliceMs` of work
 * has been done, so that a large file never holds up `/ready` or xDS for long.
 */
export async function parseDocumentsAsync(text: string, source: string, opts: ParseOptions & { sliceMs?: number } = {}): Promise<ParseResult> {
  const p = new TextParser(text, source, opts.limits ?? DEFAULT_INPUT_LIMITS, opts);
  const sliceMs = opts.sliceMs ?? 10;
  let since = performance.now();
  while (p.step()) {
    if (performance.now() - since >= sliceMs) {
      await yieldToEventLoop();
      since = performance.now();
    }
  }
  return p.done();
}

/** Lets timers and I/O run (setImmediate runs after pending I/O callbacks). */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Which object a value claims to be (for errors about values that are not read further). */
function whoOf(value: unknown): { kind?: string; namespace?: string; name?: string } {
  if (!isRecord(value)) return {};
  const meta = isRecord(value['metadata']) ? value['metadata'] : {};
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  const who: { kind?: string; namespace?: string; name?: string } = {};
  const kind = str(value['kind']);
  const namespace = str(meta['namespace']);
  const name = str(meta['name']);
  if (kind !== undefined) who.kind = kind;
  if (namespace !== undefined) who.namespace = namespace;
  if (name !== undefined) who.name = name;
  return who;
}

/** One decoded document into result; returns how many objects it held (a List: its items). */
function readDocument(value: unknown, source: string, document: number, result: ParseResult): number {
  if (!isRecord(value)) {
    result.errors.push({
      source,
      document,
      errors: [{ path: '', message: `a document must be a Kubernetes object (a mapping), not ${typeName(value)}` }],
    });
    return 1;
  }
  const kind = value['kind'];
  if (typeof kind === 'string' && kind.endsWith('List') && Object.prototype.hasOwnProperty.call(value, 'items')) {
    const items = value['items'];
    if (!Array.isArray(items)) {
      result.errors.push({ source, document, kind, errors: [{ path: 'items', message: `must be a list (got ${typeName(items)})` }] });
      return 1;
    }
    items.forEach((item, i) => readObject(item, source, document, i, result));
    return items.length;
  }
  readObject(value, source, document, undefined, result);
  return 1;
}

/**
 * One object that arrived already decoded (from an API rather than a file): the same kind,
 * apiVersion and metadata rules and error shapes as a document, without a document index.
 */
export function parseObject(value: unknown, source: string, limits: InputLimits = DEFAULT_INPUT_LIMITS): ParseResult {
  const result: ParseResult = { objects: [], errors: [] };
  // Decoded JSON nests as deep as it likes and may carry `__proto__` keys: checked before any
  // recursive reader sees it.
  const errors = checkTree(value, limits);
  if (errors.length > 0) {
    result.errors.push({ source, ...whoOf(value), errors });
    return result;
  }
  readObject(value, source, undefined, undefined, result);
  return result;
}

function readObject(value: unknown, source: string, document: number | undefined, item: number | undefined, result: ParseResult): void {
  const prefix = item === undefined ? '' : `items[${item}]`;
  const fail = (errors: FieldError[], who: { kind?: string; namespace?: string; name?: string; apiVersion?: string } = {}): void => {
    const err: ConfigError = { source, ...(document === undefined ? {} : { document }), ...who, errors: errors.map((e) => ({ ...e, path: fieldPath(prefix, e.path) })) };
    result.errors.push(item === undefined ? err : { ...err, item });
  };
  if (!isRecord(value)) {
    fail([{ path: '', message: `must be a Kubernetes object (a mapping), not ${typeName(value)}` }]);
    return;
  }
  const head = readKind(value);
  const meta = readMetadata(value['metadata'], head.kind);
  const who = {
    kind: head.kindName,
    namespace: meta.meta?.namespace,
    name: meta.meta?.name,
    ...(head.errors.length > 0 && head.apiVersion !== '' ? { apiVersion: head.apiVersion } : {}),
  };
  const errors = [...head.errors, ...meta.errors];
  if (errors.length > 0 || head.kind === undefined || meta.meta === undefined) {
    fail(errors, who);
    return;
  }
  result.objects.push({
    kind: head.kind,
    apiVersion: head.apiVersion,
    metadata: meta.meta,
    body: clean(value) as JsonObject,
    origin: document === undefined ? { source } : item === undefined ? { source, document } : { source, document, item },
  });
}

interface KindResult {
  kind?: Kind;
  kindName?: string;
  apiVersion: string;
  errors: FieldError[];
}

/**
 * The KNOWN_KINDS key for a kind as Kubernetes spells it: by group first (`Gateway` is Istio's in
 * networking.istio.io and the Gateway API's in gateway.networking.k8s.io), else the first key of
 * that kind, so a wrong group is reported against the apiVersion.
 */
function readKind(o: JsonObject): KindResult {
  const kind = o['kind'];
  const apiVersion = o['apiVersion'];
  const errors: FieldError[] = [];
  if (typeof apiVersion !== 'string' || apiVersion === '') {
    errors.push({ path: 'apiVersion', message: apiVersion === undefined ? 'apiVersion is required' : `must be a non-empty string (got ${typeName(apiVersion)})` });
  }
  if (typeof kind !== 'string' || kind === '') {
    errors.push({ path: 'kind', message: kind === undefined ? 'kind is required' : `must be a non-empty string (got ${typeName(kind)})` });
    return { apiVersion: String(apiVersion ?? ''), errors };
  }
  const version = typeof apiVersion === 'string' ? apiVersion : '';
  const known = knownKind(kind, version);
  if (known === undefined) {
    const names = [...new Set(Object.values(KNOWN_KINDS).map((k) => k.kind))].join(', ');
    errors.push({ path: 'kind', message: `unsupported kind ${JSON.stringify(kind)} (apiVersion ${version || 'unset'}); meshd reads ${names}` });
    return { kindName: kind, apiVersion: version, errors };
  }
  if (errors.length === 0) {
    const { group } = KNOWN_KINDS[known];
    const slash = version.indexOf('/');
    const gotGroup = slash < 0 ? '' : version.slice(0, slash);
    const gotVersion = slash < 0 ? version : version.slice(slash + 1);
    const versions = KIND_VERSIONS[known] ?? GROUP_VERSIONS[group] ?? [];
    if (gotGroup !== group || !versions.includes(gotVersion)) {
      const want = versions.map((v) => (group === '' ? v : `${group}/${v}`)).join(' or ');
      errors.push({ path: 'apiVersion', message: `unsupported apiVersion ${JSON.stringify(version)} for kind ${kind} (want ${want})` });
    }
  }
  return { kind: known, kindName: kind, apiVersion: version, errors };
}

/** The model's key for a kind as written: by group where two groups share a name (Gateway). */
function knownKind(kind: string, apiVersion: string): Kind | undefined {
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const keys = Object.keys(KNOWN_KINDS) as Kind[];
  const byGroup = keys.find((k) => KNOWN_KINDS[k].kind === kind && KNOWN_KINDS[k].group === group);
  if (byGroup !== undefined) return byGroup;
  // Otherwise the first of that name (its apiVersion is then reported as wrong for it).
  return keys.find((k) => KNOWN_KINDS[k].kind === kind);
}

interface MetaResult {
  meta?: ObjectMeta;
  errors: FieldError[];
}

function readMetadata(v: unknown, kind: Kind | undefined): MetaResult {
  if (v === undefined) return { errors: [{ path: 'metadata.name', message: 'metadata.name is required' }] };
  if (!isRecord(v)) return { errors: [{ path: 'metadata', message: `must be a mapping (got ${typeName(v)})` }] };
  const errors: FieldError[] = [];
  const name = v['name'];
  if (typeof name !== 'string' || name === '') {
    errors.push({ path: 'metadata.name', message: name === undefined || name === '' ? 'metadata.name is required' : `must be a string (got ${typeName(name)})` });
  }
  const namespaced = kind === undefined ? true : KNOWN_KINDS[kind].namespaced;
  const ns = v['namespace'];
  if (ns !== undefined && typeof ns !== 'string') errors.push({ path: 'metadata.namespace', message: `must be a string (got ${typeName(ns)})` });
  const namespace = namespaced ? (typeof ns === 'string' && ns !== '' ? ns : 'default') : '';
  const labels = stringMap(v['labels'], 'metadata.labels', errors);
  const annotations = stringMap(v['annotations'], 'metadata.annotations', errors);
  const meta: ObjectMeta = { name: typeof name === 'string' ? name : '', namespace, labels, annotations };
  const rv = v['resourceVersion'];
  if (rv !== undefined) {
    if (typeof rv === 'string') meta.resourceVersion = rv;
    else errors.push({ path: 'metadata.resourceVersion', message: `must be a string (got ${typeName(rv)})` });
  }
  const gen = v['generation'];
  if (gen !== undefined) {
    if (typeof gen === 'number' && Number.isInteger(gen)) meta.generation = gen;
    else errors.push({ path: 'metadata.generation', message: `must be an integer (got ${typeName(gen)})` });
  }
  const created = v['creationTimestamp'];
  if (created !== undefined && created !== null) {
    const iso = created instanceof Date ? created.toISOString() : typeof created === 'string' ? created : undefined;
    if (iso !== undefined && !Number.isNaN(Date.parse(iso))) meta.creationTimestamp = iso;
    else errors.push({ path: 'metadata.creationTimestamp', message: `must be an RFC 3339 time (got ${typeName(created)})` });
  }
  return { meta: Object.freeze(meta), errors };
}

/** labels / annotations: absent → {}, otherwise a mapping of strings to strings. */
function stringMap(v: unknown, path: string, errors: FieldError[]): Readonly<Record<string, string>> {
  if (v === undefined) return Object.freeze({});
  if (!isRecord(v)) {
    errors.push({ path, message: `must be a mapping of strings to strings (got ${typeName(v)})` });
    return Object.freeze({});
  }
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val === 'string') out[k] = val;
    else errors.push({ path: mapKeyPath(path, k), message: `must be a string (got ${typeName(val)} ${JSON.stringify(val)}); quote the value in YAML` });
  }
  return Object.freeze(out);
}

function mapKeyPath(base: string, key: string): string {
  return /^[A-Za-z0-9_-]+$/.test(key) ? `${base}.${key}` : `${base}[${JSON.stringify(key)}]`;
}
