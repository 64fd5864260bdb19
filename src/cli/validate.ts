/**
 * `meshd validate FILE...` / `meshctl validate`: the folder source's parse and validation,
 * offline. Errors fail the run; Istio's warnings are printed and do not. As istioctl does, kinds
 * that are neither Istio's nor ones meshd reads (a Deployment, a ConfigMap, a Gateway API
 * Gateway) are skipped with a note instead of failing the run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type ConfigError, type FieldError, KNOWN_KINDS, type Kind } from '../model/objects';
import { checkObject } from '../model/validate';
import { parseDocuments } from '../sources/parse';
import { parseYamlDocuments } from '../sources/yaml-flow';

function expand(p: string): string[] {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return [p];
  return fs
    .readdirSync(p, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.'))
    .flatMap((e) => (e.isDirectory() ? expand(path.join(p, e.name)) : /\.(ya?ml|json)$/i.test(e.name) ? [path.join(p, e.name)] : []));
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The apiVersion of document `document` (item `item` of a list) of a file's text. */
function apiVersionAt(text: string, document: number | undefined, item: number | undefined): string | undefined {
  if (document === undefined) return undefined;
  const doc = parseYamlDocuments(text)[document];
  let v: unknown;
  try {
    v = doc?.toJS({ maxAliasCount: 100 });
  } catch {
    return undefined;
  }
  if (item !== undefined) v = isRecord(v) && Array.isArray(v['items']) ? (v['items'] as unknown[])[item] : undefined;
  return isRecord(v) && typeof v['apiVersion'] === 'string' ? v['apiVersion'] : undefined;
}

/**
 * A document left out only for its kind or apiVersion, whose kind is neither an Istio kind nor
 * one meshd reads: `group/Kind` to name it, else undefined.
 */
function foreignKind(e: ConfigError, text: string): string | undefined {
  if (e.kind === undefined || e.errors.length === 0) return undefined;
  const headOnly = e.errors.every((fe) => /(^|\.)(kind|apiVersion)$/.test(fe.path));
  if (!headOnly) return undefined;
  const apiVersion = apiVersionAt(text, e.document, e.item);
  if (apiVersion === undefined) return undefined;
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  if (group.endsWith('istio.io')) return undefined;
  const known = Object.prototype.hasOwnProperty.call(KNOWN_KINDS, e.kind) ? KNOWN_KINDS[e.kind as Kind] : undefined;
  if (known !== undefined && known.group === group) return undefined;
  return `${apiVersion} ${e.kind}`;
}

const describe = (fe: FieldError): string => `${fe.path ? `${fe.path}: ` : ''}${fe.message}`;

export function validateFiles(inputs: readonly string[]): { output: string; ok: boolean } {
  const lines: string[] = [];
  let ok = true;
  let valid = 0;
  let skipped = 0;
  let warned = 0;
  for (const input of inputs) {
    let files: string[];
    try {
      files = expand(input);
    } catch (err) {
      lines.push(`${input}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`);
      ok = false;
      continue;
    }
    for (const f of files) {
      const text = fs.readFileSync(f, 'utf8');
      const parsed = parseDocuments(text, f);
      const who = (e: { kind?: string; namespace?: string; name?: string; document?: number }): string =>
        e.kind ? `${e.kind} ${e.namespace ? `${e.namespace}/` : ''}${e.name ?? ''}` : `document ${e.document ?? 0}`;
      for (const e of parsed.errors) {
        const foreign = foreignKind(e, text);
        if (foreign !== undefined) {
          skipped++;
          lines.push(`${e.source}: ${who(e)}: skipped: ${foreign} is not an Istio kind (validate checks Istio's kinds and the Kubernetes kinds meshd reads)`);
          continue;
        }
        ok = false;
        for (const fe of e.errors) lines.push(`${e.source}: ${who(e)}: ${describe(fe)}`);
      }
      for (const o of parsed.objects) {
        let result;
        try {
          result = checkObject(o);
        } catch (err) {
          result = { errors: [{ path: '', message: `internal validation error: ${(err as Error).message}` }], warnings: [] };
        }
        const obj = who({ kind: o.kind, namespace: o.metadata.namespace, name: o.metadata.name });
        for (const w of result.warnings) lines.push(`${o.origin.source}: ${obj}: warning: ${describe(w)}`);
        warned += result.warnings.length;
        if (result.errors.length === 0) {
          valid++;
          continue;
        }
        ok = false;
        for (const fe of result.errors) lines.push(`${o.origin.source}: ${obj}: ${describe(fe)}`);
      }
    }
  }
  const extra = [skipped > 0 ? `${skipped} skipped (not Istio)` : '', warned > 0 ? `${warned} warning(s)` : ''].filter((x) => x !== '');
  const tail = extra.length > 0 ? `; ${extra.join(', ')}` : '';
  lines.push(ok ? `${valid} object(s) valid${tail}` : `invalid config found (${valid} valid object(s)${tail})`);
  return { output: lines.join('\n') + '\n', ok };
}
