/**
 * Where `meshctl analyze` and `meshctl x describe` get their objects: files and folders (read
 * as the folder source reads them, unvalidated: analysis validates), or the cluster's API
 * (listed as meshd's Kubernetes source sees each object). File objects replace cluster objects
 * of the same kind, namespace and name, as istioctl's `analyze -k FILE` simulates applying them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_INPUT_LIMITS, type InputLimits } from '../config/limits';
import { type ConfigError, type ConfigObject, objectKey } from '../model/objects';
import { foreignKind } from '../cli/validate';
import { type KubeConnection, KubeHttpError, listAll, loadKubeConfig } from '../sources/kube-http';
import { KUBE_KINDS, collectionPath, configView } from '../sources/kube-kinds';
import { parseDocuments, parseObject } from '../sources/parse';

export interface ReadResult {
  objects: ConfigObject[];
  /** Objects of Istio's kinds (or kinds meshd reads) left out by the reader: schema errors. */
  refused: ConfigError[];
  /** Files that could not be read or parsed at all (YAML syntax, size): `file: reason`. */
  parseErrors: string[];
  /** Files read, in order. */
  files: string[];
  /** Notes for stderr (skipped files). */
  notes: string[];
}

const EXTENSIONS = /\.(ya?ml|json)$/i;

function gather(input: string, recursive: boolean, notes: string[]): string[] {
  const st = fs.statSync(input);
  if (!st.isDirectory()) {
    if (!EXTENSIONS.test(input)) {
      notes.push(`Skipping file ${input}, recognized file extensions are: [.json .yaml .yml]`);
      return [];
    }
    return [input];
  }
  const out: string[] = [];
  for (const e of fs.readdirSync(input, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (e.name.startsWith('.')) continue;
    const p = path.join(input, e.name);
    if (e.isDirectory()) {
      if (recursive) out.push(...gather(p, recursive, notes));
    } else if (EXTENSIONS.test(e.name)) out.push(p);
    else notes.push(`Skipping file ${p}, recognized file extensions are: [.json .yaml .yml]`);
  }
  return out;
}

/** Reads files and folders (a folder's subfolders only with `recursive`, as istioctl's `-R`). */
export function readFiles(inputs: readonly string[], opts: { recursive?: boolean; limits?: InputLimits } = {}): ReadResult {
  const limits = opts.limits ?? DEFAULT_INPUT_LIMITS;
  const r: ReadResult = { objects: [], refused: [], parseErrors: [], files: [], notes: [] };
  for (const input of inputs) {
    let files: string[];
    try {
      files = gather(input, opts.recursive === true, r.notes);
    } catch (err) {
      r.parseErrors.push(`${input}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`);
      continue;
    }
    for (const f of files) {
      let text: string;
      try {
        text = fs.readFileSync(f, 'utf8');
      } catch (err) {
        r.parseErrors.push(`${f}: cannot read file: ${(err as Error).message}`);
        continue;
      }
      r.files.push(f);
      const parsed = parseDocuments(text, f, { limits });
      r.objects.push(...parsed.objects);
      for (const e of parsed.errors) {
        if (foreignKind(e) !== undefined) continue; // a Deployment, a ConfigMap: not analyzed
        if (e.kind === undefined || e.name === undefined)
          r.parseErrors.push(
            `${f}${e.document !== undefined ? ` (document ${e.document})` : ''}: ${e.errors.map((x) => (x.path ? `${x.path}: ${x.message}` : x.message)).join('; ')}`,
          );
        else r.refused.push(e);
      }
    }
  }
  // A later file's object replaces an earlier one of the same kind, namespace and name, as
  // `kubectl apply` of the files in order would leave the cluster.
  const last = new Map<string, ConfigObject>();
  for (const o of r.objects) {
    const key = objectKey(o.kind, o.metadata.namespace, o.metadata.name);
    last.delete(key);
    last.set(key, o);
  }
  r.objects = [...last.values()];
  return r;
}

/** Lists every kind meshd reads from the cluster (each at the first version the API serves). */
export async function readCluster(conn: KubeConnection, limits: InputLimits = DEFAULT_INPUT_LIMITS): Promise<{ objects: ConfigObject[]; refused: ConfigError[] }> {
  const kc = loadKubeConfig(conn);
  const objects: ConfigObject[] = [];
  const refused: ConfigError[] = [];
  for (const k of KUBE_KINDS) {
    for (const version of k.versions) {
      let items: Array<Record<string, unknown>>;
      try {
        items = (await listAll(kc, collectionPath(k, version))).items;
      } catch (err) {
        if (err instanceof KubeHttpError && err.statusCode === 404) continue; // not served at this version (or not installed)
        throw err;
      }
      for (const raw of items) {
        // Annotations kept on every kind (meshd's source keeps only those it reads): the
        // annotation checks and `galley.istio.io/analyze-suppress` read them.
        const view = configView({ ...k, keepAnnotations: true }, version, raw);
        const m = view['metadata'] as Record<string, unknown>;
        const source = `kubernetes:${k.kind}/${typeof m['namespace'] === 'string' ? `${m['namespace']}/` : ''}${String(m['name'] ?? '')}`;
        const parsed = parseObject(view, source, limits);
        objects.push(...parsed.objects);
        refused.push(...parsed.errors);
      }
      break;
    }
  }
  return { objects, refused };
}

/** The cluster's objects with the files' objects applied over them. */
export function overlay(base: readonly ConfigObject[], files: readonly ConfigObject[]): ConfigObject[] {
  const keys = new Set(files.map((o) => objectKey(o.kind, o.metadata.namespace, o.metadata.name)));
  return [...base.filter((o) => !keys.has(objectKey(o.kind, o.metadata.namespace, o.metadata.name))), ...files];
}
