/**
 * VirtualService (networking.istio.io), after Istio's ValidateVirtualService: strict field set,
 * hosts, gateways, exportTo, and HTTP / TCP / TLS routes. Gateway-bound TLS routes may match the
 * auto-generated SNI `outbound_.<port>_._.<host>`; an IP address as SNI is a warning, as in Istio.
 */
import type { ConfigObject } from '../objects';
import { Issues, arr, num, pathIdx, pathKey, recordItems, stringItems, type JsonObject } from './common';
import { checkHttpRoute, checkRouteDestinations } from './httproute';
import type { RouteContext } from './httpmatch';
import { checkExportTo, checkGatewayNames, checkLabelMap, portError } from './istio-common';
import { isIP, subnetError } from './ip';
import { hostsOverlap, wildcardDomainError } from './names';
import { checkSpec } from './schema';
import { virtualServiceSchema } from './virtualservice-schema';

export function validateVirtualService(obj: ConfigObject, issues: Issues): void {
  const spec = checkSpec(obj.body, virtualServiceSchema, issues);
  if (spec === undefined) return;

  const gateways = stringItems(spec['gateways']).map(([, g]) => g);
  const gatewayOnly = gateways.length > 0 && !gateways.includes('mesh');
  const ctx: RouteContext = { gatewayOnly };
  checkGatewayNames(issues, 'spec.gateways', spec['gateways']);
  checkHosts(issues, spec, gatewayOnly, gatewayOnly && hasSniMatch(spec));

  const http = arr(spec['http']) ?? [];
  const tcp = arr(spec['tcp']) ?? [];
  const tls = arr(spec['tls']) ?? [];
  if (http.length + tcp.length + tls.length === 0) {
    issues.add('spec', 'http, tcp or tls must be provided in virtual service');
  }
  for (const [i, r] of recordItems(http)) checkHttpRoute(issues, pathIdx('spec.http', i), r, ctx);
  for (const [i, r] of recordItems(tcp)) checkTcpRoute(issues, pathIdx('spec.tcp', i), r);
  for (const [i, r] of recordItems(tls)) checkTlsRoute(issues, pathIdx('spec.tls', i), r, spec);
  checkExportTo(issues, 'spec.exportTo', spec['exportTo'], obj.metadata.namespace);
}

/** Hosts: valid and not overlapping; none makes a delegate VirtualService, which binds to no gateway and has HTTP routes only. */
function checkHosts(issues: Issues, spec: JsonObject, gatewayOnly: boolean, autoSni: boolean): void {
  const hosts = stringItems(spec['hosts']);
  if ((arr(spec['hosts'])?.length ?? 0) === 0) {
    if ((arr(spec['gateways'])?.length ?? 0) > 0) issues.add('spec.gateways', 'delegate virtual service must have no gateways specified');
    if ((arr(spec['tls'])?.length ?? 0) > 0) issues.add('spec.tls', 'delegate virtual service must have no tls route specified');
    if ((arr(spec['tcp'])?.length ?? 0) > 0) issues.add('spec.tcp', 'delegate virtual service must have no tcp route specified');
    return;
  }
  let allValid = true;
  for (const [i, host] of hosts) {
    const err = autoSni ? gatewaySniHostError(host) : wildcardDomainError(host);
    if (err !== undefined && !isIP(host)) {
      issues.add(pathIdx('spec.hosts', i), err);
      allValid = false;
    } else if (host === '*' && !gatewayOnly) {
      issues.add(pathIdx('spec.hosts', i), 'wildcard host * is not allowed for virtual services bound to the mesh gateway');
      allValid = false;
    }
  }
  if (!allValid) return;
  for (let a = 0; a < hosts.length && !issues.enough(); a++) {
    for (let b = a + 1; b < hosts.length && !issues.enough(); b++) {
      const [, ha = ''] = hosts[a] ?? [];
      const [ib = 0, hb = ''] = hosts[b] ?? [];
      if (hostsOverlap(ha, hb)) issues.add(pathIdx('spec.hosts', ib), `duplicate hosts in virtual service: ${ha} & ${hb}`);
    }
  }
}

function checkL4Match(issues: Issues, path: string, m: JsonObject): void {
  for (const [i, subnet] of stringItems(m['destinationSubnets'])) {
    issues.addIf(pathIdx(pathKey(path, 'destinationSubnets'), i), subnetError(subnet));
  }
  const port = num(m['port']);
  if (port !== undefined && port !== 0 && Number.isInteger(port)) issues.addIf(pathKey(path, 'port'), portError(port));
  checkLabelMap(issues, pathKey(path, 'sourceLabels'), m['sourceLabels']);
  checkGatewayNames(issues, pathKey(path, 'gateways'), m['gateways']);
}

function checkTcpRoute(issues: Issues, path: string, r: JsonObject): void {
  for (const [i, m] of recordItems(r['match'])) checkL4Match(issues, pathIdx(pathKey(path, 'match'), i), m);
  if ((arr(r['route'])?.length ?? 0) === 0) issues.add(pathKey(path, 'route'), 'TCP route is required: add at least one destination');
  checkRouteDestinations(issues, pathKey(path, 'route'), r['route'], false);
}

/** A TLS match with SNI hosts (Istio's isSniHost): VirtualService hosts may then take the auto-generated SNI form. */
function hasSniMatch(spec: JsonObject): boolean {
  return recordItems(spec['tls']).some(([, t]) => recordItems(t['match']).some(([, m]) => (arr(m['sniHosts'])?.length ?? 0) > 0));
}

const OUTBOUND_SNI_FORM = 'outbound_.<PORT>_._.<HOSTNAME>';

/**
 * Istio's ValidateWildcardDomainForVirtualServiceBoundToGateway with SNI: a wildcard domain, or
 * the SNI an AUTO_PASSTHROUGH gateway sees from a sidecar, `outbound_.<port>_._.<hostname>`.
 */
function gatewaySniHostError(domain: string): string | undefined {
  if (!domain.startsWith('outbound_')) return wildcardDomainError(domain);
  if (domain.length > 255) return `domain name ${JSON.stringify(domain)} too long (max 255)`;
  const parts = domain.split('_');
  if (parts.length < 4) return `domain name ${domain} invalid, should follow '${OUTBOUND_SNI_FORM}' format`;
  const trim = (x: string): string => x.replace(/^\.+|\.+$/g, '');
  const port = trim(parts[1] ?? '');
  const hostname = trim(parts[3] ?? '');
  if (!/[0-9]/.test(port)) return `domain name ${JSON.stringify(domain)} invalid (label ${JSON.stringify(port)} invalid). should follow ${OUTBOUND_SNI_FORM} format`;
  if (!/[a-zA-Z]/.test(hostname)) return `domain name ${JSON.stringify(domain)} invalid (label ${JSON.stringify(hostname)} invalid). should follow ${OUTBOUND_SNI_FORM} format`;
  return undefined;
}

function checkTlsRoute(issues: Issues, path: string, r: JsonObject, spec: JsonObject): void {
  const hosts = stringItems(spec['hosts']).map(([, h]) => h);
  // Istio's isGateway: bound to gateways unless `mesh` is named (an empty list counts as gateway here).
  const toGateway = !stringItems(spec['gateways']).some(([, g]) => g === 'mesh');
  if ((arr(r['match'])?.length ?? 0) === 0) issues.add(pathKey(path, 'match'), 'TLS route must have at least one match condition');
  for (const [i, m] of recordItems(r['match'])) {
    const p = pathIdx(pathKey(path, 'match'), i);
    const sni = stringItems(m['sniHosts']);
    if (sni.length === 0) issues.add(pathKey(p, 'sniHosts'), 'TLS match must have at least one SNI host');
    for (const [j, h] of sni) {
      const sp = pathIdx(pathKey(p, 'sniHosts'), j);
      const err = toGateway ? gatewaySniHostError(h) : wildcardDomainError(h);
      if (err !== undefined) {
        // Istio warns of an IP address as SNI (against RFC 6066, and most clients never send one).
        if (isIP(h)) issues.warn(sp, `using an IP address (${JSON.stringify(h)}) goes against SNI spec and most clients do not support this`);
        else issues.add(sp, err);
      } else if (!hosts.some((vh) => sniWithin(h, vh))) {
        issues.add(sp, `SNI host ${JSON.stringify(h)} is not a compatible subset of any of the virtual service hosts: [${hosts.join(', ')}]`);
      }
    }
    checkL4Match(issues, p, m);
  }
  if ((arr(r['route'])?.length ?? 0) === 0) issues.add(pathKey(path, 'route'), 'TLS route is required: add at least one destination');
  checkRouteDestinations(issues, pathKey(path, 'route'), r['route'], false);
}

/** host.Name.SubsetOf: `a.foo.com` ⊂ `*.foo.com` ⊂ `*`. */
function sniWithin(sni: string, host: string): boolean {
  if (host.startsWith('*')) {
    const suffix = host.slice(1);
    return sni.startsWith('*') ? sni.slice(1).endsWith(suffix) : sni.endsWith(suffix);
  }
  return sni === host;
}
