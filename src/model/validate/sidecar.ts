/**
 * Sidecar (networking.istio.io), after Istio's ValidateSidecar: strict field set, workload
 * selector labels, ingress listeners (port, bind, defaultEndpoint, TLS), egress listeners (one
 * catch-all listener without a port, last; unique ports and unix sockets; `namespace/dnsName`
 * hosts) and outboundTrafficPolicy.
 */
import type { ConfigObject } from '../objects';
import { Issues, arr, bool, num, pathIdx, pathKey, rec, recordItems, str, stringItems, type JsonObject } from './common';
import { serverTlsSchema } from './gateway-schema';
import { checkLabelMap, checkSelectorLabels, portError } from './istio-common';
import { ipError } from './ip';
import { isDnsLabel, wildcardDomainError } from './names';
import { isTlsProtocol, parseProtocol } from './protocol';
import { any, arrayOf, closed, mapOf, oneOf, str as strSchema, u32, checkSpec } from './schema';
import { UNIX_PREFIX, unixAddressError } from './workloadentry';

const captureMode = oneOf('DEFAULT', 'IPTABLES', 'NONE');
const sidecarPort = closed({ number: u32, protocol: strSchema, name: strSchema, targetPort: u32 });

export const sidecarSchema = closed({
  workloadSelector: closed({ labels: mapOf(strSchema) }),
  ingress: arrayOf(closed({ port: sidecarPort, bind: strSchema, captureMode, defaultEndpoint: strSchema, tls: serverTlsSchema, connectionPool: any })),
  egress: arrayOf(closed({ port: sidecarPort, bind: strSchema, captureMode, hosts: arrayOf(strSchema) })),
  inboundConnectionPool: any,
  outboundTrafficPolicy: closed({ mode: oneOf('REGISTRY_ONLY', 'ALLOW_ANY'), egressProxy: any }),
});

export function validateSidecar(obj: ConfigObject, issues: Issues): void {
  const spec = checkSpec(obj.body, sidecarSchema, issues);
  if (spec === undefined) return;

  const selector = rec(spec['workloadSelector']);
  if (selector !== undefined) {
    const labels = rec(selector['labels']);
    if (labels === undefined || Object.keys(labels).length === 0) {
      issues.warn('spec.workloadSelector', 'sidecar: workload selector specified without labels, will be applied to all services in namespace');
    }
    checkSelectorLabels(issues, 'spec.workloadSelector.labels', selector['labels']);
    checkLabelMap(issues, 'spec.workloadSelector.labels', selector['labels']);
  }

  const ingress = arr(spec['ingress']) ?? [];
  const egress = arr(spec['egress']) ?? [];
  if (egress.length === 0 && ingress.length === 0 && spec['outboundTrafficPolicy'] == null && spec['inboundConnectionPool'] == null) {
    issues.add('spec', 'sidecar: empty configuration provided');
    return;
  }
  checkIngress(issues, spec);
  checkEgress(issues, spec, obj.metadata.namespace);

  const otp = rec(spec['outboundTrafficPolicy']);
  if (otp?.['egressProxy'] != null && (str(otp['mode']) ?? 'REGISTRY_ONLY') !== 'ALLOW_ANY') {
    issues.add('spec.outboundTrafficPolicy.egressProxy', 'sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode');
  }
}

function checkPortName(issues: Issues, path: string, port: JsonObject): void {
  const name = str(port['name']) ?? '';
  if (name !== '' && !isDnsLabel(name)) issues.add(pathKey(path, 'name'), `invalid port name: ${name}`);
}

function checkProtocol(issues: Issues, path: string, port: JsonObject): void {
  const protocol = str(port['protocol']) ?? '';
  if (parseProtocol(protocol) === undefined) issues.add(pathKey(path, 'protocol'), `unrecognized protocol ${JSON.stringify(protocol)}`);
}

function checkIngress(issues: Issues, spec: JsonObject): void {
  const ports = new Set<number>();
  for (const [i, l] of recordItems(spec['ingress'])) {
    const p = pathIdx('spec.ingress', i);
    const port = rec(l['port']);
    if (port === undefined) {
      issues.add(pathKey(p, 'port'), 'sidecar: port is required for ingress listeners');
      continue;
    }
    const portPath = pathKey(p, 'port');
    if ((num(port['targetPort']) ?? 0) > 0) issues.add(pathKey(portPath, 'targetPort'), 'targetPort has no impact on Sidecars');
    checkPortName(issues, portPath, port);
    checkProtocol(issues, portPath, port);
    const n = num(port['number']) ?? 0;
    issues.addIf(pathKey(portPath, 'number'), portError(n));
    const bind = str(l['bind']) ?? '';
    if (bind !== '') issues.addIf(pathKey(p, 'bind'), ipError(bind));
    if (ports.has(n)) issues.add(pathKey(portPath, 'number'), 'sidecar: ports on IP bound listeners must be unique');
    ports.add(n);
    checkDefaultEndpoint(issues, pathKey(p, 'defaultEndpoint'), str(l['defaultEndpoint']) ?? '');
    const tls = rec(l['tls']);
    if (tls !== undefined) checkIngressTls(issues, pathKey(p, 'tls'), tls, port);
  }
}

/** `127.0.0.1:<port>`, `0.0.0.0:<port>`, `[::1]:<port>`, `[::]:<port>`, `:<port>` or `unix://<path>`. */
function checkDefaultEndpoint(issues: Issues, path: string, ep: string): void {
  if (ep === '') return;
  if (ep.startsWith(UNIX_PREFIX)) {
    issues.addIf(path, unixAddressError(ep.slice(UNIX_PREFIX.length)));
    return;
  }
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(ep);
  if (!m) {
    issues.add(path, `address ${ep}: missing port in address`);
    return;
  }
  const host = m[1] ?? m[2] ?? '';
  const portText = m[3] ?? '';
  if (host !== '' && !['127.0.0.1', '0.0.0.0', '::1', '::'].includes(host)) {
    issues.add(path, 'sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,[::]:port,unix://filepath or unset');
  }
  if (!/^-?\d+$/.test(portText)) issues.add(path, `sidecar: defaultEndpoint port (${portText}) is not a number`);
  else issues.addIf(path, portError(Number(portText)));
}

function checkIngressTls(issues: Issues, path: string, tls: JsonObject, port: JsonObject): void {
  if ((arr(tls['subjectAltNames'])?.length ?? 0) > 0) issues.add(pathKey(path, 'subjectAltNames'), 'sidecar: subjectAltNames is not supported in ingress tls');
  if (bool(tls['httpsRedirect']) === true) issues.add(pathKey(path, 'httpsRedirect'), 'sidecar: httpsRedirect is not supported');
  if ((str(tls['credentialName']) ?? '') !== '') issues.add(pathKey(path, 'credentialName'), 'sidecar: credentialName is not currently supported');
  if ((arr(tls['credentialNames'])?.length ?? 0) > 0) issues.add(pathKey(path, 'credentialNames'), 'sidecar: credentialNames is not currently supported');
  if ((arr(tls['tlsCertificates'])?.length ?? 0) > 0) issues.add(pathKey(path, 'tlsCertificates'), 'sidecar: tls_certificates is not currently supported');
  const mode = str(tls['mode']) ?? 'PASSTHROUGH';
  if (mode === 'ISTIO_MUTUAL' || mode === 'AUTO_PASSTHROUGH') issues.add(pathKey(path, 'mode'), `configuration is invalid: cannot set mode to ${mode} in sidecar ingress tls`);
  if (!isTlsProtocol(parseProtocol(str(port['protocol']) ?? ''))) issues.add(path, 'server cannot have TLS settings for non HTTPS/TLS ports');
}

function checkEgress(issues: Issues, spec: JsonObject, namespace: string): void {
  const egress = arr(spec['egress']) ?? [];
  const ports = new Set<number>();
  const sockets = new Set<string>();
  let catchAll = false;
  for (const [i, l] of recordItems(spec['egress'])) {
    const p = pathIdx('spec.egress', i);
    const port = rec(l['port']);
    if (port === undefined) {
      if (catchAll) {
        issues.add(p, 'sidecar: egress can have only one listener with empty port');
        continue;
      }
      if (i === egress.length - 1) catchAll = true;
      else issues.add(p, 'sidecar: the egress listener with empty port should be the last listener in the list');
    } else {
      const portPath = pathKey(p, 'port');
      if ((num(port['targetPort']) ?? 0) > 0) issues.add(pathKey(portPath, 'targetPort'), 'targetPort has no impact on Sidecars');
      checkPortName(issues, portPath, port);
      checkProtocol(issues, portPath, port);
      const n = num(port['number']) ?? 0;
      const bind = str(l['bind']) ?? '';
      if (n === 0) {
        if (!bind.startsWith(UNIX_PREFIX)) issues.add(pathKey(p, 'bind'), 'sidecar: ports with 0 value must have a unix domain socket bind address');
        else issues.addIf(pathKey(p, 'bind'), unixAddressError(bind.slice(UNIX_PREFIX.length)));
        const mode = str(l['captureMode']) ?? 'DEFAULT';
        if (mode !== 'DEFAULT' && mode !== 'NONE') issues.add(pathKey(p, 'captureMode'), 'sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners');
        if (sockets.has(bind)) issues.add(pathKey(p, 'bind'), 'sidecar: unix domain socket values for listeners must be unique');
        sockets.add(bind);
      } else {
        issues.addIf(pathKey(portPath, 'number'), portError(n));
        if (bind !== '') issues.addIf(pathKey(p, 'bind'), ipError(bind));
        if (ports.has(n)) issues.add(pathKey(portPath, 'number'), 'sidecar: ports on IP bound listeners must be unique');
        ports.add(n);
      }
    }
    checkEgressHosts(issues, pathKey(p, 'hosts'), l, namespace);
  }
}

/** `namespace/dnsName` hosts, with Istio's warnings for duplicates and for `*\/*` beside others. */
function checkEgressHosts(issues: Issues, path: string, l: JsonObject, namespace: string): void {
  const hosts = stringItems(l['hosts']);
  if (hosts.length === 0) {
    issues.add(path, 'sidecar: egress listener must contain at least one host');
    return;
  }
  const byNs = new Map<string, Set<string>>();
  for (const [j, host] of hosts) {
    const p = pathIdx(path, j);
    const slash = host.indexOf('/');
    if (slash < 0) {
      issues.add(p, `host must be of form namespace/dnsName (got ${JSON.stringify(host)})`);
      continue;
    }
    let ns = host.slice(0, slash);
    const dnsName = host.slice(slash + 1);
    if (ns === '' || dnsName === '') {
      issues.add(p, 'config namespace and dnsName in host entry cannot be empty');
      continue;
    }
    if (ns !== '*' && ns !== '.' && ns !== '~' && !isDnsLabel(ns)) issues.add(p, `invalid namespace value ${JSON.stringify(ns)} in sidecar`);
    if (dnsName !== '*') {
      const err = wildcardDomainError(dnsName);
      if (err !== undefined) issues.add(p, err);
    }
    if (ns === '.') ns = namespace;
    const seen = byNs.get(ns) ?? new Set<string>();
    if (dnsName !== '*' ? seen.has(dnsName) || seen.has('*') : seen.size > 0) issues.warn(p, `duplicated egress host: ${host}`);
    seen.add(dnsName);
    byNs.set(ns, seen);
  }
  if (byNs.get('*')?.has('*') === true && byNs.size !== 1) issues.warn(path, '`*/*` host select all resources, no other hosts can be added');
}
