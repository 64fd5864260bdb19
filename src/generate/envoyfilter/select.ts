/**
 * Which EnvoyFilter patches apply to a proxy, in istiod's order (PushContext.EnvoyFilters):
 * EnvoyFilters of the root namespace and of the proxy's namespace whose workloadSelector its
 * labels carry (or, with targetRefs, a Gateway API Gateway the proxy is), ordered by priority,
 * root namespace first, then creation time and name (meshd's sources keep no creation time:
 * `name.namespace` decides); then each patch whose proxy match (ISTIO_VERSION regex, metadata)
 * holds. Reads the snapshot's EnvoyFilters of those two namespaces only, and the proxy's labels
 * and version only when some EnvoyFilter is there, so proxies elsewhere keep sharing results.
 */
import type { EnvoyFilterConfig, EnvoyFilterPatchConfig } from '../../model/build-envoyfilter';
import type { EnvoyFilterApplyTo, EnvoyFilterContext, JsonPatchValue } from '../../model/objects-envoyfilter';
import type { Proxy } from '../../model/proxy';
import type { GenerateContext, ProtoObject } from '../types';
import { PatchValueError, type ProtoTypes, convertAny, convertMessage } from './proto-json';

const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';

/** One patch of one EnvoyFilter, with its value converted on first use. */
export interface PatchRef {
  filter: EnvoyFilterConfig;
  patch: EnvoyFilterPatchConfig;
}

export interface ProxyPatches {
  /** The matching EnvoyFilters in order, each with its patches that match the proxy. */
  filters: readonly { filter: EnvoyFilterConfig; patches: readonly PatchRef[] }[];
  /** Every matching patch, in order. */
  all: readonly PatchRef[];
}

function attaches(f: EnvoyFilterConfig, proxy: Proxy): boolean {
  if (f.targetRefs) {
    const gw = proxy.labels[GATEWAY_NAME_LABEL];
    return f.targetRefs.some(
      (r) =>
        r.kind === 'Gateway' && (r.group ?? 'gateway.networking.k8s.io') === 'gateway.networking.k8s.io' && r.name === gw && (r.namespace ?? f.meta.namespace) === proxy.namespace,
    );
  }
  const sel = f.workloadSelector;
  if (!sel) return true;
  return Object.entries(sel).every(([k, v]) => proxy.labels[k] === v);
}

/** istiod's proxyMatch: an unanchored regex on ISTIO_VERSION (no version: no match), and metadata equality. */
function proxyMatch(p: EnvoyFilterPatchConfig, proxy: Proxy): boolean {
  const pm = p.match?.proxy;
  if (!pm) return true;
  if (pm.proxyVersion) {
    const ver = proxy.istioVersion;
    if (!ver) return false;
    let re: RegExp;
    try {
      re = new RegExp(pm.proxyVersion);
    } catch {
      return false;
    }
    if (!re.test(ver)) return false;
  }
  for (const [k, v] of Object.entries(pm.metadata ?? {})) if (proxy.metadata[k] !== v) return false;
  return true;
}

function rank(a: EnvoyFilterConfig, b: EnvoyFilterConfig, root: string): number {
  if (a.priority !== b.priority) return a.priority - b.priority;
  const ar = a.meta.namespace === root;
  const br = b.meta.namespace === root;
  if (ar !== br) return ar ? -1 : 1;
  const an = `${a.meta.name}.${a.meta.namespace}`;
  const bn = `${b.meta.name}.${b.meta.namespace}`;
  return an < bn ? -1 : an > bn ? 1 : 0;
}

/** The patches that apply to the proxy, or undefined when none do. */
export function proxyPatches(ctx: GenerateContext): ProxyPatches | undefined {
  const root = ctx.snap.rootNamespace;
  const ns = ctx.proxy.namespace;
  const candidates = [...(ctx.snap.envoyFilters.get(root) ?? []), ...(ns !== root ? (ctx.snap.envoyFilters.get(ns) ?? []) : [])];
  if (candidates.length === 0) return undefined;
  const matched = candidates.filter((f) => attaches(f, ctx.proxy)).sort((a, b) => rank(a, b, root));
  const filters = matched
    .map((filter) => ({ filter, patches: filter.patches.filter((p) => proxyMatch(p, ctx.proxy)).map((patch) => ({ filter, patch })) }))
    .filter((f) => f.patches.length > 0);
  if (filters.length === 0) return undefined;
  return { filters, all: filters.flatMap((f) => f.patches) };
}

/** istiod's commonConditionMatch: the patch's context is the one being patched, or ANY. */
export function contextMatch(ref: PatchRef, pctx: EnvoyFilterContext): boolean {
  return ref.patch.context === 'ANY' || ref.patch.context === pctx;
}

export function ofType(p: ProxyPatches, applyTo: readonly EnvoyFilterApplyTo[], pctx: EnvoyFilterContext): PatchRef[] {
  return p.all.filter((r) => applyTo.includes(r.patch.applyTo) && contextMatch(r, pctx));
}

/** The Envoy message each applyTo's value is. */
export const VALUE_TYPE: Readonly<Partial<Record<EnvoyFilterApplyTo, string>>> = {
  LISTENER: 'envoy.config.listener.v3.Listener',
  FILTER_CHAIN: 'envoy.config.listener.v3.FilterChain',
  NETWORK_FILTER: 'envoy.config.listener.v3.Filter',
  HTTP_FILTER: 'envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter',
  LISTENER_FILTER: 'envoy.config.listener.v3.ListenerFilter',
  ROUTE_CONFIGURATION: 'envoy.config.route.v3.RouteConfiguration',
  VIRTUAL_HOST: 'envoy.config.route.v3.VirtualHost',
  HTTP_ROUTE: 'envoy.config.route.v3.Route',
  CLUSTER: 'envoy.config.cluster.v3.Cluster',
  EXTENSION_CONFIG: 'envoy.config.core.v3.TypedExtensionConfig',
};

/** Converts patch values against Envoy's types, once per snapshot and patch. */
export class PatchValues {
  constructor(
    readonly types: ProtoTypes,
    private readonly ctx: GenerateContext,
  ) {}

  /** The patch's value in meshd's shape; throws (naming the field) when it is not a valid message. */
  value(ref: PatchRef): ProtoObject {
    const r = this.ctx.snap.memo.get(`envoyfilter|${ref.filter.key}|${ref.patch.index}`, (): { value: ProtoObject } | { error: string } => {
      try {
        return { value: this.convert(ref) };
      } catch (err) {
        return { error: (err as Error).message };
      }
    });
    if ('error' in r) throw new PatchValueError(r.error);
    return r.value;
  }

  /**
   * The patch value's typed_config read as `url` (istiod swaps a MERGE's type URL for the one of
   * the filter it merges into), or undefined when the value has none.
   */
  typedConfigAs(ref: PatchRef, url: string): ProtoObject | undefined {
    const raw = ref.patch.value;
    const tc = raw ? (raw['typed_config'] ?? raw['typedConfig']) : undefined;
    if (typeof tc !== 'object' || tc === null || Array.isArray(tc)) return undefined;
    const r = this.ctx.snap.memo.get(`envoyfilter|${ref.filter.key}|${ref.patch.index}|as|${url}`, (): { value: ProtoObject } | { error: string } => {
      try {
        return { value: convertAny({ ...(tc as Record<string, JsonPatchValue>), '@type': url }, `spec.configPatches[${ref.patch.index}].patch.value.typed_config`, this.types) };
      } catch (err) {
        return { error: (err as Error).message };
      }
    });
    if ('error' in r) throw new PatchValueError(r.error);
    return r.value;
  }

  private convert(ref: PatchRef): ProtoObject {
    const typeName = VALUE_TYPE[ref.patch.applyTo];
    if (!typeName) throw new PatchValueError(`applyTo ${ref.patch.applyTo} is not applied to xDS resources`);
    const raw = ref.patch.value;
    if (!raw) throw new PatchValueError('missing patch value');
    return convertMessage(this.types.type(typeName), raw, `spec.configPatches[${ref.patch.index}].patch.value`, this.types);
  }
}
