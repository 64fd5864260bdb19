/**
 * A connected proxy's config as Envoy's admin API dumps it (envoy.admin.v3.ConfigDump): what it
 * would be sent now, per type, with Envoy's redaction of sensitive fields. Built as protobuf
 * messages, so the same dump is the xDS answer to `istio.io/debug/config_dump` (one Any per
 * *ConfigDump, as istiod answers) and, printed as proto3 JSON, `/debug/config_dump`.
 */
import type { Connection } from '../xds/connection';
import type { XdsWatcher } from '../xds/engine';
import { type EnvoyProtos, TypeUrl } from '../xds/protos';
import type { AnyMsg } from '../xds/wire';
import { type JsonValue, ProtoJson } from './proto-json';
import { redactSensitive } from './redact';

const ADMIN = 'type.googleapis.com/envoy.admin.v3.';

interface TimestampMsg {
  seconds: number;
  nanos: number;
}

function timestampOf(iso: string | undefined): TimestampMsg | undefined {
  if (!iso) return undefined;
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return undefined;
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

/** The dump's parts, each an Any of an admin *ConfigDump message (Envoy's order). */
export function configDumpAnys(watcher: XdsWatcher, protos: EnvoyProtos, conn: Connection): AnyMsg[] {
  const handle = conn.handle;
  if (!handle) return [];
  /** What the proxy would be sent of type t now, each resource redacted and re-encoded as an Any. */
  const resources = (t: TypeUrl): { name: string; any: AnyMsg }[] => {
    if (!watcher.serves(handle, t)) return [];
    const w = conn.watches.get(t);
    const names = w ? w.names : t === TypeUrl.Cluster || t === TypeUrl.Listener ? undefined : new Set<string>();
    const all = watcher.resources(handle, t, names).resources;
    const list = names ? [...names].sort().flatMap((n) => all.get(n) ?? []) : [...all.values()];
    // As Envoy's admin does: private keys and other sensitive fields read `[redacted]`.
    return list.map((r) => ({ name: r.name, any: { type_url: t, value: protos.encode(t, redactSensitive(protos, t, protos.decode(t, r.bytes))) } }));
  };
  const version = (t: TypeUrl): string => conn.watches.get(t)?.versionSent ?? '';
  const updated = (t: TypeUrl): TimestampMsg | undefined => timestampOf(conn.watches.get(t)?.sentAt);
  const part = (name: string, body: Record<string, unknown>): AnyMsg => ({ type_url: `${ADMIN}${name}`, value: protos.encode(`${ADMIN}${name}`, body) });
  const parts: AnyMsg[] = [
    part('ClustersConfigDump', {
      version_info: version(TypeUrl.Cluster),
      dynamic_active_clusters: resources(TypeUrl.Cluster).map((r) => ({ version_info: version(TypeUrl.Cluster), cluster: r.any, last_updated: updated(TypeUrl.Cluster) })),
    }),
    part('ListenersConfigDump', {
      version_info: version(TypeUrl.Listener),
      dynamic_listeners: resources(TypeUrl.Listener).map((r) => ({
        name: r.name,
        active_state: { version_info: version(TypeUrl.Listener), listener: r.any, last_updated: updated(TypeUrl.Listener) },
      })),
    }),
    part('RoutesConfigDump', {
      dynamic_route_configs: resources(TypeUrl.Route).map((r) => ({ version_info: version(TypeUrl.Route), route_config: r.any, last_updated: updated(TypeUrl.Route) })),
    }),
    part('EndpointsConfigDump', {
      dynamic_endpoint_configs: resources(TypeUrl.Endpoint).map((r) => ({
        version_info: version(TypeUrl.Endpoint),
        endpoint_config: r.any,
        last_updated: updated(TypeUrl.Endpoint),
      })),
    }),
  ];
  // Gateways always (their certificates come over ADS); sidecars only when they asked for SDS over
  // ADS (BackendTLSPolicy CA bundles): their certificates come from the agent, not from meshd.
  if (watcher.serves(handle, TypeUrl.Secret) && (conn.proxy?.type !== 'sidecar' || conn.watches.has(TypeUrl.Secret))) {
    parts.push(
      part('SecretsConfigDump', {
        dynamic_active_secrets: resources(TypeUrl.Secret).map((r) => ({
          name: r.name,
          version_info: version(TypeUrl.Secret),
          last_updated: updated(TypeUrl.Secret),
          secret: r.any,
        })),
      }),
    );
  }
  // WasmPlugins (istiod's EcdsConfigDump), for a proxy that subscribes to ECDS: the configs it asked for.
  if (watcher.serves(handle, TypeUrl.ExtensionConfig) && conn.watches.has(TypeUrl.ExtensionConfig)) {
    parts.push(
      part('EcdsConfigDump', {
        ecds_filters: resources(TypeUrl.ExtensionConfig).map((r) => ({
          version_info: version(TypeUrl.ExtensionConfig),
          ecds_filter: r.any,
          last_updated: updated(TypeUrl.ExtensionConfig),
        })),
      }),
    );
  }
  return parts;
}

/** The dump as proto3 JSON, as Envoy's admin `/config_dump` prints it. */
export function configDumpJson(protos: EnvoyProtos, parts: readonly AnyMsg[]): JsonValue {
  const printer = new ProtoJson((url) => {
    try {
      return protos.type(url);
    } catch {
      return undefined;
    }
  });
  const dump = protos.type('envoy.admin.v3.ConfigDump');
  return printer.message(dump, dump.decode(protos.encode('envoy.admin.v3.ConfigDump', { configs: parts })));
}
