/**
 * WorkloadEntry (networking.istio.io), after Istio's ValidateWorkloadEntry and the CRD's rules,
 * plus the endpoint checks a ServiceEntry applies to its inline WorkloadEntry endpoints.
 */
import type { ConfigObject } from '../objects';
import { Issues, isRecord, num, pathKey, rec, str, type JsonObject } from './common';
import { checkLabelMap, portError } from './istio-common';
import { isIP } from './ip';
import { dnsLabelError, dnsSubdomainError, fqdnError } from './names';
import { checkSpec } from './schema';
import { WORKLOAD_ENTRY_LIMITS, workloadEntrySchema } from './serviceentry-schema';

export const UNIX_PREFIX = 'unix://';
const MAX_LOCALITY = 2048;
const MAX_NETWORK = 2048;

/** Istio's ValidateUnixAddress, for the part after `unix://`: an absolute file path or an abstract `@name`. */
export function unixAddressError(addr: string): string | undefined {
  if (addr === '') return 'unix address must not be empty';
  if (addr.startsWith('@')) return undefined;
  if (!addr.startsWith('/') || addr.endsWith('/')) {
    return `${JSON.stringify(UNIX_PREFIX + addr)} is not an absolute path to a file (use unix:///path/to/socket or unix://@abstract)`;
  }
  return undefined;
}

/** A list or map with more than `max` entries (the CRDs' `maxItems` / `maxProperties`). */
export function checkMaxSize(issues: Issues, path: string, v: unknown, max: number): void {
  const n = Array.isArray(v) ? v.length : isRecord(v) ? Object.keys(v).length : 0;
  if (n > max) issues.add(path, `must have at most ${max} ${Array.isArray(v) ? 'items' : 'entries'} (got ${n})`);
}

/**
 * How an endpoint address is read: `workload` (a WorkloadEntry: IP, FQDN or unix socket),
 * `static` (ServiceEntry resolution STATIC: IP or unix socket), `dns` (DNS / DNS_ROUND_ROBIN:
 * IP or FQDN).
 */
export type AddressMode = 'workload' | 'static' | 'dns';

export interface EndpointContext {
  readonly mode: AddressMode;
  /** A ServiceEntry's port names: endpoint `ports` keys must name one of them. */
  readonly servicePorts?: ReadonlySet<string>;
}

/** Checks one WorkloadEntry spec (standalone, or a ServiceEntry endpoint) at `path`. */
export function checkWorkloadEntry(issues: Issues, path: string, we: JsonObject, ctx: EndpointContext): void {
  checkAddress(issues, path, we, ctx.mode);
  for (const [name, value] of Object.entries(rec(we['ports']) ?? {})) {
    const p = pathKey(pathKey(path, 'ports'), name);
    const known = ctx.servicePorts;
    if (known !== undefined && !known.has(name)) {
      const names = [...known].map((n) => JSON.stringify(n)).join(', ');
      issues.add(p, `endpoint port ${JSON.stringify(name)} is not defined by the service entry (its port names: ${names || 'none'})`);
    }
    const nameErr = dnsLabelError(name);
    if (nameErr !== undefined) issues.add(p, `invalid port name: ${nameErr}`);
    const n = num(value);
    if (n !== undefined && Number.isInteger(n)) issues.addIf(p, portError(n));
  }
  checkLabelMap(issues, pathKey(path, 'labels'), we['labels']);
  for (const [field, max] of WORKLOAD_ENTRY_LIMITS) checkMaxSize(issues, pathKey(path, field), we[field], max);

  const locality = str(we['locality']);
  if (locality !== undefined && locality !== '') issues.addIf(pathKey(path, 'locality'), localityError(locality));
  const network = str(we['network']);
  if (network !== undefined && network.length > MAX_NETWORK) {
    issues.add(pathKey(path, 'network'), `network name must be at most ${MAX_NETWORK} characters (got ${network.length})`);
  }
  const sa = str(we['serviceAccount']);
  if (sa !== undefined && sa !== '') {
    const err = dnsSubdomainError(sa);
    if (err !== undefined) issues.add(pathKey(path, 'serviceAccount'), `invalid service account name: ${err}`);
  }
}

function checkAddress(issues: Issues, path: string, we: JsonObject, mode: AddressMode): void {
  const p = pathKey(path, 'address');
  if (we['address'] !== undefined && we['address'] !== null && typeof we['address'] !== 'string') return; // schema pass
  const address = str(we['address']) ?? '';
  const quoted = JSON.stringify(address);
  if (address === '') {
    if (mode === 'dns') issues.add(p, 'endpoint address is required for DNS resolution (an IP address or a DNS name)');
    else if ((str(we['network']) ?? '') === '') issues.add(p, 'address is required (it may be left out only when network is set)');
    return;
  }
  if (address.startsWith(UNIX_PREFIX)) {
    if (mode === 'dns') {
      issues.add(p, `endpoint address ${quoted} is not a valid FQDN or an IP address (unix domain sockets need resolution STATIC)`);
      return;
    }
    issues.addIf(p, unixAddressError(address.slice(UNIX_PREFIX.length)));
    if (Object.keys(rec(we['ports']) ?? {}).length > 0) issues.add(pathKey(path, 'ports'), `unix endpoint ${quoted} must not include ports`);
    return;
  }
  if (isIP(address)) return;
  if (mode === 'static') {
    issues.add(p, `endpoint address ${quoted} is not a valid IP address (resolution STATIC takes IP addresses or unix:// sockets)`);
  } else if (fqdnError(address) !== undefined) {
    issues.add(p, `endpoint address ${quoted} is not a valid FQDN or an IP address`);
  }
}

/** `region[/zone[/subzone]]`, without empty parts. */
function localityError(locality: string): string | undefined {
  if (locality.length > MAX_LOCALITY) return `locality must be at most ${MAX_LOCALITY} characters (got ${locality.length})`;
  if (locality.split('/').some((part) => part === '')) {
    return `locality ${JSON.stringify(locality)} must not contain empty region/zone/subzone info (write region/zone/subzone)`;
  }
  return undefined;
}

export function validateWorkloadEntry(obj: ConfigObject, issues: Issues): void {
  const spec = checkSpec(obj.body, workloadEntrySchema, issues);
  if (spec === undefined) return;
  checkWorkloadEntry(issues, 'spec', spec, { mode: 'workload' });
}
