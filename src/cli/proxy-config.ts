/**
 * `meshctl proxy-config`: istioctl's short tables and filters over a config dump in proto3 JSON
 * (istioctl/pkg/writer/envoy/configdump): clusters, listeners, routes, endpoints (from the EDS
 * part of the dump, as istioctl prints a dump's endpoints), secrets.
 */
import { X509Certificate } from 'node:crypto';
import { tabulate } from './tables';

export type Json = Record<string, unknown>;

const ADMIN = 'type.googleapis.com/envoy.admin.v3.';
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

export const obj = (v: unknown): Json => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
export const arr = (v: unknown): Json[] => (Array.isArray(v) ? v.map(obj) : []);
export const s = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');

/** A message without its Any's `@type` (istioctl prints the bare messages). */
function bare(m: unknown): Json {
  const { ['@type']: _t, ...rest } = obj(m);
  return rest;
}

function part(dump: Json, name: string): Json {
  return arr(dump['configs']).find((c) => c['@type'] === `${ADMIN}${name}`) ?? {};
}

/** `direction|port|subset|fqdn` (istiod's subset key), or the name alone. */
function subsetKey(name: string): { direction: string; port: number; subset: string; fqdn: string } {
  const p = name.split('|');
  if (p.length > 3) return { direction: p[0] ?? '', port: Number(p[1]) || 0, subset: p[2] ?? '', fqdn: p.slice(3).join('|') };
  return { direction: '', port: 0, subset: '', fqdn: name };
}

function byClusterName(a: string, b: string): number {
  const x = subsetKey(a);
  const y = subsetKey(b);
  if (x.fqdn !== y.fqdn) return x.fqdn < y.fqdn ? -1 : 1;
  if (x.subset !== y.subset) return x.subset < y.subset ? -1 : 1;
  if (x.port !== y.port) return x.port - y.port;
  return x.direction < y.direction ? -1 : x.direction > y.direction ? 1 : 0;
}

/** istioctl's describeManagement: the Istio object a resource came from, `name.namespace`. */
export function management(metadata: unknown): string {
  const cfg = s(obj(obj(obj(metadata)['filterMetadata'])['istio'])['config']);
  if (!cfg) return '';
  const p = cfg.split('/');
  return cfg.startsWith('/apis/networking.istio.io/') && p.length === 8 ? `${p[7]}.${p[5]}` : '<unknown>';
}

// ---------- clusters ----------

export interface ClusterFilter {
  fqdn?: string;
  port?: number;
  subset?: string;
  direction?: string;
}

export function clusters(dump: Json, f: ClusterFilter): Json[] {
  const d = part(dump, 'ClustersConfigDump');
  const all = [...arr(d['dynamicActiveClusters']), ...arr(d['staticClusters'])].map((c) => bare(c['cluster']));
  return all
    .filter((c) => {
      const name = s(c['name']);
      if (f.fqdn && !name.includes(f.fqdn)) return false;
      if (f.direction && !name.includes(f.direction)) return false;
      if (f.subset && !name.includes(f.subset)) return false;
      if (f.port && !name.includes(`|${f.port}|`)) return false;
      return true;
    })
    .sort((a, b) => byClusterName(s(a['name']), s(b['name'])));
}

export function clusterTable(list: readonly Json[]): string {
  const rows = [['SERVICE FQDN', 'PORT', 'SUBSET', 'DIRECTION', 'TYPE', 'DESTINATION RULE']];
  for (const c of list) {
    const name = s(c['name']);
    const type = s(c['type']) || 'STATIC';
    const dr = management(c['metadata']);
    if (name.split('|').length > 3) {
      const k = subsetKey(name);
      rows.push([k.fqdn, String(k.port), k.subset || '-', k.direction, type, dr]);
    } else rows.push([name, '-', '-', '-', type, dr]);
  }
  return tabulate(rows, 5);
}

// ---------- listeners ----------

export interface ListenerFilter {
  address?: string;
  port?: number;
  type?: string;
}

function listenerAddress(l: Json): string {
  return s(obj(obj(l['address'])['socketAddress'])['address']);
}

function listenerAddresses(l: Json): string {
  const extra = arr(l['additionalAddresses']).map((a) => s(obj(obj(a['address'])['socketAddress'])['address']));
  return [listenerAddress(l), ...extra].filter((a) => a !== '').join(',');
}

function listenerPort(l: Json): number {
  return Number(obj(obj(l['address'])['socketAddress'])['portValue'] ?? 0);
}

function filtersOf(l: Json): Json[][] {
  return arr(l['filterChains']).map((fc) => arr(fc['filters']));
}

function isBlackHoleTcp(f: Json): boolean {
  return s(obj(f['typedConfig'])['cluster']) === 'BlackHoleCluster';
}

function listenerType(l: Json): string {
  let http = 0;
  let tcp = 0;
  for (const filters of filtersOf(l)) {
    for (const f of filters) {
      const t = s(obj(f['typedConfig'])['@type']);
      if (t === HCM) http++;
      else if (t === TCP_PROXY && !isBlackHoleTcp(f)) tcp++;
    }
  }
  if (http > 0) return tcp === 0 ? 'HTTP' : 'HTTP+TCP';
  return tcp > 0 ? 'TCP' : 'UNKNOWN';
}

export function listeners(dump: Json, f: ListenerFilter): Json[] {
  const d = part(dump, 'ListenersConfigDump');
  const all = [...arr(d['dynamicListeners']).map((l) => bare(obj(l['activeState'])['listener'])), ...arr(d['staticListeners']).map((l) => bare(l['listener']))].filter(
    (l) => Object.keys(l).length > 0,
  );
  return all.filter((l) => {
    if (f.address && listenerAddress(l).toLowerCase() !== f.address.toLowerCase()) return false;
    if (f.port && listenerPort(l) !== f.port) return false;
    if (f.type && listenerType(l).toLowerCase() !== f.type.toLowerCase()) return false;
    return true;
  });
}

const ALPN_DESCRIPTIONS: readonly [string, readonly string[]][] = [
  ['App: HTTP TLS', ['http/1.0', 'http/1.1', 'h2c', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2']],
  ['App: Istio HTTP Plain', ['istio', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2']],
  ['App: TCP TLS', ['istio-peer-exchange', 'istio']],
  ['App: HTTP', ['http/1.0', 'http/1.1', 'h2c']],
];

function describeMatch(m: Json): string {
  const conds: string[] = [];
  if (s(m['prefix'])) conds.push(`${s(m['prefix'])}*`);
  if (s(m['path'])) conds.push(s(m['path']));
  if (m['safeRegex'] !== undefined) conds.push(`regex ${s(obj(m['safeRegex'])['regex'])}`);
  return conds.join(' ');
}

function chainDestination(filters: readonly Json[]): string {
  for (const f of filters) {
    const tc = obj(f['typedConfig']);
    const t = s(tc['@type']);
    if (t === HCM) {
      const rc = obj(tc['routeConfig']);
      if (Object.keys(rc).length > 0) {
        const vhosts = arr(rc['virtualHosts']).map((vh) => {
          const domains = (vh['domains'] as string[] | undefined) ?? [];
          const routes = arr(vh['routes'])
            .map((r) => describeMatch(obj(r['match'])))
            .join(', ');
          return domains.length === 1 && domains[0] === '*' ? routes : `${domains.join('/')} ${routes}`;
        });
        return `Inline Route: ${vhosts.join('; ')}`;
      }
      const rds = s(obj(tc['rds'])['routeConfigName']);
      return rds ? `Route: ${rds}` : 'HTTP';
    }
    if (t === TCP_PROXY && !isBlackHoleTcp(f)) {
      const cluster = s(tc['cluster']);
      return cluster.includes('Cluster') ? cluster : `Cluster: ${cluster}`;
    }
  }
  return 'Non-HTTP/Non-TCP';
}

function chainMatch(fcm: Json): string {
  const d: string[] = [];
  const sni = (fcm['serverNames'] as string[] | undefined) ?? [];
  if (sni.length > 0) d.push(`SNI: ${sni.join(',')}`);
  if (s(fcm['transportProtocol'])) d.push(`Trans: ${s(fcm['transportProtocol'])}`);
  const alpn = (fcm['applicationProtocols'] as string[] | undefined) ?? [];
  if (alpn.length > 0) {
    const known = ALPN_DESCRIPTIONS.find(([, p]) => p.length === alpn.length && p.every((x, i) => x === alpn[i]));
    d.push(known ? known[0] : `App: ${alpn.join(',')}`);
  }
  const port = fcm['destinationPort'] !== undefined ? `:${s(fcm['destinationPort'])}` : '';
  if (s(fcm['addressSuffix'])) d.push(`Addr: ${s(fcm['addressSuffix'])}${port}`);
  const ranges = arr(fcm['prefixRanges']);
  if (ranges.length > 0) d.push(`Addr: ${ranges.map((r) => `${s(r['addressPrefix'])}/${s(r['prefixLen']) || '0'}`).join(',')}${port}`);
  return d.length > 0 ? d.join('; ') : 'ALL';
}

export function listenerTable(list: readonly Json[]): string {
  const sorted = [...list].sort((a, b) => {
    if (listenerPort(a) !== listenerPort(b)) return listenerPort(a) - listenerPort(b);
    if (listenerAddress(a) !== listenerAddress(b)) return listenerAddress(a) < listenerAddress(b) ? -1 : 1;
    return listenerType(a) < listenerType(b) ? -1 : listenerType(a) > listenerType(b) ? 1 : 0;
  });
  const rows = [['ADDRESSES', 'PORT', 'MATCH', 'DESTINATION']];
  for (const l of sorted) {
    const matches = arr(l['filterChains'])
      .map((fc) => ({ match: chainMatch(obj(fc['filterChainMatch'])), destination: chainDestination(arr(fc['filters'])) }))
      .sort((a, b) => (a.destination > b.destination ? -1 : a.destination < b.destination ? 1 : 0));
    for (const m of matches) rows.push([listenerAddresses(l), String(listenerPort(l)), m.match, m.destination]);
  }
  return tabulate(rows, 1);
}

// ---------- routes ----------

export function routes(dump: Json, name?: string): Json[] {
  const d = part(dump, 'RoutesConfigDump');
  const all = [...arr(d['dynamicRouteConfigs']), ...arr(d['staticRouteConfigs'])].map((r) => bare(r['routeConfig']));
  return all.filter((r) => !name || s(r['name']) === name);
}

/** istioctl's describeRouteDomains: one domain, or the shortest forms without ports (two, then "+ N more..."). */
function describeDomains(domains: readonly string[]): string {
  if (domains.length <= 1) return domains[0] ?? '';
  const withoutPort = domains.filter((d) => !d.includes(':') || (d.split(':').length - 1 > 2 && d.endsWith(']')));
  const set = new Set(withoutPort);
  const kept = withoutPort.filter((h) => {
    const full = h.endsWith('.svc.cluster.local') ? h.slice(0, -'.svc.cluster.local'.length) : h;
    const partial = h.endsWith('.svc') ? h.slice(0, -'.svc'.length) : h;
    return !((full !== h && set.has(full)) || (partial !== h && set.has(partial)));
  });
  return kept.length > 2 ? `${kept.slice(0, 2).join(', ')} + ${kept.length - 2} more...` : kept.join(', ');
}

export function routeTable(list: readonly Json[]): string {
  const rows = [['NAME', 'VHOST NAME', 'DOMAINS', 'MATCH', 'VIRTUAL SERVICE']];
  for (const rc of list) {
    let first = true;
    const name = (): string => {
      const n = first ? s(rc['name']) : '';
      first = false;
      return n;
    };
    for (const vh of arr(rc['virtualHosts'])) {
      const domains = describeDomains((vh['domains'] as string[] | undefined) ?? []);
      const rs = arr(vh['routes']);
      for (const r of rs) {
        if (s(obj(r['route'])['cluster']) === 'PassthroughCluster') continue;
        rows.push([name(), s(vh['name']), domains, describeMatch(obj(r['match'])), management(r['metadata'])]);
      }
      if (rs.length === 0) rows.push([name(), s(vh['name']), domains, '/*', '404']);
    }
  }
  return tabulate(rows, 5);
}

// ---------- endpoints ----------

export interface EndpointFilter {
  address?: string;
  port?: number;
  cluster?: string;
  status?: string;
}

export function endpointAddress(ep: Json): string {
  const a = obj(obj(ep['endpoint'])['address']);
  const sa = obj(a['socketAddress']);
  if (Object.keys(sa).length > 0) return `${s(sa['address'])}:${s(sa['portValue']) || '0'}`;
  return s(obj(a['pipe'])['path']);
}

/** ClusterLoadAssignments with only the endpoints that pass the filter; assignments left empty are dropped. */
export function endpoints(dump: Json, f: EndpointFilter): Json[] {
  const d = part(dump, 'EndpointsConfigDump');
  const all = [...arr(d['dynamicEndpointConfigs']), ...arr(d['staticEndpointConfigs'])].map((e) => bare(e['endpointConfig']));
  const out: Json[] = [];
  for (const cla of all) {
    const cluster = s(cla['clusterName']);
    let kept = 0;
    const localities = arr(cla['endpoints']).map((llb) => {
      const lbEndpoints = arr(llb['lbEndpoints']).filter((ep) => {
        const addr = endpointAddress(ep);
        const sa = obj(obj(obj(ep['endpoint'])['address'])['socketAddress']);
        if (f.address && addr.toLowerCase() !== f.address.toLowerCase() && s(sa['address']).toLowerCase() !== f.address.toLowerCase()) return false;
        if (f.port && Number(sa['portValue'] ?? 0) !== f.port) return false;
        if (f.cluster && cluster.toLowerCase() !== f.cluster.toLowerCase()) return false;
        if (f.status && (s(ep['healthStatus']) || 'UNKNOWN').toLowerCase() !== f.status.toLowerCase()) return false;
        return true;
      });
      kept += lbEndpoints.length;
      return { ...llb, lbEndpoints };
    });
    if (kept > 0) out.push({ ...cla, endpoints: localities });
  }
  return out.sort((a, b) => byClusterName(s(a['clusterName']), s(b['clusterName'])));
}

export function endpointTable(list: readonly Json[]): string {
  const rows = [['ENDPOINT', 'STATUS', 'LOCALITY', 'CLUSTER']];
  for (const cla of list) {
    for (const llb of arr(cla['endpoints'])) {
      const loc = obj(llb['locality']);
      const locality = [s(loc['region']), s(loc['zone']), s(loc['subZone'])].filter((x) => x !== '').join('/');
      for (const ep of arr(llb['lbEndpoints'])) rows.push([endpointAddress(ep), s(ep['healthStatus']) || 'UNKNOWN', locality, s(cla['clusterName'])]);
    }
  }
  return tabulate(rows, 5);
}

// ---------- secrets ----------

export function secrets(dump: Json): Json[] {
  const d = part(dump, 'SecretsConfigDump');
  return [...arr(d['dynamicActiveSecrets']), ...arr(d['staticSecrets'])];
}

function certOf(secret: Json): { type: string; pem: string } | undefined {
  const tls = obj(secret['tlsCertificate']);
  const chain = s(obj(tls['certificateChain'])['inlineBytes']) || s(obj(tls['certificateChain'])['inlineString']);
  if (chain) return { type: 'Cert Chain', pem: chain.includes('-----BEGIN') ? chain : Buffer.from(chain, 'base64').toString('utf8') };
  const vc = obj(secret['validationContext']);
  const ca = s(obj(vc['trustedCa'])['inlineBytes']) || s(obj(vc['trustedCa'])['inlineString']);
  if (ca) return { type: 'CA', pem: ca.includes('-----BEGIN') ? ca : Buffer.from(ca, 'base64').toString('utf8') };
  return undefined;
}

export function secretTable(list: readonly Json[], now: Date): string {
  const rows = [['RESOURCE NAME', 'TYPE', 'STATUS', 'VALID CERT', 'SERIAL NUMBER', 'NOT AFTER', 'NOT BEFORE']];
  const iso = (d: Date): string => `${d.toISOString().slice(0, 19)}Z`;
  for (const entry of list) {
    const secret = bare(entry['secret']);
    const c = certOf(secret);
    let cert: X509Certificate | undefined;
    try {
      cert = c ? new X509Certificate(c.pem) : undefined;
    } catch {
      cert = undefined;
    }
    if (!c || !cert) {
      rows.push([s(entry['name']), c?.type ?? '', 'ACTIVE', 'false', '', '', '']);
      continue;
    }
    const notAfter = new Date(cert.validTo);
    const notBefore = new Date(cert.validFrom);
    const valid = now >= notBefore && now <= notAfter;
    rows.push([s(entry['name']), c.type, 'ACTIVE', String(valid), BigInt(`0x${cert.serialNumber}`).toString(), iso(notAfter), iso(notBefore)]);
  }
  return tabulate(rows, 5);
}
