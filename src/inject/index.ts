/**
 * Sidecar injection for whole objects: a Pod, or the pod template of a Deployment, StatefulSet,
 * DaemonSet, ReplicaSet, ReplicationController, Job or CronJob (what `kube-inject` reads).
 */
import type { FieldError } from '../model/objects';
import { type InjectContext, injectPodTemplate } from './inject';
import type { InjectionOptions } from './options';
import { type Json, type WorkloadMeta, isRecord, rec, str } from './workload';

export { decideInjection, type Decision, type InjectorRole, type Labels, STATUS_ANNOTATION } from './decide';
export { injectPodTemplate, type InjectContext, type InjectResult, type ProxyConfigSet } from './inject';
export { applyPatch, createPatch, type PatchOp } from './jsonpatch';
export { DEFAULT_PROXY_IMAGE, type InjectionConfig, type InjectionOptions, resolveInjectionOptions } from './options';
export { workloadOfPod, type WorkloadMeta } from './workload';

/** Where each workload kind keeps its pod template. */
const TEMPLATE_PATH: Readonly<Record<string, readonly string[]>> = {
  Pod: [],
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

export function hasPodTemplate(kind: string): boolean {
  return Object.prototype.hasOwnProperty.call(TEMPLATE_PATH, kind);
}

export interface WorkloadInjectResult {
  object: Json;
  injected: boolean;
  reason: string;
  errors: FieldError[];
}

/** Injects the pod template of a workload object; other kinds come back unchanged. */
export function injectWorkload(obj: Json, opts: InjectionOptions): WorkloadInjectResult {
  const kind = str(obj['kind']) ?? '';
  const path = TEMPLATE_PATH[kind];
  if (path === undefined) return { object: obj, injected: false, reason: `kind ${kind || '(none)'} has no pod template`, errors: [] };
  const meta = rec(obj['metadata']) ?? {};
  const namespace = str(meta['namespace']) || 'default';
  const workload: WorkloadMeta = { name: str(meta['name']) ?? '', namespace, kind, apiVersion: str(obj['apiVersion']) ?? '' };
  let template: unknown = obj;
  for (const k of path) template = isRecord(template) ? template[k] : undefined;
  if (!isRecord(template)) {
    return { object: obj, injected: false, reason: 'no pod template', errors: [{ path: path.join('.'), message: 'must be a pod template (a mapping)' }] };
  }
  const ctx: InjectContext = { namespace, workload, opts };
  const r = injectPodTemplate(template, ctx);
  const prefix = path.length > 0 ? `${path.join('.')}.` : '';
  const errors = r.errors.map((e) => ({ path: prefix + e.path, message: e.message }));
  if (!r.injected) return { object: obj, injected: false, reason: r.reason, errors };
  if (path.length === 0) return { object: r.pod, injected: true, reason: r.reason, errors };
  const out = structuredClone(obj);
  let parent: Json = out;
  for (const k of path.slice(0, -1)) parent = parent[k] as Json;
  parent[path[path.length - 1] as string] = r.pod;
  return { object: out, injected: true, reason: r.reason, errors };
}
