/**
 * The MeshConfig part of a snapshot: the effective MeshConfig (parsed and validated, or the last
 * good one when the new text is invalid), and the settings generators read, each its own
 * snapshot field so that a result depends only on the settings it read (incr/deps.ts).
 */
import type { ConfigError, FieldError, LocalityLbSetting } from './objects';
import {
  type AccessLogEncoding,
  type MeshConfig,
  type MeshConfigDefaults,
  type OutboundTrafficMode,
  type ProtoDuration,
  defaultMeshConfig,
  durationNanos,
  parseMeshConfig,
  protoDuration,
} from './mesh-config';
import { type TelemetryMesh, telemetryMesh } from './telemetry-providers';

/** Where a MeshConfig text came from, and the text (a source's `mesh.yaml`, ConfigMap `istio`, or `--mesh-config`). */
export interface MeshConfigText {
  /** `mesh.yaml`, `kubernetes:ConfigMap/istio-system/istio`, or a file path. */
  source: string;
  text: string;
}

/** What `/debug/mesh` and `/debug/configz` say about the MeshConfig. */
export interface MeshConfigStatus {
  /** Where the served MeshConfig was read from; absent: istiod's defaults (and meshd's flags). */
  source?: string;
  /** The last text was invalid: the one served is the last good one (or the defaults). */
  keptLastGood: boolean;
  errors: readonly FieldError[];
  warnings: readonly FieldError[];
}

/** The file access log every HTTP connection manager and TCP proxy gets (MeshConfig accessLogFile). */
export interface MeshAccessLog {
  path: string;
  encoding: AccessLogEncoding;
  /** TEXT: the format string (istiod's default when unset; a newline is added when missing). */
  text?: string;
  /** JSON: the labels (istiod's default set when unset or not a JSON object). */
  json?: Readonly<Record<string, unknown>>;
  /** Listener access logs for NR (no filter chain matched), unless disableEnvoyListenerLog. */
  listenerLog: boolean;
}

export interface MeshFields {
  meshConfig: MeshConfig;
  meshStatus: MeshConfigStatus;
  outboundTrafficPolicy: OutboundTrafficMode;
  accessLog: MeshAccessLog | undefined;
  telemetryMesh: TelemetryMesh;
  connectTimeout: ProtoDuration;
  enableAutoMtls: boolean;
  localityLbSetting: LocalityLbSetting;
  /** MeshConfig protocolDetectionTimeout, in ms (istiod's default 0: no limit). */
  protocolDetectionTimeoutMs: number;
}

/** istiod's EnvoyTextLogFormat. */
export const ENVOY_TEXT_LOG_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% ' +
  '%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% ' +
  '%DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" ' +
  '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% ' +
  '%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

/** istiod's EnvoyJSONLogFormatIstio. */
export const ENVOY_JSON_LOG_FORMAT: Readonly<Record<string, string>> = {
  authority: '%REQ(:AUTHORITY)%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  connection_termination_details: '%CONNECTION_TERMINATION_DETAILS%',
  downstream_local_address: '%DOWNSTREAM_LOCAL_ADDRESS%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  duration: '%DURATION%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%',
  request_id: '%REQ(X-REQUEST-ID)%',
  requested_server_name: '%REQUESTED_SERVER_NAME%',
  response_code: '%RESPONSE_CODE%',
  response_code_details: '%RESPONSE_CODE_DETAILS%',
  response_flags: '%RESPONSE_FLAGS%',
  route_name: '%ROUTE_NAME%',
  start_time: '%START_TIME%',
  upstream_cluster: '%UPSTREAM_CLUSTER%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_local_address: '%UPSTREAM_LOCAL_ADDRESS%',
  upstream_service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%',
  upstream_transport_failure_reason: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
  user_agent: '%REQ(USER-AGENT)%',
  x_forwarded_for: '%REQ(X-FORWARDED-FOR)%',
};

function jsonLabels(format: string): Readonly<Record<string, unknown>> {
  if (format === '') return ENVOY_JSON_LOG_FORMAT;
  try {
    const parsed: unknown = JSON.parse(format);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) && Object.keys(parsed).length > 0) return parsed as Record<string, unknown>;
  } catch {
    // istiod logs the error and uses the default format.
  }
  return ENVOY_JSON_LOG_FORMAT;
}

/** istiod's FileAccessLogFromMeshConfig inputs, or undefined when accessLogFile is empty (no access log). */
export function meshAccessLog(c: MeshConfig): MeshAccessLog | undefined {
  if (c.accessLogFile === '') return undefined;
  const listenerLog = !c.disableEnvoyListenerLog;
  if (c.accessLogEncoding === 'JSON') return { path: c.accessLogFile, encoding: 'JSON', json: jsonLabels(c.accessLogFormat), listenerLog };
  const text = c.accessLogFormat === '' ? ENVOY_TEXT_LOG_FORMAT : c.accessLogFormat.endsWith('\n') ? c.accessLogFormat : `${c.accessLogFormat}\n`;
  return { path: c.accessLogFile, encoding: 'TEXT', text, listenerLog };
}

/**
 * The effective MeshConfig for a build: the text's, or (when it is invalid) the previous
 * snapshot's, with the errors reported in `errors` under kind MeshConfig; no text: the defaults.
 */
export function buildMesh(input: MeshConfigText | undefined, defaults: MeshConfigDefaults, previous: MeshConfig | undefined, errors: ConfigError[]): MeshFields {
  let config: MeshConfig;
  let status: MeshConfigStatus;
  if (!input) {
    config = defaultMeshConfig(defaults);
    status = { keptLastGood: false, errors: [], warnings: [] };
  } else {
    const r = parseMeshConfig(input.text, defaults);
    if (r.config) {
      config = r.config;
      status = { source: input.source, keptLastGood: false, errors: [], warnings: r.warnings };
    } else {
      config = previous ?? defaultMeshConfig(defaults);
      status = { source: input.source, keptLastGood: true, errors: r.errors, warnings: r.warnings };
      errors.push({
        source: input.source,
        kind: 'MeshConfig',
        errors: [...r.errors, { path: '', message: previous ? 'the MeshConfig is invalid; the last good one is kept' : 'the MeshConfig is invalid; the defaults are used' }],
      });
    }
  }
  return {
    meshConfig: config,
    meshStatus: status,
    outboundTrafficPolicy: config.outboundTrafficPolicy.mode,
    accessLog: meshAccessLog(config),
    telemetryMesh: telemetryMesh(config),
    connectTimeout: protoDuration(config.connectTimeout),
    enableAutoMtls: config.enableAutoMtls,
    localityLbSetting: config.localityLbSetting,
    protocolDetectionTimeoutMs: Math.round((durationNanos(config.protocolDetectionTimeout) ?? 0) / 1e6),
  };
}
