/**
 * Injection into one pod template (`{metadata, spec}`): decide, render the template, and merge
 * it into the pod as istiod does: `istio-init` first among the init containers, `istio-proxy`
 * last among the containers (a container of the same name already in the pod overrides the
 * template field by field), volumes added unless the pod has one by that name, labels and
 * annotations added unless set, and `sidecar.istio.io/status` recording what was injected.
 * Pure: the input is never modified.
 */
import type { FieldError } from '../model/objects';
import { type ProxyConfigEntry, effectiveProxyConfig } from '../model/proxy-config';
import { decideInjection, type InjectorRole, type Labels, REVISION_LABEL, STATUS_ANNOTATION } from './decide';
import type { InjectionOptions } from './options';
import { sidecarTemplate } from './template';
import { type Json, type WorkloadMeta, isRecord, rec, records, str, stringMap } from './workload';

export interface InjectContext {
  namespace: string;
  workload: WorkloadMeta;
  opts: InjectionOptions;
  /** The namespace's labels; undefined when unknown (the namespace then counts as selected). */
  namespaceLabels?: Labels;
  /** ProxyConfig objects in effect, merged over the mesh default as istiod does (none: the annotation only). */
  proxyConfigs?: ProxyConfigSet;
  /** The revision tags that point at this injector and whether it is the default revision (default: none; default only for revision `default`). */
  role?: Omit<InjectorRole, 'revision'>;
}

/** The ProxyConfigs of the mesh and its root namespace (the namespace-wide default's home). */
export interface ProxyConfigSet {
  rootNamespace: string;
  byNamespace: ReadonlyMap<string, readonly ProxyConfigEntry[]>;
}

const NO_PROXY_CONFIGS: ProxyConfigSet = { rootNamespace: '', byNamespace: new Map() };

export interface InjectResult {
  /** The pod template, injected or (when not injected) the input itself. */
  pod: Json;
  injected: boolean;
  reason: string;
  /** Annotations the template could not use; the pod is not injected when there are any. */
  errors: FieldError[];
}

/** Ours merged under theirs (a pod's own `istio-proxy` customises the template), at our place. */
function mergeByName(existing: readonly Json[], ours: readonly Json[], oursFirst: boolean): Json[] {
  const name = (c: Json): string | undefined => str(c['name']);
  const ourNames = new Set(ours.map(name));
  const merged = ours.map((o) => {
    const theirs = existing.find((e) => name(e) === name(o));
    return theirs ? { ...o, ...structuredClone(theirs) } : o;
  });
  const rest = existing.filter((e) => !ourNames.has(name(e))).map((e) => structuredClone(e));
  return oursFirst ? [...merged, ...rest] : [...rest, ...merged];
}

export function injectPodTemplate(template: Json, ctx: InjectContext): InjectResult {
  const metadata = rec(template['metadata']) ?? {};
  const spec = rec(template['spec']) ?? {};
  const labels = stringMap(metadata['labels']);
  const annotations = stringMap(metadata['annotations']);
  const decision = decideInjection({ namespace: ctx.namespace, labels, annotations, hostNetwork: spec['hostNetwork'] === true }, ctx.namespaceLabels, {
    ...ctx.role,
    revision: ctx.opts.revision,
  });
  if (!decision.inject) return { pod: template, injected: false, reason: decision.reason, errors: [] };
  const containers = records(spec['containers']);
  if (containers.length === 0) {
    return { pod: template, injected: false, reason: 'not injected', errors: [{ path: 'spec.containers', message: 'the pod has no containers' }] };
  }
  // The effective proxy config: mesh default < root namespace < namespace < annotation < workload ProxyConfig.
  const pcs = ctx.proxyConfigs ?? NO_PROXY_CONFIGS;
  const effective = effectiveProxyConfig({
    meshDefault: ctx.opts.proxyConfig,
    rootNamespace: pcs.rootNamespace,
    proxyConfigs: pcs.byNamespace,
    target: { namespace: ctx.namespace, labels, annotations },
  });
  if (effective.errors.length > 0) return { pod: template, injected: false, reason: 'invalid injection annotations', errors: effective.errors };
  const opts = effective.config === ctx.opts.proxyConfig ? ctx.opts : { ...ctx.opts, proxyConfig: effective.config };
  const { parts, errors } = sidecarTemplate({ labels, annotations, containers, workload: ctx.workload, opts });
  if (errors.length > 0) return { pod: template, injected: false, reason: 'invalid injection annotations', errors };

  const pod = structuredClone(template);
  const meta = isRecord(pod['metadata']) ? pod['metadata'] : (pod['metadata'] = {});
  const podSpec = isRecord(pod['spec']) ? pod['spec'] : (pod['spec'] = {});
  const outLabels = isRecord(meta['labels']) ? meta['labels'] : (meta['labels'] = {});
  for (const [k, v] of Object.entries(parts.labels)) if (outLabels[k] === undefined) outLabels[k] = v;
  const outAnnotations = isRecord(meta['annotations']) ? meta['annotations'] : (meta['annotations'] = {});
  for (const [k, v] of Object.entries(parts.annotations)) if (outAnnotations[k] === undefined) outAnnotations[k] = v;
  outAnnotations[REVISION_LABEL] = ctx.opts.revision;

  if (parts.initContainers.length > 0) podSpec['initContainers'] = mergeByName(records(podSpec['initContainers']), parts.initContainers, true);
  // holdApplicationUntilProxyStarts puts istio-proxy first, so its postStart hook holds the app's start.
  podSpec['containers'] = mergeByName(containers, parts.containers, opts.proxyConfig['holdApplicationUntilProxyStarts'] === true);
  const volumes = records(podSpec['volumes']);
  const have = new Set(volumes.map((v) => str(v['name'])));
  const added = parts.volumes.filter((v) => !have.has(str(v['name'])));
  podSpec['volumes'] = [...volumes.map((v) => structuredClone(v)), ...added];

  outAnnotations[STATUS_ANNOTATION] = JSON.stringify({
    initContainers: parts.initContainers.map((c) => c['name']),
    containers: parts.containers.map((c) => c['name']),
    volumes: parts.volumes.map((v) => v['name']),
    imagePullSecrets: null,
    revision: ctx.opts.revision,
  });
  return { pod, injected: true, reason: decision.reason, errors: [] };
}
