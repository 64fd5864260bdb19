/**
 * Just enough of Envoy's xDS API for cheap benchmark clients: the real DiscoveryRequest /
 * DeltaDiscoveryRequest types (from the protos @grpc/grpc-js-xds ships, as meshd loads them) to
 * encode requests, and a byte scanner for responses that reads only names, counts and the
 * EDS/RDS names a client must subscribe to. Field numbers come from the loaded protos, not
 * from constants, so the scanner follows the real schema.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';

export const TYPE_URLS = [
  'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  'type.googleapis.com/envoy.config.listener.v3.Listener',
  'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
] as const;
/** Index into TYPE_URLS; 4 = anything else. */
export const CDS = 0;
export const EDS = 1;
export const LDS = 2;
export const RDS = 3;
export const OTHER = 4;
export const TYPE_NAMES = ['CDS', 'EDS', 'LDS', 'RDS', 'other'] as const;

export const SOTW_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
export const DELTA_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';

const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const EDS_CLUSTER_TYPE = 3; // envoy.config.cluster.v3.Cluster.DiscoveryType.EDS

export function typeIndex(typeUrl: string): number {
  const i = (TYPE_URLS as readonly string[]).indexOf(typeUrl);
  return i < 0 ? OTHER : i;
}

function loadRoot(): protobuf.Root {
  const deps = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
  const roots = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(deps, d));
  roots.push(path.dirname(require.resolve('protobufjs/package.json')));
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string => {
    if (path.isAbsolute(target)) return target;
    for (const dir of roots) {
      const candidate = path.join(dir, target);
      if (fs.existsSync(candidate)) return candidate;
    }
    return target;
  };
  root.loadSync(
    [
      'envoy/service/discovery/v3/discovery.proto',
      'envoy/config/cluster/v3/cluster.proto',
      'envoy/config/listener/v3/listener.proto',
      'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
    ],
    { keepCase: true },
  );
  root.resolveAll();
  return root;
}

/** The field numbers the scanner reads, looked up in the loaded schema. */
function fieldNumbers(root: protobuf.Root) {
  const id = (type: string, field: string): number => {
    const f = root.lookupType(type).fields[field];
    if (!f) throw new Error(`proto field ${type}.${field} not found`);
    return f.id;
  };
  const d = 'envoy.service.discovery.v3.';
  const l = 'envoy.config.listener.v3.';
  const hcm = 'envoy.extensions.filters.network.http_connection_manager.v3.';
  return {
    sotw: {
      resources: id(`${d}DiscoveryResponse`, 'resources'),
      typeUrl: id(`${d}DiscoveryResponse`, 'type_url'),
      version: id(`${d}DiscoveryResponse`, 'version_info'),
      nonce: id(`${d}DiscoveryResponse`, 'nonce'),
    },
    delta: {
      resources: id(`${d}DeltaDiscoveryResponse`, 'resources'),
      typeUrl: id(`${d}DeltaDiscoveryResponse`, 'type_url'),
      version: id(`${d}DeltaDiscoveryResponse`, 'system_version_info'),
      nonce: id(`${d}DeltaDiscoveryResponse`, 'nonce'),
      removed: id(`${d}DeltaDiscoveryResponse`, 'removed_resources'),
    },
    deltaResource: { name: id(`${d}Resource`, 'name'), resource: id(`${d}Resource`, 'resource') },
    any: { typeUrl: id('google.protobuf.Any', 'type_url'), value: id('google.protobuf.Any', 'value') },
    cluster: {
      name: id('envoy.config.cluster.v3.Cluster', 'name'),
      type: id('envoy.config.cluster.v3.Cluster', 'type'),
      eds: id('envoy.config.cluster.v3.Cluster', 'eds_cluster_config'),
      serviceName: id('envoy.config.cluster.v3.Cluster.EdsClusterConfig', 'service_name'),
    },
    listener: {
      name: id(`${l}Listener`, 'name'),
      filterChains: id(`${l}Listener`, 'filter_chains'),
      defaultChain: id(`${l}Listener`, 'default_filter_chain'),
      api: id(`${l}Listener`, 'api_listener'),
      apiAny: id(`${l}ApiListener`, 'api_listener'),
      filters: id(`${l}FilterChain`, 'filters'),
      typedConfig: id(`${l}Filter`, 'typed_config'),
    },
    hcm: { rds: id(`${hcm}HttpConnectionManager`, 'rds'), routeName: id(`${hcm}Rds`, 'route_config_name') },
    request: { node: id(`${d}DiscoveryRequest`, 'node'), typeUrl: id(`${d}DiscoveryRequest`, 'type_url') },
    deltaRequest: { node: id(`${d}DeltaDiscoveryRequest`, 'node'), typeUrl: id(`${d}DeltaDiscoveryRequest`, 'type_url') },
    node: { id: id('envoy.config.core.v3.Node', 'id') },
  };
}
export type FieldNumbers = ReturnType<typeof fieldNumbers>;

/** A response scanned down to what a client needs; offsets index into the message bytes. */
export interface ScannedResponse {
  typeUrl: string;
  version: string;
  nonce: string;
  /** [start, end) of each resource: an Any (state of the world) or a Resource (delta). */
  resources: number[];
  removed: string[];
  /** [start, end) of the contiguous run of resource fields (tags included), or -1 if not contiguous. */
  runStart: number;
  runEnd: number;
}

export interface NodeIdentity {
  id: string;
  metadata: Record<string, string | Record<string, string>>;
}

/** Loaded once per process (≈0.1 s): request encoders and response scanners. */
export class XdsCodec {
  readonly f: FieldNumbers;
  private readonly request: protobuf.Type;
  private readonly deltaRequest: protobuf.Type;

  constructor() {
    const root = loadRoot();
    this.f = fieldNumbers(root);
    this.request = root.lookupType('envoy.service.discovery.v3.DiscoveryRequest');
    this.deltaRequest = root.lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  }

  /** Node as protobufjs wants it: Struct metadata (protobufjs's bundled Struct is camelCase). */
  static node(n: NodeIdentity): Record<string, unknown> {
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(n.metadata)) {
      if (typeof v === 'string') fields[k] = { stringValue: v };
      else {
        const inner: Record<string, unknown> = {};
        for (const [ik, iv] of Object.entries(v)) inner[ik] = { stringValue: iv };
        fields[k] = { structValue: { fields: inner } };
      }
    }
    return { id: n.id, metadata: { fields }, user_agent_name: 'envoy', user_agent_version: '1.32.0' };
  }

  sotwRequest(r: { node?: Record<string, unknown>; typeUrl: string; names: readonly string[]; version: string; nonce: string }): Buffer {
    const obj = { node: r.node, type_url: r.typeUrl, resource_names: r.names, version_info: r.version, response_nonce: r.nonce };
    return Buffer.from(this.request.encode(this.request.fromObject(obj)).finish());
  }

  deltaRequestBytes(r: { node?: Record<string, unknown>; typeUrl: string; subscribe?: readonly string[]; unsubscribe?: readonly string[]; nonce?: string }): Buffer {
    const obj = { node: r.node, type_url: r.typeUrl, resource_names_subscribe: r.subscribe ?? [], resource_names_unsubscribe: r.unsubscribe ?? [], response_nonce: r.nonce ?? '' };
    return Buffer.from(this.deltaRequest.encode(this.deltaRequest.fromObject(obj)).finish());
  }

  /** Top-level scan of a (Delta)DiscoveryResponse. */
  scanResponse(buf: Uint8Array, delta: boolean): ScannedResponse {
    const f = delta ? this.f.delta : this.f.sotw;
    const out: ScannedResponse = { typeUrl: '', version: '', nonce: '', resources: [], removed: [], runStart: -1, runEnd: -1 };
    const r = protobuf.Reader.create(buf);
    let contiguous = true;
    let lastWasResource = false;
    while (r.pos < r.len) {
      const tagStart = r.pos;
      const tag = r.uint32();
      const fn = tag >>> 3;
      const wt = tag & 7;
      if (fn === f.resources && wt === 2) {
        if (out.runStart >= 0 && !lastWasResource) contiguous = false;
        if (out.runStart < 0) out.runStart = tagStart;
        const len = r.uint32();
        out.resources.push(r.pos, r.pos + len);
        r.pos += len;
        out.runEnd = r.pos;
        lastWasResource = true;
        continue;
      }
      lastWasResource = false;
      if (fn === f.typeUrl && wt === 2) out.typeUrl = r.string();
      else if (fn === f.version && wt === 2) out.version = r.string();
      else if (fn === f.nonce && wt === 2) out.nonce = r.string();
      else if (delta && fn === this.f.delta.removed && wt === 2) out.removed.push(r.string());
      else r.skipType(wt);
    }
    if (!contiguous) out.runStart = out.runEnd = -1;
    return out;
  }

  /** Visits the length-delimited fields `fn` of the message at [start, end). */
  private each(buf: Uint8Array, start: number, end: number, visit: (fn: number, s: number, e: number) => void): void {
    const r = protobuf.Reader.create(buf.subarray(start, end));
    while (r.pos < r.len) {
      const tag = r.uint32();
      if ((tag & 7) !== 2) {
        r.skipType(tag & 7);
        continue;
      }
      const len = r.uint32();
      visit(tag >>> 3, start + r.pos, start + r.pos + len);
      r.pos += len;
    }
  }

  private str(buf: Uint8Array, s: number, e: number): string {
    return Buffer.from(buf.buffer, buf.byteOffset + s, e - s).toString('utf8');
  }

  /** The payload [start, end) of a resource entry: the Any's value (unwrapping a delta Resource). */
  payload(buf: Uint8Array, s: number, e: number, delta: boolean): { name: string; s: number; e: number } | undefined {
    let name = '';
    let anyS = s;
    let anyE = e;
    if (delta) {
      let found = false;
      this.each(buf, s, e, (fn, a, b) => {
        if (fn === this.f.deltaResource.name) name = this.str(buf, a, b);
        else if (fn === this.f.deltaResource.resource) [anyS, anyE, found] = [a, b, true];
      });
      if (!found) return undefined;
    }
    let vs = -1;
    let ve = -1;
    this.each(buf, anyS, anyE, (fn, a, b) => {
      if (fn === this.f.any.value) [vs, ve] = [a, b];
    });
    return vs < 0 ? { name, s: anyE, e: anyE } : { name, s: vs, e: ve };
  }

  /** A Cluster's name and, if it is an EDS cluster, the name to subscribe EDS with. */
  cluster(buf: Uint8Array, s: number, e: number): { name: string; eds?: string } {
    const f = this.f.cluster;
    const r = protobuf.Reader.create(buf.subarray(s, e));
    let name = '';
    let type = 0;
    let serviceName = '';
    while (r.pos < r.len) {
      const tag = r.uint32();
      const fn = tag >>> 3;
      if (fn === f.name && (tag & 7) === 2) name = r.string();
      else if (fn === f.type && (tag & 7) === 0) type = r.int32();
      else if (fn === f.eds && (tag & 7) === 2) {
        const len = r.uint32();
        this.each(buf, s + r.pos, s + r.pos + len, (ifn, a, b) => {
          if (ifn === f.serviceName) serviceName = this.str(buf, a, b);
        });
        r.pos += len;
      } else r.skipType(tag & 7);
    }
    return type === EDS_CLUSTER_TYPE ? { name, eds: serviceName || name } : { name };
  }

  /** A Listener's name and the RDS route names its HTTP connection managers use. */
  listener(buf: Uint8Array, s: number, e: number): { name: string; routes: string[] } {
    const f = this.f.listener;
    let name = '';
    const routes: string[] = [];
    const hcm = (a: number, b: number): void => {
      let isHcm = false;
      let vs = -1;
      let ve = -1;
      this.each(buf, a, b, (fn, x, y) => {
        if (fn === this.f.any.typeUrl) isHcm = this.str(buf, x, y) === HCM_TYPE;
        else if (fn === this.f.any.value) [vs, ve] = [x, y];
      });
      if (!isHcm || vs < 0) return;
      this.each(buf, vs, ve, (fn, x, y) => {
        if (fn !== this.f.hcm.rds) return;
        this.each(buf, x, y, (rfn, p, q) => {
          if (rfn === this.f.hcm.routeName) routes.push(this.str(buf, p, q));
        });
      });
    };
    const chain = (a: number, b: number): void =>
      this.each(buf, a, b, (fn, x, y) => {
        if (fn === f.filters) this.each(buf, x, y, (ffn, p, q) => (ffn === f.typedConfig ? hcm(p, q) : undefined));
      });
    this.each(buf, s, e, (fn, a, b) => {
      if (fn === f.name) name = this.str(buf, a, b);
      else if (fn === f.filterChains || fn === f.defaultChain) chain(a, b);
      else if (fn === f.api) this.each(buf, a, b, (afn, x, y) => (afn === f.apiAny ? hcm(x, y) : undefined));
    });
    return { name, routes };
  }

  /** node.id and type_url of a request (for the floor server, which keeps requests as bytes). */
  scanRequest(buf: Uint8Array, delta: boolean): { nodeId: string; typeUrl: string } {
    const f = delta ? this.f.deltaRequest : this.f.request;
    let nodeId = '';
    let typeUrl = '';
    this.each(buf, 0, buf.length, (fn, a, b) => {
      if (fn === f.typeUrl) typeUrl = this.str(buf, a, b);
      else if (fn === f.node) this.each(buf, a, b, (nfn, x, y) => (nfn === this.f.node.id ? (nodeId = this.str(buf, x, y)) : undefined));
    });
    return { nodeId, typeUrl };
  }
}
