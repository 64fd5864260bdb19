/**
 * The status meshd writes, from what it computed and what the API server holds (pure): every
 * condition gets `observedGeneration` and keeps its `lastTransitionTime` while its status stays
 * the same; on routes only this controller's `parents` entries are replaced, other
 * controllers' entries are kept as they are (as istiod does).
 */
import { type Json, isRecord, records, str } from './kube-rest';

/** RFC 3339 to the second, as metav1.Time serialises. */
export function kubeTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Conditions with generation and transition time, in metav1.Condition's field order. */
function stampConditions(wanted: unknown, existing: unknown, generation: number | undefined, now: string): Json[] {
  const old = records(existing);
  return records(wanted).map((c) => {
    const before = old.find((o) => o['type'] === c['type']);
    const since = before && before['status'] === c['status'] && typeof before['lastTransitionTime'] === 'string' ? before['lastTransitionTime'] : now;
    return {
      type: c['type'],
      status: c['status'],
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
      lastTransitionTime: since,
      reason: c['reason'],
      message: c['message'],
    };
  });
}

const isRoute = (kind: string): boolean => kind.endsWith('Route');

/**
 * The whole status to write. `existing` is the object's status on the API server (or undefined);
 * `generation` its metadata.generation.
 */
export function composeStatus(kind: string, wanted: Json, existing: Json | undefined, generation: number | undefined, now: string, controllerName: string): Json {
  const out: Json = { ...wanted };
  if (wanted['conditions'] !== undefined) out['conditions'] = stampConditions(wanted['conditions'], existing?.['conditions'], generation, now);
  if (Array.isArray(wanted['listeners'])) {
    const oldListeners = records(existing?.['listeners']);
    out['listeners'] = records(wanted['listeners']).map((l) => {
      const before = oldListeners.find((o) => o['name'] === l['name']);
      return { ...l, conditions: stampConditions(l['conditions'], before?.['conditions'], generation, now) };
    });
  }
  if (isRoute(kind)) {
    const oldParents = records(existing?.['parents']);
    const ours = records(wanted['parents']).map((p) => {
      const before = oldParents.find((o) => o['controllerName'] === p['controllerName'] && jsonEqual(o['parentRef'], p['parentRef']));
      return { ...p, conditions: stampConditions(p['conditions'], before?.['conditions'], generation, now) };
    });
    // Entries of other controllers stay; this controller's are exactly what it computed.
    const others = oldParents.filter((p) => str(p['controllerName']) !== controllerName);
    out['parents'] = [...others, ...ours];
  }
  if (Array.isArray(wanted['ancestors'])) {
    // Policies (BackendTLSPolicy): the same per-controller merge, on `ancestors` keyed by ancestorRef.
    // meshd reports as istiod: the Service (mesh) ancestors under istio.io/mesh-controller, Gateways
    // under its gateway controllerName; both are its own.
    const mine = new Set([controllerName, ...records(wanted['ancestors']).map((a) => str(a['controllerName']) ?? '')]);
    const oldAncestors = records(existing?.['ancestors']);
    const ours = records(wanted['ancestors']).map((a) => {
      const before = oldAncestors.find((o) => o['controllerName'] === a['controllerName'] && jsonEqual(o['ancestorRef'], a['ancestorRef']));
      return { ...a, conditions: stampConditions(a['conditions'], before?.['conditions'], generation, now) };
    });
    const others = oldAncestors.filter((a) => !mine.has(str(a['controllerName']) ?? ''));
    out['ancestors'] = [...others, ...ours];
  }
  return out;
}

/** Deep equality of JSON values, key order ignored. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (!isRecord(a) || !isRecord(b)) return false;
  const ka = Object.keys(a).filter((k) => a[k] !== undefined);
  const kb = Object.keys(b).filter((k) => b[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => jsonEqual(a[k], b[k]));
}

/** A copy without any `lastTransitionTime` (what "changed" is judged on). */
function withoutTimes(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutTimes);
  if (!isRecord(v)) return v;
  const out: Json = {};
  for (const [k, x] of Object.entries(v)) if (k !== 'lastTransitionTime') out[k] = withoutTimes(x);
  return out;
}

/** Equal apart from transition times; an absent status equals an empty one. */
export function sameStatus(a: Json | undefined, b: Json | undefined): boolean {
  return jsonEqual(withoutTimes(a ?? {}), withoutTimes(b ?? {}));
}

/**
 * `wanted` is already part of `existing`: every key of an object, every element of an array
 * (same length), every scalar equal. Fields the API server adds (defaults, uid, status) are
 * ignored, so an applied object that is unchanged is not applied again.
 */
export function contains(existing: unknown, wanted: unknown): boolean {
  if (Array.isArray(wanted)) {
    return Array.isArray(existing) && existing.length === wanted.length && wanted.every((w, i) => contains(existing[i], w));
  }
  if (isRecord(wanted)) return isRecord(existing) && Object.entries(wanted).every(([k, w]) => w === undefined || contains(existing[k], w));
  return existing === wanted;
}
