/**
 * The WasmPlugin part of a snapshot: WasmPlugins by namespace (istiod's wasmPluginsByNamespace),
 * in name order (istiod keeps creation order, which meshd's sources do not keep; name order is
 * the stable stand-in, as for the other policies), each with its ECDS resource name and a
 * version (istiod's resourceVersion, which meshd's sources drop: a digest of the spec, so it
 * changes exactly when the plugin does). Which ones apply to a proxy is decided in generate/wasm.
 */
import { createHash } from 'node:crypto';
import type { ConfigObject, ObjectMeta } from './objects';
import type { WasmPluginSpec } from './objects-wasm';

/** istiod's WasmPluginResourceNamePrefix: keeps WasmPlugin ECDS names apart from EnvoyFilter ones. */
export const WASM_PLUGIN_RESOURCE_PREFIX = 'extensions.istio.io/wasmplugin/';

export interface WasmPluginConfig {
  meta: ObjectMeta;
  spec: WasmPluginSpec;
  /** The ECDS resource (and HTTP/network filter) name: `extensions.istio.io/wasmplugin/<ns>.<name>`. */
  resourceName: string;
  /** Sent to the agent as ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION. */
  version: string;
}

export function buildWasmPlugins(kind: (k: string) => readonly ConfigObject[]): Map<string, WasmPluginConfig[]> {
  const out = new Map<string, WasmPluginConfig[]>();
  const list = [...kind('WasmPlugin')].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  for (const o of list) {
    const ns = o.metadata.namespace;
    let l = out.get(ns);
    if (!l) out.set(ns, (l = []));
    const spec = (o.body['spec'] ?? {}) as WasmPluginSpec;
    l.push({
      meta: o.metadata,
      spec,
      resourceName: `${WASM_PLUGIN_RESOURCE_PREFIX}${ns}.${o.metadata.name}`,
      version: createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16),
    });
  }
  return out;
}
