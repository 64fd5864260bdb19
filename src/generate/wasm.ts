/**
 * WasmPlugins as istiod compiles them (pilot/pkg/model/wasm.go, networking/core/extension):
 * - LDS: each plugin that applies to a listener becomes a filter that names its ECDS resource
 *   (`config_discovery` over ADS, type URLs Wasm and RBAC, the RBAC one being what the agent
 *   sends in place of a plugin it could not fetch), placed by phase (AUTHN before the JWT and
 *   Istio authn filters, AUTHZ before RBAC, STATS and unspecified after it), highest priority
 *   first within a phase, root-namespace plugins before the proxy's own namespace's. HTTP
 *   plugins go in every HTTP connection manager of a sidecar (inbound: match mode SERVER,
 *   outbound: CLIENT) and gateway (CLIENT); NETWORK plugins go before the terminal filter of
 *   TCP chains and before the HTTP connection manager of inbound HTTP chains.
 * - ECDS: `TypedExtensionConfig` named as the filter, its body the Wasm filter config istiod
 *   builds: the v8 VM with remote code (http_uri + sha256; the agent fetches it, the cluster `_`
 *   is never used) or a local file for file://, the env (pull policy, pull secret, resource
 *   version, vmConfig.env), pluginConfig as a JSON string, fail_open from failStrategy. A proxy
 *   gets the resources it asks for that apply to it (istiod's ECDS generator: its LDS names them).
 */
import type { WasmPluginConfig } from '../model/build-wasm';
import type { WasmPhase } from '../model/objects-wasm';
import { type Proxy, proxyLabels } from '../model/proxy';
import type { MeshSnapshot } from '../model/snapshot';
import { wasmUrlScheme } from '../model/validate/wasmplugin';
import type { GenerateContext, ProtoObject, ProtoValue, Resource } from './types';
import { adsConfigSource } from './util';
import { mergeGateways } from './gateway/merge';

export const WASM_HTTP_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';
export const WASM_NETWORK_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm';
const RBAC_HTTP_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
const RBAC_NETWORK_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';
const STRING_VALUE_TYPE = 'type.googleapis.com/google.protobuf.StringValue';

export const WASM_SECRET_ENV = 'ISTIO_META_WASM_IMAGE_PULL_SECRET';
export const WASM_POLICY_ENV = 'ISTIO_META_WASM_IMAGE_PULL_POLICY';
export const WASM_RESOURCE_VERSION_ENV = 'ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION';

const HCM = 'envoy.filters.network.http_connection_manager';
const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';

/** istiod's listener classes, as WasmPlugin match modes see them. */
export type WasmListenerClass = 'inbound' | 'outbound' | 'gateway';
type PluginKind = 'HTTP' | 'NETWORK';

/** ShouldAttachPolicy: targetRefs name a Gateway API Gateway (by its gateway-name label); else the selector, mesh-wide from the root namespace. */
function attaches(p: WasmPluginConfig, snap: MeshSnapshot, proxy: Proxy): boolean {
  const ns = p.meta.namespace;
  const refs = p.spec.targetRefs ?? (p.spec.targetRef ? [p.spec.targetRef] : []);
  const labels = proxyLabels(proxy, snap);
  if (refs.length > 0) {
    const gw = labels[GATEWAY_NAME_LABEL];
    return ns === proxy.namespace && refs.some((r) => r.kind === 'Gateway' && (r.group ?? 'gateway.networking.k8s.io') === 'gateway.networking.k8s.io' && r.name === gw);
  }
  if (ns !== proxy.namespace && ns !== snap.rootNamespace) return false;
  return Object.entries(p.spec.selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
}

function kindOf(p: WasmPluginConfig): PluginKind {
  return p.spec.type === 'NETWORK' ? 'NETWORK' : 'HTTP';
}

/**
 * matchTrafficSelectors: no match list, or one whose mode and ports fit the listener. `ports`: the
 * listener's port as istiod sees it (a gateway's: the port numbers of the servers it listens for).
 */
function matchesTraffic(p: WasmPluginConfig, cls: WasmListenerClass, ports: readonly number[]): boolean {
  const list = p.spec.match ?? [];
  if (list.length === 0) return true;
  const mode = cls === 'inbound' ? 'SERVER' : 'CLIENT';
  return list.some((m) => {
    const modeOk = m.mode === undefined || m.mode === 'UNDEFINED' || m.mode === 'CLIENT_AND_SERVER' || m.mode === mode;
    const want = m.ports ?? [];
    return modeOk && (want.length === 0 || want.some((ps) => ps.number !== undefined && ps.number !== 0 && ports.includes(ps.number)));
  });
}

/** The plugins that apply to the proxy at all (istiod's anyListener): root namespace first, then the proxy's namespace. */
export function proxyWasmPlugins(snap: MeshSnapshot, proxy: Proxy): WasmPluginConfig[] {
  if (snap.wasmPlugins.size === 0) return [];
  const out: WasmPluginConfig[] = [];
  for (const p of snap.wasmPlugins.get(snap.rootNamespace) ?? []) if (attaches(p, snap, proxy)) out.push(p);
  if (proxy.namespace !== snap.rootNamespace) for (const p of snap.wasmPlugins.get(proxy.namespace) ?? []) if (attaches(p, snap, proxy)) out.push(p);
  return out;
}

/** WasmPluginsByListenerInfo: by phase, each phase by priority (highest first, stable). */
function byPhase(plugins: readonly WasmPluginConfig[], kind: PluginKind, cls: WasmListenerClass, port: readonly number[]): Map<WasmPhase, WasmPluginConfig[]> {
  const out = new Map<WasmPhase, WasmPluginConfig[]>();
  for (const p of plugins) {
    if (kindOf(p) !== kind || !matchesTraffic(p, cls, port)) continue;
    const phase = p.spec.phase ?? 'UNSPECIFIED_PHASE';
    let l = out.get(phase);
    if (!l) out.set(phase, (l = []));
    l.push(p);
  }
  for (const l of out.values()) l.sort((a, b) => (b.spec.priority ?? 0) - (a.spec.priority ?? 0));
  return out;
}

function discoveryFilter(p: WasmPluginConfig, kind: PluginKind): ProtoObject {
  return {
    name: p.resourceName,
    config_discovery: { config_source: adsConfigSource(), type_urls: kind === 'HTTP' ? [WASM_HTTP_TYPE, RBAC_HTTP_TYPE] : [WASM_NETWORK_TYPE, RBAC_NETWORK_TYPE] },
  };
}

function isObject(v: ProtoValue | undefined): v is ProtoObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const nameOf = (f: ProtoValue): unknown => (isObject(f) ? f['name'] : undefined);
const AUTHN_FILTERS = new Set(['envoy.filters.http.jwt_authn', 'istio_authn']);
const AUTHZ_FILTER = 'envoy.filters.http.rbac';
const CUSTOM_FILTER = 'envoy.filters.http.ext_authz';

/** istiod's HTTP filter order: [ext_authz] AUTHN [jwt, istio authn] AUTHZ [rbac] STATS UNSPECIFIED [the rest]. */
function withHttpPlugins(filters: readonly ProtoValue[], phases: Map<WasmPhase, WasmPluginConfig[]>): ProtoValue[] {
  const pop = (phase: WasmPhase): ProtoObject[] => (phases.get(phase) ?? []).map((p) => discoveryFilter(p, 'HTTP'));
  let i = 0;
  const take = (pred: (name: unknown) => boolean): ProtoValue[] => {
    const start = i;
    while (i < filters.length && pred(nameOf(filters[i] as ProtoValue))) i++;
    return filters.slice(start, i);
  };
  const custom = take((n) => n === CUSTOM_FILTER);
  const authn = take((n) => AUTHN_FILTERS.has(String(n)));
  const authz = take((n) => n === AUTHZ_FILTER);
  return [...custom, ...pop('AUTHN'), ...authn, ...pop('AUTHZ'), ...authz, ...pop('STATS'), ...pop('UNSPECIFIED_PHASE'), ...filters.slice(i)];
}

/** istiod's network filter order: AUTHN AUTHZ [network rbac] STATS UNSPECIFIED, then the terminal filter. */
function withNetworkPlugins(filters: readonly ProtoValue[], phases: Map<WasmPhase, WasmPluginConfig[]>): ProtoValue[] {
  const pop = (phase: WasmPhase): ProtoObject[] => (phases.get(phase) ?? []).map((p) => discoveryFilter(p, 'NETWORK'));
  const terminal = filters.length - 1;
  let rbacEnd = 0;
  while (rbacEnd < terminal && nameOf(filters[rbacEnd] as ProtoValue) === 'envoy.filters.network.rbac') rbacEnd++;
  return [...pop('AUTHN'), ...pop('AUTHZ'), ...filters.slice(0, rbacEnd), ...pop('STATS'), ...pop('UNSPECIFIED_PHASE'), ...filters.slice(rbacEnd)];
}

function chainPort(chain: ProtoObject, listenerPorts: readonly number[], cls: WasmListenerClass): readonly number[] {
  if (cls !== 'inbound') return listenerPorts;
  const m = chain['filter_chain_match'];
  const dp = isObject(m) && isObject(m['destination_port']) ? m['destination_port']['value'] : undefined;
  return typeof dp === 'number' ? [dp] : [];
}

function withChainPlugins(chain: ProtoValue | undefined, plugins: readonly WasmPluginConfig[], cls: WasmListenerClass, listenerPort: readonly number[]): ProtoValue | undefined {
  if (!isObject(chain) || !Array.isArray(chain['filters']) || chain['filters'].length === 0) return chain;
  const port = chainPort(chain, listenerPort, cls);
  const filters = chain['filters'];
  const hcmAt = filters.findIndex((f) => nameOf(f) === HCM);
  let out: ProtoValue[] = filters;
  if (hcmAt >= 0) {
    const http = byPhase(plugins, 'HTTP', cls, port);
    const hcm = filters[hcmAt] as ProtoObject;
    const cfg = hcm['typed_config'];
    if (http.size > 0 && isObject(cfg) && Array.isArray(cfg['http_filters'])) {
      out = [...filters.slice(0, hcmAt), { ...hcm, typed_config: { ...cfg, http_filters: withHttpPlugins(cfg['http_filters'], http) } }, ...filters.slice(hcmAt + 1)];
    }
    // Network plugins precede the HCM on inbound HTTP chains only (buildInboundNetworkFiltersForHTTP).
    const net = cls === 'inbound' ? byPhase(plugins, 'NETWORK', cls, port) : new Map<WasmPhase, WasmPluginConfig[]>();
    if (net.size > 0) out = [...withNetworkPlugins(out.slice(0, hcmAt + 1), net), ...out.slice(hcmAt + 1)];
  } else if (nameOf(filters[filters.length - 1] as ProtoValue) === 'envoy.filters.network.tcp_proxy') {
    const net = byPhase(plugins, 'NETWORK', cls, port);
    if (net.size > 0) out = withNetworkPlugins(filters, net);
  }
  return out === filters ? chain : { ...chain, filters: out };
}

function listenerPort(listener: ProtoObject): number {
  const addr = listener['address'];
  const sock = isObject(addr) ? addr['socket_address'] : undefined;
  const port = isObject(sock) ? sock['port_value'] : undefined;
  return typeof port === 'number' ? port : 0;
}

/** The listener with the plugins that apply to each of its chains. */
export function addWasmPlugins(ctx: GenerateContext, listener: ProtoObject, plugins: readonly WasmPluginConfig[]): ProtoObject {
  const cls: WasmListenerClass = ctx.proxy.type === 'router' ? 'gateway' : listener['name'] === 'virtualInbound' ? 'inbound' : 'outbound';
  const bound = listenerPort(listener);
  let port: readonly number[] = [bound];
  if (cls === 'gateway' && plugins.some((p) => (p.spec.match ?? []).some((m) => (m.ports ?? []).length > 0))) {
    // istiod matches a gateway's plugins against its servers' port numbers, not the target port it binds.
    const servers = mergeGateways(ctx.snap, ctx.proxy)
      .groups.filter((g) => g.port === bound)
      .flatMap((g) => g.servers.map((s) => s.server.port?.number ?? bound));
    if (servers.length > 0) port = [...new Set(servers)];
  }
  const out: ProtoObject = { ...listener };
  if (Array.isArray(listener['filter_chains'])) out['filter_chains'] = listener['filter_chains'].map((c) => withChainPlugins(c, plugins, cls, port) ?? c);
  if (listener['default_filter_chain'] !== undefined) out['default_filter_chain'] = withChainPlugins(listener['default_filter_chain'], plugins, cls, port);
  return out;
}

/** Listener generators with WasmPlugin filters; listeners pass untouched when no plugin applies to the proxy. */
export function withWasmPlugins(list: (ctx: GenerateContext) => Resource[]): (ctx: GenerateContext) => Resource[] {
  return (ctx) => {
    const plugins = proxyWasmPlugins(ctx.snap, ctx.proxy);
    if (plugins.length === 0) return list(ctx);
    return list(ctx).map((r) => {
      const build = r.build;
      // A resource shared by its inputs is shared only with proxies that get the same plugins.
      return { ...r, build: () => addWasmPlugins(ctx, build(), plugins), ...(r.inputs ? { inputs: [...r.inputs, ...plugins] } : {}) };
    });
  };
}

/** The code source: a local file for file://, else remote (oci:// for a bare reference), fetched by the agent. */
function codeSource(url: string, sha256: string | undefined): ProtoObject {
  const scheme = wasmUrlScheme(url);
  if (scheme === 'file') return { local: { filename: url.slice('file://'.length) } };
  const uri = scheme === '' ? `oci://${url}` : url;
  return { remote: { http_uri: { uri, timeout: { seconds: 30, nanos: 0 }, cluster: '_' }, ...(sha256 ? { sha256 } : {}) } };
}

/** The Wasm filter config (envoy.extensions.wasm.v3.PluginConfig) of one plugin. */
export function wasmPluginConfig(p: WasmPluginConfig): ProtoObject {
  const spec = p.spec;
  const env: Record<string, string> = {};
  // The pull secret's content is looked up by istiod; meshd does not read docker config Secrets, so it sends what istiod sends for one it cannot find.
  if (spec.imagePullSecret) env[WASM_SECRET_ENV] = '';
  if (spec.imagePullPolicy && spec.imagePullPolicy !== 'UNSPECIFIED_POLICY') env[WASM_POLICY_ENV] = spec.imagePullPolicy;
  env[WASM_RESOURCE_VERSION_ENV] = p.version;
  const hostKeys: string[] = [];
  for (const e of spec.vmConfig?.env ?? []) {
    if (e.valueFrom === 'HOST') hostKeys.push(e.name);
    else env[e.name] = e.value ?? '';
  }
  const config = spec.pluginConfig && Object.keys(spec.pluginConfig).length > 0 ? { '@type': STRING_VALUE_TYPE, value: JSON.stringify(spec.pluginConfig) } : undefined;
  return {
    name: `${p.meta.namespace}.${p.meta.name}`,
    ...(spec.pluginName ? { root_id: spec.pluginName } : {}),
    vm_config: {
      runtime: 'envoy.wasm.runtime.v8',
      code: codeSource(spec.url, spec.sha256),
      environment_variables: { key_values: env, ...(hostKeys.length > 0 ? { host_env_keys: hostKeys } : {}) },
    },
    ...(config ? { configuration: config } : {}),
    ...(spec.failStrategy === 'FAIL_OPEN' ? { fail_open: true } : {}),
  };
}

/** ECDS: the TypedExtensionConfigs the proxy asked for, among the plugins that apply to it. */
export function extensionConfigs(ctx: GenerateContext): Resource[] {
  const plugins = proxyWasmPlugins(ctx.snap, ctx.proxy);
  const names = ctx.names;
  return plugins
    .filter((p) => names === undefined || names.has(p.resourceName))
    .map((p) => ({
      name: p.resourceName,
      build: () => ({ name: p.resourceName, typed_config: { '@type': kindOf(p) === 'NETWORK' ? WASM_NETWORK_TYPE : WASM_HTTP_TYPE, config: wasmPluginConfig(p) } }),
    }));
}
