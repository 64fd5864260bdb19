/**
 * `meshd validate FILE...` / `meshctl validate`: the folder source's parse and validation,
 * offline. Errors fail the run; Istio's warnings are printed and do not. As istioctl does, kinds
 * that are neither Istio's nor ones meshd reads (a Deployment, a ConfigMap, a Gateway API
 * Gateway) are skipped with a note instead of failing the run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_INPUT_LIMITS, type InputLimits } from '../config/limits';
import { type ConfigError, type FieldError, KNOWN_KINDS, type Kind } from '../model/objects';
import { checkObject } from '../model/validate';
import { boundFieldErrors, fileTooLarge, truncate } from '../sources/bounds';
import { parseDocuments } from '../sources/parse';

/** A file, or the YAML/JSON files under a folder (recursively). */
export function expand(p: string): string[] {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return [p];
  return fs
    .readdirSync(p, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.'))
    .flatMap((e) => (e.isDirectory() ? expand(path.join(p, e.name)) : /\.(ya?ml|json)$/i.test(e.name) ? [path.join(p, e.name)] : []));
}

/**
 * A document left out only for its kind or apiVersion, whose kind is neither an Istio kind nor
 * one meshd reads: `group/Kind` to name it, else undefined. (The apiVersion comes with the error:
 * reading the file again per such document made a file of 10,000 Deployments take hours.)
 */
export function foreignKind(e: ConfigError): string | undefined {
  if (e.kind === undefined || e.errors.length === 0) return undefined;
  const headOnly = e.errors.every((fe) => /(^|\.)(kind|apiVersion)$/.test(fe.path));
  if (!headOnly) return undefined;
  const apiVersion = e.apiVersion;
  if (apiVersion === undefined) return undefined;
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  if (group.endsWith('istio.io')) return undefined;
  const known = Object.prototype.hasOwnProperty.call(KNOWN_KINDS, e.kind) ? KNOWN_KINDS[e.kind as Kind] : undefined;
  if (known !== undefined && known.group === group) return undefined;
  return `${apiVersion} ${e.kind}`;
}

const describe = (fe: FieldError): string => `${fe.path ? `${fe.path}: ` : ''}${fe.message}`;

/** Reads each file as the folder source does, under the same limits; never throws on bad input. */
export function validateFiles(inputs: readonly string[], limits: InputLimits = DEFAULT_INPUT_LIMITS): { output: string; ok: boolean } {
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
    // Every line bounded: no input can make one longer than a log line.
    const say = (line: string): void => void lines.push(truncate(line, limits.maxLogLineLength));
    for (const f of files) {
      let text: string;
      try {
        const size = fs.statSync(f).size;
        if (size > limits.maxFileBytes) {
          say(`${f}: file: ${fileTooLarge(size, limits)}`);
          ok = false;
          continue;
        }
        text = fs.readFileSync(f, 'utf8');
      } catch (err) {
        say(`${f}: cannot read file: ${(err as Error).message}`);
        ok = false;
        continue;
      }
      const parsed = parseDocuments(text, f, { limits });
      const who = (e: { kind?: string; namespace?: string; name?: string; document?: number }): string =>
        e.kind
          ? truncate(`${e.kind} ${e.namespace ? `${e.namespace}/` : ''}${e.name ?? ''}`, limits.maxMessageLength)
          : e.document !== undefined
            ? `document ${e.document}`
            : 'file';
      for (const e of parsed.errors) {
        const foreign = foreignKind(e);
        if (foreign !== undefined) {
          skipped++;
          say(`${e.source}: ${who(e)}: skipped: ${foreign} is not an Istio kind (validate checks Istio's kinds and the Kubernetes kinds meshd reads)`);
          continue;
        }
        ok = false;
        for (const fe of boundFieldErrors(e.errors, limits)) say(`${e.source}: ${who(e)}: ${describe(fe)}`);
      }
      for (const o of parsed.objects) {
        let result;
        try {
          result = checkObject(o, limits.maxErrorsPerObject);
        } catch (err) {
          result = { errors: [{ path: '', message: `internal validation error: ${(err as Error).message}` }], warnings: [] };
        }
        const obj = who({ kind: o.kind, namespace: o.metadata.namespace, name: o.metadata.name });
        for (const w of result.warnings) say(`${o.origin.source}: ${obj}: warning: ${describe(w)}`);
        warned += result.warnings.length;
        if (result.errors.length === 0) {
          valid++;
          continue;
        }
        ok = false;
        for (const fe of boundFieldErrors(result.errors, limits)) say(`${o.origin.source}: ${obj}: ${describe(fe)}`);
      }
    }
  }
  const extra = [skipped > 0 ? `${skipped} skipped (not Istio)` : '', warned > 0 ? `${warned} warning(s)` : ''].filter((x) => x !== '');
  const tail = extra.length > 0 ? `; ${extra.join(', ')}` : '';
  lines.push(ok ? `${valid} object(s) valid${tail}` : `invalid config found (${valid} valid object(s)${tail})`);
  return { output: lines.join('\n') + '\n', ok };
}
