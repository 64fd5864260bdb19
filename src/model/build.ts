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
import { buildRegistry } from './build-services';
import { trustDomainBundle } from './trust-domain';
import { type MeshConfigText, buildMesh } from './build-mesh';
import { meshConfigView } from './mesh-config';
import { buildSidecarScoping } from './build-sidecar';
import { configMapCAs } from '../gatewayapi/backend-tls';
import { convertGatewayApi } from '../gatewayapi/convert';
import { DEFAULT_ROOT_NAMESPACE, type MeshService, type MeshSnapshot, exportedTo } from './snapshot';

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
  const kind = (k: string): ConfigObject[] => byKind.get(k) ?? [];

  const namespaces = new Set<string>(['default']);
  for (const ns of kind('Namespace')) namespaces.add(ns.metadata.name);
  for (const o of input.objects) if (o.metadata.namespace) namespaces.add(o.metadata.namespace);

  const namespaceLabels = new Map(kind('Namespace').map((n) => [n.metadata.name, n.metadata.labels] as const));
  const mesh = buildMesh(input.mesh, { trustDomain: input.trustDomain, trustDomainAliases: input.trustDomainAliases }, input.previous?.meshConfig, errors);
  const meshConfig = mesh.meshConfig;
  const registry = buildRegistry(kind, domain, errors, meshConfig.defaultServiceExportTo);
  // The Gateway API, as istiod does it: converted into Istio VirtualServices and Gateways (GAMMA routes first).
  const gatewayApi = convertGatewayApi(kind, { domain, namespaceLabels, services: registry.serviceByHost }, errors);
  const routingKind = (k: string): readonly ConfigObject[] =>
    k === 'VirtualService'
      ? [...gatewayApi.virtualServices, ...kind(k)]
      : k === 'Gateway'
        ? [...kind(k), ...gatewayApi.gateways]
        : k === 'DestinationRule'
          ? [...kind(k), ...gatewayApi.destinationRules]
          : kind(k);
  const routing = buildRouting(routingKind, domain, namespaces, errors, {
    virtualServiceExportTo: meshConfig.defaultVirtualServiceExportTo,
    destinationRuleExportTo: meshConfig.defaultDestinationRuleExportTo,
  });
  const trustDomains = trustDomainBundle(meshConfig.trustDomain, meshConfig.trustDomainAliases);
  const meshSetsRoot = input.mesh !== undefined && meshConfig.rootNamespace !== DEFAULT_ROOT_NAMESPACE;
  const rootNamespace = meshSetsRoot ? meshConfig.rootNamespace : (input.rootNamespace ?? meshConfig.rootNamespace);
  const extAuthz = resolveExtAuthz(mesh.telemetryMesh.providers, (service, port) => lookupCluster(registry.serviceByHost, service, port));
  const security = buildSecurity(kind, errors, trustDomains, extAuthz, rootNamespace);
  const reqAuthn = buildRequestAuthn(kind, input.jwks, errors);
  const telemetries = buildTelemetries(kind);
  const wasmPlugins = buildWasmPlugins(kind);
  const envoyFilters = buildEnvoyFilters(kind, errors, input.envoyFilterAllowedTypes);
  const proxyConfigs = buildProxyConfigs(kind('ProxyConfig'));
  const workloadGroups = new Map(kind('WorkloadGroup').map((o) => [`${o.metadata.namespace}/${o.metadata.name}`, workloadGroupOf(o)] as const));

  // exportTo: one list per namespace, shared when nothing restricts visibility.
  const publicServices = registry.services.filter((s) => s.exportTo.includes('*'));
  const restricted = registry.services.length !== publicServices.length;
  const servicesVisibleIn = new Map<string, MeshService[]>();
  for (const ns of namespaces) {
    servicesVisibleIn.set(ns, restricted ? registry.services.filter((s) => s.namespace === ns || exportedTo(s.exportTo, ns)) : publicServices);
  }

  const sidecarScoping = buildSidecarScoping(
    kind('Sidecar'),
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
    errors,
  );

  const serviceAccountsByHost = new Map<string, string[]>();
  for (const [host, byPort] of registry.endpoints) {
    const ids = new Set<string>();
    const svcNs = registry.serviceByHost.get(host)?.namespace ?? '';
    for (const eps of byPort.values()) {
      for (const e of eps) {
        if (!e.serviceAccount) continue;
        const ns = e.pod ? (e.pod.split('/')[0] ?? svcNs) : svcNs;
        ids.add(`${ns}/sa/${e.serviceAccount}`);
      }
    }
    if (ids.size > 0) serviceAccountsByHost.set(host, [...ids].sort());
  }

  const counts: Record<string, number> = {};
  for (const [k, list] of byKind) counts[k] = list.length;

  // The content hash: each object's own digest is kept by identity (sources keep unchanged
  // objects), so a change costs a hash of the changed objects and a pass over the digests.
  const digests = input.digests ?? new WeakMap<ConfigObject, string>();
  const keyed = input.objects.map((o) => {
    let d = digests.get(o);
    if (d === undefined) {
      d = createHash('sha256').update(JSON.stringify(o.body)).digest('base64');
      digests.set(o, d);
    }
    return { key: `${o.kind}\0${byKeyStr(o)}`, d };
  });
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const hash = createHash('sha256');
  for (const { key, d } of keyed) hash.update(key).update('\0').update(d);
  // Fetched key sets are content too: a refreshed JWKS is a new version.
  for (const [key, e] of reqAuthn.jwks) hash.update(`jwks\0${key}\0${e.keys ?? ''}\0${e.error ?? ''}`);
  // So is the MeshConfig in effect.
  hash.update(`mesh\0${JSON.stringify(meshConfigView(meshConfig))}`);

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
    configMapCAs: configMapCAs(kind('ConfigMap')),
    jwks: reqAuthn.jwks,
    errors,
    counts,
  };
  const snapshot = deepFreeze(input.previous ? shareFields(input.previous, fields) : fields);
  // The memo fills in as proxies are served; it is the one part of a snapshot that is not frozen.
  return Object.freeze({ ...snapshot, memo: new SnapshotMemo() });
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
