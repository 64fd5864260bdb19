/**
 * `meshctl analyze`: istioctl's analyze over meshd's analyzers (src/analyze), with its flags,
 * its output (`Error [IST0101] (VirtualService default/x file.yaml:12) Referenced host not
 * found: "foo"`) and its exit codes: 79 when a message reaches --failure-threshold, 65 when a
 * file could not be parsed (and nothing reached the threshold), 64 for bad flags. As istioctl,
 * the exit code reflects messages only for the log format.
 *
 * Objects come from files and folders, from the cluster with `-k` (the kubeconfig's current
 * context), or both (the files applied over the cluster). With no file and no `-k`, the
 * cluster is read, as `istioctl analyze` with no arguments does.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import {
  type Level,
  type Message,
  DEFAULT_ANALYSIS_OPTIONS,
  ISTIO_CODES,
  LEVEL_ORDER,
  allAnalyzers,
  analyze,
  atLeast,
  compareMessages,
  formatMessage,
  parseLevel,
  unstructured,
} from '../analyze';
import { LineFinder } from '../analyze/lines';
import { overlay, readCluster, readFiles } from '../analyze/read';
import { DEFAULT_INPUT_LIMITS, type InputLimits } from '../config/limits';
import type { ConfigError, ConfigObject } from '../model/objects';
import { truncate } from '../sources/bounds';
import { printValue } from './tables';
import type { CliIo } from './xds-commands';

export const EXIT_INCORRECT_USAGE = 64;
export const EXIT_DATA_ERROR = 65;
export const EXIT_ANALYZER_FOUND_ISSUES = 79;

interface AnalyzeFlags {
  filename: string[];
  useKube?: boolean;
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  allNamespaces?: boolean;
  istioNamespace: string;
  output: string;
  failureThreshold: string;
  outputThreshold: string;
  listAnalyzers?: boolean;
  suppress: string[];
  recursive?: boolean;
  ignoreUnknown?: boolean;
  verbose?: boolean;
}

/** `Kind name.namespace` or `Kind namespace/name`, `*` matching any run of characters. */
function suppressed(m: Message, rules: ReadonlyArray<{ code: string; resource: RegExp }>): boolean {
  const r = m.resource;
  if (!r) return false;
  const names = [`${r.kind} ${r.name}${r.namespace ? `.${r.namespace}` : ''}`, `${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.name}`];
  return rules.some((s) => s.code === m.type.code && names.some((n) => s.resource.test(n)));
}

function glob(s: string): RegExp {
  return new RegExp(
    `^${s
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
}

/** The namespace a message's resource is in (a Namespace is in itself); '' when cluster-scoped. */
function namespaceOf(m: Message): string | undefined {
  const r = m.resource;
  if (!r) return undefined;
  return r.kind === 'Namespace' ? r.name : r.namespace;
}

export function analyzersText(): string {
  return `Available analyzers:\n${allAnalyzers()
    .map((a) => `* ${a.name}:\n    ${a.description}\n`)
    .join('')}`;
}

export interface AnalyzeRun {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** One run, with its inputs already read: shared by the command and tests. */
export function runAnalysis(
  input: { objects: readonly ConfigObject[]; refused: readonly ConfigError[]; parseErrors: readonly string[]; files: readonly string[] },
  o: {
    namespace?: string;
    allNamespaces?: boolean;
    istioNamespace: string;
    output: 'log' | 'json' | 'yaml';
    failure: Level;
    outputLevel: Level;
    suppress: ReadonlyArray<{ code: string; resource: RegExp }>;
    ignoreUnknown?: boolean;
  },
  readText: (file: string) => string | undefined,
  limits: InputLimits = DEFAULT_INPUT_LIMITS,
): AnalyzeRun {
  const result = analyze({ objects: input.objects, refused: input.refused }, { ...DEFAULT_ANALYSIS_OPTIONS, istioNamespace: o.istioNamespace });
  const ns = o.allNamespaces ? undefined : (o.namespace ?? 'default');
  const kept = result.messages
    .filter((m) => !suppressed(m, o.suppress))
    .filter((m) => {
      if (ns === undefined) return true;
      const mns = namespaceOf(m);
      return mns === undefined || mns === '' || mns === ns;
    });
  new LineFinder(readText).annotate(kept);
  kept.sort(compareMessages);
  const shown = kept.filter((m) => atLeast(m.type.level, o.outputLevel));
  let stderr = '';
  for (const e of input.parseErrors) stderr += `Error(s) adding files: ${truncate(e, limits.maxLogLineLength)}\n`;
  // Every line and field bounded: a megabyte name in the input never becomes megabytes of output.
  const bound = (v: string): string => truncate(v, limits.maxMessageLength);
  const stdout =
    o.output === 'log'
      ? `${shown.map((m) => truncate(formatMessage(m), limits.maxLogLineLength)).join('\n')}\n`
      : printValue(
          shown.map((m) => Object.fromEntries(Object.entries(unstructured(m)).map(([k, v]) => [k, bound(v)]))),
          o.output,
        );
  const target = ns === undefined ? 'all namespaces' : `namespace: ${ns}`;
  if (shown.length === 0) {
    if (input.parseErrors.length === 0) stderr += `\u2714 No validation issues found when analyzing ${input.files.length > 0 ? input.files.join('\n') : target}.\n`;
    else
      stderr += `No validation issues found when analyzing ${target} (but ${input.parseErrors.length} ${input.parseErrors.length === 1 ? 'file' : 'files'} could not be parsed).\n`;
  }
  let exitCode = 0;
  if (o.output === 'log') {
    if (kept.some((m) => atLeast(m.type.level, o.failure))) {
      exitCode = EXIT_ANALYZER_FOUND_ISSUES;
      stderr += `Error: Analyzers found issues when analyzing ${target}.\nSee https://istio.io/v1/docs/reference/config/analysis for more information about causes and resolutions.\n`;
    } else if (input.parseErrors.length > 0 && !o.ignoreUnknown) {
      exitCode = EXIT_DATA_ERROR;
      stderr += "Error: Some files couldn't be parsed.\n";
    }
  }
  return { stdout, stderr, exitCode };
}

function kubeconfigPath(flag: string | undefined): string {
  return flag ?? process.env['KUBECONFIG']?.split(path.delimiter)[0] ?? path.join(os.homedir(), '.kube', 'config');
}

/**
 * `-k`, `-k=false`, `--use-kube=false`, `--use-kube true`: the flag takes an optional value, so
 * `-k FILE` would hand it FILE; such a value is kept as an input instead (into `spill`).
 */
export function useKubeValue(spill: string[]): (v: string) => boolean {
  return (v: string): boolean => {
    const b = v.replace(/^=/, '').toLowerCase();
    if (b === 'false' || b === '0') return false;
    if (b === 'true' || b === '1' || b === '') return true;
    spill.push(v);
    return true;
  };
}

export function analyzeCommand(io: CliIo): Command {
  const levels = LEVEL_ORDER.join(', ');
  const spilled: string[] = [];
  return new Command('analyze')
    .description('Analyze Istio configuration and print validation messages (files, folders, or the cluster with -k)')
    .argument('[files...]', 'files or folders to analyze (- is not supported)')
    .option('-f, --filename <file>', 'a file or folder to analyze (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('-k, --use-kube [bool]', 'read the live cluster (the default when no file is given); --use-kube=false for files only', useKubeValue(spilled))
    .option('--kubeconfig <file>', 'kubeconfig to reach the cluster with (default $KUBECONFIG, ~/.kube/config)')
    .option('-n, --namespace <ns>', 'namespace to report on', undefined)
    .option('-A, --all-namespaces', 'report on every namespace')
    .option('-i, --istioNamespace <ns>', "the control plane's namespace", 'istio-system')
    .option('-o, --output <format>', 'output format: log, json or yaml', 'log')
    .option('--failure-threshold <level>', `the severity level at which to exit non-zero: ${levels}`, 'Error')
    .option('--output-threshold <level>', `the severity level at which to print messages: ${levels}`, 'Info')
    .option('-L, --list-analyzers', 'list the analyzers and exit')
    .option(
      '-S, --suppress <code=resource>',
      'suppress a code on a resource, e.g. "IST0102=Namespace default" (repeatable, * matches any text)',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option('-R, --recursive', "read folders' subfolders too")
    .option('--ignore-unknown', 'do not fail on files that cannot be parsed')
    .option('-v, --verbose', 'list the analyzers that ran (stderr)')
    .action(async (files: string[], o: AnalyzeFlags) => {
      const usage = (msg: string): void => {
        io.stderr.write(`Error: ${msg}\n`);
        process.exitCode = EXIT_INCORRECT_USAGE;
      };
      const output = o.output.toLowerCase();
      if (output !== 'log' && output !== 'json' && output !== 'yaml') return usage(`${o.output} not a valid option for format. See meshctl analyze --help`);
      const failure = parseLevel(o.failureThreshold);
      const outputLevel = parseLevel(o.outputThreshold);
      if (!failure) return usage(`--failure-threshold: ${JSON.stringify(o.failureThreshold)} is not one of ${levels}`);
      if (!outputLevel) return usage(`--output-threshold: ${JSON.stringify(o.outputThreshold)} is not one of ${levels}`);
      if (o.listAnalyzers) {
        io.stdout.write(analyzersText());
        return;
      }
      const suppress: Array<{ code: string; resource: RegExp }> = [];
      for (const s of o.suppress) {
        const parts = s.split('=');
        if (parts.length !== 2) return usage(`${s} is not a valid suppression value. See meshctl analyze --help`);
        const [code = '', resource = ''] = parts;
        if (!ISTIO_CODES.has(code)) io.stderr.write(`Warning: Supplied message code '${code}' is an unknown message code and will not have any effect.\n`);
        suppress.push({ code, resource: glob(resource) });
      }
      const inputs = [...o.filename, ...spilled, ...files];
      const useKube = o.useKube ?? inputs.length === 0;
      const fromFiles = readFiles(inputs, { recursive: o.recursive === true });
      for (const n of fromFiles.notes) io.stderr.write(`${n}\n`);
      let objects: ConfigObject[] = fromFiles.objects;
      let refused: ConfigError[] = fromFiles.refused;
      if (useKube) {
        try {
          const cluster = await readCluster({ kubeconfig: kubeconfigPath(o.kubeconfig) });
          // As istioctl: a namespace asked for by name that the cluster does not have ends the run.
          if (o.namespace !== undefined && !o.allNamespaces && !cluster.objects.some((x) => x.kind === 'Namespace' && x.metadata.name === o.namespace)) {
            io.stderr.write(`namespace ${JSON.stringify(o.namespace)} not found\n`);
            return;
          }
          objects = overlay(cluster.objects, fromFiles.objects);
          refused = [...cluster.refused, ...fromFiles.refused];
        } catch (err) {
          io.stderr.write(`Error: reading the cluster: ${(err as Error).message}\n`);
          process.exitCode = 1;
          return;
        }
      }
      const run = runAnalysis(
        { objects, refused, parseErrors: fromFiles.parseErrors, files: useKube ? [] : fromFiles.files },
        { namespace: o.namespace, allNamespaces: o.allNamespaces, istioNamespace: o.istioNamespace, output, failure, outputLevel, suppress, ignoreUnknown: o.ignoreUnknown },
        (file) => {
          try {
            // Lines only for files the reader accepted: a refused file is not read again.
            if (fs.statSync(file).size > DEFAULT_INPUT_LIMITS.maxFileBytes) return undefined;
            return fs.readFileSync(file, 'utf8');
          } catch {
            return undefined;
          }
        },
      );
      if (o.verbose)
        io.stderr.write(
          `Executed analyzers:\n${allAnalyzers()
            .map((a) => `\t ${a.name}\n`)
            .join('')}\n`,
        );
      io.stdout.write(run.stdout);
      io.stderr.write(run.stderr);
      process.exitCode = run.exitCode;
    });
}
