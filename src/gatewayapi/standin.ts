/**
 * The statuses the controller computes itself from config (pure): GatewayClass Accepted for
 * classes with istiod's controllerName (always the controller's part), and a stand-in for the
 * Gateway status until the translation's own status source is wired in: Accepted, and
 * Programmed with the address of the gateway's Service, without listeners.
 */
import type { ConfigObject } from '../model/objects';
import { deploymentNames, GATEWAY_API_GROUP, ISTIO_GATEWAY_CONTROLLER } from './names';
import { isRecord, records, str } from './kube-rest';
import { manualAddresses } from './deployment-render';
import type { GatewayApiCondition, GatewayApiStatus, GatewayApiStatusSource } from './status-types';

const spec = (o: ConfigObject): Record<string, unknown> => (isRecord(o.body['spec']) ? o.body['spec'] : {});

/** Names of the GatewayClasses handled by `controllerName`. */
export function ourClasses(objects: readonly ConfigObject[], controllerName = ISTIO_GATEWAY_CONTROLLER): Set<string> {
  return new Set(objects.filter((o) => o.kind === 'GatewayClass' && spec(o)['controllerName'] === controllerName).map((o) => o.metadata.name));
}

/** GatewayClass Accepted, as istiod's class controller marks every class it handles. */
export function gatewayClassStatuses(objects: readonly ConfigObject[], controllerName = ISTIO_GATEWAY_CONTROLLER): GatewayApiStatus[] {
  const accepted: GatewayApiCondition = { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Handled by Istio controller' };
  return [...ourClasses(objects, controllerName)].sort().map((name) => ({ group: GATEWAY_API_GROUP, kind: 'GatewayClass', name, status: { conditions: [accepted] } }));
}

/** Gateway Accepted/Programmed from the Service meshd deploys (or the manual address), without listeners. */
export function standInGatewayStatuses(objects: readonly ConfigObject[], domain = 'cluster.local', controllerName = ISTIO_GATEWAY_CONTROLLER): GatewayApiStatus[] {
  const classes = ourClasses(objects, controllerName);
  const services = new Map(objects.filter((o) => o.kind === 'Service').map((o) => [`${o.metadata.namespace}/${o.metadata.name}`, o]));
  const out: GatewayApiStatus[] = [];
  for (const gw of objects) {
    if (gw.kind !== 'KubernetesGateway' || !classes.has(str(spec(gw)['gatewayClassName']) ?? '')) continue;
    const ns = gw.metadata.namespace;
    const manual = records(spec(gw)['addresses']);
    const accepted: GatewayApiCondition = { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Resource accepted' };
    // The gateway's Services as istiod's extractGatewayServices names them: the deployed one, or
    // the Hostname addresses of a manual Gateway (short names in the Gateway's namespace).
    const hosts = manualAddresses(manual)
      ? manual.filter((a) => (str(a['type']) ?? 'Hostname') === 'Hostname').map((a) => expandHost(str(a['value']) ?? '', ns, domain))
      : [`${deploymentNames(gw.metadata.name, gw.metadata.annotations).deployment}.${ns}.svc.${domain}`];
    const suffix = `.svc.${domain}`;
    const assigned: string[] = [];
    const missing: string[] = [];
    for (const host of hosts) {
      const [name, svcNs] = host.endsWith(suffix) ? host.slice(0, -suffix.length).split('.') : [];
      const svc = name && svcNs ? services.get(`${svcNs}/${name}`) : undefined;
      if (!svc) {
        missing.push(`hostname ${JSON.stringify(host)} not found`);
        continue;
      }
      const svcSpec = isRecord(svc.body['spec']) ? svc.body['spec'] : {};
      const ports = records(svcSpec['ports'])
        .map((p) => p['port'])
        .filter((p): p is number => typeof p === 'number' && p !== 15021);
      assigned.push(...(ports.length > 0 ? ports.map((p) => `${host}:${p}`) : [host]));
    }
    const addresses = manualAddresses(manual)
      ? manual.map((a) => ({ type: str(a['type']) ?? 'IPAddress', value: str(a['value']) ?? '' }))
      : hosts.map((value) => ({ type: 'Hostname', value }));
    let programmed: GatewayApiCondition = {
      type: 'Programmed',
      status: 'True',
      reason: 'Programmed',
      message: `Resource programmed, assigned to service(s) ${humanReadableJoin(assigned)}`,
    };
    if (missing.length > 0) {
      programmed = {
        type: 'Programmed',
        status: 'False',
        reason: 'AddressNotAssigned',
        message:
          assigned.length > 0
            ? `Assigned to service(s) ${humanReadableJoin(assigned)}, but failed to assign to all requested addresses: ${missing.join('; ')}`
            : `Failed to assign to any requested addresses: ${missing.join('; ')}`,
      };
    }
    out.push({ group: GATEWAY_API_GROUP, kind: 'Gateway', namespace: ns, name: gw.metadata.name, status: { addresses, conditions: [accepted, programmed] } });
  }
  return out;
}

/** istiod's humanReadableJoin: `a`, `a and b`, `a, b, and c`. */
function humanReadableJoin(ss: readonly string[]): string {
  if (ss.length <= 1) return ss[0] ?? '';
  if (ss.length === 2) return `${ss[0]} and ${ss[1]}`;
  return `${ss.slice(0, -1).join(', ')}, and ${ss[ss.length - 1]}`;
}

/** A short Service name in a Gateway's address is a Service in the Gateway's namespace. */
function expandHost(value: string, namespace: string, domain: string): string {
  return value.includes('.') ? value : `${value}.${namespace}.svc.${domain}`;
}

/** The stand-in source: class and gateway statuses from the current config objects. */
export function standInStatusSource(objects: () => readonly ConfigObject[], domain?: string): GatewayApiStatusSource {
  return () => {
    const all = objects();
    return [...gatewayClassStatuses(all), ...standInGatewayStatuses(all, domain)];
  };
}

/**
 * The controller's class statuses joined with a status source's: the source's entry for a
 * GatewayClass wins over the controller's own.
 */
export function withClassStatuses(source: GatewayApiStatusSource, objects: () => readonly ConfigObject[]): GatewayApiStatusSource {
  return () => {
    const theirs = source();
    const given = new Set(theirs.filter((s) => s.kind === 'GatewayClass').map((s) => s.name));
    return [...gatewayClassStatuses(objects()).filter((s) => !given.has(s.name)), ...theirs];
  };
}
