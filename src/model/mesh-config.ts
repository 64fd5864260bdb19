/**
 * MeshConfig, as istiod reads it (`pkg/config/mesh`): YAML (the `mesh` key of ConfigMap `istio`,
 * a `mesh.yaml` in the config folder, or a `--mesh-config` file) applied over istiod's defaults,
 * then checked as its `ValidateMeshConfig` checks the fields meshd acts on.
 *
 * As istiod's decoder (strict first, then again allowing unknown fields, with a warning), a field
 * MeshConfig does not know is reported (with its path and a "did you mean"), never fatal; a field
 * of the wrong type or a value validation refuses makes the whole MeshConfig invalid, and the
 * caller keeps the last good one. Pure: no I/O.
 */
import { parse as parseYaml } from 'yaml';
import type { FieldError, LocalityLbSetting } from './objects';
import { Issues, isRecord } from './validate/common';
import { checkExtAuthzProviders } from './ext-authz';
import { type Schema, any, arrayOf, bool, checkSchema, closed, i32, mapOf, oneOf, str, u32 } from './validate/schema';
import { DEFAULT_TRUST_DOMAIN } from './trust-domain';

export type OutboundTrafficMode = 'ALLOW_ANY' | 'REGISTRY_ONLY';
export type AccessLogEncoding = 'TEXT' | 'JSON';

/** A protobuf Duration. */
export interface ProtoDuration {
  readonly seconds: number;
  readonly nanos: number;
}

/**
 * The effective MeshConfig: every field istiod has a default for that meshd acts on, typed, and
 * every other field given, as given (`/debug/mesh` shows both).
 */
export interface MeshConfig {
  readonly trustDomain: string;
  readonly trustDomainAliases: readonly string[];
  readonly rootNamespace: string;
  readonly outboundTrafficPolicy: { readonly mode: OutboundTrafficMode };
  readonly accessLogFile: string;
  readonly accessLogFormat: string;
  readonly accessLogEncoding: AccessLogEncoding;
  readonly disableEnvoyListenerLog: boolean;
  /** Protobuf JSON duration (`10s`, `0.25s`). */
  readonly connectTimeout: string;
  readonly protocolDetectionTimeout: string;
  readonly enableAutoMtls: boolean;
  readonly localityLbSetting: LocalityLbSetting;
  readonly defaultServiceExportTo: readonly string[];
  readonly defaultVirtualServiceExportTo: readonly string[];
  readonly defaultDestinationRuleExportTo: readonly string[];
  /** ProxyConfig (JSON field names): istiod's DefaultProxyConfig with the given fields merged in. */
  readonly defaultConfig: Readonly<Record<string, unknown>>;
  /** Every other MeshConfig field given, stored as given. */
  readonly other: Readonly<Record<string, unknown>>;
}

/** What the MeshConfig's defaults come from besides istiod's: meshd's flags. */
export interface MeshConfigDefaults {
  trustDomain?: string;
  trustDomainAliases?: readonly string[];
}

export interface MeshConfigResult {
  /** The effective config; absent when the input is invalid (errors say why). */
  config?: MeshConfig;
  errors: FieldError[];
  /** Unknown fields and other things istiod only warns about. */
  warnings: FieldError[];
}

/** istiod's DefaultProxyConfig, as protobuf JSON. */
export function defaultProxyConfig(): Record<string, unknown> {
  return {
    configPath: './etc/istio/proxy',
    binaryPath: '/usr/local/bin/envoy',
    serviceCluster: 'istio-proxy',
    drainDuration: '45s',
    terminationDrainDuration: '5s',
    proxyAdminPort: 15000,
    concurrency: 2,
    controlPlaneAuthPolicy: 'MUTUAL_TLS',
    discoveryAddress: 'istiod.istio-system.svc:15012',
    tracing: { zipkin: { address: 'zipkin.istio-system:9411' } },
    statNameLength: 189,
    statusPort: 15020,
  };
}

/** istiod's DefaultMeshConfig, with meshd's flags as the trust domain defaults. */
export function defaultMeshConfig(d: MeshConfigDefaults = {}): MeshConfig {
  return {
    trustDomain: d.trustDomain ?? DEFAULT_TRUST_DOMAIN,
    trustDomainAliases: [...(d.trustDomainAliases ?? [])],
    rootNamespace: 'istio-system',
    outboundTrafficPolicy: { mode: 'ALLOW_ANY' },
    accessLogFile: '',
    accessLogFormat: '',
    accessLogEncoding: 'TEXT',
    disableEnvoyListenerLog: false,
    connectTimeout: '10s',
    protocolDetectionTimeout: '0s',
    enableAutoMtls: true,
    localityLbSetting: { enabled: true },
    defaultServiceExportTo: ['*'],
    defaultVirtualServiceExportTo: ['*'],
    defaultDestinationRuleExportTo: ['*'],
    defaultConfig: defaultProxyConfig(),
    other: {
      enableTracing: true,
      ingressService: 'istio-ingressgateway',
      ingressControllerMode: 'STRICT',
      ingressClass: 'istio',
      proxyListenPort: 15001,
      dnsRefreshRate: '60s',
      // istiod's DefaultMeshConfig has none; its install (the istiod chart's ConfigMap) sets
      // prometheus, and meshd, which has no chart, starts from that: sidecars report metrics.
      defaultProviders: { metrics: ['prometheus'] },
      extensionProviders: [
        { name: 'prometheus', prometheus: {} },
        { name: 'stackdriver', stackdriver: {} },
        { name: 'envoy', envoyFileAccessLog: { path: '/dev/stdout' } },
      ],
    },
  };
}

const duration = str;
const localityLbSetting = closed({
  distribute: arrayOf(closed({ from: str, to: mapOf(u32) })),
  failover: arrayOf(closed({ from: str, to: str })),
  failoverPriority: arrayOf(str),
  enabled: bool,
});

/** ProxyConfig's fields (istio.mesh.v1alpha1.ProxyConfig); nested messages meshd does not read are taken as given. */
const PROXY_CONFIG: Schema = closed({
  configPath: str,
  binaryPath: str,
  serviceCluster: str,
  tracingServiceName: oneOf('APP_LABEL_AND_NAMESPACE', 'CANONICAL_NAME_ONLY', 'CANONICAL_NAME_AND_NAMESPACE'),
  drainDuration: duration,
  parentShutdownDuration: duration,
  terminationDrainDuration: duration,
  discoveryAddress: str,
  statsdUdpAddress: str,
  envoyMetricsServiceAddress: str,
  proxyAdminPort: i32,
  availabilityZone: str,
  controlPlaneAuthPolicy: oneOf('NONE', 'MUTUAL_TLS', 'INHERIT'),
  customConfigFile: str,
  statNameLength: i32,
  concurrency: i32,
  proxyBootstrapTemplatePath: str,
  interceptionMode: oneOf('REDIRECT', 'TPROXY', 'NONE'),
  tracing: any,
  envoyAccessLogService: any,
  envoyMetricsService: any,
  proxyMetadata: mapOf(str),
  runtimeValues: mapOf(str),
  statusPort: i32,
  extraStatTags: arrayOf(str),
  gatewayTopology: any,
  meshId: str,
  readinessProbe: any,
  proxyStatsMatcher: any,
  holdApplicationUntilProxyStarts: bool,
  caCertificatesPem: arrayOf(str),
  image: any,
  privateKeyProvider: any,
  proxyHeaders: any,
  fileFlushInterval: duration,
  fileFlushMinSizeKb: u32,
});

/** Every MeshConfig field istiod knows (istio.mesh.v1alpha1.MeshConfig, JSON names). */
const MESH_CONFIG: Schema = closed({
  proxyListenPort: i32,
  proxyInboundListenPort: i32,
  proxyHttpPort: i32,
  connectTimeout: duration,
  protocolDetectionTimeout: duration,
  tcpKeepalive: closed({ probes: u32, time: duration, interval: duration }),
  ingressClass: str,
  ingressService: str,
  ingressControllerMode: oneOf('UNSPECIFIED', 'OFF', 'DEFAULT', 'STRICT'),
  ingressSelector: str,
  enableTracing: bool,
  accessLogFile: str,
  accessLogFormat: str,
  accessLogEncoding: oneOf('TEXT', 'JSON'),
  enableEnvoyAccessLogService: bool,
  disableEnvoyListenerLog: bool,
  defaultConfig: PROXY_CONFIG,
  outboundTrafficPolicy: closed({ mode: oneOf('REGISTRY_ONLY', 'ALLOW_ANY') }),
  inboundTrafficPolicy: closed({ mode: oneOf('PASSTHROUGH', 'LOCALHOST') }),
  configSources: arrayOf(any),
  enableAutoMtls: bool,
  trustDomain: str,
  trustDomainAliases: arrayOf(str),
  caCertificates: arrayOf(any),
  defaultServiceExportTo: arrayOf(str),
  defaultVirtualServiceExportTo: arrayOf(str),
  defaultDestinationRuleExportTo: arrayOf(str),
  rootNamespace: str,
  localityLbSetting,
  dnsRefreshRate: duration,
  h2UpgradePolicy: oneOf('DO_NOT_UPGRADE', 'UPGRADE'),
  inboundClusterStatName: str,
  outboundClusterStatName: str,
  certificates: arrayOf(any),
  serviceSettings: arrayOf(closed({ settings: closed({ clusterLocal: bool }), hosts: arrayOf(str) })),
  enablePrometheusMerge: bool,
  verifyCertificateAtClient: bool,
  ca: any,
  extensionProviders: arrayOf(any),
  defaultProviders: closed({ tracing: arrayOf(str), metrics: arrayOf(str), accessLogging: arrayOf(str) }),
  discoverySelectors: arrayOf(any),
  pathNormalization: closed({ normalization: oneOf('DEFAULT', 'NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES') }),
  defaultHttpRetryPolicy: any,
  meshMTLS: any,
  tlsDefaults: any,
  compliancePolicy: str,
});

function fieldsOf(s: Schema): readonly string[] {
  return s.t === 'object' ? Object.keys(s.fields) : [];
}

/** protojson accepts a field's original (snake_case) name too. */
function camelKeys(o: Record<string, unknown>, known: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    const camel = k.includes('_') ? k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()) : k;
    out[known.includes(camel) && camel !== k && !(camel in o) ? camel : k] = v;
  }
  return out;
}

/** A protobuf JSON Duration (`1.5s`) in nanoseconds, or undefined if it is not one. */
export function durationNanos(s: string): number | undefined {
  const m = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(s);
  if (!m) return undefined;
  const nanos = Number(m[2]) * 1e9 + Number((m[3] ?? '').padEnd(9, '0') || '0');
  return m[1] ? -nanos : nanos;
}

export function protoDuration(s: string): ProtoDuration {
  const n = durationNanos(s) ?? 0;
  return { seconds: Math.floor(n / 1e9), nanos: n % 1e9 };
}

const MS = 1e6;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function checkDuration(issues: Issues, path: string, v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  const n = durationNanos(v);
  if (n === undefined) issues.add(path, `invalid duration ${JSON.stringify(v)}: protobuf JSON durations are seconds with an "s" suffix (e.g. "10s", "0.25s")`);
  return n;
}

/** istiod's ValidateTrustDomain. */
function trustDomainProblem(domain: string): string | undefined {
  if (domain.length === 0) return 'empty domain name not allowed';
  const parts = domain.split('.');
  for (let i = 0; i < parts.length; i++) {
    const label = parts[i] as string;
    if (i === parts.length - 1 && label === '') return undefined;
    if (label.length > 63 || !DNS1123_LABEL.test(label)) return `trust domain name ${JSON.stringify(domain)} invalid`;
  }
  return undefined;
}

/** istiod's ValidateProxyAddress: `host:port`, the host a DNS name or an IP. */
function proxyAddressProblem(addr: string): string | undefined {
  const m = /^(\[[^\]]+\]|[^:]+):([^:]*)$/.exec(addr);
  if (!m) return `unable to split ${JSON.stringify(addr)}: missing port in address`;
  const port = Number(m[2]);
  if (!/^\d+$/.test(m[2] as string)) return `port (${m[2]}) is not a number`;
  if (port < 1 || port > 65535) return `port number ${port} must be in the range 1..65535`;
  const host = (m[1] as string).replace(/^\[|\]$/g, '');
  const dns = host.length <= 255 && host.split('.').every((l, i, all) => (i === all.length - 1 && l === '' && i > 0) || (l.length <= 63 && DNS1123_LABEL.test(l)));
  const ip = /^(\d{1,3}\.){3}\d{1,3}$/.test(host) || host.includes(':');
  if (!dns && !ip) return `${JSON.stringify(host)} is not a valid hostname or an IP address`;
  return undefined;
}

function checkPort(issues: Issues, path: string, v: unknown, what: string): void {
  if (typeof v === 'number' && (v < 1 || v > 65535)) issues.add(path, `invalid ${what}: port number ${v} must be in the range 1..65535`);
}

/** istiod's validateLocalities (one list: the sources of `distribute`, or one rule's destinations). */
function localitiesProblem(localities: readonly string[]): string | undefined {
  const seen = new Set<string>();
  for (const l of localities) {
    const stars = (l.match(/\*/g) ?? []).length;
    if (stars > 1 || (stars === 1 && !l.endsWith('*'))) return `locality ${l} wildcard '*' number can not exceed 1 and must be in the end`;
    if (seen.has('*')) return `locality ${l} overlap with previous specified ones`;
    const items = l.split('/').slice(0, 3);
    if (items.some((i) => i === '')) return `locality ${l} must not contain empty region/zone/subzone info`;
    for (let i = 1; i <= items.length; i++) {
      const prefix = items.slice(0, i).join('/');
      if (seen.has(prefix) || seen.has(`${prefix}/*`)) return `locality ${l} overlap with previous specified ones`;
    }
    seen.add(items.join('/'));
  }
  return undefined;
}

/** istiod's ValidateLocalityLbSetting for MeshConfig (`path`: the field's path). */
function checkLocalityLb(issues: Issues, path: string, lb: LocalityLbSetting): void {
  const distribute = lb.distribute ?? [];
  const failover = lb.failover ?? [];
  if (distribute.length > 0 && failover.length > 0) return issues.add(path, "can not simultaneously specify 'distribute' and 'failover'");
  if (failover.length > 0) {
    const topo = (lb.failoverPriority ?? []).find((p) => ['topology.kubernetes.io/region', 'topology.kubernetes.io/zone', 'topology.istio.io/subzone'].includes(p));
    if (topo) return issues.add(`${path}.failoverPriority`, `can not simultaneously set 'failover' and topology label '${topo}' in 'failover_priority'`);
  }
  for (const [i, d] of distribute.entries()) {
    const to = Object.entries(d.to ?? {});
    if (to.some(([, w]) => w <= 0 || w > 100)) return issues.add(`${path}.distribute[${i}].to`, 'locality weight must be in range [1, 100]');
    const total = to.reduce((s, [, w]) => s + w, 0);
    if (total !== 100) return issues.add(`${path}.distribute[${i}].to`, `total locality weight ${total} != 100`);
    const p = localitiesProblem(to.map(([l]) => l));
    if (p) issues.add(`${path}.distribute[${i}].to`, p);
  }
  const p = localitiesProblem(distribute.map((d) => d.from ?? ''));
  if (p) issues.add(`${path}.distribute`, p);
  for (const [i, f] of failover.entries()) {
    const fp = `${path}.failover[${i}]`;
    if (f.from === f.to) issues.add(fp, 'locality lb failover settings must specify different regions');
    if ((f.from ?? '').includes('/') || (f.to ?? '').includes('/')) issues.add(fp, 'locality lb failover only specify region');
    if ((f.from ?? '').includes('*') || (f.to ?? '').includes('*')) issues.add(fp, "locality lb failover region should not contain '*' wildcard");
  }
}

/** The semantic checks of istiod's ValidateMeshConfig (and ValidateMeshConfigProxyConfig) for the fields meshd reads. */
function validateMesh(m: Record<string, unknown>, issues: Issues): void {
  checkPort(issues, 'proxyListenPort', m['proxyListenPort'], 'proxy listen port');
  const ct = checkDuration(issues, 'connectTimeout', m['connectTimeout']);
  if (ct !== undefined) {
    if (ct < MS) issues.add('connectTimeout', 'invalid connect timeout: duration must be greater than 1ms');
    else if (ct % MS !== 0) issues.add('connectTimeout', 'invalid connect timeout: only durations to ms precision are supported');
    else if (ct > 3600e9) issues.add('connectTimeout', `invalid connect timeout: time ${m['connectTimeout'] as string} must be >1ms and <1h0m0s`);
  }
  const pdt = checkDuration(issues, 'protocolDetectionTimeout', m['protocolDetectionTimeout']);
  if (pdt !== undefined && pdt !== 0 && pdt % MS !== 0) issues.add('protocolDetectionTimeout', 'invalid protocol detection timeout: only durations to ms precision are supported');
  checkDuration(issues, 'dnsRefreshRate', m['dnsRefreshRate']);
  if (typeof m['trustDomain'] === 'string') {
    const p = trustDomainProblem(m['trustDomain']);
    if (p) issues.add('trustDomain', p);
  }
  if (Array.isArray(m['trustDomainAliases'])) {
    m['trustDomainAliases'].forEach((a: unknown, i) => {
      const p = typeof a === 'string' ? trustDomainProblem(a) : undefined;
      if (p) issues.add(`trustDomainAliases[${i}]`, `domain \`${a as string}\` : ${p}`);
    });
  }
  if (typeof m['rootNamespace'] === 'string' && m['rootNamespace'] !== '' && !DNS1123_LABEL.test(m['rootNamespace'])) {
    issues.add('rootNamespace', `${JSON.stringify(m['rootNamespace'])} is not a namespace name`);
  }
  for (const f of ['defaultServiceExportTo', 'defaultVirtualServiceExportTo', 'defaultDestinationRuleExportTo']) {
    const list = m[f];
    if (!Array.isArray(list)) continue;
    list.forEach((e: unknown, i) => {
      if (typeof e === 'string' && e !== '*' && e !== '.' && e !== '~' && !DNS1123_LABEL.test(e))
        issues.add(`${f}[${i}]`, `${JSON.stringify(e)} is not a namespace name, "*", "." or "~"`);
    });
  }
  checkExtAuthzProviders(m, issues);
  if (isRecord(m['localityLbSetting'])) checkLocalityLb(issues, 'localityLbSetting', m['localityLbSetting'] as LocalityLbSetting);
  if (Array.isArray(m['serviceSettings'])) {
    m['serviceSettings'].forEach((s: unknown, i) => {
      const hosts = isRecord(s) && Array.isArray(s['hosts']) ? s['hosts'] : [];
      hosts.forEach((h: unknown, j) => {
        if (typeof h === 'string' && !/^(\*|\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.?)*$/i.test(h))
          issues.add(`serviceSettings[${i}].hosts[${j}]`, `host \`${h}\`: domain name ${JSON.stringify(h)} invalid`);
      });
    });
  }
  if (m['accessLogEncoding'] === 'JSON' && typeof m['accessLogFormat'] === 'string' && m['accessLogFormat'] !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(m['accessLogFormat']);
    } catch {
      parsed = undefined;
    }
    if (!isRecord(parsed)) issues.warn('accessLogFormat', 'not a JSON object; the default JSON access log format is used (as istiod does)');
  }
  const pc = m['defaultConfig'];
  if (isRecord(pc)) {
    const dp = 'defaultConfig';
    if (typeof pc['discoveryAddress'] === 'string') {
      if (pc['discoveryAddress'] === '') issues.add(`${dp}.discoveryAddress`, 'discovery address must be set to the proxy discovery service');
      else {
        const p = proxyAddressProblem(pc['discoveryAddress']);
        if (p) issues.add(`${dp}.discoveryAddress`, `invalid discovery address: ${p}`);
      }
    }
    checkPort(issues, `${dp}.proxyAdminPort`, pc['proxyAdminPort'], 'proxy admin port');
    checkPort(issues, `${dp}.statusPort`, pc['statusPort'], 'status port');
    const drain = checkDuration(issues, `${dp}.drainDuration`, pc['drainDuration']);
    if (drain !== undefined && (drain < MS || drain % 1e9 !== 0))
      issues.add(`${dp}.drainDuration`, 'invalid drain duration: drain time only supports durations to seconds precision, at least 1s');
    const zipkin = isRecord(pc['tracing']) && isRecord(pc['tracing']['zipkin']) ? pc['tracing']['zipkin']['address'] : undefined;
    if (typeof zipkin === 'string') {
      const p = proxyAddressProblem(zipkin.replace('$(HOST_IP)', '127.0.0.1'));
      if (p) issues.add(`${dp}.tracing.zipkin.address`, `invalid zipkin config: ${p}`);
    }
    if (isRecord(pc['proxyMetadata']) && 'ISTIO_META_DNS_AUTO_ALLOCATE' in pc['proxyMetadata']) {
      issues.warn(`${dp}.proxyMetadata.ISTIO_META_DNS_AUTO_ALLOCATE`, "'ISTIO_META_DNS_AUTO_ALLOCATE' is deprecated");
    }
  }
}

/** The mesh config text's mapping: the config itself, or a ConfigMap whose `data.mesh` holds it. */
function meshDocument(text: string, issues: Issues): Record<string, unknown> | undefined {
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100, uniqueKeys: true });
  } catch (err) {
    issues.add('', `cannot parse mesh config: ${(err as Error).message.split('\n')[0] ?? ''}`);
    return undefined;
  }
  if (doc === null || doc === undefined) return {};
  if (!isRecord(doc)) {
    issues.add('', 'mesh config must be a mapping');
    return undefined;
  }
  if (doc['kind'] === 'ConfigMap') {
    const data = doc['data'];
    const inner = isRecord(data) ? data['mesh'] : undefined;
    if (typeof inner !== 'string') {
      issues.add('data.mesh', 'the ConfigMap has no data.mesh');
      return undefined;
    }
    return meshDocument(inner, issues);
  }
  return doc;
}

/**
 * MeshConfig YAML (or the ConfigMap holding it) over istiod's defaults, as istiod's
 * ApplyMeshConfigDefaults: every field given replaces the default, except `defaultConfig`, which
 * is merged into the default ProxyConfig (its `proxyMetadata` merged key by key), and
 * `trustDomainAliases`, which add to the default aliases (meshd's `--trust-domain-aliases`).
 */
export function parseMeshConfig(text: string, defaults: MeshConfigDefaults = {}): MeshConfigResult {
  const issues = new Issues(100);
  const raw = meshDocument(text, issues);
  if (!raw) return { errors: issues.result(), warnings: [...issues.warnings] };
  const top = camelKeys(raw, fieldsOf(MESH_CONFIG));
  if (isRecord(top['defaultConfig'])) top['defaultConfig'] = camelKeys(top['defaultConfig'], fieldsOf(PROXY_CONFIG));
  // Nulls are unset fields, as in protobuf JSON.
  for (const [k, v] of Object.entries(top)) if (v === null) delete top[k];
  const schema = new Issues(100);
  checkSchema(top, MESH_CONFIG, '', schema);
  const warnings: FieldError[] = [];
  for (const e of schema.list) {
    // istiod decodes again allowing unknown fields, and warns.
    if (e.message.startsWith('unknown field')) {
      warnings.push(e);
      const [head, ...rest] = e.path.split('.');
      if (rest.length === 0) delete top[head as string];
      else if (head === 'defaultConfig' && rest.length === 1 && isRecord(top['defaultConfig'])) delete (top['defaultConfig'] as Record<string, unknown>)[rest[0] as string];
    } else issues.add(e.path, e.message);
  }
  if (issues.list.length === 0) validateMesh(top, issues);
  warnings.push(...issues.warnings);
  if (issues.list.length > 0) return { errors: issues.result(), warnings };
  return { config: applyMesh(top, defaults), errors: [], warnings };
}

const TYPED = new Set([
  'trustDomain',
  'trustDomainAliases',
  'rootNamespace',
  'outboundTrafficPolicy',
  'accessLogFile',
  'accessLogFormat',
  'accessLogEncoding',
  'disableEnvoyListenerLog',
  'connectTimeout',
  'protocolDetectionTimeout',
  'enableAutoMtls',
  'localityLbSetting',
  'defaultServiceExportTo',
  'defaultVirtualServiceExportTo',
  'defaultDestinationRuleExportTo',
  'defaultConfig',
]);

function applyMesh(m: Record<string, unknown>, defaults: MeshConfigDefaults): MeshConfig {
  const d = defaultMeshConfig(defaults);
  const s = (k: string, dflt: string): string => (typeof m[k] === 'string' ? (m[k] as string) : dflt);
  const list = (k: string, dflt: readonly string[]): readonly string[] => (Array.isArray(m[k]) ? (m[k] as string[]) : dflt);
  const pc = isRecord(m['defaultConfig']) ? m['defaultConfig'] : {};
  const defaultPc = d.defaultConfig;
  const metadata = { ...(isRecord(defaultPc['proxyMetadata']) ? defaultPc['proxyMetadata'] : {}), ...(isRecord(pc['proxyMetadata']) ? pc['proxyMetadata'] : {}) };
  const defaultConfig: Record<string, unknown> = { ...defaultPc, ...pc };
  if (Object.keys(metadata).length > 0) defaultConfig['proxyMetadata'] = metadata;
  const other: Record<string, unknown> = { ...d.other };
  for (const [k, v] of Object.entries(m)) if (!TYPED.has(k)) other[k] = v;
  // ApplyMeshConfig decodes defaultProviders into the previous value: the fields given replace.
  if (isRecord(m['defaultProviders']) && isRecord(d.other['defaultProviders'])) other['defaultProviders'] = { ...d.other['defaultProviders'], ...m['defaultProviders'] };
  const otp = isRecord(m['outboundTrafficPolicy']) ? m['outboundTrafficPolicy']['mode'] : undefined;
  return {
    // An empty trust domain is the default, as protobuf's zero value.
    trustDomain: s('trustDomain', '') || d.trustDomain,
    trustDomainAliases: [...new Set([...list('trustDomainAliases', []), ...d.trustDomainAliases])].sort(),
    rootNamespace: s('rootNamespace', '') || d.rootNamespace,
    // protobuf's zero value of the mode is REGISTRY_ONLY: a policy given without a mode restricts.
    outboundTrafficPolicy: { mode: m['outboundTrafficPolicy'] === undefined ? d.outboundTrafficPolicy.mode : otp === 'ALLOW_ANY' ? 'ALLOW_ANY' : 'REGISTRY_ONLY' },
    accessLogFile: s('accessLogFile', d.accessLogFile),
    accessLogFormat: s('accessLogFormat', d.accessLogFormat),
    accessLogEncoding: m['accessLogEncoding'] === 'JSON' ? 'JSON' : 'TEXT',
    disableEnvoyListenerLog: m['disableEnvoyListenerLog'] === true,
    connectTimeout: s('connectTimeout', d.connectTimeout),
    protocolDetectionTimeout: s('protocolDetectionTimeout', d.protocolDetectionTimeout),
    enableAutoMtls: typeof m['enableAutoMtls'] === 'boolean' ? m['enableAutoMtls'] : d.enableAutoMtls,
    localityLbSetting: isRecord(m['localityLbSetting']) ? (m['localityLbSetting'] as LocalityLbSetting) : d.localityLbSetting,
    defaultServiceExportTo: list('defaultServiceExportTo', d.defaultServiceExportTo),
    defaultVirtualServiceExportTo: list('defaultVirtualServiceExportTo', d.defaultVirtualServiceExportTo),
    defaultDestinationRuleExportTo: list('defaultDestinationRuleExportTo', d.defaultDestinationRuleExportTo),
    defaultConfig,
    other,
  };
}

/** The effective MeshConfig as one protobuf-JSON-shaped object, keys sorted (`/debug/mesh`). */
export function meshConfigView(c: MeshConfig): Record<string, unknown> {
  const { other, ...typed } = c;
  const all: Record<string, unknown> = { ...other, ...typed };
  return Object.fromEntries(
    Object.keys(all)
      .sort()
      .map((k) => [k, all[k]]),
  );
}
