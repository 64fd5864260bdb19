/**
 * Telemetry on a sidecar's or gateway's listeners, as istiod builds it into them
 * (buildHTTPConnectionManager, buildCompleteNetworkFilters, the access log builder):
 * - every HTTP connection manager: the metadata exchange filter first, the `istio.stats`
 *   filters just before the router, the access logs, `tracing` and `request_id_extension`;
 * - every TCP proxy chain: the metadata exchange filter first on inbound chains, the
 *   `istio.stats` filters just before the tcp_proxy, and the access logs on the tcp_proxy;
 * - the listener itself: its access logs filtered to NR (unless disableEnvoyListenerLog).
 * Access logs come from the Telemetry API when it configures logging for the proxy, else from
 * MeshConfig accessLogFile (access-log.ts). Everything read (Telemetry objects, providers,
 * the mesh's log settings, the proxy's namespace and labels) is read through the context, so
 * the engine's dependency tracking sees it.
 */
import type { MeshAccessLog } from '../../model/build-mesh';
import { fileAccessLog } from '../access-log';
import type { GenerateContext, ProtoObject, ProtoValue, Resource } from '../types';
import type { ListenerClass, ProxyTelemetry } from './merge';
import { proxyTelemetry } from './merge';
import { LISTENER_LOG_FILTER, accessLogsFromTelemetry, hcmTracing, httpMxFilter, statsFilters, tcpMxFilter, telemetryLogs } from './filters';

const HCM = 'envoy.filters.network.http_connection_manager';
const TCP_PROXY = 'envoy.filters.network.tcp_proxy';
const ROUTER = 'envoy.filters.http.router';

function isObject(v: ProtoValue | undefined): v is ProtoObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Everything one listener class gets, computed once per listener. */
interface ClassTelemetry {
  httpStats: ProtoObject[];
  tcpStats: ProtoObject[];
  /** Logs for connection managers and TCP proxies, and for the listener. */
  logs: ProtoObject[];
  listenerLogs: ProtoObject[];
  tracing?: ProtoObject;
  requestId: ProtoObject;
  mx: boolean;
  cls: ListenerClass;
}

function classTelemetry(ctx: GenerateContext, t: ProxyTelemetry, cls: ListenerClass, meshLog: MeshAccessLog | undefined, listenerLog: boolean): ClassTelemetry {
  const stats = statsFilters(t, ctx.snap, cls);
  const cfgs = telemetryLogs(t, ctx.snap, cls);
  let logs: ProtoObject[];
  let listenerLogs: ProtoObject[];
  if (cfgs === undefined) {
    logs = meshLog ? [fileAccessLog(meshLog)] : [];
    listenerLogs = meshLog && meshLog.listenerLog ? [{ ...fileAccessLog(meshLog), filter: LISTENER_LOG_FILTER }] : [];
  } else {
    logs = accessLogsFromTelemetry(cfgs);
    listenerLogs = listenerLog ? accessLogsFromTelemetry(cfgs, LISTENER_LOG_FILTER) : [];
  }
  const tr = hcmTracing(ctx.snap, ctx.proxy, t, cls);
  return { httpStats: stats, tcpStats: stats, logs, listenerLogs, ...(tr.tracing ? { tracing: tr.tracing } : {}), requestId: tr.requestId, mx: true, cls };
}

function withHcmTelemetry(filter: ProtoObject, ct: ClassTelemetry): ProtoObject {
  const cfg = filter['typed_config'];
  if (!isObject(cfg)) return filter;
  const httpFilters = Array.isArray(cfg['http_filters']) ? cfg['http_filters'] : [];
  const router = httpFilters.findIndex((f) => isObject(f) && f['name'] === ROUTER);
  const at = router < 0 ? httpFilters.length : router;
  const filters: ProtoValue[] = [...(ct.mx ? [httpMxFilter(ct.cls)] : []), ...httpFilters.slice(0, at), ...ct.httpStats, ...httpFilters.slice(at)];
  const out: ProtoObject = { ...cfg, http_filters: filters };
  const existing = Array.isArray(cfg['access_log']) ? cfg['access_log'] : [];
  if (ct.logs.length > 0) out['access_log'] = [...existing, ...ct.logs];
  if (ct.tracing) out['tracing'] = ct.tracing;
  out['request_id_extension'] = ct.requestId;
  return { ...filter, typed_config: out };
}

function withTcpLogs(filter: ProtoObject, logs: readonly ProtoObject[]): ProtoObject {
  const cfg = filter['typed_config'];
  if (!isObject(cfg) || logs.length === 0) return filter;
  const existing = Array.isArray(cfg['access_log']) ? cfg['access_log'] : [];
  return { ...filter, typed_config: { ...cfg, access_log: [...existing, ...logs] } };
}

function chainWithTelemetry(chain: ProtoValue | undefined, ct: ClassTelemetry): ProtoValue | undefined {
  if (!isObject(chain) || !Array.isArray(chain['filters'])) return chain;
  const filters = chain['filters'];
  const tcpAt = filters.findIndex((f) => isObject(f) && f['name'] === TCP_PROXY);
  const out: ProtoValue[] = [];
  if (tcpAt >= 0 && ct.cls === 'inbound' && ct.mx) out.push(tcpMxFilter());
  filters.forEach((f, i) => {
    if (!isObject(f)) {
      out.push(f);
      return;
    }
    if (f['name'] === HCM) out.push(withHcmTelemetry(f, ct));
    else if (f['name'] === TCP_PROXY) {
      if (i === tcpAt) out.push(...ct.tcpStats);
      out.push(withTcpLogs(f, ct.logs));
    } else out.push(f);
  });
  return { ...chain, filters: out };
}

function listenerClass(ctx: GenerateContext, listener: ProtoObject): ListenerClass {
  if (ctx.proxy.type === 'router') return 'gateway';
  return listener['name'] === 'virtualInbound' ? 'inbound' : 'outbound';
}

/** The listener with its class's telemetry. */
export function addTelemetry(ctx: GenerateContext, listener: ProtoObject, t: ProxyTelemetry): ProtoObject {
  const cls = listenerClass(ctx, listener);
  const meshLog = ctx.snap.accessLog;
  const listenerLog = !ctx.snap.meshConfig.disableEnvoyListenerLog;
  const ct = classTelemetry(ctx, t, cls, meshLog, listenerLog);
  const out: ProtoObject = { ...listener };
  if (Array.isArray(listener['filter_chains'])) out['filter_chains'] = listener['filter_chains'].map((c) => chainWithTelemetry(c, ct) ?? c);
  if (listener['default_filter_chain'] !== undefined) out['default_filter_chain'] = chainWithTelemetry(listener['default_filter_chain'], ct);
  if (ct.listenerLogs.length > 0) out['access_log'] = ct.listenerLogs;
  return out;
}

/** Listener generators with telemetry applied. */
export function withTelemetry(list: (ctx: GenerateContext) => Resource[]): (ctx: GenerateContext) => Resource[] {
  return (ctx) =>
    list(ctx).map((r) => {
      const build = r.build;
      return { ...r, build: () => addTelemetry(ctx, build(), proxyTelemetry(ctx.snap, ctx.proxy)) };
    });
}
