/**
 * The publish gate (go-control-plane's Snapshot.Consistent): a listener served to a proxy must
 * name only route configurations that proxy is served, and an EDS cluster only endpoint
 * assignments it is served. A resource whose references do not resolve keeps the version the
 * proxy had before (if any), and the reason is reported with the rejected resources.
 */
import type { EncodedResource, RejectedResource } from './cache';
import { TypeUrl } from './protos';

/** Which type a type's references point at. */
export const REFERENCED: Partial<Record<TypeUrl, TypeUrl>> = { [TypeUrl.Listener]: TypeUrl.Route, [TypeUrl.Cluster]: TypeUrl.Endpoint };

/** The names of other resources a resource body points at (RDS from listeners, EDS from clusters). */
export function referencesOf(typeUrl: TypeUrl, body: object): string[] | undefined {
  if (typeUrl === TypeUrl.Cluster) {
    const c = body as { name?: string; type?: string; eds_cluster_config?: { service_name?: string } };
    if (!c.eds_cluster_config) return undefined;
    return [c.eds_cluster_config.service_name || (c.name ?? '')];
  }
  if (typeUrl !== TypeUrl.Listener) return undefined;
  const out = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) for (const x of v) walk(x);
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === 'route_config_name' && typeof x === 'string') out.add(x);
        else if (k !== 'route_config') walk(x);
      }
    }
  };
  walk(body);
  return out.size > 0 ? [...out] : undefined;
}

/**
 * `resources` with every resource whose references are not all in `available` replaced by the
 * version in `before` (or kept as it is when there is none: Envoy then waits for the missing
 * one, as it would for any new reference). Problems are added to `problems`.
 */
export function gate(
  typeUrl: TypeUrl,
  resources: ReadonlyMap<string, EncodedResource>,
  available: ReadonlyMap<string, unknown>,
  before: ReadonlyMap<string, EncodedResource> | undefined,
  problems: Map<string, RejectedResource>,
): ReadonlyMap<string, EncodedResource> {
  let out: Map<string, EncodedResource> | undefined;
  for (const [name, r] of resources) {
    const missing = r.refs?.filter((ref) => !available.has(ref));
    const key = `refs|${typeUrl}|${name}`;
    if (!missing || missing.length === 0) {
      if (r.refs) problems.delete(key);
      continue;
    }
    problems.set(key, { name, typeUrl, errors: [{ path: '', message: `refers to ${missing.join(', ')}, which is not served` }] });
    const old = before?.get(name);
    if (!old || old === r) continue;
    out ??= new Map(resources);
    out.set(name, old);
  }
  return out ?? resources;
}

/** Whether any resource refers to a name `available` lacks. */
export function hasMissingRefs(resources: ReadonlyMap<string, EncodedResource>, available: ReadonlyMap<string, unknown>): boolean {
  for (const r of resources.values()) if (r.refs) for (const ref of r.refs) if (!available.has(ref)) return true;
  return false;
}
