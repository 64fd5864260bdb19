/**
 * LDS for proxyless gRPC: one api listener `<fqdn>:<port>` per service port (clients), routed by
 * RDS, and the inbound listeners xDS-enabled servers ask for by name (security/grpc-server.ts).
 */
import { visibleServices } from '../model/lookup';
import type { GenerateContext, Resource } from './types';
import { httpFilters } from './http-filters';
import { HCM_TYPE, socketAddress } from './util';
import { grpcServerListeners } from './security/grpc-server';

export function grpcListeners(ctx: GenerateContext): Resource[] {
  const out: Resource[] = grpcServerListeners(ctx);
  for (const svc of visibleServices(ctx.snap, ctx.proxy.namespace)) {
    for (const p of svc.ports) {
      if (p.protocol === 'UDP') continue;
      const name = `${svc.hostname}:${p.port}`;
      if (ctx.names && !ctx.names.has(name)) continue;
      out.push({
        name,
        key: 'grpc',
        build: () => ({
          name,
          address: socketAddress(svc.clusterIP ?? '0.0.0.0', p.port),
          api_listener: {
            api_listener: {
              '@type': HCM_TYPE,
              stat_prefix: name,
              rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: name },
              http_filters: httpFilters('grpc'),
            },
          },
        }),
      });
    }
  }
  return out;
}
