/**
 * Gateway (networking.istio.io), after Istio's ValidateGateway: strict field set, a DNS-label
 * name, servers (port, bind, `namespace/dnsName` hosts), TLS settings that fit the port's
 * protocol, unique port names, and a valid selector.
 */
import type { ConfigObject } from '../objects';
import { Issues, arr, num, pathIdx, pathKey, rec, recordItems, str, stringItems, type JsonObject } from './common';
import { checkServerTls } from './gateway-tls';
import { gatewaySchema } from './gateway-schema';
import { checkLabelMap, portError } from './istio-common';
import { ipError, isIP } from './ip';
import { isDnsLabel, wildcardDomainError } from './names';
import { isHttpProtocol, isTlsProtocol, parseProtocol, unsupportedProtocolError } from './protocol';
import { checkSpec } from './schema';
import { UNIX_PREFIX, unixAddressError } from './workloadentry';

export function validateGateway(obj: ConfigObject, issues: Issues): void {
  const name = obj.metadata.name;
  if (!isDnsLabel(name)) {
    issues.add('metadata.name', `invalid gateway name ${JSON.stringify(name)}: a Gateway name must be a DNS label (lower-case letters, digits and '-', no dots)`);
  }
  const spec = checkSpec(obj.body, gatewaySchema, issues);
  if (spec === undefined) return;

  if ((arr(spec['servers'])?.length ?? 0) === 0) issues.add('spec.servers', 'gateway must have at least one server');
  const portNames = new Map<string, number>();
  for (const [i, server] of recordItems(spec['servers'])) {
    const p = pathIdx('spec.servers', i);
    checkServer(issues, p, server);
    const portName = str(rec(server['port'])?.['name']);
    if (portName === undefined || portName === '') continue;
    const first = portNames.get(portName);
    if (first !== undefined) {
      issues.add(pathKey(pathKey(p, 'port'), 'name'), `port names in servers must be unique: duplicate name ${JSON.stringify(portName)} (also used by spec.servers[${first}])`);
    } else {
      portNames.set(portName, i);
    }
  }
  checkLabelMap(issues, 'spec.selector', spec['selector']);
}

function checkServer(issues: Issues, path: string, server: JsonObject): void {
  checkServerHosts(issues, path, server);
  const portOk = checkServerPort(issues, path, server);
  checkBind(issues, path, server);
  const tls = rec(server['tls']);
  if (tls !== undefined) checkServerTls(issues, pathKey(path, 'tls'), tls);
  if (!portOk) return;

  // the TLS settings must fit the port's protocol
  const protocol = parseProtocol(str(rec(server['port'])?.['protocol']) ?? '');
  const tlsPath = pathKey(path, 'tls');
  if (isTlsProtocol(protocol)) {
    if (tls === undefined) issues.add(tlsPath, `server must have TLS settings for HTTPS/TLS protocols (protocol ${protocol ?? ''})`);
  } else if (tls !== undefined) {
    if (!isHttpProtocol(protocol)) {
      issues.add(tlsPath, `server cannot have TLS settings for non HTTPS/TLS ports (protocol ${protocol ?? ''})`);
      return;
    }
    const mode = str(tls['mode']) ?? 'PASSTHROUGH';
    const passthrough = mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH';
    const files = ['caCertificates', 'privateKey', 'serverCertificate'].some((k) => (str(tls[k]) ?? '') !== '');
    if (!passthrough || files) {
      issues.add(tlsPath, 'server cannot have TLS settings for plain text HTTP ports (only tls.httpsRedirect is allowed; use protocol HTTPS to terminate TLS)');
    }
  }
}

/** Each host is `[namespace/]dnsName`: namespace `*`, `.` or a namespace name; dnsName an FQDN, `*.suffix`, `*` or an IP. */
function checkServerHosts(issues: Issues, path: string, server: JsonObject): void {
  const hostsPath = pathKey(path, 'hosts');
  if ((arr(server['hosts'])?.length ?? 0) === 0) {
    issues.add(hostsPath, 'server config must contain at least one host');
    return;
  }
  for (const [j, host] of stringItems(server['hosts'])) {
    const p = pathIdx(hostsPath, j);
    const slash = host.indexOf('/');
    if (slash < 0) {
      checkHostName(issues, p, host);
      continue;
    }
    const ns = host.slice(0, slash);
    const dnsName = host.slice(slash + 1);
    if (ns === '' || dnsName === '') {
      issues.add(p, `config namespace and dnsName in host entry cannot be empty (got ${JSON.stringify(host)}; write namespace/dnsName)`);
      continue;
    }
    if (ns !== '*' && ns !== '.' && !isDnsLabel(ns)) {
      issues.add(p, `invalid namespace value ${JSON.stringify(ns)} in gateway (use *, . or a namespace name)`);
    }
    checkHostName(issues, p, dnsName);
  }
}

function checkHostName(issues: Issues, path: string, host: string): void {
  if (host !== '*' && !host.includes('.')) {
    issues.add(path, `short names (non FQDN) are not allowed: ${JSON.stringify(host)} (write the full name, e.g. ${host}.example.com)`);
    return;
  }
  const err = wildcardDomainError(host);
  if (err !== undefined && !isIP(host)) issues.add(path, err);
  else if (host.includes('*') && host !== '*' && !host.startsWith('*.')) issues.add(path, `partial wildcard ${JSON.stringify(host)} not allowed`);
}

/** validateServerPort; true when the port has no problems (the protocol-and-TLS check needs one). */
function checkServerPort(issues: Issues, path: string, server: JsonObject): boolean {
  const before = issues.count;
  const portPath = pathKey(path, 'port');
  const port = rec(server['port']);
  if (port === undefined) {
    if (server['port'] === undefined || server['port'] === null) issues.add(portPath, 'port is required');
    return false;
  }
  const protocol = str(port['protocol']);
  if (port['protocol'] === undefined || port['protocol'] === null || protocol === '') {
    issues.add(pathKey(portPath, 'protocol'), 'port protocol is required (HTTP, HTTPS, HTTP2, GRPC, TCP, TLS, …)');
  } else if (protocol !== undefined && parseProtocol(protocol) === undefined) {
    issues.add(pathKey(portPath, 'protocol'), unsupportedProtocolError(protocol));
  }
  const unixBind = str(server['bind'])?.startsWith(UNIX_PREFIX) ?? false;
  const n = num(port['number']);
  if (port['number'] === undefined || port['number'] === null) {
    if (!unixBind) issues.add(pathKey(portPath, 'number'), 'port number is required');
  } else if (n !== undefined && Number.isInteger(n) && (n > 0 || !unixBind)) {
    issues.addIf(pathKey(portPath, 'number'), portError(n));
  }
  const target = num(port['targetPort']);
  if (target !== undefined && target > 0) issues.add(pathKey(portPath, 'targetPort'), 'targetPort has no impact on Gateways: remove it');
  const name = str(port['name']);
  if (port['name'] === undefined || port['name'] === null || name === '') issues.add(pathKey(portPath, 'name'), 'port name must be set');
  return issues.count === before;
}

/** bind: an IP address, or `unix://` and a socket path with port number 0. */
function checkBind(issues: Issues, path: string, server: JsonObject): void {
  const bind = str(server['bind']);
  if (bind === undefined || bind === '') return;
  if (!bind.startsWith(UNIX_PREFIX)) {
    issues.addIf(pathKey(path, 'bind'), ipError(bind));
    return;
  }
  issues.addIf(pathKey(path, 'bind'), unixAddressError(bind.slice(UNIX_PREFIX.length)));
  const n = num(rec(server['port'])?.['number']);
  if (n !== undefined && n !== 0) issues.add(pathKey(pathKey(path, 'port'), 'number'), `port number must be 0 for unix domain socket (got ${n})`);
}
