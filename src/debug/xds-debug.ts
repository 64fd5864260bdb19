/**
 * The xDS debug types istioctl asks istiod for (pilot/pkg/xds/statusgen.go), answered the same way:
 *
 * - `istio.io/debug/syncz`: one `envoy.service.status.v3.ClientConfig` per connected proxy (named
 *   by its node ID), its node's CLUSTER_ID, NAMESPACE and ISTIO_VERSION (and, beyond istiod,
 *   SERVICE_ACCOUNT and INSTANCE_IPS, for `meshctl x route`), and a GenericXdsConfig
 *   per type in istiod's order (LDS, RDS, EDS, CDS, ECDS) with SYNCED, STALE or NOT_SENT. Where
 *   istiod says STALE for a response the proxy rejected, meshd says ERROR (CSDS's word for a
 *   NACK) with `client_status: NACKED` and the proxy's error message.
 * - `istio.io/debug/config_dump`, one resource name (`<pod>.<namespace>` or a node ID): the
 *   proxy's config dump, one Any per admin *ConfigDump; nothing when no such proxy is connected.
 *
 * Who may ask (istiod's rule): a caller whose verified identity is in the system namespace may
 * ask about any proxy; any other identity only about proxies of its own namespace. With debug
 * endpoint auth off there is no caller to check and every question is answered.
 */
import * as grpc from '@grpc/grpc-js';
import type { Connection, WatchState } from '../xds/connection';
import type { XdsWatcher } from '../xds/engine';
import { type EnvoyProtos, TypeUrl } from '../xds/protos';
import type { AnyMsg } from '../xds/wire';
import { type DebugRequest, XdsRequestError, type XdsDebugService } from '../xds/server';
import { configDumpAnys } from './config-dump';

export const DEBUG_SYNCZ = 'istio.io/debug/syncz';
export const DEBUG_CONFIG_DUMP = 'istio.io/debug/config_dump';
const CLIENT_CONFIG = 'type.googleapis.com/envoy.service.status.v3.ClientConfig';
/** istiod's order of the per-type states in a ClientConfig. */
const SYNCZ_TYPES: readonly string[] = [TypeUrl.Listener, TypeUrl.Route, TypeUrl.Endpoint, TypeUrl.Cluster, TypeUrl.ExtensionConfig];

export interface XdsDebugOptions {
  protos: EnvoyProtos;
  watcher: XdsWatcher;
  /** The control plane's own namespace (istiod's system namespace, istio-system by default). */
  systemNamespace: string;
}

/** The namespace a proxy name points at: `<pod>.<namespace>`, or a node ID's `<pod>.<namespace>` part. */
function namespaceOfName(name: string): string | undefined {
  const parts = name.split('~');
  const podId = parts.length === 4 ? (parts[2] as string) : name;
  const dot = podId.lastIndexOf('.');
  return dot > 0 ? podId.slice(dot + 1) : undefined;
}

function syncStatus(w: WatchState | undefined): { config_status: string; client_status?: string; error_state?: object } {
  if (!w || !w.nonceSent) return { config_status: 'NOT_SENT' };
  if (w.nonceAcked === w.nonceSent) return { config_status: 'SYNCED' };
  const nack = w.lastNack;
  if (nack && nack.nonce === w.nonceSent) {
    const ms = Date.parse(nack.at);
    return {
      config_status: 'ERROR',
      client_status: 'NACKED',
      error_state: {
        details: nack.message,
        version_info: nack.version,
        ...(Number.isNaN(ms) ? {} : { last_update_attempt: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 } }),
      },
    };
  }
  return { config_status: 'STALE' };
}

export class XdsDebug implements XdsDebugService {
  constructor(private readonly opts: XdsDebugOptions) {}

  answer(req: DebugRequest): AnyMsg[] {
    switch (req.typeUrl) {
      case DEBUG_SYNCZ:
        return this.syncz(req);
      case DEBUG_CONFIG_DUMP:
        return this.configDump(req);
      default:
        throw new XdsRequestError(grpc.status.UNIMPLEMENTED, `debug type ${JSON.stringify(req.typeUrl)} is not served; meshd answers ${DEBUG_SYNCZ} and ${DEBUG_CONFIG_DUMP}`);
    }
  }

  /** Whether the caller may see proxies of `namespace`. */
  private allowed(req: DebugRequest, namespace: string | undefined): boolean {
    const caller = req.caller;
    return !caller || caller.namespace === this.opts.systemNamespace || caller.namespace === namespace;
  }

  private syncz(req: DebugRequest): AnyMsg[] {
    const { protos } = this.opts;
    const out: AnyMsg[] = [];
    for (const conn of req.connections) {
      const p = conn.proxy;
      if (!p || !this.allowed(req, p.namespace)) continue;
      const meta: Record<string, { stringValue: string }> = {};
      if (p.clusterId) meta['CLUSTER_ID'] = { stringValue: p.clusterId };
      meta['NAMESPACE'] = { stringValue: p.namespace };
      if (p.istioVersion) meta['ISTIO_VERSION'] = { stringValue: p.istioVersion };
      // Beyond istiod's three: what `meshctl x route` needs to find an endpoint's proxy and a caller's identity.
      if (p.serviceAccount) meta['SERVICE_ACCOUNT'] = { stringValue: p.serviceAccount };
      if (p.ips.length > 0) meta['INSTANCE_IPS'] = { stringValue: p.ips.join(',') };
      const clientConfig = {
        node: { id: p.id, metadata: { fields: meta } },
        generic_xds_configs: SYNCZ_TYPES.map((t) => ({ type_url: t, ...syncStatus(conn.watches.get(t as TypeUrl)) })),
      };
      out.push({ type_url: CLIENT_CONFIG, value: protos.encode(CLIENT_CONFIG, clientConfig) });
    }
    return out;
  }

  private configDump(req: DebugRequest): AnyMsg[] {
    if (req.resourceNames.length !== 1 || !req.resourceNames[0]) {
      throw new XdsRequestError(
        grpc.status.INVALID_ARGUMENT,
        `${DEBUG_CONFIG_DUMP} takes exactly one resource name, the proxy (<pod>.<namespace> or its node ID); got ${req.resourceNames.length}`,
      );
    }
    const name = req.resourceNames[0];
    const namespace = namespaceOfName(name);
    // Decided on the name alone, so a refusal says nothing about whether such a proxy is connected.
    if (!this.allowed(req, namespace)) {
      throw new XdsRequestError(
        grpc.status.PERMISSION_DENIED,
        `${req.caller?.id ?? 'the caller'} may read the config dump of proxies in namespace ${req.caller?.namespace ?? '?'} only (or of any proxy from the system namespace ${this.opts.systemNamespace}); ${JSON.stringify(name)} is ${namespace ? `in namespace ${namespace}` : 'not <pod>.<namespace>'}`,
      );
    }
    const conn = findProxy(req.connections, name);
    // As istiod: no such proxy on this instance is an empty answer (it may be on another replica).
    if (!conn) return [];
    return configDumpAnys(this.opts.watcher, this.opts.protos, conn);
  }
}

/** A connected proxy by its node ID or Istio's short form `<pod>.<namespace>`. */
export function findProxy(conns: readonly Connection[], name: string): Connection | undefined {
  return conns.find((c) => c.proxy?.id === name) ?? conns.find((c) => c.proxy && `${c.proxy.podName}.${c.proxy.namespace}` === name);
}
