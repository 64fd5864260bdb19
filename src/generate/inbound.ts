/**
 * The proxy's own workload's ports: from its Sidecar's ingress listeners when it has any (as
 * istiod), else from the services that select it.
 */
import type { CaptureMode } from '../model/objects';
import { sidecarScopeOf } from '../model/lookup';
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
  /** From a Sidecar ingress listener: where the inbound cluster sends traffic (else the original destination). */
  endpoint?: InboundEndpoint;
  /** From a Sidecar ingress listener with captureMode NONE: a listener of its own bound to this address. */
  bindTo?: string;
  captureMode?: CaptureMode;
}

/** A Sidecar ingress listener's defaultEndpoint: an address and port, or a unix socket path. */
export type InboundEndpoint = { address: string; port: number } | { pipe: string };

/**
 * istiod's reading of defaultEndpoint: `unix://<path>`, or `<host>:<port>` where `0.0.0.0` and
 * `[::]` stand for the proxy's own (IPv4, IPv6) address and `127.0.0.1`, `[::1]` for loopback.
 */
export function parseDefaultEndpoint(ep: string | undefined, proxyIps: readonly string[]): InboundEndpoint | undefined {
  if (!ep) return undefined;
  if (ep.startsWith('unix://')) return { pipe: ep.slice('unix://'.length) };
  const colon = ep.lastIndexOf(':');
  const host = ep.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(ep.slice(colon + 1));
  if (!Number.isInteger(port)) return undefined;
  if (host === '0.0.0.0' || host === '') {
    const ip = proxyIps.find((a) => !a.includes(':'));
    return ip ? { address: ip, port } : undefined;
  }
  if (host === '::') {
    const ip = proxyIps.find((a) => a.includes(':'));
    return ip ? { address: ip, port } : undefined;
  }
  return { address: host, port };
}

export function inboundPorts(ctx: GenerateContext): InboundPort[] {
  const { snap, proxy } = ctx;
  if (proxy.type !== 'sidecar') return [];
  // Sidecar ingress listeners replace the service-derived ports (Envoy sidecars; proxyless gRPC
  // servers keep their service ports, as istiod's grpcgen).
  if (proxy.generator !== 'grpc') {
    const ingress = sidecarScopeOf(snap, proxy)?.ingress ?? [];
    if (ingress.length > 0) {
      return ingress
        .map((l) => {
          const endpoint = parseDefaultEndpoint(l.defaultEndpoint, proxy.ips);
          const port: InboundPort = { targetPort: l.port.number, protocol: l.port.protocol, hosts: [], captureMode: l.captureMode };
          if (endpoint) port.endpoint = endpoint;
          // istiod's getBindToPort: NONE binds; DEFAULT binds when the proxy captures nothing.
          const bindToPort = l.captureMode === 'NONE' || (l.captureMode === 'DEFAULT' && proxy.metadata['INTERCEPTION_MODE'] === 'NONE');
          if (bindToPort) port.bindTo = l.bind ?? '0.0.0.0';
          return port;
        })
        .sort((a, b) => a.targetPort - b.targetPort);
    }
  }
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
