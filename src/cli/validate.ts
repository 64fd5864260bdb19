/** `meshd validate FILE...`: the folder source's parse + validation, offline. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadText } from '../sources/file-source';

function expand(p: string): string[] {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return [p];
  return fs
    .readdirSync(p, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.'))
    .flatMap((e) => (e.isDirectory() ? expand(path.join(p, e.name)) : /\.(ya?ml|json)$/i.test(e.name) ? [path.join(p, e.name)] : []));
}

export function validateFiles(inputs: readonly string[]): { output: string; ok: boolean } {
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
      const r = loadText(fs.readFileSync(f, 'utf8'), f);
      valid += r.objects.length;
      for (const e of r.errors) {
        ok = false;
        const obj = e.kind ? `${e.kind} ${e.namespace ? `${e.namespace}/` : ''}${e.name ?? ''}` : `document ${e.document ?? 0}`;
        for (const fe of e.errors) lines.push(`${e.source}: ${obj}: ${fe.path ? `${fe.path}: ` : ''}${fe.message}`);
      }
    }
  }
  lines.push(ok ? `${valid} object(s) valid` : `invalid config found (${valid} valid object(s))`);
  return { output: lines.join('\n') + '\n', ok };
}
