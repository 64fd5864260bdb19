/**
 * Validated objects → MeshSnapshot. Pure: no I/O, no clock (the caller passes the time),
 * per-object problems are collected, never thrown.
 */
import { createHash } from 'node:crypto';
import type { ConfigError, ConfigObject } from './objects';
import { buildRouting } from './build-routing';
import { buildRequestAuthn } from './build-reqauthn';
import { buildSecurity } from './build-security';
import { resolveExtAuthz } from './ext-authz';
import { lookupCluster } from './lookup';
import { buildTelemetries } from './build-telemetry';
import { buildWasmPlugins } from './build-wasm';
import { buildEnvoyFilters } from './build-envoyfilter';
import { buildProxyConfigs } from './proxy-config';
import { workloadGroupOf } from './workload-group';
import type { JwksEntry } from './jwks';
import { SnapshotMemo } from './memo';
import { share } from './intern';
import { type Kinds, buildEndpoints, buildServices, buildWorkloads } from './build-services';
import { BuildCache } from './build-cache';
import { trustDomainBundle } from './trust-domain';
import { type MeshConfigText, buildMesh } from './build-mesh';
import { meshConfigView } from './mesh-config';
import { buildSidecarScoping } from './build-sidecar';
import { configMapCAs } from '../gatewayapi/backend-tls';
import { convertGatewayApi } from '../gatewayapi/convert';
import { DEFAULT_ROOT_NAMESPACE, type MeshService, type MeshSnapshot, type ServiceEndpoint, exportedTo } from './snapshot';

export interface BuildInput {
  objects: readonly ConfigObject[];
  /** Problems found before building (parse and validation errors). */
  errors: readonly ConfigError[];
  sequence: number;
  now: Date;
  domain: string;
  /**
   * The SPIFFE trust domain of the mesh (default cluster.local) and its aliases: defaults of the
   * MeshConfig (meshd's flags); a MeshConfig `trustDomain` replaces the first, its aliases add up.
   */
  trustDomain?: string;
  trustDomainAliases?: readonly string[];
  /** Istio's config root namespace when the MeshConfig sets none (default istio-system). */
  rootNamespace?: string;
  /** The MeshConfig text and where it came from; none: istiod's defaults. */
  mesh?: MeshConfigText;
  /**
   * The snapshot being replaced: every part of the new one that equals its counterpart there is
   * taken from it (model/intern.ts), so unchanged parts keep their identity across snapshots.
   */
  previous?: MeshSnapshot;
  /** Per-object content digests, kept across builds by the caller (by object identity). */
  digests?: WeakMap<ConfigObject, string>;
  /**
   * Remote JWKS as the JWKS resolver fetched them, by source key (model/jwks.ts). Fetching is
   * I/O and happens outside; the snapshot only holds what was fetched, so a changed key set is a
   * snapshot change like any other. Undefined: nothing fetches (remote sources get no keys).
   */
  jwks?: ReadonlyMap<string, JwksEntry>;
  /** `--envoy-filter-allowed-types`: the only filter types EnvoyFilter patches may insert (empty: any). */
  envoyFilterAllowedTypes?: readonly string[];
  /**
   * What the last build kept for this one (model/build-cache.ts): stages whose inputs are the
   * same are not run again. One cache serves one line of builds, each from the one before.
   */
  cache?: BuildCache;
}

function byKey(a: ConfigObject, b: ConfigObject): number {
  const ka = `${a.metadata.namespace}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    if (value instanceof Map) {
      for (const v of value.values()) deepFreeze(v);
    } else {
      for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
    }
  }
  return value;
}

export function buildSnapshot(input: BuildInput): MeshSnapshot {
  const { domain } = input;
  const errors: ConfigError[] = [...input.errors];
  const byKind = new Map<string, ConfigObject[]>();
  for (const o of input.objects) {
    const list = byKind.get(o.kind) ?? [];
    list.push(o);
    byKind.set(o.kind, list);
  }
  for (const list of byKind.values()) list.sort(byKey);
  // Without a cache every stage runs; with one, a stage whose inputs are the same is not run again.
  const cache = input.cache ?? new BuildCache();
  const kind = cache.begin(byKind);
  const stage = <T>(name: string, given: readonly unknown[], compute: (k: Kinds, e: ConfigError[]) => T): T => cache.stage(name, kind, given, errors, compute);

  const namespaces0 = new Set<string>(['default']);
  for (const ns of kind('Namespace')) namespaces0.add(ns.metadata.name);
  for (const o of input.objects) if (o.metadata.namespace) namespaces0.add(o.metadata.namespace);
  const namespaces = share(input.previous?.namespaces, namespaces0);

  const namespaceLabels = stage('namespaceLabels', [], (k) => new Map(k('Namespace').map((n) => [n.metadata.name, n.metadata.labels] as const)));
  const mesh = stage('mesh', [input.mesh?.source, input.mesh?.text, input.trustDomain, input.trustDomainAliases ?? [], input.previous?.meshConfig], (_k, e) =>
    buildMesh(input.mesh, { trustDomain: input.trustDomain, trustDomainAliases: input.trustDomainAliases }, input.previous?.meshConfig, e),
  );
  const meshConfig = mesh.meshConfig;
  const workloads = stage('workloads', [], (k) => buildWorkloads(k));
  const serviceSet = stage('services', [domain, meshConfig.defaultServiceExportTo], (k, e) => buildServices(k, domain, e, meshConfig.defaultServiceExportTo));
  // One service's endpoints are rebuilt only when its own objects (or the pods) changed.
  const endpoints = stage('endpoints', [domain, serviceSet, workloads], (k) =>
    buildEndpoints(k, domain, serviceSet, workloads, (host, given, compute) => cache.byKey('endpoints', host, given, compute)),
  );
  const registry = { ...workloads, services: serviceSet.services, serviceByHost: serviceSet.serviceByHost, endpoints };
  // The Gateway API, as istiod does it: converted into Istio VirtualServices and Gateways (GAMMA routes first).
  const gatewayApi = stage('gatewayApi', [domain, namespaceLabels, registry.serviceByHost], (k, e) =>
    convertGatewayApi(k, { domain, namespaceLabels, services: registry.serviceByHost }, e),
  );
  const routing = stage('routing', [domain, namespaces, meshConfig.defaultVirtualServiceExportTo, meshConfig.defaultDestinationRuleExportTo, gatewayApi], (k, e) => {
    const routingKind = (name: string): readonly ConfigObject[] =>
      name === 'VirtualService'
        ? [...gatewayApi.virtualServices, ...k(name)]
        : name === 'Gateway'
          ? [...k(name), ...gatewayApi.gateways]
          : name === 'DestinationRule'
            ? [...k(name), ...gatewayApi.destinationRules]
            : k(name);
    return buildRouting(routingKind, domain, namespaces, e, {
      virtualServiceExportTo: meshConfig.defaultVirtualServiceExportTo,
      destinationRuleExportTo: meshConfig.defaultDestinationRuleExportTo,
    });
  });
  const trustDomains = stage('trustDomains', [meshConfig.trustDomain, meshConfig.trustDomainAliases], () =>
    trustDomainBundle(meshConfig.trustDomain, meshConfig.trustDomainAliases),
  );
  const meshSetsRoot = input.mesh !== undefined && meshConfig.rootNamespace !== DEFAULT_ROOT_NAMESPACE;
  const rootNamespace = meshSetsRoot ? meshConfig.rootNamespace : (input.rootNamespace ?? meshConfig.rootNamespace);
  const extAuthz = stage('extAuthz', [mesh.telemetryMesh.providers, registry.serviceByHost], () =>
    resolveExtAuthz(mesh.telemetryMesh.providers, (service, port) => lookupCluster(registry.serviceByHost, service, port)),
  );
  const security = stage('security', [trustDomains, extAuthz, rootNamespace], (k, e) => buildSecurity(k, e, trustDomains, extAuthz, rootNamespace));
  const reqAuthn = stage('requestAuthn', [input.jwks], (k, e) => buildRequestAuthn(k, input.jwks, e));
  const telemetries = stage('telemetries', [], (k) => buildTelemetries(k));
  const wasmPlugins = stage('wasmPlugins', [], (k) => buildWasmPlugins(k));
  const envoyFilters = stage('envoyFilters', [input.envoyFilterAllowedTypes ?? []], (k, e) => buildEnvoyFilters(k, e, input.envoyFilterAllowedTypes));
  const proxyConfigs = stage('proxyConfigs', [], (k) => buildProxyConfigs(k('ProxyConfig')));
  const workloadGroups = stage('workloadGroups', [], (k) => new Map(k('WorkloadGroup').map((o) => [`${o.metadata.namespace}/${o.metadata.name}`, workloadGroupOf(o)] as const)));

  // exportTo: one list per namespace, shared when nothing restricts visibility.
  const { publicServices, servicesVisibleIn } = stage('visibility', [registry.services, namespaces], () => {
    const publicServices = registry.services.filter((s) => s.exportTo.includes('*'));
    const restricted = registry.services.length !== publicServices.length;
    const servicesVisibleIn = new Map<string, MeshService[]>();
    for (const ns of namespaces) {
      servicesVisibleIn.set(ns, restricted ? registry.services.filter((s) => s.namespace === ns || exportedTo(s.exportTo, ns)) : publicServices);
    }
    return { publicServices, servicesVisibleIn };
  });

  const sidecarScoping = stage(
    'sidecarScoping',
    [namespaces, rootNamespace, domain, mesh.outboundTrafficPolicy, servicesVisibleIn, publicServices, registry.serviceByHost, routing.virtualServices],
    (k, e) =>
      buildSidecarScoping(
        k('Sidecar'),
        {
          namespaces,
          rootNamespace,
          domain,
          outboundTrafficPolicy: mesh.outboundTrafficPolicy,
          servicesVisibleIn,
          publicServices,
          serviceByHost: registry.serviceByHost,
          virtualServices: routing.virtualServices,
        },
        e,
      ),
  );

  const serviceAccountsByHost = stage('serviceAccounts', [registry.endpoints, registry.serviceByHost], () => {
    const out = new Map<string, string[]>();
    for (const [host, byPort] of registry.endpoints) {
      const svcNs = registry.serviceByHost.get(host)?.namespace ?? '';
      const ids = cache.byKey('serviceAccounts', host, [byPort, svcNs], () => serviceAccountsOf(byPort, svcNs));
      if (ids.length > 0) out.set(host, ids);
    }
    return out;
  });

  const counts: Record<string, number> = {};
  for (const [k, list] of byKind) counts[k] = list.length;

  // The content hash: each object's own digest is kept by identity (sources keep unchanged
  // objects), and each kind's hash while its objects are the same, so a change costs a hash of
  // the changed objects and of their kind.
  const digests = input.digests ?? new WeakMap<ConfigObject, string>();
  const hash = createHash('sha256');
  for (const k of [...byKind.keys()].sort()) {
    const list = kind(k);
    const h = cache.byKey('kindHash', k, [list], () => {
      const kh = createHash('sha256');
      for (const o of list) {
        let d = digests.get(o);
        if (d === undefined) {
          d = createHash('sha256').update(JSON.stringify(o.body)).digest('base64');
          digests.set(o, d);
        }
        kh.update(byKeyStr(o)).update('\0').update(d).update('\0');
      }
      return kh.digest('base64');
    });
    hash.update(k).update('\0').update(h).update('\0');
  }
  // Fetched key sets are content too: a refreshed JWKS is a new version.
  for (const [key, e] of reqAuthn.jwks) hash.update(`jwks\0${key}\0${e.keys ?? ''}\0${e.error ?? ''}`);
  // So is the MeshConfig in effect.
  hash.update(`mesh\0${JSON.stringify(meshConfigView(meshConfig))}`);
  const configMapCAsByName = stage('configMapCAs', [], (k) => configMapCAs(k('ConfigMap')));
  cache.end();

  const fields = {
    version: `${input.sequence}-${hash.digest('hex').slice(0, 12)}`,
    builtAt: input.now.toISOString(),
    domain,
    trustDomains,
    rootNamespace,
    ...mesh,
    namespaces,
    namespaceLabels,
    ...registry,
    servicesVisibleIn,
    publicServices,
    serviceAccountsByHost,
    ...routing,
    ...sidecarScoping,
    security,
    requestAuthentications: reqAuthn.requestAuthentications,
    telemetries,
    wasmPlugins,
    envoyFilters,
    proxyConfigs,
    workloadGroups,
    gatewayApiStatuses: gatewayApi.statuses,
    gatewayCredentialGrants: gatewayApi.credentialGrants,
    configMapCAs: configMapCAsByName,
    jwks: reqAuthn.jwks,
    errors,
    counts,
  };
  const snapshot = deepFreeze(input.previous ? shareFields(input.previous, fields) : fields);
  // The memo fills in as proxies are served; it is the one part of a snapshot that is not frozen.
  return Object.freeze({ ...snapshot, memo: new SnapshotMemo() });
}

/** The SPIFFE-style identities (namespace/sa/name) of one service's endpoints, sorted. */
function serviceAccountsOf(byPort: ReadonlyMap<number, readonly ServiceEndpoint[]>, svcNs: string): string[] {
  const ids = new Set<string>();
  for (const eps of byPort.values()) {
    for (const e of eps) {
      if (!e.serviceAccount) continue;
      const ns = e.pod ? (e.pod.split('/')[0] ?? svcNs) : svcNs;
      ids.add(`${ns}/sa/${e.serviceAccount}`);
    }
  }
  return [...ids].sort();
}

/** Map fields first, so the services and objects they hold are shared before the lists that repeat them. */
function shareFields<T extends object>(previous: MeshSnapshot, fields: T): T {
  const seen = new Map<unknown, unknown>();
  const prev = previous as unknown as Record<string, unknown>;
  const out = { ...fields } as Record<string, unknown>;
  const keys = Object.keys(out);
  const order = [...keys.filter((k) => out[k] instanceof Map), ...keys.filter((k) => !(out[k] instanceof Map))];
  for (const k of order) out[k] = share(prev[k], out[k], seen);
  return out as T;
}

function byKeyStr(o: ConfigObject): string {
  return `${o.metadata.namespace}/${o.metadata.name}`;
}
