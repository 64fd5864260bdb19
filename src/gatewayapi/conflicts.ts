/**
 * Listener conflicts across Gateways: two Gateways served by the same proxies (they share a
 * gateway Service, as manually deployed Gateways naming the same Service do) whose listeners
 * take the same port. Different protocols on the port are a ProtocolConflict; the same protocol
 * and the same hostname (none counting as `*`) a HostnameConflict. As the Gateway API says, the
 * older Gateway keeps the port (creationTimestamp, then namespace/name): the newer listener is
 * `Conflicted` and serves nothing.
 *
 * Pure: no I/O.
 */
import type { ConfigObject, GatewayListener, KubernetesGatewaySpec } from '../model/objects';
import { olderFirst } from './backend-tls';

export interface ListenerConflict {
  reason: 'ProtocolConflict' | 'HostnameConflict';
  message: string;
}

/** Protocols that share a port's listener: HTTP alone, HTTPS and TLS (both on TLS), TCP alone. */
export function protocolFamily(protocol: string): string {
  return protocol === 'HTTPS' || protocol === 'TLS' ? 'TLS' : protocol;
}

interface Claim {
  gateway: string;
  listener: string;
  family: string;
  hostname: string;
}

/**
 * `<ns>/<gateway>/<listener>` → its conflict with an older Gateway's listener. `services` gives
 * each Gateway's (`ns/name`) gateway Service hostnames.
 */
export function crossGatewayConflicts(gateways: readonly ConfigObject[], services: ReadonlyMap<string, readonly string[]>): Map<string, ListenerConflict> {
  const out = new Map<string, ListenerConflict>();
  const claims = new Map<string, Claim[]>();
  for (const g of [...gateways].sort((a, b) => olderFirst(a.metadata, b.metadata))) {
    const key = `${g.metadata.namespace}/${g.metadata.name}`;
    const listeners: GatewayListener[] = ((g.body['spec'] ?? {}) as KubernetesGatewaySpec).listeners ?? [];
    const mine: Array<[string, Claim]> = [];
    for (const l of listeners) {
      const claim: Claim = { gateway: key, listener: l.name, family: protocolFamily(l.protocol), hostname: l.hostname ?? '*' };
      let conflict: ListenerConflict | undefined;
      for (const svc of services.get(key) ?? []) {
        for (const c of claims.get(`${svc}|${l.port}`) ?? []) {
          if (c.gateway === key) continue;
          if (c.family !== claim.family) {
            conflict = { reason: 'ProtocolConflict', message: `port ${l.port} is taken by listener ${c.listener} of the older Gateway ${c.gateway} with another protocol` };
          } else if (c.hostname === claim.hostname) {
            conflict ??= {
              reason: 'HostnameConflict',
              message: `hostname ${claim.hostname} on port ${l.port} is taken by listener ${c.listener} of the older Gateway ${c.gateway}`,
            };
          }
        }
      }
      if (conflict) out.set(`${key}/${l.name}`, conflict);
      else for (const svc of services.get(key) ?? []) mine.push([`${svc}|${l.port}`, claim]);
    }
    // A Gateway's own listeners never conflict across Gateways with each other (that is the Gateway's own ProtocolConflict).
    for (const [k, c] of mine) claims.set(k, [...(claims.get(k) ?? []), c]);
  }
  return out;
}
