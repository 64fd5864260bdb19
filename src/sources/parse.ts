/**
 * Text → ConfigObjects. Reads multi-document YAML (`---`) or JSON (JSON is YAML), including
 * `kind: List` / `*List` documents with `items`. Checks only what every object needs (kind,
 * apiVersion, metadata); field-level validation is `validateObject`'s job.
 *
 * Every problem becomes a ConfigError naming the file, the 0-based document index (and the
 * `items` index for lists); one bad document never hides the others.
 */
import * as jsyaml from 'js-yaml';
import {
  ISTIO_NETWORKING_VERSIONS,
  ISTIO_SECURITY_VERSIONS,
  KNOWN_KINDS,
  type ConfigError,
  type ConfigObject,
  type FieldError,
  type Kind,
  type ObjectMeta,
} from '../model/objects';
import { FLOW_COLON, parseYamlDocuments } from './yaml-flow';

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
};

/** The yaml library's alias expansion limit (guards against "billion laughs" documents). */
const MAX_ALIAS_COUNT = 100;

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
 * fields), so that typed readers see absent rather than null; freezes the result.
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

/** YAML 1.2's core schema with merge keys: what the `yaml` library reads with `merge: true`. */
// js-yaml exports its built-in types at run time; its type declarations leave them out.
const FAST_SCHEMA = jsyaml.CORE_SCHEMA.extend({ implicit: [(jsyaml as unknown as { types: { merge: jsyaml.Type } }).types.merge] });

/** An anchor or alias anywhere: the careful reader (with its alias expansion limit) reads those. */
const ANCHOR_OR_ALIAS = /(^|[\s[{,:-])[&*][^\s,\]}]/m;

/**
 * The fast reader (js-yaml, about ten times quicker on large folders) for well-formed text
 * without anchors or aliases; undefined sends the text to the careful reader, which reports
 * every problem per document with its line and column.
 */
function fastDocuments(text: string): unknown[] | undefined {
  // A colon before a flow indicator: the careful reader reads it as Kubernetes does (yaml-flow.ts).
  if (ANCHOR_OR_ALIAS.test(text) || FLOW_COLON.test(text)) return undefined;
  try {
    const docs: unknown[] = [];
    jsyaml.loadAll(text, (d) => docs.push(d), { schema: FAST_SCHEMA });
    return docs;
  } catch {
    return undefined;
  }
}

/** `careful`: skip the fast reader (tests compare the two). */
export function parseDocuments(text: string, source: string, opts: { careful?: boolean } = {}): ParseResult {
  const result: ParseResult = { objects: [], errors: [] };
  const fast = opts.careful ? undefined : fastDocuments(text);
  if (fast) {
    fast.forEach((value, document) => {
      if (value !== null && value !== undefined) readDocument(value, source, document, result);
    });
    return result;
  }
  const docs = parseYamlDocuments(text);
  docs.forEach((doc, document) => {
    if (doc.errors.length > 0) {
      result.errors.push({ source, document, errors: doc.errors.map(yamlError) });
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (e) {
      result.errors.push({ source, document, errors: [{ path: '', message: `cannot read document: ${(e as Error).message}` }] });
      return;
    }
    if (value === null || value === undefined) return; // empty document (or only comments)
    readDocument(value, source, document, result);
  });
  return result;
}

function yamlError(e: { message: string; linePos?: [{ line: number; col: number }, ...unknown[]] }): FieldError {
  const first = e.message.split('\n')[0] ?? e.message;
  const pos = e.linePos?.[0];
  const where = pos && !first.includes(' at line ') ? ` (line ${pos.line}, column ${pos.col})` : '';
  return { path: '', message: `YAML syntax error: ${first.replace(/:$/, '')}${where}` };
}

function readDocument(value: unknown, source: string, document: number, result: ParseResult): void {
  if (!isRecord(value)) {
    result.errors.push({
      source,
      document,
      errors: [{ path: '', message: `a document must be a Kubernetes object (a mapping), not ${typeName(value)}` }],
    });
    return;
  }
  const kind = value['kind'];
  if (typeof kind === 'string' && kind.endsWith('List') && 'items' in value) {
    const items = value['items'];
    if (!Array.isArray(items)) {
      result.errors.push({ source, document, kind, errors: [{ path: 'items', message: `must be a list (got ${typeName(items)})` }] });
      return;
    }
    items.forEach((item, i) => readObject(item, source, document, i, result));
    return;
  }
  readObject(value, source, document, undefined, result);
}

/**
 * One object that arrived already decoded (from an API rather than a file): the same kind,
 * apiVersion and metadata rules and error shapes as a document, without a document index.
 */
export function parseObject(value: unknown, source: string): ParseResult {
  const result: ParseResult = { objects: [], errors: [] };
  readObject(value, source, undefined, undefined, result);
  return result;
}

function readObject(value: unknown, source: string, document: number | undefined, item: number | undefined, result: ParseResult): void {
  const prefix = item === undefined ? '' : `items[${item}]`;
  const fail = (errors: FieldError[], who: { kind?: string; namespace?: string; name?: string } = {}): void => {
    const err: ConfigError = { source, ...(document === undefined ? {} : { document }), ...who, errors: errors.map((e) => ({ ...e, path: fieldPath(prefix, e.path) })) };
    result.errors.push(item === undefined ? err : { ...err, item });
  };
  if (!isRecord(value)) {
    fail([{ path: '', message: `must be a Kubernetes object (a mapping), not ${typeName(value)}` }]);
    return;
  }
  const head = readKind(value);
  const meta = readMetadata(value['metadata'], head.kind);
  const who = { kind: head.kindName, namespace: meta.meta?.namespace, name: meta.meta?.name };
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
  if (!Object.prototype.hasOwnProperty.call(KNOWN_KINDS, kind)) {
    const known = Object.keys(KNOWN_KINDS).join(', ');
    errors.push({ path: 'kind', message: `unsupported kind ${JSON.stringify(kind)} (apiVersion ${version || 'unset'}); meshd reads ${known}` });
    return { kindName: kind, apiVersion: version, errors };
  }
  const known = kind as Kind;
  if (errors.length === 0) {
    const { group } = KNOWN_KINDS[known];
    const slash = version.indexOf('/');
    const gotGroup = slash < 0 ? '' : version.slice(0, slash);
    const gotVersion = slash < 0 ? version : version.slice(slash + 1);
    const versions = GROUP_VERSIONS[group] ?? [];
    if (gotGroup !== group || !versions.includes(gotVersion)) {
      const want = versions.map((v) => (group === '' ? v : `${group}/${v}`)).join(' or ');
      errors.push({ path: 'apiVersion', message: `unsupported apiVersion ${JSON.stringify(version)} for kind ${kind} (want ${want})` });
    }
  }
  return { kind: known, kindName: kind, apiVersion: version, errors };
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
