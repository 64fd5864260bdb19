/**
 * LDS for proxyless gRPC: one api listener `<fqdn>:<port>` per service port (clients), routed by
 * RDS, and the inbound listeners xDS-enabled servers ask for by name (security/grpc-server.ts).
 */
import { proxyServices } from '../model/lookup';
import type { MeshService } from '../model/snapshot';
import type { GenerateContext, ProtoObject, Resource } from './types';
import { httpFilters } from './http-filters';
import { HCM_TYPE, socketAddress } from './util';
import { grpcServerListeners } from './security/grpc-server';

export function grpcListeners(ctx: GenerateContext): Resource[] {
  const out: Resource[] = grpcServerListeners(ctx);
  for (const svc of proxyServices(ctx.snap, ctx.proxy)) {
    for (const p of svc.ports) {
      if (p.protocol === 'UDP') continue;
      const name = `${svc.hostname}:${p.port}`;
      if (ctx.names && !ctx.names.has(name)) continue;
      out.push({ name, build: () => apiListener(svc, p.port) });
    }
  }
  return out;
}

/** The client api listener `<fqdn>:<port>` for one service port. */
function apiListener(svc: MeshService, port: number): ProtoObject {
  const name = `${svc.hostname}:${port}`;
  return {
    name,
    address: socketAddress(svc.clusterIP ?? '0.0.0.0', port),
    api_listener: {
      api_listener: {
        '@type': HCM_TYPE,
        stat_prefix: name,
        rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: name },
        http_filters: httpFilters('grpc'),
      },
    },
  };
}

/** The names of a gRPC client's api listeners (and of their route configurations). */
export function grpcServicePortNames(ctx: GenerateContext): string[] {
  const out: string[] = [];
  for (const svc of proxyServices(ctx.snap, ctx.proxy)) for (const p of svc.ports) if (p.protocol !== 'UDP') out.push(`${svc.hostname}:${p.port}`);
  return out;
}

/** `<fqdn>:<port>` → the service and port it names, if the snapshot has them. */
export function servicePortNamed(ctx: GenerateContext, name: string): { svc: MeshService; port: number } | undefined {
  const colon = name.lastIndexOf(':');
  if (colon < 0) return undefined;
  const svc = ctx.snap.serviceByHost.get(name.slice(0, colon));
  const port = Number(name.slice(colon + 1));
  if (!svc || !svc.ports.some((p) => p.port === port && p.protocol !== 'UDP')) return undefined;
  return { svc, port };
}

/** The api listener `name` (one of grpcServicePortNames). */
export function grpcApiListenerNamed(ctx: GenerateContext, name: string): Resource | undefined {
  const sp = servicePortNamed(ctx, name);
  return sp ? { name, build: () => apiListener(sp.svc, sp.port) } : undefined;
}
