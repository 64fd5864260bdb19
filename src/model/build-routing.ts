/**
 * The routing part of a snapshot: VirtualServices indexed per namespace (exportTo, own
 * namespace first), DestinationRules merged per host/namespace/selector, Gateways, and the TLS
 * material of Secrets.
 */
import type { ConfigError, ConfigObject, DestinationRuleSpec, GatewaySpec, ObjectMeta, SecretBody, VirtualServiceSpec } from './objects';
import { objectError } from './objects';
import { expandDelegates } from './delegate';
import type { Kinds } from './build-services';
import { type CredentialSecret, type DestinationRuleConfig, type GatewayConfig, type VirtualServiceConfig, exportedTo, resolveExportTo, resolveHost } from './snapshot';

export interface Routing {
  virtualServices: VirtualServiceConfig[];
  meshVirtualServicesIn: Map<string, Map<string, VirtualServiceConfig>>;
  publicMeshVirtualServices: Map<string, VirtualServiceConfig>;
  meshVirtualServiceWildcards: Map<string, [string, VirtualServiceConfig][]>;
  destinationRules: DestinationRuleConfig[];
  destinationRulesByHost: Map<string, DestinationRuleConfig[]>;
  wildcardDestinationRuleHosts: string[];
  gateways: GatewayConfig[];
  gatewayByKey: Map<string, GatewayConfig>;
  secrets: Map<string, CredentialSecret>;
}

function gatewayKey(name: string, namespace: string): string {
  return name === 'mesh' || name.includes('/') ? name : `${namespace}/${name}`;
}

export function isMeshBound(vs: VirtualServiceConfig): boolean {
  return vs.gateways.length === 0 || vs.gateways.includes('mesh');
}

/** Generated from a Gateway API route (istiod's `internal.istio.io/route-semantics: gateway`). */
export function hasGatewaySemantics(vs: VirtualServiceConfig): boolean {
  return vs.meta.annotations['internal.istio.io/route-semantics'] === 'gateway';
}

/**
 * host → VirtualService for proxies in `ns`: routes of the Gateway API first (they take
 * precedence over VirtualServices for the same host, as in Istio), then VirtualServices in `ns`,
 * then the rest in order.
 */
export function meshIndex(list: readonly VirtualServiceConfig[], ns: string | undefined): Map<string, VirtualServiceConfig> {
  const index = new Map<string, VirtualServiceConfig>();
  const byNs = (l: readonly VirtualServiceConfig[]): VirtualServiceConfig[] =>
    ns === undefined ? [...l] : [...l.filter((v) => v.meta.namespace === ns), ...l.filter((v) => v.meta.namespace !== ns)];
  const ordered = [...byNs(list.filter(hasGatewaySemantics)), ...byNs(list.filter((v) => !hasGatewaySemantics(v)))];
  for (const vs of ordered) {
    const visible = ns === undefined ? vs.exportTo.includes('*') : vs.meta.namespace === ns || exportedTo(vs.exportTo, ns);
    if (!visible) continue;
    for (const h of vs.hosts) if (!index.has(h)) index.set(h, vs);
  }
  return index;
}

function virtualServices(
  kind: Kinds,
  domain: string,
  namespaces: ReadonlySet<string>,
  errors: ConfigError[],
  exportDefault: readonly string[],
): Pick<Routing, 'virtualServices' | 'meshVirtualServicesIn' | 'publicMeshVirtualServices' | 'meshVirtualServiceWildcards'> {
  const objects = new Map<ObjectMeta, ConfigObject>();
  const raw: VirtualServiceConfig[] = [];
  for (const o of kind('VirtualService')) {
    const spec = (o.body.spec ?? {}) as VirtualServiceSpec;
    const ns = o.metadata.namespace;
    const vs: VirtualServiceConfig = {
      meta: o.metadata,
      spec,
      hosts: (spec.hosts ?? []).map((h) => resolveHost(h, ns, domain)),
      gateways: (spec.gateways ?? []).map((g) => gatewayKey(g, ns)),
      exportTo: resolveExportTo(spec.exportTo, ns, exportDefault),
    };
    raw.push(vs);
    objects.set(o.metadata, o);
  }
  const list = expandDelegates(raw, errors, (vs) => objects.get(vs.meta));
  const mesh = list.filter((vs) => isMeshBound(vs) && vs.hosts.length > 0);
  // Two mesh VirtualServices for one host: proxies use the one in their own namespace, else
  // the first by namespace/name.
  const claimed = new Map<string, VirtualServiceConfig>();
  for (const vs of mesh) {
    vs.hosts.forEach((h, i) => {
      const first = claimed.get(h);
      if (!first) {
        claimed.set(h, vs);
        return;
      }
      // Across namespaces each wins in its own; within one namespace the later one never applies.
      const o = objects.get(vs.meta);
      if (o && first.meta.namespace === vs.meta.namespace) {
        errors.push(
          objectError(o, [
            { path: `spec.hosts[${i}]`, message: `host "${h}" is already routed by VirtualService ${first.meta.namespace}/${first.meta.name}; this one is ignored for that host` },
          ]),
        );
      }
    });
  }
  const meshVirtualServicesIn = new Map<string, Map<string, VirtualServiceConfig>>();
  for (const ns of namespaces) meshVirtualServicesIn.set(ns, meshIndex(mesh, ns));
  const publicMeshVirtualServices = meshIndex(mesh, undefined);
  // The wildcard hosts of each index, apart: a lookup that finds no exact host scans these alone.
  const meshVirtualServiceWildcards = new Map<string, [string, VirtualServiceConfig][]>();
  const wildcards = (index: Map<string, VirtualServiceConfig>): [string, VirtualServiceConfig][] => [...index].filter(([h]) => h.startsWith('*'));
  for (const [ns, index] of meshVirtualServicesIn) meshVirtualServiceWildcards.set(ns, wildcards(index));
  meshVirtualServiceWildcards.set('', wildcards(publicMeshVirtualServices));
  return { virtualServices: list, meshVirtualServicesIn, publicMeshVirtualServices, meshVirtualServiceWildcards };
}

/** Istio's DestinationRule merge: same host, namespace and selector → one rule; the first keeps its policy. */
function destinationRules(
  kind: Kinds,
  domain: string,
  errors: ConfigError[],
  exportDefault: readonly string[],
): Pick<Routing, 'destinationRules' | 'destinationRulesByHost' | 'wildcardDestinationRuleHosts'> {
  const merged = new Map<string, DestinationRuleConfig>();
  const order: DestinationRuleConfig[] = [];
  for (const o of kind('DestinationRule')) {
    const spec = (o.body.spec ?? {}) as DestinationRuleSpec;
    const ns = o.metadata.namespace;
    const host = resolveHost(spec.host, ns, domain);
    const selector = spec.workloadSelector?.matchLabels;
    const key = `${ns}|${host}|${selector ? JSON.stringify(Object.entries(selector).sort()) : ''}`;
    const first = merged.get(key);
    if (!first) {
      const dr: DestinationRuleConfig = { meta: o.metadata, spec, host, exportTo: resolveExportTo(spec.exportTo, ns, exportDefault), sources: [`${ns}/${o.metadata.name}`] };
      merged.set(key, dr);
      order.push(dr);
      continue;
    }
    const problems: { path: string; message: string }[] = [];
    const by = `DestinationRule ${first.meta.namespace}/${first.meta.name}`;
    if (spec.trafficPolicy && first.spec.trafficPolicy)
      problems.push({
        path: 'spec.trafficPolicy',
        message: `ignored: ${by} already sets the traffic policy for host "${host}" (rules for one host merge; the first keeps its policy)`,
      });
    const names = new Set((first.spec.subsets ?? []).map((s) => s.name));
    const added = (spec.subsets ?? []).filter((s, i) => {
      if (!names.has(s.name)) return true;
      problems.push({ path: `spec.subsets[${i}].name`, message: `ignored: subset "${s.name}" is already defined by ${by} for host "${host}"` });
      return false;
    });
    if (problems.length > 0) errors.push(objectError(o, problems));
    const next: DestinationRuleConfig = {
      ...first,
      spec: { ...first.spec, trafficPolicy: first.spec.trafficPolicy ?? spec.trafficPolicy, subsets: [...(first.spec.subsets ?? []), ...added] },
      sources: [...first.sources, `${ns}/${o.metadata.name}`],
    };
    merged.set(key, next);
    order[order.indexOf(first)] = next;
  }
  const destinationRulesByHost = new Map<string, DestinationRuleConfig[]>();
  for (const dr of order) {
    const list = destinationRulesByHost.get(dr.host) ?? [];
    list.push(dr);
    destinationRulesByHost.set(dr.host, list);
  }
  const wildcardDestinationRuleHosts = [...destinationRulesByHost.keys()].filter((h) => h.startsWith('*')).sort((a, b) => b.length - a.length);
  return { destinationRules: order, destinationRulesByHost, wildcardDestinationRuleHosts };
}

function decode(data: Record<string, string> | undefined, stringData: Record<string, string> | undefined, keys: readonly string[]): string | undefined {
  for (const k of keys) {
    const s = stringData?.[k];
    if (s !== undefined) return s;
    const b = data?.[k];
    if (b !== undefined) return Buffer.from(b, 'base64').toString('utf8');
  }
  return undefined;
}

/** TLS material from Secrets: `tls.crt`/`tls.key`/`ca.crt` or Istio's generic `cert`/`key`/`cacert`. */
function secrets(kind: Kinds): Map<string, CredentialSecret> {
  const out = new Map<string, CredentialSecret>();
  for (const o of kind('Secret')) {
    const body = o.body as SecretBody;
    const certChain = decode(body.data, body.stringData, ['tls.crt', 'cert']);
    const privateKey = decode(body.data, body.stringData, ['tls.key', 'key']);
    const caCert = decode(body.data, body.stringData, ['ca.crt', 'cacert']);
    if (certChain === undefined && privateKey === undefined && caCert === undefined) continue;
    out.set(`${o.metadata.namespace}/${o.metadata.name}`, {
      namespace: o.metadata.namespace,
      name: o.metadata.name,
      ...(certChain !== undefined ? { certChain } : {}),
      ...(privateKey !== undefined ? { privateKey } : {}),
      ...(caCert !== undefined ? { caCert } : {}),
    });
  }
  return out;
}

/** MeshConfig's default exportTo of VirtualServices and DestinationRules (unset: `*`). */
export interface RoutingDefaults {
  virtualServiceExportTo: readonly string[];
  destinationRuleExportTo: readonly string[];
}

export function buildRouting(
  kind: Kinds,
  domain: string,
  namespaces: ReadonlySet<string>,
  errors: ConfigError[],
  defaults: RoutingDefaults = { virtualServiceExportTo: ['*'], destinationRuleExportTo: ['*'] },
): Routing {
  const gateways: GatewayConfig[] = kind('Gateway').map((o) => ({
    meta: o.metadata,
    spec: (o.body.spec ?? { servers: [] }) as GatewaySpec,
    key: `${o.metadata.namespace}/${o.metadata.name}`,
  }));
  return {
    ...virtualServices(kind, domain, namespaces, errors, defaults.virtualServiceExportTo),
    ...destinationRules(kind, domain, errors, defaults.destinationRuleExportTo),
    gateways,
    gatewayByKey: new Map(gateways.map((g) => [g.key, g])),
    secrets: secrets(kind),
  };
}
