/**
 * The EnvoyFilter part of a snapshot: EnvoyFilter objects by namespace (istiod's
 * envoyFiltersByNamespace), each with its patches in order. Which ones apply to a proxy, and in
 * which order, is decided per proxy in generate/envoyfilter (istiod's PushContext.EnvoyFilters).
 *
 * With an allowlist of filter types (`--envoy-filter-allowed-types`, as managed meshes restrict
 * EnvoyFilter to a few extensions), a patch that would put a filter of another type into a
 * listener is left out here, and reported as a config error on its EnvoyFilter.
 */
import type { ConfigError, ConfigObject, FieldError, ObjectMeta } from './objects';
import type {
  EnvoyConfigObjectPatch,
  EnvoyFilterApplyTo,
  EnvoyFilterContext,
  EnvoyFilterMatch,
  EnvoyFilterOperation,
  EnvoyFilterSpec,
  JsonPatchValue,
} from './objects-envoyfilter';
import type { PolicyTargetReference } from './objects-security';

export interface EnvoyFilterPatchConfig {
  /** Index in spec.configPatches (for messages). */
  index: number;
  applyTo: EnvoyFilterApplyTo;
  context: EnvoyFilterContext;
  operation: EnvoyFilterOperation;
  match?: EnvoyFilterMatch;
  value?: { readonly [k: string]: JsonPatchValue };
}

export interface EnvoyFilterConfig {
  meta: ObjectMeta;
  /** `namespace/name`: how rejections and logs name it. */
  key: string;
  priority: number;
  workloadSelector?: Readonly<Record<string, string>>;
  targetRefs?: readonly PolicyTargetReference[];
  patches: readonly EnvoyFilterPatchConfig[];
}

type JsonObj = { readonly [k: string]: JsonPatchValue };

function isObj(v: JsonPatchValue | undefined): v is JsonObj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function field(o: JsonObj, snake: string, camel: string): JsonPatchValue | undefined {
  return o[snake] ?? o[camel];
}

/** The `@type` of every filter a listener-class or extension-config patch value puts in place (undefined: a filter without typed_config). */
export function insertedFilterTypes(applyTo: EnvoyFilterApplyTo, operation: EnvoyFilterOperation, value: JsonObj | undefined): (string | undefined)[] {
  if (!value) return [];
  const out: (string | undefined)[] = [];
  const filterType = (f: JsonObj): void => {
    const tc = field(f, 'typed_config', 'typedConfig');
    if (!isObj(tc)) {
      // ECDS-configured filters name their type in config_discovery.
      if (field(f, 'config_discovery', 'configDiscovery') === undefined) out.push(undefined);
      return;
    }
    out.push(typeof tc['@type'] === 'string' ? tc['@type'] : undefined);
    // An HTTP connection manager brings its own HTTP filters.
    walk(tc);
  };
  const walk = (o: JsonObj): void => {
    for (const [k, v] of Object.entries(o)) {
      if (['filters', 'http_filters', 'httpFilters', 'listener_filters', 'listenerFilters'].includes(k) && Array.isArray(v)) {
        for (const f of v as readonly JsonPatchValue[]) if (isObj(f)) filterType(f);
      } else if (isObj(v) && k !== 'typed_config' && k !== 'typedConfig') walk(v);
      else if (Array.isArray(v)) for (const e of v as readonly JsonPatchValue[]) if (isObj(e)) walk(e);
    }
  };
  switch (applyTo) {
    case 'HTTP_FILTER':
    case 'NETWORK_FILTER':
    case 'LISTENER_FILTER':
      // A MERGE changes a filter already there (its type is kept); the rest put the value in.
      if (operation !== 'MERGE' && operation !== 'REMOVE') filterType(value);
      break;
    case 'EXTENSION_CONFIG':
      filterType(value);
      break;
    case 'LISTENER':
    case 'FILTER_CHAIN':
      walk(value);
      break;
    default:
      break;
  }
  return out;
}

export function buildEnvoyFilters(kind: (k: string) => readonly ConfigObject[], errors: ConfigError[], allowedTypes: readonly string[] = []): Map<string, EnvoyFilterConfig[]> {
  const out = new Map<string, EnvoyFilterConfig[]>();
  const allowed = new Set(allowedTypes);
  // istiod orders by creation time, then name: meshd's sources keep no creation time, so name order is the stand-in.
  const list = [...kind('EnvoyFilter')].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  for (const o of list) {
    const spec = (o.body['spec'] ?? {}) as EnvoyFilterSpec;
    const problems: FieldError[] = [];
    const patches: EnvoyFilterPatchConfig[] = [];
    (spec.configPatches ?? []).forEach((cp: EnvoyConfigObjectPatch, index) => {
      const applyTo = cp.applyTo;
      const operation = cp.patch?.operation;
      if (!applyTo || !operation) return;
      const value = cp.patch?.value;
      if (allowed.size > 0) {
        const bad = insertedFilterTypes(applyTo, operation, value).filter((t) => t === undefined || !allowed.has(t));
        if (bad.length > 0) {
          const names = bad.map((t) => t ?? '(a filter without typed_config)').join(', ');
          problems.push({
            path: `spec.configPatches[${index}].patch.value`,
            message: `filter type ${names} is not allowed (allowed: ${[...allowed].join(', ')}); the patch is not applied`,
          });
          return;
        }
      }
      patches.push({ index, applyTo, context: cp.match?.context ?? 'ANY', operation, ...(cp.match ? { match: cp.match } : {}), ...(value ? { value } : {}) });
    });
    if (problems.length > 0)
      errors.push({
        source: o.origin.source,
        ...(o.origin.document !== undefined ? { document: o.origin.document } : {}),
        kind: 'EnvoyFilter',
        namespace: o.metadata.namespace,
        name: o.metadata.name,
        errors: problems,
      });
    const ns = o.metadata.namespace;
    let l = out.get(ns);
    if (!l) out.set(ns, (l = []));
    const labels = spec.workloadSelector?.labels;
    l.push({
      meta: o.metadata,
      key: `${ns}/${o.metadata.name}`,
      priority: typeof spec.priority === 'number' ? spec.priority : 0,
      ...(labels && Object.keys(labels).length > 0 ? { workloadSelector: labels } : {}),
      ...(spec.targetRefs && spec.targetRefs.length > 0 ? { targetRefs: spec.targetRefs } : {}),
      patches,
    });
  }
  return out;
}
