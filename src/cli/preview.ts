/**
 * `meshctl x preview -f CHANGE.yaml [--delete]`: asks a running meshd (its debug port) what the
 * change would do — per class of connected proxies, which resources a push would add, remove or
 * change, and how many proxies would receive one — before anything is applied.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { type PreviewReport, describePreview } from '../debug/preview';
import { parseOutput, printValue } from './tables';

export interface PreviewIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  stdin: () => string;
}

/** Every YAML/JSON file named (a folder: its files, sorted), joined as one multi-document text. */
function readChange(inputs: readonly string[], stdin: () => string): string {
  const texts: string[] = [];
  for (const input of inputs) {
    if (input === '-') {
      texts.push(stdin());
      continue;
    }
    const st = fs.statSync(input);
    const files = st.isDirectory()
      ? fs
          .readdirSync(input)
          .filter((f) => /\.(ya?ml|json)$/.test(f))
          .sort()
          .map((f) => path.join(input, f))
      : [input];
    for (const f of files) texts.push(fs.readFileSync(f, 'utf8'));
  }
  // JSON is YAML: documents of either kind join with a document separator.
  return texts.map((t) => t.replace(/\n?$/, '\n')).join('---\n');
}

export function previewCommand(io: PreviewIo): Command {
  return new Command('preview')
    .description("what a change would do to each connected proxy's config, before it is applied")
    .option('-f, --filename <file>', "the change: a file, a folder, or '-' for stdin (repeatable)", (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--delete', "preview deleting the file's objects instead of applying them")
    .option('--meshd-address <host:port>', "meshd's debug port", process.env['MESHD_DEBUG_ADDRESS'] ?? 'localhost:8080')
    .option('-o, --output <format>', 'output format: text, json, yaml', 'text')
    .option('--timeout <seconds>', 'how long to wait for the answer', '60')
    .action(async (o: { filename: string[]; delete?: boolean; meshdAddress: string; output: string; timeout: string }) => {
      try {
        const format = parseOutput(o.output, ['text', 'json', 'yaml']);
        if (o.filename.length === 0) throw new Error('give the change with -f FILE (or -f - for stdin)');
        const body = readChange(o.filename, io.stdin);
        const url = `http://${o.meshdAddress}/debug/preview?mode=${o.delete ? 'delete' : 'apply'}`;
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/yaml' }, body, signal: AbortSignal.timeout(Number(o.timeout) * 1000) });
        const text = await res.text();
        if (!res.ok) throw new Error(`meshd answered ${res.status}: ${text.slice(0, 500)}`);
        const report = JSON.parse(text) as PreviewReport;
        io.stdout.write(format === 'text' ? describePreview(report) : printValue(report, format as 'json' | 'yaml'));
        // As `meshctl validate`: a change meshd would refuse exits 1.
        if (report.changeErrors.length > 0) process.exitCode = 1;
      } catch (err) {
        io.stderr.write(`Error: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
