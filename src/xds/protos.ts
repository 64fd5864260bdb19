/**
 * Envoy's xDS v3 API, loaded with protobufjs from the protos that @grpc/grpc-js-xds ships
 * (envoy-api, xds, googleapis, protoc-gen-validate). Field names keep their proto spelling
 * (snake_case), so generated resources read exactly like Envoy's YAML config.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';

/** The xDS resource types meshd serves, in push order (CDS, EDS, LDS, RDS), then SDS and ECDS. */
export const TypeUrl = {
  Cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  Endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  Listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  Route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  Secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
  ExtensionConfig: 'type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig',
} as const;
export type TypeUrl = (typeof TypeUrl)[keyof typeof TypeUrl];

/** Push order: a cluster exists before its endpoints, a listener's routes arrive last. */
export const PUSH_ORDER: readonly TypeUrl[] = [TypeUrl.Cluster, TypeUrl.Endpoint, TypeUrl.Listener, TypeUrl.Route, TypeUrl.Secret, TypeUrl.ExtensionConfig];

export const SHORT_TYPE: Readonly<Record<TypeUrl, string>> = {
  [TypeUrl.Cluster]: 'CDS',
  [TypeUrl.Endpoint]: 'EDS',
  [TypeUrl.Listener]: 'LDS',
  [TypeUrl.Route]: 'RDS',
  [TypeUrl.Secret]: 'SDS',
  [TypeUrl.ExtensionConfig]: 'ECDS',
};

export function isTypeUrl(s: string): s is TypeUrl {
  return Object.prototype.hasOwnProperty.call(SHORT_TYPE, s);
}

/** Type URL → fully qualified message name, e.g. `envoy.config.cluster.v3.Cluster`. */
export function messageName(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/** Every proto file meshd needs; their imports are resolved from the include roots. */
export const ENTRY_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/filters/cel/v3/cel.proto',
  'envoy/extensions/access_loggers/grpc/v3/als.proto',
  // Needs OpenTelemetry's common.proto, which Envoy's API does not carry: our own copy under proto/.
  'envoy/extensions/access_loggers/open_telemetry/v3/logs_service.proto',
  'envoy/config/trace/v3/zipkin.proto',
  'envoy/config/trace/v3/opentelemetry.proto',
  'envoy/config/trace/v3/datadog.proto',
  'envoy/config/trace/v3/skywalking.proto',
  'envoy/extensions/request_id/uuid/v3/uuid.proto',
  'udpa/type/v1/typed_struct.proto',
  // Istio's stats filter config (not part of Envoy's API): our own copy under proto/.
  'istio-proxy/stats.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  // Filters EnvoyFilters commonly insert (and managed meshes allow): their configs must encode.
  'envoy/extensions/filters/http/lua/v3/lua.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/network/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/http/compressor/v3/compressor.proto',
  'envoy/extensions/compression/gzip/compressor/v3/gzip.proto',
  'envoy/extensions/filters/http/buffer/v3/buffer.proto',
  'envoy/extensions/filters/http/header_mutation/v3/header_mutation.proto',
  'envoy/config/core/v3/extension.proto',
  'envoy/extensions/filters/http/wasm/v3/wasm.proto',
  'envoy/extensions/filters/network/wasm/v3/wasm.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/network/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto',
  'envoy/admin/v3/config_dump.proto',
  'envoy/service/status/v3/csds.proto',
  'google/protobuf/duration.proto',
  'google/protobuf/struct.proto',
  'google/protobuf/wrappers.proto',
  'google/rpc/status.proto',
];

export function includeRoots(): string[] {
  const pkg = path.dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const deps = path.join(pkg, 'deps');
  const protobufjsDir = path.dirname(require.resolve('protobufjs/package.json'));
  const own = path.join(__dirname, '..', '..', 'proto');
  return [own, path.join(deps, 'envoy-api'), path.join(deps, 'xds'), path.join(deps, 'googleapis'), path.join(deps, 'protoc-gen-validate'), protobufjsDir];
}

/** Loads Envoy's API into a fresh protobufjs Root (keepCase: proto field names). */
export function loadEnvoyRoot(): protobuf.Root {
  const roots = includeRoots();
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string => {
    if (path.isAbsolute(target)) return target;
    for (const dir of roots) {
      const candidate = path.join(dir, target);
      if (fs.existsSync(candidate)) return candidate;
    }
    return target;
  };
  root.loadSync(ENTRY_FILES, { keepCase: true, alternateCommentMode: false });
  root.resolveAll();
  return root;
}

/** Loaded API with typed lookups; build one per process (loading takes ~0.5 s). */
export class EnvoyProtos {
  readonly root: protobuf.Root;
  readonly DiscoveryRequest: protobuf.Type;
  readonly DiscoveryResponse: protobuf.Type;
  readonly Any: protobuf.Type;

  constructor(root: protobuf.Root = loadEnvoyRoot()) {
    this.root = root;
    this.DiscoveryRequest = root.lookupType('envoy.service.discovery.v3.DiscoveryRequest');
    this.DiscoveryResponse = root.lookupType('envoy.service.discovery.v3.DiscoveryResponse');
    this.Any = root.lookupType('google.protobuf.Any');
  }

  private readonly types = new Map<string, protobuf.Type>();

  /** Message type by type URL or full name (memoised: protobufjs lookups walk namespaces). */
  type(name: string): protobuf.Type {
    let t = this.types.get(name);
    if (!t) {
      t = this.root.lookupType(messageName(name));
      this.types.set(name, t);
    }
    return t;
  }

  /** Plain object (proto field names, Any as `{'@type': …}`) → protobuf bytes. Throws on bad shape. */
  encode(typeUrl: string, obj: object): Uint8Array {
    const t = this.type(typeUrl);
    return t.encode(t.fromObject(obj as Record<string, unknown>)).finish();
  }

  /** Protobuf bytes → plain object in Envoy's JSON shape (Any expanded with `@type`). */
  decode(typeUrl: string, bytes: Uint8Array): Record<string, unknown> {
    const t = this.type(typeUrl);
    return typeFirst(t.toObject(t.decode(bytes), TO_OBJECT)) as Record<string, unknown>;
  }
}

export const TO_OBJECT: protobuf.IConversionOptions = {
  enums: String,
  longs: Number,
  bytes: String,
  defaults: false,
  json: true,
  oneofs: false,
};

/** Puts `@type` first in every object, as Envoy prints config, for readable dumps. */
function typeFirst(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(typeFirst);
  if (!v || typeof v !== 'object' || v instanceof Uint8Array) return v;
  const o = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  if ('@type' in o) out['@type'] = o['@type'];
  for (const [k, val] of Object.entries(o)) if (k !== '@type') out[k] = typeFirst(val);
  return out;
}
