/**
 * ProxyConfig (networking.istio.io/v1beta1) and the effective proxy config of one workload, as
 * istiod's pilot/pkg/model/proxy_config.go merges it, lowest precedence first:
 *
 *   mesh `defaultConfig` < root-namespace ProxyConfig (no selector) < the workload's namespace's
 *   ProxyConfig (no selector) < pod annotation `proxy.istio.io/config` < the first ProxyConfig
 *   of the workload's namespace whose selector matches its labels.
 *
 * Within a namespace the first ProxyConfig wins (oldest first by creationTimestamp, then name);
 * several are never merged. A ProxyConfig contributes `concurrency`, `environmentVariables` (as
 * `proxyMetadata`) and `image`. Layers merge as protobuf's proto.Merge: nested messages and maps
 * field by field, lists appended, scalars replaced unless they are proto3 zero values; the
 * wrapper fields (`concurrency`, `holdApplicationUntilProxyStarts`) replace even when zero.
 * Pure: no I/O.
 */
import { parse as parseYaml } from 'yaml';
import type { ConfigObject, FieldError, ObjectMeta } from './objects';

export interface ProxyConfigSpec {
  selector?: { matchLabels?: Readonly<Record<string, string>> };
  concurrency?: number | null;
  environmentVariables?: Readonly<Record<string, string>>;
  image?: { imageType?: string };
}

export interface ProxyConfigEntry {
  meta: ObjectMeta;
  spec: ProxyConfigSpec;
}

/** A proxy config as JSON (MeshConfig.ProxyConfig field names). */
export type ProxyConfigJson = Readonly<Record<string, unknown>>;

/** Who the effective config is for. */
export interface ProxyConfigTarget {
  namespace: string;
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
}

export const PROXY_CONFIG_ANNOTATION = 'proxy.istio.io/config';

function creationTime(o: ConfigObject): string {
  const meta = o.body['metadata'];
  const t = meta && typeof meta === 'object' ? (meta as Record<string, unknown>)['creationTimestamp'] : undefined;
  // Objects without a time (files, the Kubernetes source's reduced view) sort after those with one, then by name.
  return typeof t === 'string' ? t : '~';
}

/** ProxyConfigs by namespace, oldest first, then by name (istiod's sortConfigByCreationTime). */
export function buildProxyConfigs(objects: readonly ConfigObject[]): Map<string, ProxyConfigEntry[]> {
  const ordered = [...objects].sort((a, b) => {
    const ta = creationTime(a);
    const tb = creationTime(b);
    if (ta !== tb) return ta < tb ? -1 : 1;
    return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
  });
  const out = new Map<string, ProxyConfigEntry[]>();
  for (const o of ordered) {
    let l = out.get(o.metadata.namespace);
    if (!l) out.set(o.metadata.namespace, (l = []));
    l.push({ meta: o.metadata, spec: (o.body['spec'] ?? {}) as ProxyConfigSpec });
  }
  return out;
}

/** toMeshConfigProxyConfig: the fields a ProxyConfig sets, as MeshConfig.ProxyConfig JSON. */
export function asProxyConfigJson(spec: ProxyConfigSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (spec.concurrency !== undefined && spec.concurrency !== null) out['concurrency'] = spec.concurrency;
  if (spec.environmentVariables !== undefined) out['proxyMetadata'] = { ...spec.environmentVariables };
  if (spec.image !== undefined) out['image'] = { ...spec.image };
  return out;
}

/** The namespace's first ProxyConfig without a selector (mergedNamespaceConfig). */
function namespaceConfig(list: readonly ProxyConfigEntry[] | undefined): ProxyConfigJson | undefined {
  const pc = list?.find((p) => p.spec.selector === undefined || p.spec.selector === null);
  return pc ? asProxyConfigJson(pc.spec) : undefined;
}

/** The namespace's first ProxyConfig whose non-empty selector the labels include (mergedWorkloadConfig). */
function workloadConfig(list: readonly ProxyConfigEntry[] | undefined, labels: Readonly<Record<string, string>>): ProxyConfigJson | undefined {
  const pc = list?.find((p) => {
    const want = Object.entries(p.spec.selector?.matchLabels ?? {});
    return want.length > 0 && want.every(([k, v]) => labels[k] === v);
  });
  return pc ? asProxyConfigJson(pc.spec) : undefined;
}

/** Wrapper-typed fields of MeshConfig.ProxyConfig: present means set, even at zero. */
const WRAPPERS = new Set(['concurrency', 'holdApplicationUntilProxyStarts']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isZero(v: unknown): boolean {
  return v === 0 || v === false || v === '' || v === null;
}

/** proto.Merge(dst, src) on JSON: a new object, neither input changed. */
function protoMerge(dst: Readonly<Record<string, unknown>>, src: Readonly<Record<string, unknown>>, top: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { ...dst };
  for (const [k, v] of Object.entries(src)) {
    if (v === undefined) continue;
    const prev = out[k];
    if (isRecord(v)) out[k] = protoMerge(isRecord(prev) ? prev : {}, v, false);
    else if (Array.isArray(v)) out[k] = [...(Array.isArray(prev) ? prev : []), ...v];
    else if (!isZero(v) || (top && WRAPPERS.has(k) && v !== null)) out[k] = v;
  }
  return out;
}

/** mergeWithPrecedence: earlier layers win; missing layers are skipped. */
export function mergeWithPrecedence(...layers: ReadonlyArray<ProxyConfigJson | undefined>): Record<string, unknown> {
  let merged: Record<string, unknown> = {};
  for (let i = layers.length - 1; i >= 0; i--) {
    const l = layers[i];
    if (l !== undefined) merged = protoMerge(merged, l, true);
  }
  return merged;
}

/** The `proxy.istio.io/config` annotation's proxy config (YAML or JSON), or why it is unusable. */
export function proxyConfigFromAnnotation(text: string): { config?: ProxyConfigJson; error?: string } {
  let v: unknown;
  try {
    v = parseYaml(text) as unknown;
  } catch (err) {
    return { error: `failed to convert to apply proxy config: ${(err as Error).message.split('\n')[0] ?? ''}` };
  }
  if (v === null || v === undefined) return { config: {} };
  if (!isRecord(v)) return { error: 'failed to convert to apply proxy config: must be a mapping of ProxyConfig fields' };
  const c = v['concurrency'];
  if (c !== undefined && c !== null && (typeof c !== 'number' || !Number.isInteger(c) || c < 0)) {
    return { error: `concurrency must be a non-negative integer (got ${JSON.stringify(c)})` };
  }
  const md = v['proxyMetadata'];
  if (md !== undefined && (!isRecord(md) || Object.values(md).some((x) => typeof x !== 'string'))) return { error: 'proxyMetadata must be a mapping of strings to strings' };
  return { config: v };
}

export interface EffectiveProxyConfigInput {
  /** MeshConfig `defaultConfig` (istiod's DefaultProxyConfig already under it). */
  meshDefault: ProxyConfigJson;
  rootNamespace: string;
  /** ProxyConfigs by namespace, in precedence order (buildProxyConfigs). */
  proxyConfigs: ReadonlyMap<string, readonly ProxyConfigEntry[]>;
  target: ProxyConfigTarget;
}

export interface EffectiveProxyConfig {
  config: ProxyConfigJson;
  /** An unusable `proxy.istio.io/config` annotation (left out of the merge, as istiod does). */
  errors: FieldError[];
}

/**
 * EffectiveProxyConfig for one workload. When nothing applies (no ProxyConfig, no annotation)
 * the mesh default comes back as the same object, so callers can tell nothing changed.
 */
export function effectiveProxyConfig(input: EffectiveProxyConfigInput): EffectiveProxyConfig {
  const { target, rootNamespace, proxyConfigs } = input;
  const root = rootNamespace !== '' ? namespaceConfig(proxyConfigs.get(rootNamespace)) : undefined;
  const ns = target.namespace !== rootNamespace ? namespaceConfig(proxyConfigs.get(target.namespace)) : undefined;
  const workload = workloadConfig(proxyConfigs.get(target.namespace), target.labels);
  const errors: FieldError[] = [];
  let annotation: ProxyConfigJson | undefined;
  const text = target.annotations[PROXY_CONFIG_ANNOTATION];
  if (text !== undefined) {
    const r = proxyConfigFromAnnotation(text);
    if (r.error !== undefined) errors.push({ path: `metadata.annotations[${JSON.stringify(PROXY_CONFIG_ANNOTATION)}]`, message: r.error });
    annotation = r.config;
  }
  if (root === undefined && ns === undefined && workload === undefined && annotation === undefined) return { config: input.meshDefault, errors };
  // The annotation ranks under the workload's ProxyConfig and over the namespace's.
  return { config: mergeWithPrecedence(workload, annotation, ns, root, input.meshDefault), errors };
}

/** `-distroless` / `-debug` variants of an image tag (istiod's updateImageTypeIfPresent). */
const VARIANTS = ['distroless', 'debug'];

/**
 * The proxy image for an image type (`default`, `distroless`, `debug`): the tag's variant suffix
 * replaced, as istiod's ProxyImage does; digests and untagged images are left as they are.
 */
export function imageWithType(image: string, imageType: string | undefined): string {
  if (imageType === undefined || imageType === '') return image;
  if (image.includes('@')) return image;
  const slash = image.lastIndexOf('/');
  const colon = image.indexOf(':', slash + 1);
  if (colon < 0) return image;
  let tag = image.slice(colon + 1);
  for (const v of VARIANTS) if (tag.endsWith(`-${v}`)) tag = tag.slice(0, -(v.length + 1));
  return `${image.slice(0, colon + 1)}${imageType === 'default' ? tag : `${tag}-${imageType}`}`;
}
