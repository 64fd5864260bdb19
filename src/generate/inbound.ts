/** The proxy's own workload's ports, from the services that select it. */
import type { Protocol } from '../model/protocol';
import { proxyLabels, workloadOf } from '../model/proxy';
import { labelsMatch } from '../model/snapshot';
import type { GenerateContext } from './types';

export interface InboundPort {
  /** The port the workload listens on (service targetPort resolved). */
  targetPort: number;
  protocol: Protocol;
  /** Service hostnames served on this port. */
  hosts: string[];
}

export function inboundPorts(ctx: GenerateContext): InboundPort[] {
  const { snap, proxy } = ctx;
  if (proxy.type !== 'sidecar') return [];
  const labels = proxyLabels(proxy, snap);
  if (Object.keys(labels).length === 0) return [];
  const w = workloadOf(proxy, snap);
  const byPort = new Map<number, InboundPort>();
  for (const svc of snap.services) {
    if (svc.namespace !== proxy.namespace || Object.keys(svc.selector).length === 0) continue;
    if (!labelsMatch(svc.selector, labels)) continue;
    for (const p of svc.ports) {
      if (p.protocol === 'UDP') continue;
      let target: number | undefined;
      if (typeof p.targetPort === 'number') target = p.targetPort;
      else if (typeof p.targetPort === 'string' && /^\d+$/.test(p.targetPort)) target = Number(p.targetPort);
      else if (typeof p.targetPort === 'string') target = w?.containerPorts.find((c) => c.name === p.targetPort)?.port;
      else target = p.port;
      if (target === undefined) continue;
      const existing = byPort.get(target);
      if (existing) existing.hosts.push(svc.hostname);
      else byPort.set(target, { targetPort: target, protocol: p.protocol, hosts: [svc.hostname] });
    }
  }
  return [...byPort.values()].sort((a, b) => a.targetPort - b.targetPort);
}
