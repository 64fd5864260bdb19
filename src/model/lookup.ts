/**
 * Per-proxy views of a snapshot, with Istio's scoping rules: exportTo visibility, which
 * VirtualService routes a host, which DestinationRule applies, which Gateways select a proxy.
 * Pure functions of (snapshot, proxy); generators use only these to pick config.
 */
import type { Proxy } from './proxy';
import type { SidecarScope } from './build-sidecar';
import type { OutboundTrafficMode } from './mesh-config';
import { proxyLabels, workloadOf } from './proxy';
import { type DestinationRuleConfig, type GatewayConfig, type Locality, type MeshService, type MeshSnapshot, type VirtualServiceConfig, exportedTo, labelsMatch } from './snapshot';

/** The services a proxy in namespace `ns` sees (sorted by hostname). */
export function visibleServices(snap: MeshSnapshot, ns: string): readonly MeshService[] {
  return snap.servicesVisibleIn.get(ns) ?? snap.publicServices;
}

/**
 * The key of the Sidecar scope a sidecar or proxyless gRPC client is under (istiod's
 * getSidecarScope): the first Sidecar of its namespace whose workloadSelector matches its labels,
 * else its namespace (whose entry, if any, is the namespace's or the root namespace's default
 * Sidecar). Labels are read only where a Sidecar of the namespace selects workloads, so proxies
 * of one namespace share results otherwise. Gateways are never scoped by Sidecars: `''`.
 */
export function sidecarScopeKey(snap: MeshSnapshot, proxy: Proxy): string {
  if (proxy.type === 'router') return '';
  const ns = proxy.namespace;
  const selectors = snap.sidecarSelectors.get(ns);
  if (!selectors) return ns;
  const labels = proxyLabels(proxy, snap);
  return selectors.find((s) => labelsMatch(s.labels, labels))?.key ?? ns;
}

/** The Sidecar scope in effect for a proxy, if a Sidecar applies to it. */
export function sidecarScopeOf(snap: MeshSnapshot, proxy: Proxy): SidecarScope | undefined {
  const key = sidecarScopeKey(snap, proxy);
  return key === '' ? undefined : snap.sidecarScopes.get(key);
}

/**
 * The services a sidecar or proxyless gRPC client gets config for: its Sidecar scope's egress
 * imports, else every service exported to its namespace (sorted by hostname).
 */
export function proxyServices(snap: MeshSnapshot, proxy: Proxy): readonly MeshService[] {
  const key = sidecarScopeKey(snap, proxy);
  return (key === '' ? undefined : snap.sidecarServices.get(key)) ?? visibleServices(snap, proxy.namespace);
}

/** The VirtualService that routes `hostname` for a sidecar or gRPC client, its Sidecar scope applied. */
export function proxyVirtualService(snap: MeshSnapshot, proxy: Proxy, hostname: string): VirtualServiceConfig | undefined {
  return virtualServiceFor(snap, proxy.namespace, hostname, sidecarScopeKey(snap, proxy));
}

/** MeshConfig's outboundTrafficPolicy, unless the proxy's Sidecar sets its own. */
export function proxyOutboundTrafficPolicy(snap: MeshSnapshot, proxy: Proxy): OutboundTrafficMode {
  return sidecarScopeOf(snap, proxy)?.outboundTrafficPolicy ?? snap.outboundTrafficPolicy;
}

/**
 * The VirtualService that routes `hostname` for sidecars and gRPC clients in namespace `ns`
 * (under Sidecar scope `key`, when one applies).
 */
export function virtualServiceFor(snap: MeshSnapshot, ns: string, hostname: string, key = ''): VirtualServiceConfig | undefined {
  const scoped = key === '' ? undefined : snap.sidecarVirtualServices.get(key);
  const own = scoped ?? snap.meshVirtualServicesIn.get(ns);
  const index = own ?? snap.publicMeshVirtualServices;
  const exact = index.get(hostname);
  if (exact) return exact;
  // The most specific wildcard host wins.
  let best: { vs: VirtualServiceConfig; len: number } | undefined;
  const wildcards = scoped ? snap.sidecarVirtualServiceWildcards.get(key) : snap.meshVirtualServiceWildcards.get(own ? ns : '');
  for (const [pattern, vs] of wildcards ?? []) {
    const suffix = pattern.slice(1);
    if ((pattern === '*' || hostname.endsWith(suffix)) && (!best || suffix.length > best.len)) best = { vs, len: suffix.length };
  }
  return best?.vs;
}

function hostRules(snap: MeshSnapshot, hostname: string): readonly DestinationRuleConfig[] {
  const exact = snap.destinationRulesByHost.get(hostname);
  if (exact) return exact;
  // Longest (most specific) wildcard first.
  const pattern = snap.wildcardDestinationRuleHosts.find((p) => p === '*' || hostname.endsWith(p.slice(1)));
  return (pattern !== undefined ? snap.destinationRulesByHost.get(pattern) : undefined) ?? [];
}

/**
 * The DestinationRule for `hostname` as seen by a proxy, in Istio's order: a rule in the proxy's
 * namespace (one whose workloadSelector matches the proxy first), then one exported from the
 * service's namespace, then one exported from the root namespace.
 */
export function destinationRuleFor(snap: MeshSnapshot, proxyNs: string, labels: Readonly<Record<string, string>>, hostname: string): DestinationRuleConfig | undefined {
  const rules = hostRules(snap, hostname);
  if (rules.length === 0) return undefined;
  const local = rules.filter((r) => r.meta.namespace === proxyNs);
  const selected = local.find((r) => r.spec.workloadSelector?.matchLabels && labelsMatch(r.spec.workloadSelector.matchLabels, labels));
  if (selected) return selected;
  const plain = local.find((r) => !r.spec.workloadSelector);
  if (plain) return plain;
  const svcNs = snap.serviceByHost.get(hostname)?.namespace;
  const exported = (ns: string | undefined): DestinationRuleConfig | undefined =>
    ns === undefined ? undefined : rules.find((r) => r.meta.namespace === ns && !r.spec.workloadSelector && exportedTo(r.exportTo, proxyNs));
  return exported(svcNs) ?? exported(snap.rootNamespace);
}

/** Whether any DestinationRule in `ns` has a workloadSelector (then labels pick the rule). */
function hasSelectorRules(snap: MeshSnapshot, ns: string): boolean {
  return snap.memo.get(`dr-selectors|${ns}`, () => snap.destinationRules.some((r) => r.meta.namespace === ns && r.spec.workloadSelector !== undefined));
}

/**
 * `destinationRuleFor` for a proxy, memoised per snapshot: proxies of one namespace (and, where
 * a rule there has a workloadSelector, the same labels) get the same answer.
 */
export function proxyDestinationRule(snap: MeshSnapshot, proxy: Proxy, hostname: string): DestinationRuleConfig | undefined {
  if (snap.destinationRules.length === 0) return undefined;
  const ns = proxy.namespace;
  const scope = destinationRuleScope(snap, proxy);
  // Labels matter only where a rule of the namespace selects workloads (read only then: the
  // engine shares results between proxies by what they read).
  const labels = scope ? proxyLabels(proxy, snap) : {};
  return snap.memo.get(`dr|${ns}|${scope}|${hostname}`, () => destinationRuleFor(snap, ns, labels, hostname));
}

/**
 * What, besides its namespace, decides which DestinationRules a proxy gets: its labels, but only
 * where a rule in its namespace has a workloadSelector. Proxies with equal (namespace, scope)
 * get equal rules.
 */
export function destinationRuleScope(snap: MeshSnapshot, proxy: Proxy): string {
  return hasSelectorRules(snap, proxy.namespace) ? JSON.stringify(Object.entries(proxyLabels(proxy, snap)).sort()) : '';
}

/** istiod's annotation on the Gateways it generates from the Gateway API: the Services (FQDNs, comma-separated) whose pods serve them. */
export const GATEWAY_SERVICE_ANNOTATION = 'internal.istio.io/gateway-service';
const GATEWAY_API_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
/** The label istiod's gateway pods carried before the Gateway API's own. */
const ISTIO_GATEWAY_NAME_LABEL = 'istio.io/gateway-name';

/**
 * A Gateway made from the Gateway API, as istiod matches it (PushContext's gateway-service rule):
 * only proxies in its own namespace, that the gateway's Service selects (`<name>-istio`, or the
 * Services a manual `spec.addresses` names), or that carry its name in
 * `gateway.networking.k8s.io/gateway-name` or the older `istio.io/gateway-name`.
 */
function kubeGatewaySelects(snap: MeshSnapshot, g: GatewayConfig, proxy: Proxy, labels: Readonly<Record<string, string>>): boolean {
  if (g.meta.namespace !== proxy.namespace) return false;
  const selector = g.spec.selector ?? {};
  const name = selector[GATEWAY_API_NAME_LABEL];
  if (name !== undefined && (labels[GATEWAY_API_NAME_LABEL] === name || labels[ISTIO_GATEWAY_NAME_LABEL] === name)) return true;
  for (const host of (g.meta.annotations[GATEWAY_SERVICE_ANNOTATION] ?? '').split(',')) {
    const svc = host ? snap.serviceByHost.get(host) : undefined;
    if (svc && svc.source.kind === 'Service' && svc.namespace === g.meta.namespace && Object.keys(svc.selector).length > 0 && labelsMatch(svc.selector, labels)) return true;
  }
  return false;
}

/**
 * The Gateways whose selector matches a gateway proxy's labels, in any namespace (istiod's
 * default) but the Gateway API's, which select in their own namespace only (kubeGatewaySelects).
 * As in istiod, an empty selector is a subset of every label set: it selects them all.
 */
export function gatewaysFor(snap: MeshSnapshot, proxy: Proxy): GatewayConfig[] {
  const labels = proxyLabels(proxy, snap);
  return snap.gateways.filter((g) =>
    g.meta.annotations['internal.istio.io/gateway-semantics'] === 'gateway' ? kubeGatewaySelects(snap, g, proxy, labels) : labelsMatch(g.spec.selector ?? {}, labels),
  );
}

/** The proxy's locality: from the xDS node, else from its pod's labels. */
export function proxyLocality(proxy: Proxy, snap: MeshSnapshot): Locality {
  if (proxy.locality && (proxy.locality.region || proxy.locality.zone || proxy.locality.subZone)) return proxy.locality;
  return workloadOf(proxy, snap)?.locality ?? {};
}

/** Istio's locality string `region/zone/subzone` (as in WorkloadEntry.locality). */
export function parseLocality(s: string | undefined): Locality {
  if (!s) return {};
  const [region, zone, subZone] = s.split('/');
  const out: Locality = {};
  if (region) out.region = region;
  if (zone) out.zone = zone;
  if (subZone) out.subZone = subZone;
  return out;
}

export function localityString(l: Locality): string {
  return [l.region ?? '', l.zone ?? '', l.subZone ?? ''].join('/').replace(/\/+$/, '');
}

/**
 * istiod's LookupCluster: `<namespace>/<hostname>`, or a hostname of the registry, and a port →
 * the service's hostname and its outbound cluster for that port (no subset).
 */
export function lookupCluster(serviceByHost: ReadonlyMap<string, MeshService>, service: string, port: number): { hostname: string; cluster: string } | undefined {
  if (service === '') return undefined;
  const slash = service.indexOf('/');
  const svc = serviceByHost.get(slash >= 0 ? service.slice(slash + 1) : service);
  if (!svc || (slash >= 0 && svc.namespace !== service.slice(0, slash))) return undefined;
  return { hostname: svc.hostname, cluster: `outbound|${port}||${svc.hostname}` };
}
