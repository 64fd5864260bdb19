/**
 * The Telemetry part of a snapshot: Telemetry objects by namespace (istiod's
 * NamespaceToTelemetries), in name order (istiod orders by creation time, which meshd's sources
 * do not keep; name order is the stable stand-in, as for the security policies), and the
 * MeshConfig providers they name. Which ones apply to a proxy is decided in generate/telemetry.
 */
import type { ConfigObject, ObjectMeta } from './objects';
import type { TelemetrySpec } from './objects-telemetry';

export interface TelemetryConfig {
  meta: ObjectMeta;
  spec: TelemetrySpec;
}

export function buildTelemetries(kind: (k: string) => readonly ConfigObject[]): Map<string, TelemetryConfig[]> {
  const out = new Map<string, TelemetryConfig[]>();
  const list = [...kind('Telemetry')].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  for (const o of list) {
    const ns = o.metadata.namespace;
    let l = out.get(ns);
    if (!l) out.set(ns, (l = []));
    l.push({ meta: o.metadata, spec: (o.body['spec'] ?? {}) as TelemetrySpec });
  }
  return out;
}
