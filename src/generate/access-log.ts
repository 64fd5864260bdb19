/**
 * MeshConfig access logging (accessLogFile, accessLogFormat, accessLogEncoding) as istiod applies
 * it when no Telemetry API resource configures logging: an `envoy.access_loggers.file` logger on
 * every HTTP connection manager and TCP proxy of a sidecar's or gateway's listeners, and on each
 * listener itself filtered to NR (no filter chain matched), unless disableEnvoyListenerLog.
 * Applied to listeners by telemetry/apply.ts, when no Telemetry configures access logging.
 */
import type { MeshAccessLog } from '../model/build-mesh';
import type { JsonLike } from './security/struct';
import { toStruct } from './security/struct';
import type { ProtoObject, ProtoValue } from './types';

export const FILE_ACCESS_LOG = 'envoy.access_loggers.file';
const FILE_ACCESS_LOG_TYPE = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
const HCM = 'envoy.filters.network.http_connection_manager';
const TCP_PROXY = 'envoy.filters.network.tcp_proxy';

/** istiod's FileAccessLogFromMeshConfig. */
export function fileAccessLog(al: MeshAccessLog): ProtoObject {
  const logFormat: ProtoObject =
    al.encoding === 'JSON' ? { json_format: toStruct(al.json as { [k: string]: JsonLike }) } : { text_format_source: { inline_string: al.text ?? '' } };
  return { name: FILE_ACCESS_LOG, typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path: al.path, log_format: logFormat } };
}

function isObject(v: ProtoValue | undefined): v is ProtoObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function withLog(filter: ProtoObject, log: ProtoObject): ProtoObject {
  if ((filter['name'] !== HCM && filter['name'] !== TCP_PROXY) || !isObject(filter['typed_config'])) return filter;
  const cfg = filter['typed_config'];
  const existing = Array.isArray(cfg['access_log']) ? cfg['access_log'] : [];
  return { ...filter, typed_config: { ...cfg, access_log: [...existing, log] } };
}

function chainWithLog(chain: ProtoValue | undefined, log: ProtoObject): ProtoValue | undefined {
  if (!isObject(chain) || !Array.isArray(chain['filters'])) return chain;
  return { ...chain, filters: chain['filters'].map((f) => (isObject(f) ? withLog(f, log) : f)) };
}

/** The listener with the mesh's access log added to its connection managers and TCP proxies (and itself). */
export function addAccessLogs(listener: ProtoObject, al: MeshAccessLog | undefined): ProtoObject {
  if (!al) return listener;
  const log = fileAccessLog(al);
  const out: ProtoObject = { ...listener };
  if (Array.isArray(listener['filter_chains'])) out['filter_chains'] = listener['filter_chains'].map((c) => chainWithLog(c, log) ?? c);
  if (listener['default_filter_chain'] !== undefined) out['default_filter_chain'] = chainWithLog(listener['default_filter_chain'], log);
  if (al.listenerLog) out['access_log'] = [{ ...log, filter: { response_flag_filter: { flags: ['NR'] } } }];
  return out;
}
