/**
 * AdmissionReview (admission.k8s.io/v1) in, AdmissionReview out, as pure functions: reading a
 * review (anything malformed is a `BadReview`, answered 400), the mutating `/inject` answer (a
 * base64 JSONPatch) and the validating `/validate` answer (a Status listing `path: message`).
 */
import { type InjectorRole, injectPodTemplate, type Labels, type ProxyConfigSet } from '../inject';
import { createPatch } from '../inject/jsonpatch';
import type { InjectionOptions } from '../inject/options';
import { type Json, isRecord, rec, str, workloadOfPod } from '../inject/workload';
import { type ConfigObject, type FieldError, KNOWN_KINDS } from '../model/objects';
import type { Validation } from '../model/validate';
import { parseObject } from '../sources/parse';

export const REVIEW_VERSIONS: readonly string[] = ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'];

/** A request that is not an AdmissionReview; the message says what is wrong. */
export class BadReview extends Error {
  readonly statusCode = 400;
}

export interface AdmissionRequest {
  uid: string;
  kind?: { group?: string; version?: string; kind?: string };
  /** The resource as the API server names it (group, version, plural resource). */
  resource?: { group?: string; version?: string; resource?: string };
  namespace?: string;
  name?: string;
  operation?: string;
  object?: unknown;
}

export interface AdmissionStatus {
  status: 'Failure';
  code: number;
  reason: string;
  message: string;
  details?: { name?: string; kind?: string; causes: Array<{ reason: string; field: string; message: string }> };
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** base64 of the JSON Patch. */
  patch?: string;
  status?: AdmissionStatus;
  warnings?: string[];
}

export interface AdmissionReview {
  apiVersion: string;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** The request of a review, or a BadReview saying why the body is not one. */
export function readReview(body: unknown): { apiVersion: string; request: AdmissionRequest } {
  if (!isRecord(body)) throw new BadReview(`the body must be an AdmissionReview object (got ${typeName(body)})`);
  const apiVersion = body['apiVersion'];
  if (body['kind'] !== 'AdmissionReview') throw new BadReview(`kind must be AdmissionReview (got ${JSON.stringify(body['kind'] ?? null)})`);
  if (typeof apiVersion !== 'string' || !REVIEW_VERSIONS.includes(apiVersion)) {
    throw new BadReview(`apiVersion must be ${REVIEW_VERSIONS.join(' or ')} (got ${JSON.stringify(apiVersion ?? null)})`);
  }
  const req = body['request'];
  if (!isRecord(req)) throw new BadReview(`request must be an object (got ${typeName(req)})`);
  const uid = req['uid'];
  if (typeof uid !== 'string' || uid === '') throw new BadReview('request.uid must be a non-empty string');
  const kind = rec(req['kind']);
  const resource = rec(req['resource']);
  return {
    apiVersion,
    request: {
      uid,
      ...(kind ? { kind: { group: str(kind['group']), version: str(kind['version']), kind: str(kind['kind']) } } : {}),
      ...(resource ? { resource: { group: str(resource['group']), version: str(resource['version']), resource: str(resource['resource']) } } : {}),
      ...(str(req['namespace']) !== undefined ? { namespace: str(req['namespace']) } : {}),
      ...(str(req['name']) !== undefined ? { name: str(req['name']) } : {}),
      ...(str(req['operation']) !== undefined ? { operation: str(req['operation']) } : {}),
      object: req['object'],
    },
  };
}

export function review(apiVersion: string, response: AdmissionResponse): AdmissionReview {
  return { apiVersion, kind: 'AdmissionReview', response };
}

function deny(uid: string, code: number, reason: string, message: string, causes?: FieldError[], who?: { kind?: string; name?: string }): AdmissionResponse {
  const status: AdmissionStatus = { status: 'Failure', code, reason, message };
  if (causes) status.details = { ...who, causes: causes.map((e) => ({ reason: 'FieldValueInvalid', field: e.path, message: e.message })) };
  return { uid, allowed: false, status };
}

/** `path: message` per problem, as `meshd validate` prints them. */
export function describeErrors(errors: readonly FieldError[]): string[] {
  return errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message));
}

export interface InjectDeps {
  opts: InjectionOptions;
  namespaceLabels?: (namespace: string) => Labels | undefined;
  /** ProxyConfig objects in effect (none: the mesh default and the pod's annotation only). */
  proxyConfigs?: ProxyConfigSet;
  /** The tags pointing at this revision and whether it is the default one, read per review. */
  role?: () => Omit<InjectorRole, 'revision'>;
}

export interface InjectOutcome {
  response: AdmissionResponse;
  /** For the log line: whether a sidecar was added, and why (not). */
  injected: boolean;
  reason: string;
}

/** The mutating webhook: a Pod CREATE in, a JSONPatch adding the sidecar out. */
export function admitInjection(req: AdmissionRequest, deps: InjectDeps): InjectOutcome {
  const allow = (reason: string): InjectOutcome => ({ response: { uid: req.uid, allowed: true }, injected: false, reason });
  if (req.kind?.kind !== undefined && (req.kind.kind !== 'Pod' || (req.kind.group ?? '') !== '')) return allow(`kind ${req.kind.kind} is not a Pod`);
  if (req.operation !== undefined && req.operation !== 'CREATE') return allow(`operation ${req.operation} is not CREATE`);
  const pod = req.object;
  if (!isRecord(pod) || !isRecord(pod['spec'])) {
    return { response: deny(req.uid, 400, 'BadRequest', 'request.object must be a Pod with a spec'), injected: false, reason: 'not a pod' };
  }
  const meta = rec(pod['metadata']) ?? {};
  const namespace = req.namespace || str(meta['namespace']) || 'default';
  const workload = workloadOfPod(meta, namespace);
  const nsLabels = deps.namespaceLabels?.(namespace);
  const role = deps.role?.();
  const r = injectPodTemplate(pod, {
    namespace,
    workload,
    opts: deps.opts,
    ...(nsLabels ? { namespaceLabels: nsLabels } : {}),
    ...(deps.proxyConfigs ? { proxyConfigs: deps.proxyConfigs } : {}),
    ...(role ? { role } : {}),
  });
  if (r.errors.length > 0) {
    const message = `sidecar injection failed: ${describeErrors(r.errors).join('; ')}`;
    return { response: deny(req.uid, 400, 'BadRequest', message, r.errors, { kind: 'Pod', name: str(meta['name']) ?? workload.name }), injected: false, reason: message };
  }
  if (!r.injected) return allow(r.reason);
  const patch = createPatch(pod, r.pod);
  return {
    response: { uid: req.uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') },
    injected: true,
    reason: r.reason,
  };
}

/**
 * The validating webhook: the folder source's parse and `validate` on the object; invalid →
 * denied. Warnings (where Istio warns) come back in the response's `warnings`, which kubectl
 * prints, whether the object is admitted or not.
 */
export function admitValidation(req: AdmissionRequest, validate: (obj: ConfigObject) => Validation): AdmissionResponse {
  if (req.operation === 'DELETE' || req.operation === 'CONNECT') return { uid: req.uid, allowed: true };
  const obj = req.object;
  if (!isRecord(obj)) return deny(req.uid, 400, 'BadRequest', `request.object must be an object (got ${typeName(obj)})`);
  const kind = str(obj['kind']) ?? '';
  if (kind !== '' && !Object.prototype.hasOwnProperty.call(KNOWN_KINDS, kind)) {
    // Admitted (another control plane may serve it), but never silently: kubectl prints this.
    const apiVersion = str(obj['apiVersion']);
    return { uid: req.uid, allowed: true, warnings: [`meshd does not support kind ${kind}${apiVersion ? ` (${apiVersion})` : ''}: admitted unchecked, and ignored by meshd`] };
  }
  let body: Json = obj;
  const meta = rec(obj['metadata']);
  if (req.namespace && meta && !str(meta['namespace'])) body = { ...obj, metadata: { ...meta, namespace: req.namespace } };
  const parsed = parseObject(body, 'admission');
  const who = { kind: kind || undefined, name: str(meta?.['name']) };
  const label = `${kind || 'object'} ${req.namespace || str(meta?.['namespace']) ? `${req.namespace || str(meta?.['namespace'])}/` : ''}${who.name ?? ''}`.trim();
  const first = parsed.errors[0];
  let errors: FieldError[];
  let warnings: FieldError[] = [];
  if (first) {
    errors = [...first.errors];
  } else {
    const o = parsed.objects[0];
    if (!o) return deny(req.uid, 400, 'BadRequest', 'request.object is empty');
    try {
      ({ errors, warnings } = validate(o));
    } catch (err) {
      errors = [{ path: '', message: `internal validation error: ${(err as Error).message}` }];
    }
  }
  const warned = warnings.length > 0 ? { warnings: describeErrors(warnings) } : {};
  if (errors.length === 0) return { uid: req.uid, allowed: true, ...warned };
  return { ...deny(req.uid, 422, 'Invalid', `${label} is invalid: ${describeErrors(errors).join('; ')}`, errors, who), ...warned };
}
