/**
 * ServiceEntry (networking.istio.io), after Istio's ValidateServiceEntry and its CRD's rules:
 * strict field set, hosts, addresses, ports, resolution and endpoints, workloadSelector and
 * exportTo (where `~`, visible to no other namespace, is allowed alone).
 */
import type { ConfigObject } from '../objects';
import { Issues, arr, num, pathIdx, pathKey, rec, recordItems, str, stringItems, type JsonObject } from './common';
import { checkExportTo, checkSelectorLabels, portError } from './istio-common';
import { subnetError } from './ip';
import { dnsLabelError, fqdnError, wildcardDomainError } from './names';
import { isHttpProtocol, isTlsProtocol, parseProtocol, unsupportedProtocolError } from './protocol';
import { checkSpec } from './schema';
import { SERVICE_ENTRY_LIMITS, serviceEntrySchema } from './serviceentry-schema';
import { UNIX_PREFIX, checkMaxSize, checkWorkloadEntry } from './workloadentry';

export function validateServiceEntry(obj: ConfigObject, issues: Issues): void {
  const spec = checkSpec(obj.body, serviceEntrySchema, issues);
  if (spec === undefined) return;
  for (const [field, max] of SERVICE_ENTRY_LIMITS) checkMaxSize(issues, pathKey('spec', field), spec[field], max);

  // resolution defaults to NONE (the proto's zero value)
  const resolution = str(spec['resolution']) ?? 'NONE';
  const hasEndpoints = (arr(spec['endpoints'])?.length ?? 0) > 0;
  checkHosts(issues, spec, resolution, hasEndpoints);
  checkAddresses(issues, spec, resolution);
  const portNames = checkPorts(issues, spec);
  checkSelector(issues, spec, hasEndpoints);
  checkEndpoints(issues, spec, resolution, portNames);
  checkMultipleHosts(issues, spec, resolution);
  checkServiceEntryExportTo(issues, spec['exportTo'], obj.metadata.namespace);
}

function checkHosts(issues: Issues, spec: JsonObject, resolution: string, hasEndpoints: boolean): void {
  if ((arr(spec['hosts'])?.length ?? 0) === 0) {
    issues.add('spec.hosts', 'service entry must have at least one host');
    return;
  }
  const dns = resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN';
  for (const [i, host] of stringItems(spec['hosts'])) {
    const p = pathIdx('spec.hosts', i);
    if (host === '*') {
      issues.add(p, 'invalid host *: a service entry cannot use the full wildcard (name a domain such as *.example.com)');
      continue;
    }
    const err = wildcardDomainError(host);
    if (err !== undefined) issues.add(p, err);
    else if (dns && !hasEndpoints && fqdnError(host) !== undefined) {
      issues.add(p, `hosts must be FQDN if no endpoints are provided for resolution mode ${resolution} (${JSON.stringify(host)} is a wildcard)`);
    }
  }
}

function checkAddresses(issues: Issues, spec: JsonObject, resolution: string): void {
  let cidrReported = false;
  for (const [i, address] of stringItems(spec['addresses'])) {
    const p = pathIdx('spec.addresses', i);
    const err = subnetError(address);
    if (err !== undefined) {
      issues.add(p, err);
    } else if (address.includes('/') && resolution !== 'NONE' && resolution !== 'STATIC' && !cidrReported) {
      issues.add(p, `CIDR addresses are allowed only for NONE/STATIC resolution types (resolution is ${resolution})`);
      cidrReported = true;
    }
  }
}

/** Port names, numbers, target ports and protocols; returns the declared port names. */
function checkPorts(issues: Issues, spec: JsonObject): Set<string> {
  const names = new Set<string>();
  const numbers = new Set<number>();
  for (const [i, port] of recordItems(spec['ports'])) {
    const p = pathIdx('spec.ports', i);
    const name = str(port['name']);
    if (port['name'] === undefined || port['name'] === null || name === '') {
      issues.add(pathKey(p, 'name'), 'port name is required');
    } else if (name !== undefined) {
      const err = dnsLabelError(name);
      if (err !== undefined) issues.add(pathKey(p, 'name'), `invalid port name: ${err}`);
      if (names.has(name)) issues.add(pathKey(p, 'name'), `service entry port name ${JSON.stringify(name)} already defined`);
      names.add(name);
    }
    const n = num(port['number']);
    if (port['number'] === undefined || port['number'] === null) {
      issues.add(pathKey(p, 'number'), 'port number is required');
    } else if (n !== undefined && Number.isInteger(n)) {
      issues.addIf(pathKey(p, 'number'), portError(n));
      if (numbers.has(n)) issues.add(pathKey(p, 'number'), `service entry port ${n} already defined`);
      numbers.add(n);
    }
    const target = num(port['targetPort']);
    if (target !== undefined && Number.isInteger(target)) issues.addIf(pathKey(p, 'targetPort'), portError(target));
    const protocol = str(port['protocol']);
    // an empty protocol asks for protocol sniffing
    if (protocol !== undefined && protocol !== '' && parseProtocol(protocol) === undefined) {
      issues.add(pathKey(p, 'protocol'), unsupportedProtocolError(protocol));
    }
  }
  return names;
}

/** ValidateAlphaWorkloadSelector, and only one of workloadSelector and endpoints. */
function checkSelector(issues: Issues, spec: JsonObject, hasEndpoints: boolean): void {
  const selector = rec(spec['workloadSelector']);
  if (selector === undefined) return;
  if (hasEndpoints) issues.add('spec', 'only one of workloadSelector or endpoints is allowed in a service entry');
  checkSelectorLabels(issues, 'spec.workloadSelector.labels', selector['labels']);
}

function checkEndpoints(issues: Issues, spec: JsonObject, resolution: string, portNames: ReadonlySet<string>): void {
  const endpoints = recordItems(spec['endpoints']);
  const count = arr(spec['endpoints'])?.length ?? 0;
  switch (resolution) {
    case 'NONE':
      if (count > 0) issues.add('spec.endpoints', 'no endpoints should be provided for resolution type NONE');
      return;
    case 'STATIC': {
      let unix = false;
      for (const [i, ep] of endpoints) {
        checkWorkloadEntry(issues, pathIdx('spec.endpoints', i), ep, { mode: 'static', servicePorts: portNames });
        if (str(ep['address'])?.startsWith(UNIX_PREFIX)) unix = true;
      }
      if (unix && portNames.size !== 1) {
        issues.add('spec.ports', `exactly 1 service port is required for unix endpoints (got ${portNames.size})`);
      }
      return;
    }
    case 'DNS':
    case 'DNS_ROUND_ROBIN':
      if (resolution === 'DNS_ROUND_ROBIN' && count > 1) {
        issues.add('spec.endpoints', `there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN (got ${count})`);
      }
      for (const [i, ep] of endpoints) {
        checkWorkloadEntry(issues, pathIdx('spec.endpoints', i), ep, { mode: 'dns', servicePorts: portNames });
      }
      return;
    case 'DYNAMIC_DNS':
      issues.add('spec.resolution', 'unsupported resolution type DYNAMIC_DNS (use NONE, STATIC, DNS or DNS_ROUND_ROBIN)');
      return;
  }
}

/**
 * Several hosts share one port only where the proxy can tell them apart (HTTP Host header or
 * TLS SNI), unless resolution is NONE and the hosts are ignored.
 */
function checkMultipleHosts(issues: Issues, spec: JsonObject, resolution: string): void {
  if (resolution === 'NONE' || stringItems(spec['hosts']).length < 2) return;
  for (const [i, port] of recordItems(spec['ports'])) {
    const protocol = str(port['protocol']) ?? '';
    const parsed = parseProtocol(protocol);
    if (isHttpProtocol(parsed) || isTlsProtocol(parsed)) continue;
    const shown = protocol === '' ? 'unset' : JSON.stringify(protocol);
    issues.add(
      pathKey(pathIdx('spec.ports', i), 'protocol'),
      `multiple hosts provided with non-HTTP, non-TLS ports (protocol ${shown}): with resolution ${resolution} the hosts cannot be told apart on this port`,
    );
    return;
  }
}

/** exportTo as for other kinds, except that `~` (no other namespace) is allowed on its own. */
function checkServiceEntryExportTo(issues: Issues, v: unknown, namespace: string): void {
  const list = arr(v);
  if (list === undefined) return;
  checkExportTo(
    issues,
    'spec.exportTo',
    list.map((e) => (e === '~' ? null : e)),
    namespace,
  );
  if (list.includes('~') && list.length > 1) issues.add('spec.exportTo', 'cannot export service entry to no one (~) and someone');
}
