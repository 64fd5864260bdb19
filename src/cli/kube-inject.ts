/**
 * `kube-inject` (meshctl and meshd): sidecar injection offline, as `istioctl kube-inject`.
 * Reads multi-document YAML (or JSON) of Pods, Deployments, StatefulSets, DaemonSets,
 * ReplicaSets, ReplicationControllers, Jobs and CronJobs (also inside `kind: List`), injects
 * each pod template with the webhook's template, and prints the YAML. Other documents, and
 * workloads that opt out (`sidecar.istio.io/inject: "false"`, hostNetwork, already injected),
 * pass through unchanged, comments included.
 */
import * as fs from 'node:fs';
import { Command } from 'commander';
import { parse as parseYaml, parseAllDocuments, stringify } from 'yaml';
import { hasPodTemplate, injectWorkload } from '../inject';
import { INJECTION_CONFIG_KEYS, type InjectionConfig, type InjectionOptions, injectionFromMeshConfig, resolveInjectionOptions } from '../inject/options';
import { type Json, isRecord, rec, str } from '../inject/workload';

export interface KubeInjectResult {
  output: string;
  /** Workloads left as they were, and why. */
  skipped: string[];
  /** Documents that could not be read or injected. */
  errors: string[];
  injected: number;
}

function describe(obj: Json, doc: number): string {
  const meta = rec(obj['metadata']) ?? {};
  const ns = str(meta['namespace']);
  return `document ${doc}: ${str(obj['kind']) ?? 'object'} ${ns ? `${ns}/` : ''}${str(meta['name']) ?? ''}`.trimEnd();
}

/** Injects every workload in `text`; pure apart from its arguments. */
export function kubeInject(text: string, opts: InjectionOptions): KubeInjectResult {
  const res: KubeInjectResult = { output: '', skipped: [], errors: [], injected: 0 };
  const parts: string[] = [];
  const docs = parseAllDocuments(text, { merge: true });
  const list = Array.isArray(docs) ? docs : [];
  let prevEnd = 0;
  list.forEach((doc, i) => {
    // An unchanged document is copied byte for byte, with the comments and `---` before it.
    const [start, , end] = doc.range;
    const original = text.slice(prevEnd, end);
    const before = text.slice(prevEnd, start);
    prevEnd = end;
    if (doc.errors.length > 0) {
      res.errors.push(`document ${i}: YAML syntax error: ${(doc.errors[0]?.message ?? '').split('\n')[0]}`);
      parts.push(original);
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      res.errors.push(`document ${i}: cannot read document: ${(err as Error).message}`);
      parts.push(original);
      return;
    }
    if (!isRecord(value)) {
      parts.push(original);
      return;
    }
    let changed = false;
    const one = (obj: Json): Json => {
      if (!hasPodTemplate(str(obj['kind']) ?? '')) return obj;
      const r = injectWorkload(obj, opts);
      for (const e of r.errors) res.errors.push(`${describe(obj, i)}: ${e.path ? `${e.path}: ` : ''}${e.message}`);
      if (r.injected) {
        res.injected++;
        changed = true;
      } else if (r.errors.length === 0) {
        res.skipped.push(`${describe(obj, i)}: ${r.reason}`);
      }
      return r.object;
    };
    const kind = str(value['kind']) ?? '';
    let out: Json;
    if (kind.endsWith('List') && Array.isArray(value['items'])) {
      out = { ...value, items: (value['items'] as unknown[]).map((it) => (isRecord(it) ? one(it) : it)) };
    } else {
      out = one(value);
    }
    parts.push(changed ? `${before}${i > 0 ? '---\n' : ''}${stringify(out, { lineWidth: 0 })}` : original);
  });
  const rest = text.slice(prevEnd);
  if (rest.trim() !== '') parts.push(rest);
  res.output = parts.map((p) => (p === '' || p.endsWith('\n') ? p : `${p}\n`)).join('');
  return res;
}

/** An injection config file (YAML or JSON): the InjectionConfig keys, checked. */
export function readInjectionConfig(file: string): InjectionConfig {
  const v = parseYaml(fs.readFileSync(file, 'utf8')) as unknown;
  if (!isRecord(v)) throw new Error(`${file}: must be a mapping of injection settings`);
  const unknown = Object.keys(v).filter((k) => !INJECTION_CONFIG_KEYS.includes(k));
  if (unknown.length > 0) throw new Error(`${file}: unknown setting(s) ${unknown.join(', ')} (known: ${INJECTION_CONFIG_KEYS.join(', ')})`);
  return v as InjectionConfig;
}

interface KubeInjectFlags {
  filename: string;
  output?: string;
  injectConfig?: string;
  meshConfig?: string;
  image?: string;
  revision?: string;
  discoveryAddress?: string;
  plaintext?: boolean;
}

/** The `kube-inject` subcommand, for both meshctl and meshd. `stdin` is read for `-f -`. */
export function kubeInjectCommand(io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream; stdin: () => string }): Command {
  return new Command('kube-inject')
    .description('inject the Istio sidecar into Kubernetes workload YAML offline and print the result')
    .requiredOption('-f, --filename <file>', 'YAML or JSON file of Pods/Deployments/StatefulSets/DaemonSets/Jobs/...; - for stdin')
    .option('-o, --output <file>', 'write the injected YAML here instead of stdout')
    .option('--inject-config <file>', 'YAML/JSON of injection settings (image, discoveryAddress, revision, proxyConfig, resources, ...)')
    .option('--mesh-config <file>', "Istio mesh config (or the ConfigMap 'istio' holding it): defaultConfig and trustDomain")
    .option('--image <image>', 'sidecar image (default docker.io/istio/proxyv2:1.24.0)')
    .option('--revision <rev>', 'control-plane revision (istio.io/rev)')
    .option('--discovery-address <host:port>', 'xDS address for PROXY_CONFIG (default istiod.istio-system.svc:15012)')
    .option('--plaintext', 'point proxies at plaintext xDS on 15010')
    .action((f: KubeInjectFlags) => {
      let opts: InjectionOptions;
      let text: string;
      try {
        const fromMesh = f.meshConfig ? injectionFromMeshConfig(parseYaml(fs.readFileSync(f.meshConfig, 'utf8'))) : {};
        const fromFile = f.injectConfig ? readInjectionConfig(f.injectConfig) : {};
        const flags: InjectionConfig = {
          ...(f.image ? { image: f.image } : {}),
          ...(f.revision ? { revision: f.revision } : {}),
          ...(f.discoveryAddress ? { discoveryAddress: f.discoveryAddress } : {}),
          ...(f.plaintext ? { plaintext: true } : {}),
        };
        opts = resolveInjectionOptions({ ...fromMesh, ...fromFile, ...flags });
        text = f.filename === '-' ? io.stdin() : fs.readFileSync(f.filename, 'utf8');
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        io.stderr.write(`kube-inject: ${e.code === 'ENOENT' ? `${e.path ?? f.filename}: no such file or directory` : e.message}\n`);
        process.exitCode = 1;
        return;
      }
      const r = kubeInject(text, opts);
      for (const s of r.skipped) io.stderr.write(`kube-inject: not injected: ${s}\n`);
      for (const e of r.errors) io.stderr.write(`kube-inject: error: ${e}\n`);
      if (f.output) fs.writeFileSync(f.output, r.output);
      else io.stdout.write(r.output);
      process.exitCode = r.errors.length > 0 ? 1 : 0;
    });
}
