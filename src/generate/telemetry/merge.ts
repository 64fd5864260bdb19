/**
 * Which Telemetry objects apply to a proxy, and how their metrics, access logging and tracing
 * merge, as istiod's pilot/pkg/model/telemetry.go does (Istio 1.22+: applicableTelemetries,
 * mergeMetrics, mergeLogs, Tracing): the root namespace's mesh-wide Telemetry first, then the
 * proxy namespace's namespace-wide one, then every workload-scoped one (selector or targetRefs)
 * in the proxy's namespace; later entries override earlier ones.
 */
import type { Proxy } from '../../model/proxy';
import type { MeshSnapshot } from '../../model/snapshot';
import type { AccessLogging, CustomTag, Metrics, MetricsOverrides, Tracing, WorkloadMode } from '../../model/objects-telemetry';
import { ISTIO_METRICS } from '../../model/objects-telemetry';
import type { TelemetryConfig } from '../../model/build-telemetry';
import type { ExtensionProvider, TelemetryMesh } from '../../model/telemetry-providers';
import { findProvider } from '../../model/telemetry-providers';

/** istiod's listener classes: sidecar inbound, sidecar outbound, gateway. */
export type ListenerClass = 'inbound' | 'outbound' | 'gateway';

interface Applicable {
  metrics: Metrics[];
  logging: AccessLogging[][];
  tracing: Tracing[];
}

const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';

function isNamespaceWide(t: TelemetryConfig): boolean {
  return Object.keys(t.spec.selector?.matchLabels ?? {}).length === 0 && (t.spec.targetRefs ?? []).length === 0 && t.spec.targetRef === undefined;
}

/** PolicyMatcherForProxy.ShouldAttachPolicy for a sidecar or gateway: selector labels, or a Gateway API Gateway by name. */
function attaches(t: TelemetryConfig, proxy: Proxy): boolean {
  const refs = t.spec.targetRefs ?? (t.spec.targetRef ? [t.spec.targetRef] : []);
  if (refs.length > 0) {
    const gw = proxy.labels[GATEWAY_NAME_LABEL];
    return refs.some(
      (r) =>
        r.kind === 'Gateway' && (r.group ?? 'gateway.networking.k8s.io') === 'gateway.networking.k8s.io' && r.name === gw && (r.namespace ?? t.meta.namespace) === proxy.namespace,
    );
  }
  const sel = t.spec.selector?.matchLabels ?? {};
  return Object.entries(sel).every(([k, v]) => proxy.labels[k] === v);
}

function applicable(snap: MeshSnapshot, proxy: Proxy): Applicable {
  const out: Applicable = { metrics: [], logging: [], tracing: [] };
  const add = (t: TelemetryConfig): void => {
    out.metrics.push(...(t.spec.metrics ?? []));
    if ((t.spec.accessLogging ?? []).length > 0) out.logging.push([...(t.spec.accessLogging ?? [])]);
    out.tracing.push(...(t.spec.tracing ?? []));
  };
  const root = snap.rootNamespace;
  const wide = (ns: string): TelemetryConfig | undefined => (snap.telemetries.get(ns) ?? []).find(isNamespaceWide);
  const r = wide(root);
  if (r) add(r);
  if (proxy.namespace !== root) {
    const n = wide(proxy.namespace);
    if (n) add(n);
  }
  for (const t of snap.telemetries.get(proxy.namespace) ?? []) if (!isNamespaceWide(t) && attaches(t, proxy)) add(t);
  return out;
}

const names = (refs: readonly { name: string }[] | undefined): string[] => (refs ?? []).map((r) => r.name);

// ---- metrics -------------------------------------------------------------------------------

export interface TagOverride {
  name: string;
  remove: boolean;
  value: string;
}

export interface MetricOverride {
  /** The Telemetry name (`REQUEST_COUNT`) or a custom metric. */
  name: string;
  disabled: boolean;
  tags: TagOverride[];
}

export interface MetricsForMode {
  disabled: boolean;
  overrides: MetricOverride[];
}

export interface ProviderMetrics {
  client: MetricsForMode;
  server: MetricsForMode;
  reportingInterval?: string;
}

/** istiod's allMetrics: every IstioMetric but ALL_METRICS, sorted. */
const ALL_METRICS = ISTIO_METRICS.filter((m) => m !== 'ALL_METRICS').sort();

const modes = (m: WorkloadMode | undefined): ('CLIENT' | 'SERVER')[] => (m === 'CLIENT' || m === 'SERVER' ? [m] : ['CLIENT', 'SERVER']);
const isAllMetrics = (o: MetricsOverrides): boolean => o.match?.customMetric === undefined && (o.match?.metric === undefined || o.match.metric === 'ALL_METRICS');
const matches = (o: MetricsOverrides): string[] =>
  o.match?.customMetric !== undefined ? [o.match.customMetric] : o.match?.metric === undefined || o.match.metric === 'ALL_METRICS' ? ALL_METRICS : [o.match.metric];

interface RawOverride {
  disabled?: boolean;
  tags?: Map<string, { operation?: string; value?: string }>;
}

/** istiod's mergeMetrics: provider → client/server overrides. */
export function mergeMetrics(metrics: readonly Metrics[], mesh: TelemetryMesh): Map<string, ProviderMetrics> {
  const providers = new Map<string, Map<'CLIENT' | 'SERVER', Map<string, RawOverride>>>();
  if (metrics.length === 0) for (const dp of mesh.defaultProviders.metrics) providers.set(dp, new Map());
  let providerNames: readonly string[] = mesh.defaultProviders.metrics;
  for (const m of metrics) if (names(m.providers).length > 0) providerNames = names(m.providers);
  const inScope = new Set(providerNames);
  let parent: readonly string[] = mesh.defaultProviders.metrics;
  const disabledAll = new Set<string>();
  const intervals = new Map<string, string>();
  for (const m of metrics) {
    let pn: readonly string[] = names(m.providers);
    if (pn.length === 0) pn = parent;
    parent = pn;
    for (const p of pn) {
      if (!inScope.has(p)) continue;
      if (m.reportingInterval !== undefined) intervals.set(p, m.reportingInterval);
      let mp = providers.get(p);
      if (!mp)
        providers.set(
          p,
          (mp = new Map([
            ['CLIENT', new Map()],
            ['SERVER', new Map()],
          ])),
        );
      for (const o of m.overrides ?? []) {
        if (isAllMetrics(o) && o.disabled === true) {
          for (const mode of modes(o.match?.mode)) disabledAll.add(`${p}/${mode}`);
          continue;
        }
        for (const mode of modes(o.match?.mode)) {
          disabledAll.delete(`${p}/${mode}`);
          let byMetric = mp.get(mode);
          if (!byMetric) mp.set(mode, (byMetric = new Map()));
          for (const metric of matches(o)) {
            const cur: RawOverride = { ...byMetric.get(metric) };
            if (o.disabled !== undefined) cur.disabled = o.disabled;
            for (const [k, v] of Object.entries(o.tagOverrides ?? {})) {
              cur.tags = new Map(cur.tags ?? []);
              cur.tags.set(k, v);
            }
            byMetric.set(metric, cur);
          }
        }
      }
    }
  }
  const out = new Map<string, ProviderMetrics>();
  for (const [p, modeMap] of providers) {
    const pm: ProviderMetrics = { client: { disabled: false, overrides: [] }, server: { disabled: false, overrides: [] } };
    const iv = intervals.get(p);
    if (iv !== undefined) pm.reportingInterval = iv;
    for (const [mode, byMetric] of modeMap) {
      const target = mode === 'CLIENT' ? pm.client : pm.server;
      if (disabledAll.has(`${p}/${mode}`)) {
        target.disabled = true;
        continue;
      }
      for (const [metric, o] of byMetric) {
        const tags = [...(o.tags ?? new Map<string, { operation?: string; value?: string }>())]
          .map(([name, t]) => (t.operation === 'REMOVE' ? { name, remove: true, value: '' } : { name, remove: false, value: t.value ?? '' }))
          .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        target.overrides.push({ name: metric, disabled: o.disabled === true, tags });
      }
    }
    const byName = (a: MetricOverride, b: MetricOverride): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    pm.client.overrides.sort(byName);
    pm.server.overrides.sort(byName);
    out.set(p, pm);
  }
  return out;
}

// ---- access logging ------------------------------------------------------------------------

export interface LoggingSpec {
  disabled: boolean;
  filter?: string;
}

function matchMode(sel: { mode?: WorkloadMode } | undefined, mode: 'CLIENT' | 'SERVER'): boolean {
  return sel?.mode === undefined || sel.mode === 'CLIENT_AND_SERVER' || sel.mode === mode;
}

/** istiod's mergeLogs: provider → filter or disabled. */
export function mergeLogs(logs: readonly (readonly AccessLogging[])[], mesh: TelemetryMesh, mode: 'CLIENT' | 'SERVER'): Map<string, LoggingSpec> {
  const providers = new Map<string, LoggingSpec>();
  if (logs.length === 0) {
    for (const dp of mesh.defaultProviders.accessLogging) providers.set(dp, { disabled: false });
    return providers;
  }
  let providerNames: readonly string[] = mesh.defaultProviders.accessLogging;
  const filters = new Map<string, LoggingSpec>();
  for (const level of logs) {
    const set = new Set<string>();
    for (const l of level) {
      if (!matchMode(l.match, mode)) continue;
      for (const p of names(l.providers)) {
        set.add(p);
        filters.set(p, { disabled: false, ...(l.filter ? { filter: l.filter.expression } : {}) });
      }
    }
    if (set.size > 0) providerNames = [...set];
  }
  const inScope = new Set(providerNames);
  let parent: readonly string[] = mesh.defaultProviders.accessLogging;
  for (const level of logs) {
    for (const l of level) {
      let pn: readonly string[] = names(l.providers);
      if (pn.length === 0) pn = parent;
      parent = pn;
      for (const p of pn) {
        if (!inScope.has(p) || !matchMode(l.match, mode)) continue;
        if (l.disabled === true) {
          providers.set(p, { disabled: true });
          continue;
        }
        providers.set(p, filters.get(p) ?? { disabled: false });
      }
    }
  }
  return providers;
}

// ---- tracing -------------------------------------------------------------------------------

export interface TracingSpec {
  provider?: ExtensionProvider;
  disabled: boolean;
  randomSamplingPercentage?: number;
  customTags?: Readonly<Record<string, CustomTag>>;
  useRequestIdForTraceSampling: boolean;
  enableIstioTags: boolean;
}

/** istiod's Telemetries.Tracing: undefined when neither a Telemetry nor a default provider configures tracing. */
export function mergeTracing(tracing: readonly Tracing[], mesh: TelemetryMesh): { client: TracingSpec; server: TracingSpec } | undefined {
  const dflt = mesh.defaultProviders.tracing;
  if (tracing.length === 0 && dflt.length === 0) return undefined;
  const client: TracingSpec = { disabled: false, useRequestIdForTraceSampling: true, enableIstioTags: true };
  const server: TracingSpec = { disabled: false, useRequestIdForTraceSampling: true, enableIstioTags: true };
  if (dflt.length > 0) {
    const p = findProvider(mesh, dflt[0] as string);
    if (p) client.provider = server.provider = p;
  }
  for (const m of tracing) {
    const specs = m.match?.mode === 'CLIENT' ? [client] : m.match?.mode === 'SERVER' ? [server] : [client, server];
    const n = names(m.providers);
    for (const s of specs) {
      if (n.length > 0) {
        const p = findProvider(mesh, n[0] as string);
        if (p) s.provider = p;
        else delete s.provider;
      }
      if (m.disableSpanReporting !== undefined) s.disabled = m.disableSpanReporting;
      if (m.customTags !== undefined) s.customTags = m.customTags;
      if (m.randomSamplingPercentage !== undefined) s.randomSamplingPercentage = m.randomSamplingPercentage;
      if (m.useRequestIdForTraceSampling !== undefined) s.useRequestIdForTraceSampling = m.useRequestIdForTraceSampling;
      if (m.enableIstioTags !== undefined) s.enableIstioTags = m.enableIstioTags;
    }
  }
  if (!client.provider) client.disabled = true;
  if (!server.provider) server.disabled = true;
  return { client, server };
}

// ---- per proxy -----------------------------------------------------------------------------

export interface ProxyTelemetry {
  metrics: Map<string, ProviderMetrics>;
  /** Telemetry logging levels (empty: none configures logging). */
  logging: AccessLogging[][];
  tracing: { client: TracingSpec; server: TracingSpec } | undefined;
}

/** What applies to this proxy, merged. */
export function proxyTelemetry(snap: MeshSnapshot, proxy: Proxy): ProxyTelemetry {
  const a = applicable(snap, proxy);
  const mesh = snap.telemetryMesh;
  return { metrics: mergeMetrics(a.metrics, mesh), logging: a.logging, tracing: mergeTracing(a.tracing, mesh) };
}

export function workloadMode(c: ListenerClass): 'CLIENT' | 'SERVER' {
  return c === 'inbound' ? 'SERVER' : 'CLIENT';
}
