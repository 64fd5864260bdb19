/**
 * The mTLS mode of a workload's port from PeerAuthentications, as istiod's
 * ComposePeerAuthentication: the mesh policy (root namespace, no selector), then the namespace
 * policy, then the workload policy (selector matching the labels, outside the root namespace);
 * UNSET inherits from the level above, the default is PERMISSIVE; a workload policy's
 * portLevelMtls (keyed by workload port) overrides per port, UNSET inheriting the workload mode.
 * Of several policies at one level the first by namespace/name wins (istiod: the oldest).
 */
import type { MtlsMode, PeerAuthenticationSpec } from '../../model/objects';
import type { MeshService, MeshSnapshot } from '../../model/snapshot';
import { labelsMatch } from '../../model/snapshot';
import { labelsKey } from './authz';

export type EffectiveMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface MergedMtls {
  mode: EffectiveMode;
  perPort: ReadonlyMap<number, EffectiveMode>;
}

function set(m: MtlsMode | undefined): m is EffectiveMode {
  return m === 'STRICT' || m === 'PERMISSIVE' || m === 'DISABLE';
}

function hasSelector(spec: PeerAuthenticationSpec): boolean {
  return Object.keys(spec.selector?.matchLabels ?? {}).length > 0;
}

/** The mesh- then namespace-level mode for `namespace` (workload policies ignored). */
function levelMode(snap: MeshSnapshot, namespace: string): { mode: EffectiveMode; explicit: boolean } {
  const pas = snap.security.peerAuthentications.filter((p) => !hasSelector(p.spec));
  const mesh = pas.find((p) => p.meta.namespace === snap.rootNamespace);
  const ns = namespace === snap.rootNamespace ? undefined : pas.find((p) => p.meta.namespace === namespace);
  let mode: EffectiveMode = 'PERMISSIVE';
  let explicit = false;
  for (const p of [mesh, ns]) {
    const m = p?.spec.mtls?.mode;
    if (set(m)) {
      mode = m;
      explicit = true;
    }
  }
  return { mode, explicit };
}

/** The merged policy for a workload (memoised per namespace and label set). */
export function workloadMtls(snap: MeshSnapshot, namespace: string, labels: Readonly<Record<string, string>>): MergedMtls {
  return snap.memo.get(`pa|${namespace}|${labelsKey(labels)}`, () => {
    let mode = levelMode(snap, namespace).mode;
    const perPort = new Map<number, EffectiveMode>();
    const workload =
      namespace === snap.rootNamespace
        ? undefined
        : snap.security.peerAuthentications.find((p) => p.meta.namespace === namespace && hasSelector(p.spec) && labelsMatch(p.spec.selector?.matchLabels, labels));
    if (workload) {
      const m = workload.spec.mtls?.mode;
      if (set(m)) mode = m;
      for (const [port, pm] of Object.entries(workload.spec.portLevelMtls ?? {})) perPort.set(Number(port), set(pm.mode) ? pm.mode : mode);
    }
    return { mode, perPort };
  });
}

export function mtlsForPort(m: MergedMtls, port: number): EffectiveMode {
  return m.perPort.get(port) ?? m.mode;
}

/**
 * istiod's BestEffortInferServiceMTLSMode for auto mTLS: undefined (unknown) for mesh-external
 * services; else the namespace (then mesh) policy's mode, PERMISSIVE by default.
 */
export function serviceMtlsMode(snap: MeshSnapshot, svc: MeshService): EffectiveMode | undefined {
  if (svc.meshExternal) return undefined;
  return snap.memo.get(`pa-ns|${svc.namespace}`, () => levelMode(snap, svc.namespace).mode);
}
