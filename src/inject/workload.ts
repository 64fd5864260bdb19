/**
 * Which workload a pod belongs to, as istiod works it out (`GetDeployMetaFromPod`): a generated
 * pod's controlling owner, with a ReplicaSet carrying the pod's `pod-template-hash` read as its
 * Deployment and a Job named `<name>-<8..11 digits>` read as its CronJob.
 */

export type Json = Record<string, unknown>;

export function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function rec(v: unknown): Json | undefined {
  return isRecord(v) ? v : undefined;
}

export function records(v: unknown): Json[] {
  return Array.isArray(v) ? v.filter(isRecord) : [];
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** A mapping's string values (labels, annotations); anything else is skipped. */
export function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isRecord(v)) for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
  return out;
}

export interface WorkloadMeta {
  name: string;
  namespace: string;
  kind: string;
  apiVersion: string;
}

function cronJobName(jobName: string): string | undefined {
  const i = jobName.lastIndexOf('-');
  if (i <= 0) return undefined;
  const suffix = jobName.slice(i + 1);
  return /^\d{8,11}$/.test(suffix) ? jobName.slice(0, i) : undefined;
}

/** The workload of a pod from its metadata (name, generateName, labels, ownerReferences). */
export function workloadOfPod(metadata: Json, namespace: string): WorkloadMeta {
  const podName = str(metadata['name']) ?? '';
  const out: WorkloadMeta = { name: podName, namespace, kind: 'Pod', apiVersion: 'v1' };
  const generateName = str(metadata['generateName']) ?? '';
  if (generateName !== '') {
    const owner = records(metadata['ownerReferences']).find((r) => r['controller'] === true);
    if (owner) {
      out.kind = str(owner['kind']) ?? out.kind;
      out.apiVersion = str(owner['apiVersion']) ?? out.apiVersion;
      out.name = str(owner['name']) ?? out.name;
      const hash = stringMap(metadata['labels'])['pod-template-hash'];
      if (out.kind === 'ReplicaSet' && hash && out.name.endsWith(`-${hash}`)) {
        out.name = out.name.slice(0, -(hash.length + 1));
        out.kind = 'Deployment';
      } else if (out.kind === 'Job') {
        const cron = cronJobName(out.name);
        if (cron !== undefined) {
          out.name = cron;
          out.kind = 'CronJob';
          out.apiVersion = 'batch/v1';
        }
      }
    }
  }
  if (out.name === '') out.name = podName || generateName.replace(/-$/, '');
  return out;
}

/** `kubernetes://apis/apps/v1/namespaces/default/deployments/hello` (ISTIO_META_OWNER). */
export function ownerUri(w: WorkloadMeta): string {
  return `kubernetes://apis/${w.apiVersion}/namespaces/${w.namespace || 'default'}/${w.kind.toLowerCase()}s/${w.name}`;
}
