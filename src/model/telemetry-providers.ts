/**
 * MeshConfig `extensionProviders` and `defaultProviders` as the Telemetry API reads them
 * (istio/api mesh/v1alpha1/config.proto, MeshConfig.ExtensionProvider): typed for the providers
 * meshd generates config for, kept by name and type for the others. istiod's ApplyMeshConfig
 * merges the given providers into its defaults (`prometheus`, `stackdriver`, `envoy`) by name.
 */
import type { MeshConfig } from './mesh-config';

interface Named {
  readonly name: string;
}

export interface HttpHeaderValue {
  readonly name: string;
  readonly value: string;
}

/** A provider's `logFormat`: a text format or JSON labels. */
export interface LogFormat {
  readonly text?: string;
  readonly labels?: Readonly<Record<string, unknown>>;
}

export type ExtensionProvider =
  | (Named & { readonly kind: 'prometheus' })
  | (Named & {
      readonly kind: 'envoyFileAccessLog';
      readonly path: string;
      readonly logFormat?: LogFormat;
    })
  | (Named & {
      readonly kind: 'zipkin';
      readonly service: string;
      readonly port: number;
      readonly maxTagLength: number;
      readonly path: string;
      readonly enable64bitTraceId: boolean;
    })
  | (Named & { readonly kind: 'datadog'; readonly service: string; readonly port: number; readonly maxTagLength: number })
  | (Named & { readonly kind: 'skywalking'; readonly service: string; readonly port: number })
  | (Named & {
      readonly kind: 'opentelemetry';
      readonly service: string;
      readonly port: number;
      readonly maxTagLength: number;
      /** OTLP/HTTP export; absent: OTLP/gRPC. */
      readonly http?: { readonly path: string; readonly timeout?: string; readonly headers: readonly HttpHeaderValue[] };
      readonly grpc?: { readonly timeout?: string; readonly initialMetadata: readonly HttpHeaderValue[] };
    })
  | (Named & {
      readonly kind: 'envoyOtelAls';
      readonly service: string;
      readonly port: number;
      readonly logName: string;
      readonly logFormat?: LogFormat;
    })
  | (Named & {
      readonly kind: 'envoyHttpAls';
      readonly service: string;
      readonly port: number;
      readonly logName: string;
      readonly filterStateObjectsToLog: readonly string[];
      readonly additionalRequestHeadersToLog: readonly string[];
      readonly additionalResponseHeadersToLog: readonly string[];
      readonly additionalResponseTrailersToLog: readonly string[];
    })
  | (Named & { readonly kind: 'envoyTcpAls'; readonly service: string; readonly port: number; readonly logName: string; readonly filterStateObjectsToLog: readonly string[] })
  | (Named & ExtAuthzHttpProvider)
  | (Named & ExtAuthzGrpcProvider)
  /** Providers meshd stores but generates nothing for (stackdriver, lightstep, …). */
  | (Named & { readonly kind: 'other'; readonly type: string });

/** EnvoyExternalAuthorizationRequestBody. */
export interface ExtAuthzRequestBody {
  readonly maxRequestBytes: number;
  readonly allowPartialMessage: boolean;
  readonly packAsBytes: boolean;
}

/** The fields both ext_authz providers share (AuthorizationPolicy CUSTOM, see generate/security/ext-authz.ts). */
interface ExtAuthzCommon {
  readonly service: string;
  readonly port: number;
  /** A protobuf JSON duration; absent: istiod's 600s. */
  readonly timeout?: string;
  readonly failOpen: boolean;
  readonly clearRouteCache: boolean;
  readonly statusOnError: string;
  readonly includeRequestBodyInCheck?: ExtAuthzRequestBody;
}

/** MeshConfig EnvoyExternalAuthorizationHttpProvider. */
export interface ExtAuthzHttpProvider extends ExtAuthzCommon {
  readonly kind: 'envoyExtAuthzHttp';
  readonly pathPrefix: string;
  /** includeRequestHeadersInCheck, else the deprecated includeHeadersInCheck (as istiod). */
  readonly includeRequestHeadersInCheck: readonly string[];
  readonly includeAdditionalHeadersInCheck: Readonly<Record<string, string>>;
  readonly headersToUpstreamOnAllow: readonly string[];
  readonly headersToDownstreamOnDeny: readonly string[];
  readonly headersToDownstreamOnAllow: readonly string[];
}

/** MeshConfig EnvoyExternalAuthorizationGrpcProvider. */
export interface ExtAuthzGrpcProvider extends ExtAuthzCommon {
  readonly kind: 'envoyExtAuthzGrpc';
}

export interface DefaultProviders {
  readonly metrics: readonly string[];
  readonly accessLogging: readonly string[];
  readonly tracing: readonly string[];
}

/** What the Telemetry API reads of the MeshConfig: its own snapshot field, so only telemetry depends on it. */
export interface TelemetryMesh {
  readonly providers: readonly ExtensionProvider[];
  readonly defaultProviders: DefaultProviders;
  /** MeshConfig enableTracing: the legacy tracing block when no Telemetry configures tracing. */
  readonly enableTracing: boolean;
  /** defaultConfig.tracing.sampling (istiod: PILOT_TRACE_SAMPLING 1.0 when unset; above 100 → 1.0). */
  readonly proxySampling: number;
}

type Json = Record<string, unknown>;
const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown, d = ''): string => (typeof v === 'string' ? v : d);
const num = (v: unknown, d = 0): number => (typeof v === 'number' && Number.isFinite(v) ? v : d);
const strList = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

function headers(v: unknown): HttpHeaderValue[] {
  if (!Array.isArray(v)) return [];
  // envName values are read from istiod's environment; meshd has none to read, so they are empty.
  return v.filter(isRecord).map((h) => ({ name: str(h['name']), value: str(h['value']) }));
}

function extAuthzCommon(c: Json): ExtAuthzCommon {
  const body = isRecord(c['includeRequestBodyInCheck']) ? c['includeRequestBodyInCheck'] : undefined;
  return {
    service: str(c['service']),
    // protobuf JSON takes an integer as a number or a decimal string.
    port: typeof c['port'] === 'string' && /^\d+$/.test(c['port']) ? Number(c['port']) : num(c['port']),
    ...(typeof c['timeout'] === 'string' ? { timeout: c['timeout'] } : {}),
    failOpen: c['failOpen'] === true,
    clearRouteCache: c['clearRouteCache'] === true,
    statusOnError: str(c['statusOnError']),
    ...(body
      ? {
          includeRequestBodyInCheck: {
            maxRequestBytes: num(body['maxRequestBytes']),
            allowPartialMessage: body['allowPartialMessage'] === true,
            packAsBytes: body['packAsBytes'] === true,
          },
        }
      : {}),
  };
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isRecord(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

function logFormatOf(v: unknown): LogFormat | undefined {
  if (!isRecord(v)) return undefined;
  return { ...(typeof v['text'] === 'string' ? { text: v['text'] } : {}), ...(isRecord(v['labels']) ? { labels: v['labels'] } : {}) };
}

/** One given provider, typed by the first provider field it sets. */
export function parseProvider(p: Json): ExtensionProvider | undefined {
  const name = str(p['name']);
  if (name === '') return undefined;
  const kinds = Object.keys(p).filter((k) => k !== 'name');
  const type = kinds[0] ?? '';
  const c = isRecord(p[type]) ? p[type] : {};
  switch (type) {
    case 'prometheus':
      return { name, kind: 'prometheus' };
    case 'envoyFileAccessLog': {
      const logFormat = logFormatOf(c['logFormat']);
      return { name, kind: 'envoyFileAccessLog', path: str(c['path']), ...(logFormat ? { logFormat } : {}) };
    }
    case 'zipkin':
      return {
        name,
        kind: 'zipkin',
        service: str(c['service']),
        port: num(c['port']),
        maxTagLength: num(c['maxTagLength']),
        path: str(c['path']),
        enable64bitTraceId: c['enable64bitTraceId'] === true,
      };
    case 'datadog':
      return { name, kind: 'datadog', service: str(c['service']), port: num(c['port']), maxTagLength: num(c['maxTagLength']) };
    case 'skywalking':
      return { name, kind: 'skywalking', service: str(c['service']), port: num(c['port']) };
    case 'opentelemetry': {
      const http = isRecord(c['http']) ? c['http'] : undefined;
      const grpc = isRecord(c['grpc']) ? c['grpc'] : undefined;
      return {
        name,
        kind: 'opentelemetry',
        service: str(c['service']),
        port: num(c['port']),
        maxTagLength: num(c['maxTagLength']),
        ...(http ? { http: { path: str(http['path']), ...(typeof http['timeout'] === 'string' ? { timeout: http['timeout'] } : {}), headers: headers(http['headers']) } } : {}),
        ...(grpc ? { grpc: { ...(typeof grpc['timeout'] === 'string' ? { timeout: grpc['timeout'] } : {}), initialMetadata: headers(grpc['initialMetadata']) } } : {}),
      };
    }
    case 'envoyOtelAls': {
      const logFormat = logFormatOf(c['logFormat']);
      return { name, kind: 'envoyOtelAls', service: str(c['service']), port: num(c['port']), logName: str(c['logName']), ...(logFormat ? { logFormat } : {}) };
    }
    case 'envoyHttpAls':
      return {
        name,
        kind: 'envoyHttpAls',
        service: str(c['service']),
        port: num(c['port']),
        logName: str(c['logName']),
        filterStateObjectsToLog: strList(c['filterStateObjectsToLog']),
        additionalRequestHeadersToLog: strList(c['additionalRequestHeadersToLog']),
        additionalResponseHeadersToLog: strList(c['additionalResponseHeadersToLog']),
        additionalResponseTrailersToLog: strList(c['additionalResponseTrailersToLog']),
      };
    case 'envoyTcpAls':
      return {
        name,
        kind: 'envoyTcpAls',
        service: str(c['service']),
        port: num(c['port']),
        logName: str(c['logName']),
        filterStateObjectsToLog: strList(c['filterStateObjectsToLog']),
      };
    case 'envoyExtAuthzHttp': {
      const reqHeaders = strList(c['includeRequestHeadersInCheck']);
      return {
        name,
        kind: 'envoyExtAuthzHttp',
        ...extAuthzCommon(c),
        pathPrefix: str(c['pathPrefix']),
        includeRequestHeadersInCheck: reqHeaders.length > 0 ? reqHeaders : strList(c['includeHeadersInCheck']),
        includeAdditionalHeadersInCheck: stringMap(c['includeAdditionalHeadersInCheck']),
        headersToUpstreamOnAllow: strList(c['headersToUpstreamOnAllow']),
        headersToDownstreamOnDeny: strList(c['headersToDownstreamOnDeny']),
        headersToDownstreamOnAllow: strList(c['headersToDownstreamOnAllow']),
      };
    }
    case 'envoyExtAuthzGrpc':
      return { name, kind: 'envoyExtAuthzGrpc', ...extAuthzCommon(c) };
    default:
      return { name, kind: 'other', type };
  }
}

/** istiod's built-in providers (DefaultMeshConfig). */
export const DEFAULT_EXTENSION_PROVIDERS: readonly Json[] = [
  { name: 'prometheus', prometheus: {} },
  { name: 'stackdriver', stackdriver: {} },
  { name: 'envoy', envoyFileAccessLog: { path: '/dev/stdout' } },
];

/** The Telemetry API's view of a MeshConfig. */
export function telemetryMesh(c: MeshConfig): TelemetryMesh {
  // ApplyMeshConfig: a given provider replaces the default of the same name, others are appended.
  const merged: Json[] = DEFAULT_EXTENSION_PROVIDERS.map((p) => ({ ...p }));
  const given = Array.isArray(c.other['extensionProviders']) ? (c.other['extensionProviders'] as unknown[]).filter(isRecord) : [];
  for (const p of given) {
    const i = merged.findIndex((e) => e['name'] === p['name']);
    if (i >= 0) merged[i] = p;
    else merged.push(p);
  }
  const providers = merged.map(parseProvider).filter((p): p is ExtensionProvider => p !== undefined);
  const dp = isRecord(c.other['defaultProviders']) ? c.other['defaultProviders'] : {};
  const tracing = isRecord(c.defaultConfig['tracing']) ? c.defaultConfig['tracing'] : {};
  let sampling = num(tracing['sampling']);
  if (sampling === 0) sampling = 1;
  else if (sampling > 100) sampling = 1;
  return {
    providers,
    defaultProviders: { metrics: strList(dp['metrics']), accessLogging: strList(dp['accessLogging']), tracing: strList(dp['tracing']) },
    enableTracing: c.other['enableTracing'] !== false,
    proxySampling: sampling,
  };
}

/** istiod's fetchProvider: by name, case-insensitively. */
export function findProvider(mesh: TelemetryMesh, name: string): ExtensionProvider | undefined {
  const n = name.toLowerCase();
  return mesh.providers.find((p) => p.name.toLowerCase() === n);
}
