/**
 * Sidecar (networking.istio.io) → per-scope views of the mesh, as istiod's SidecarScope: which
 * services (and ports), VirtualServices and outbound traffic policy the proxies a Sidecar applies
 * to see. Computed once per snapshot and keyed by scope, so generators read a proxy's scope as a
 * tracked snapshot entry and proxies under the same scope share results.
 *
 * Scope keys: a namespace name for a namespace's default (its Sidecar without workloadSelector,
 * else the root namespace's; `./` resolves to the proxy's namespace), `namespace/name` for a
 * Sidecar with a workloadSelector. A namespace with neither has no entry: it sees what exportTo
 * lets it see, as istiod's DefaultSidecarScopeForNamespace.
 */
import type { CaptureMode, ConfigError, ConfigObject, SidecarPort, SidecarSpec, VirtualServiceSpec } from './objects';
import { objectError } from './objects';
import type { OutboundTrafficMode } from './mesh-config';
import { type Protocol, parseProtocol } from './protocol';
import { isMeshBound, meshIndex } from './build-routing';
import { type MeshService, type ServicePort, type VirtualServiceConfig, exportedTo, resolveHost } from './snapshot';

export interface SidecarListenerPort {
  number: number;
  protocol: Protocol;
  name: string;
  /** Protocol HTTP_PROXY: a generic egress HTTP proxy port, which imports services whatever their ports. */
  httpProxy?: true;
}

export interface SidecarEgressListener {
  port?: SidecarListenerPort;
  bind?: string;
  captureMode: CaptureMode;
  /** spec hosts, `./` resolved to the scope's namespace. */
  hosts: readonly string[];
  /** Hostnames of the services this listener imports (ports trimmed to `port` when set). */
  services: readonly string[];
}

export interface SidecarIngressListener {
  port: SidecarListenerPort;
  bind?: string;
  captureMode: CaptureMode;
  defaultEndpoint?: string;
  tls?: Readonly<Record<string, unknown>>;
}

export interface SidecarScope {
  /** `namespace/name` of the Sidecar in effect. */
  sidecar: string;
  /** The namespace the scope is computed for (`./` in egress hosts). */
  namespace: string;
  egress: readonly SidecarEgressListener[];
  ingress: readonly SidecarIngressListener[];
  /** The Sidecar's outboundTrafficPolicy, else MeshConfig's. */
  outboundTrafficPolicy: OutboundTrafficMode;
}

/** A Sidecar with a workloadSelector, in istiod's order of precedence within its namespace. */
export interface SidecarSelector {
  key: string;
  labels: Readonly<Record<string, string>>;
}

export interface SidecarScoping {
  sidecarScopes: Map<string, SidecarScope>;
  sidecarSelectors: Map<string, SidecarSelector[]>;
  sidecarServices: Map<string, MeshService[]>;
  sidecarVirtualServices: Map<string, Map<string, VirtualServiceConfig>>;
  sidecarVirtualServiceWildcards: Map<string, [string, VirtualServiceConfig][]>;
}

export interface SidecarInputs {
  namespaces: ReadonlySet<string>;
  rootNamespace: string;
  domain: string;
  outboundTrafficPolicy: OutboundTrafficMode;
  servicesVisibleIn: ReadonlyMap<string, readonly MeshService[]>;
  publicServices: readonly MeshService[];
  serviceByHost: ReadonlyMap<string, MeshService>;
  virtualServices: readonly VirtualServiceConfig[];
}

/** Istio's host.Name.SubsetOf: every name `h` stands for is one `pattern` stands for. */
export function hostSubsetOf(h: string, pattern: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) return h.endsWith(pattern.slice(1)) && (!h.startsWith('*') || h.length >= pattern.length);
  return h === pattern;
}

/** Istio's host.Name.Matches: the two (possibly wildcard) names overlap. */
function hostsOverlap(a: string, b: string): boolean {
  if (a === '*' || b === '*') return true;
  const aw = a.startsWith('*');
  const bw = b.startsWith('*');
  if (!aw && !bw) return a === b;
  if (aw && bw) return a.length >= b.length ? a.endsWith(b.slice(1)) : b.endsWith(a.slice(1));
  return aw ? b.endsWith(a.slice(1)) : a.endsWith(b.slice(1));
}

function creationTime(o: ConfigObject): string {
  const meta = o.body['metadata'];
  const t = meta && typeof meta === 'object' ? (meta as Record<string, unknown>)['creationTimestamp'] : undefined;
  // Objects without a time (files) sort after those with one, then by name.
  return typeof t === 'string' ? t : '~';
}

function listenerPort(p: SidecarPort | undefined): SidecarListenerPort | undefined {
  if (!p) return undefined;
  const httpProxy = (p.protocol ?? '').toUpperCase() === 'HTTP_PROXY';
  return { number: p.number ?? 0, protocol: httpProxy ? 'HTTP' : parseProtocol(p.protocol), name: p.name ?? '', ...(httpProxy ? { httpProxy } : {}) };
}

/** Hosts of an egress listener by namespace (`.` → the scope's namespace). */
function hostsByNamespace(hosts: readonly string[], namespace: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const h of hosts) {
    const slash = h.indexOf('/');
    if (slash < 0) continue;
    let ns = h.slice(0, slash);
    if (ns === '.') ns = namespace;
    const list = out.get(ns) ?? [];
    list.push(h.slice(slash + 1));
    out.set(ns, list);
  }
  return out;
}

function trimToPort(svc: MeshService, port: SidecarListenerPort | undefined): MeshService | undefined {
  // A listener on a port imports only that port of a service (HTTP_PROXY listeners excepted).
  if (!port || port.number === 0 || port.httpProxy) return svc;
  const p = svc.ports.find((x) => x.port === port.number);
  return p ? { ...svc, ports: [p] } : undefined;
}

function destinationHosts(spec: VirtualServiceSpec): string[] {
  const out: string[] = [];
  for (const r of spec.http ?? []) {
    for (const d of r.route ?? []) out.push(d.destination.host);
    if (r.mirror) out.push(r.mirror.host);
    for (const m of r.mirrors ?? []) out.push(m.destination.host);
  }
  for (const r of spec.tcp ?? []) for (const d of r.route ?? []) out.push(d.destination.host);
  for (const r of spec.tls ?? []) for (const d of r.route ?? []) out.push(d.destination.host);
  return out;
}

interface Computed {
  scope: SidecarScope;
  services: MeshService[];
  virtualServices: VirtualServiceConfig[];
}

function convert(o: ConfigObject, namespace: string, inputs: SidecarInputs): Computed {
  const spec = (o.body['spec'] ?? {}) as SidecarSpec;
  const visible = inputs.servicesVisibleIn.get(namespace) ?? inputs.publicServices;
  const meshVs = inputs.virtualServices.filter((vs) => isMeshBound(vs) && vs.hosts.length > 0 && (vs.meta.namespace === namespace || exportedTo(vs.exportTo, namespace)));
  const egressSpecs = spec.egress && spec.egress.length > 0 ? spec.egress : [{ hosts: ['*/*'] }];
  const added = new Map<string, MeshService>();
  const order: string[] = [];
  const add = (svc: MeshService | undefined): void => {
    if (!svc) return;
    const found = added.get(svc.hostname);
    if (!found) {
      added.set(svc.hostname, svc);
      order.push(svc.hostname);
      return;
    }
    // Listeners that import parts of one service merge its ports.
    const ports: ServicePort[] = [...found.ports];
    for (const p of svc.ports) if (!ports.some((x) => x.port === p.port)) ports.push(p);
    if (ports.length !== found.ports.length) added.set(svc.hostname, { ...found, ports });
  };
  const selectedVs = new Set<VirtualServiceConfig>();
  const egress: SidecarEgressListener[] = [];
  for (const e of egressSpecs) {
    const port = listenerPort(e.port);
    const hosts = e.hosts.map((h) => (h.startsWith('./') ? `${namespace}/${h.slice(2)}` : h));
    const byNs = hostsByNamespace(e.hosts, namespace);
    const wildcard = byNs.get('*');
    const matches = (svc: MeshService, patterns: readonly string[]): boolean => patterns.some((p) => hostSubsetOf(svc.hostname, p));
    const imported: MeshService[] = [];
    for (const svc of visible) {
      const own = byNs.get(svc.namespace);
      const ok = own ? matches(svc, own) : wildcard ? matches(svc, wildcard) : false;
      if (!ok) continue;
      const t = trimToPort(svc, port);
      if (t) imported.push(t);
    }
    for (const svc of imported) add(svc);
    // VirtualServices whose hosts this listener imports, and the services they route to.
    const listenerVs = meshVs.filter((vs) => {
      const patterns = [...(byNs.get(vs.meta.namespace) ?? []), ...(wildcard ?? [])];
      return vs.hosts.some((h) => patterns.some((p) => hostsOverlap(h, p)));
    });
    for (const vs of listenerVs) {
      selectedVs.add(vs);
      for (const h of destinationHosts(vs.spec)) {
        const svc = inputs.serviceByHost.get(resolveHost(h, vs.meta.namespace, inputs.domain));
        if (svc && (svc.namespace === namespace || exportedTo(svc.exportTo, namespace))) add(trimToPort(svc, port));
      }
    }
    egress.push({
      ...(port ? { port } : {}),
      ...(e.bind ? { bind: e.bind } : {}),
      captureMode: e.captureMode ?? 'DEFAULT',
      hosts,
      services: imported.map((s) => s.hostname),
    });
  }
  const ingress: SidecarIngressListener[] = (spec.ingress ?? []).map((l) => ({
    port: listenerPort(l.port) ?? { number: 0, protocol: 'TCP', name: '' },
    ...(l.bind ? { bind: l.bind } : {}),
    captureMode: l.captureMode ?? 'DEFAULT',
    ...(l.defaultEndpoint ? { defaultEndpoint: l.defaultEndpoint } : {}),
    ...(l.tls ? { tls: l.tls as Readonly<Record<string, unknown>> } : {}),
  }));
  const services = order
    .map((h) => added.get(h))
    .filter((s): s is MeshService => s !== undefined)
    .sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
  return {
    scope: {
      sidecar: `${o.metadata.namespace}/${o.metadata.name}`,
      namespace,
      egress,
      ingress,
      outboundTrafficPolicy: spec.outboundTrafficPolicy?.mode ?? inputs.outboundTrafficPolicy,
    },
    services,
    virtualServices: meshVs.filter((vs) => selectedVs.has(vs)),
  };
}

export function buildSidecarScoping(sidecars: readonly ConfigObject[], inputs: SidecarInputs, errors: ConfigError[]): SidecarScoping {
  const out: SidecarScoping = {
    sidecarScopes: new Map(),
    sidecarSelectors: new Map(),
    sidecarServices: new Map(),
    sidecarVirtualServices: new Map(),
    sidecarVirtualServiceWildcards: new Map(),
  };
  // istiod's order: oldest first (creationTimestamp), then name.
  const ordered = [...sidecars].sort((a, b) => {
    const ta = creationTime(a);
    const tb = creationTime(b);
    if (ta !== tb) return ta < tb ? -1 : 1;
    return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
  });
  const defaults = new Map<string, ConfigObject>();
  const withSelector: ConfigObject[] = [];
  for (const o of ordered) {
    const spec = (o.body['spec'] ?? {}) as SidecarSpec;
    const labels = spec.workloadSelector?.labels ?? {};
    if (Object.keys(labels).length > 0) {
      withSelector.push(o);
      continue;
    }
    const ns = o.metadata.namespace;
    const first = defaults.get(ns);
    if (first) {
      errors.push(
        objectError(o, [
          {
            path: 'spec.workloadSelector',
            message: `namespace ${ns} already has a Sidecar without workloadSelector (${first.metadata.name}, the oldest, applies); this one is ignored`,
          },
        ]),
      );
      continue;
    }
    defaults.set(ns, o);
  }
  const record = (key: string, c: Computed): void => {
    out.sidecarScopes.set(key, c.scope);
    out.sidecarServices.set(key, c.services);
    const index = meshIndex(c.virtualServices, c.scope.namespace);
    out.sidecarVirtualServices.set(key, index);
    out.sidecarVirtualServiceWildcards.set(
      key,
      [...index].filter(([h]) => h.startsWith('*')),
    );
  };
  const root = defaults.get(inputs.rootNamespace);
  for (const ns of [...inputs.namespaces].sort()) {
    const o = defaults.get(ns) ?? root;
    if (o) record(ns, convert(o, ns, inputs));
  }
  for (const o of withSelector) {
    const ns = o.metadata.namespace;
    const key = `${ns}/${o.metadata.name}`;
    record(key, convert(o, ns, inputs));
    const list = out.sidecarSelectors.get(ns) ?? [];
    list.push({ key, labels: ((o.body['spec'] ?? {}) as SidecarSpec).workloadSelector?.labels ?? {} });
    out.sidecarSelectors.set(ns, list);
  }
  return out;
}
