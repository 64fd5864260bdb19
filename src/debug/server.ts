/**
 * Debug HTTP (fastify): /debug/* views, /ready, /metrics, /version. Served on the debug port
 * (8080) and, as istiod does, on the monitoring port (15014), where Kiali reads them.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { MeshSnapshot } from '../model/snapshot';
import type { ConfigEngine } from '../xds/engine';
import type { XdsMetrics } from '../xds/metrics';
import type { EnvoyProtos } from '../xds/protos';
import type { AdsServer } from '../xds/server';
import { meshConfigView } from '../model/mesh-config';
import { buildInfo, versionLine } from '../version';
import { configDumpAnys, configDumpJson } from './config-dump';
import type { PreviewMode, PreviewReport } from './preview';
import { type RouteQuery, routeSimulation } from './route-endpoint';
import { meshGraph } from './ui-model';
import { uiPage } from './ui-page';
import { configz, registryz, syncz } from './views';
import { findProxy } from './xds-debug';

export interface DebugDeps {
  server: AdsServer;
  protos: EnvoyProtos;
  engine: ConfigEngine;
  metrics: XdsMetrics;
  snapshot: () => MeshSnapshot | undefined;
  ready: () => boolean;
  /** The JWKS resolver's sources and cache, for /debug/configz. */
  jwks?: () => object;
  /** What a change would do (`POST /debug/preview`), see preview.ts. */
  preview?: (text: string, mode: PreviewMode) => Promise<PreviewReport>;
  /** The largest change body /debug/preview reads (the folder's file limit). */
  maxBodyBytes?: number;
}

/** `/metrics` and `/version` (istiod's monitoring port answers both). */
export function metricsApp(metrics: XdsMetrics): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  // istiod's BuildInfo.String(): `<version>-<revision>-<status>`.
  app.get('/version', async (_req, reply) => reply.type('text/plain; charset=utf-8').send(versionLine()));
  return app;
}

/** Where the MeshConfig came from, its warnings (unknown fields), and a refused one's errors. */
export function meshStatusView(s: MeshSnapshot): object {
  const st = s.meshStatus;
  return { source: st.source ?? 'defaults', kept_last_good: st.keptLastGood, errors: st.errors, warnings: st.warnings };
}

export function debugApp(deps: DebugDeps): FastifyInstance {
  const app = metricsApp(deps.metrics);
  const snap = (): MeshSnapshot => {
    const s = deps.snapshot();
    if (!s) throw Object.assign(new Error('no config loaded yet'), { statusCode: 503 });
    return s;
  };

  app.get('/ready', async (_req, reply) => {
    if (!deps.ready()) return reply.code(503).send('not ready\n');
    return 'ready\n';
  });

  app.get('/debug', async () => ({
    endpoints: [
      '/debug/config_dump?proxyID=<id>',
      '/debug/route?proxyID=<id>&to=<host:port>&path=&method=&header=<name=value>',
      '/debug/syncz',
      '/debug/registryz',
      '/debug/configz',
      '/debug/mesh',
      '/debug/push_status',
      '/ui',
      '/metrics',
      '/ready',
      '/version',
    ],
  }));

  app.get('/debug/syncz', async () => syncz(deps.server.connectionList()));

  // The live web UI: one static page that polls /ui/data.
  const page = uiPage(buildInfo().version);
  app.get('/ui', async (_req, reply) =>
    reply.type('text/html; charset=utf-8').header('content-security-policy', "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'").send(page),
  );
  app.get('/ui/data', async () => {
    const s = deps.snapshot();
    return { version: s?.version ?? null, proxies: syncz(deps.server.connectionList()), errors: s?.errors ?? [], graph: s ? meshGraph(s) : null };
  });
  app.get('/debug/registryz', async () => registryz(snap()));
  app.get('/debug/configz', async () => ({ ...configz(snap()), mesh_config: meshStatusView(snap()), ...(deps.jwks ? { jwks: deps.jwks() } : {}) }));
  // istiod's /debug/mesh: the MeshConfig in effect (with its defaults), and where it came from.
  app.get('/debug/mesh', async () => {
    const s = snap();
    return { ...meshConfigView(s.meshConfig), meshd_status: meshStatusView(s) };
  });

  app.get('/debug/push_status', async () => ({
    version: deps.snapshot()?.version ?? null,
    last_push: deps.server.lastPush,
    connected: deps.server.connectionList().length,
    queued: deps.server.queuedConnections(),
    engine: deps.engine.stats(),
    rejected_resources: deps.engine.currentRejections(),
  }));

  // `meshctl x preview`: a YAML or JSON change (text body), applied (`?mode=apply`, the default) or
  // deleted (`?mode=delete`) over a copy of the config; nothing served changes.
  const preview = deps.preview;
  if (preview) {
    app.addContentTypeParser(
      ['text/yaml', 'application/yaml', 'application/x-yaml', 'text/plain'],
      { parseAs: 'string', bodyLimit: deps.maxBodyBytes ?? 16 * 1024 * 1024 },
      (_req, body, done) => done(null, body),
    );
    app.post<{ Querystring: { mode?: string }; Body: unknown }>('/debug/preview', { bodyLimit: deps.maxBodyBytes ?? 16 * 1024 * 1024 }, async (req, reply) => {
      const mode = req.query.mode ?? 'apply';
      if (mode !== 'apply' && mode !== 'delete') return reply.code(400).send({ error: `mode must be apply or delete (got ${JSON.stringify(mode)})` });
      const text = typeof req.body === 'string' ? req.body : JSON.stringify(req.body ?? '');
      return preview(text, mode);
    });
  }

  app.get<{ Querystring: { proxyID?: string } }>('/debug/config_dump', async (req, reply) => {
    const id = req.query.proxyID;
    if (!id) return reply.code(400).send({ error: 'proxyID is required, e.g. /debug/config_dump?proxyID=sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local' });
    // The full node ID or Istio's short form `<pod>.<namespace>`.
    const conn = findProxy(deps.server.connectionList(), id);
    if (!conn) return reply.code(404).send({ error: `proxy ${id} is not connected` });
    snap();
    // Proto3 JSON, as Envoy's admin /config_dump prints it.
    reply.type('application/json; charset=utf-8');
    return JSON.stringify(configDumpJson(deps.protos, configDumpAnys(deps.engine, deps.protos, conn)), null, 2);
  });

  // `meshctl x route` in meshd: one request simulated through the proxy's config, with the RBAC
  // decision at the destination (route-endpoint.ts); text, as the CLI prints it.
  app.get<{ Querystring: RouteQuery }>('/debug/route', async (req, reply) => {
    const s = snap();
    const r = await routeSimulation({ protos: deps.protos, watcher: deps.engine, connections: deps.server.connectionList(), trustDomain: s.meshConfig.trustDomain }, req.query);
    return reply.code(r.status).type('text/plain; charset=utf-8').send(r.text);
  });

  return app;
}

export async function listenApp(app: FastifyInstance, host: string, port: number): Promise<number> {
  await app.listen({ host, port });
  const addr = app.server.address();
  if (addr && typeof addr === 'object') return addr.port;
  throw new Error('debug server has no address');
}
