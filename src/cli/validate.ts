/** `meshd validate FILE...`: the folder source's parse + validation, offline. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_INPUT_LIMITS, type InputLimits } from '../config/limits';
import { fileTooLarge, truncate } from '../sources/bounds';
import { loadText } from '../sources/load';

function expand(p: string): string[] {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return [p];
  return fs
    .readdirSync(p, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.'))
    .flatMap((e) => (e.isDirectory() ? expand(path.join(p, e.name)) : /\.(ya?ml|json)$/i.test(e.name) ? [path.join(p, e.name)] : []));
}

/** Reads each file as the folder source does, under the same limits; never throws on bad input. */
export function validateFiles(inputs: readonly string[], limits: InputLimits = DEFAULT_INPUT_LIMITS): { output: string; ok: boolean } {
  const lines: string[] = [];
  let ok = true;
  let valid = 0;
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
      let r: ReturnType<typeof loadText>;
      try {
        const size = fs.statSync(f).size;
        if (size > limits.maxFileBytes) {
          lines.push(`${f}: file: ${fileTooLarge(size, limits)}`);
          ok = false;
          continue;
        }
        r = loadText(fs.readFileSync(f, 'utf8'), f, limits);
      } catch (err) {
        lines.push(`${f}: cannot read file: ${(err as Error).message}`);
        ok = false;
        continue;
      }
      valid += r.objects.length;
      for (const e of r.errors) {
        ok = false;
        const obj = e.kind ? `${e.kind} ${e.namespace ? `${e.namespace}/` : ''}${e.name ?? ''}` : e.document !== undefined ? `document ${e.document}` : 'file';
        for (const fe of e.errors) lines.push(truncate(`${e.source}: ${obj}: ${fe.path ? `${fe.path}: ` : ''}${fe.message}`, limits.maxLogLineLength));
      }
    }
  }
  lines.push(ok ? `${valid} object(s) valid` : `invalid config found (${valid} valid object(s))`);
  return { output: lines.join('\n') + '\n', ok };
}
