/**
 * Responses are serialised by joining bytes: each resource's `Any` (and, for delta, its
 * `Resource` wrapper) is encoded once per encoded resource and kept with it, so a push to many
 * proxies copies bytes instead of re-encoding the same messages through protobufjs for each.
 * The message objects stay ordinary objects (tests and logs read them); the bytes ride along
 * under a symbol the serialiser looks for.
 */
import { LRUCache } from 'lru-cache';
import * as protobuf from 'protobufjs';
import { type EncodedResource, PARTS } from './cache';

export const RAW = Symbol('raw protobuf bytes');

/**
 * A message's encoding as pieces to be written one after another: a wrapper holds its own few
 * bytes and the resource's bytes as they are, never a copy of them.
 */
export type Chunks = readonly Uint8Array[];

export interface AnyMsg {
  type_url: string;
  value: Uint8Array;
  [RAW]?: Chunks;
}

export interface DeltaResourceMsg {
  name: string;
  version: string;
  resource: AnyMsg;
  [RAW]?: Chunks;
}

/** envoy.config.core.v3.ControlPlane, with its bytes made once. */
export interface ControlPlaneMsg {
  identifier: string;
  [RAW]?: Chunks;
}

export function controlPlaneMsg(identifier: string): ControlPlaneMsg {
  const m: ControlPlaneMsg = { identifier };
  // ControlPlane: identifier = 1.
  const w = new Writer();
  w.addString(1, identifier);
  Object.defineProperty(m, RAW, { value: [w.finish()], enumerable: false });
  return m;
}

/** A whole set's resources and wrappers, in order. */
export interface Whole {
  readonly resources: readonly EncodedResource[];
  readonly anys: readonly AnyMsg[];
  /** When `resources` is these kept lists one after another (a set read from parts). */
  readonly lists?: readonly (readonly EncodedResource[])[];
}

/** The wrappers of encoded resources, made once per resource and type. */
export class WireCache {
  // Per type: equal bytes of two types would otherwise share one wrapper.
  private readonly anys = new Map<string, WeakMap<EncodedResource, AnyMsg>>();
  private readonly deltas = new Map<string, WeakMap<EncodedResource, DeltaResourceMsg>>();

  private of<K extends object, V>(m: Map<string, WeakMap<K, V>>, typeUrl: string): WeakMap<K, V> {
    let w = m.get(typeUrl);
    if (!w) m.set(typeUrl, (w = new WeakMap()));
    return w;
  }

  private readonly wholes = new Map<string, WeakMap<ReadonlyMap<string, EncodedResource>, Whole>>();

  /**
   * Every resource of a set, and their wrappers, in the set's order: made once per set and type.
   * A set read from parts (a sidecar's clusters: its namespace's outbound ones and its own inbound
   * ones) is made of its parts' lists, which are kept and shared; its own lists are made when
   * asked for and not kept, so they are not held again per workload.
   */
  whole(set: ReadonlyMap<string, EncodedResource>, typeUrl: string): Whole {
    const wholes = this.of(this.wholes, typeUrl);
    let w = wholes.get(set);
    const parts = w ? undefined : (set as { [PARTS]?: readonly ReadonlyMap<string, EncodedResource>[] })[PARTS];
    if (parts && parts.length > 1) {
      const of = parts.map((p) => this.whole(p, typeUrl));
      const [first, ...rest] = of as [Whole, ...Whole[]];
      return { resources: first.resources.concat(...rest.map((x) => x.resources)), anys: first.anys.concat(...rest.map((x) => x.anys)), lists: of.map((x) => x.resources) };
    }
    if (!w) {
      const resources = Object.freeze([...set.values()]);
      w = { resources, anys: Object.freeze(resources.map((r) => this.any(r, typeUrl))) };
      wholes.set(set, w);
    }
    return w;
  }

  any(r: EncodedResource, typeUrl: string): AnyMsg {
    const anys = this.of(this.anys, typeUrl);
    let a = anys.get(r);
    if (!a) {
      a = { type_url: typeUrl, value: r.bytes };
      // google.protobuf.Any: type_url = 1, value = 2; the value's bytes are the resource's own.
      const w = new Writer();
      w.addString(1, typeUrl);
      w.head(2, r.bytes.length);
      Object.defineProperty(a, RAW, { value: [w.finish(), r.bytes], enumerable: false });
      anys.set(r, a);
    }
    return a;
  }

  delta(r: EncodedResource, typeUrl: string): DeltaResourceMsg {
    const deltas = this.of(this.deltas, typeUrl);
    let d = deltas.get(r);
    if (!d) {
      const resource = this.any(r, typeUrl);
      d = { name: r.name, version: r.hash, resource };
      // envoy.service.discovery.v3.Resource: version = 1, resource = 2, name = 3.
      const anyChunks = resource[RAW] as Chunks;
      const head = new Writer();
      head.addString(1, r.hash);
      head.head(2, chunksLength(anyChunks));
      const tail = new Writer();
      tail.addString(3, r.name);
      Object.defineProperty(d, RAW, { value: [head.finish(), ...anyChunks, tail.finish()], enumerable: false });
      deltas.set(r, d);
    }
    return d;
  }
}

function chunksLength(chunks: Chunks): number {
  let n = 0;
  for (const c of chunks) n += c.length;
  return n;
}

function varintSize(n: number): number {
  let size = 1;
  for (let v = n; v > 0x7f; v = Math.floor(v / 128)) size++;
  return size;
}

/**
 * Builds a message from (field, bytes) entries into one buffer, sized first: one allocation and
 * one copy per entry, however many resources a response carries.
 */
export class Writer {
  /** Field 0: bytes written as they are (an already encoded message head). */
  private readonly entries: [number, Uint8Array | Chunks | number][] = [];
  private size = 0;

  raw(bytes: Uint8Array): void {
    this.entries.push([0, bytes]);
    this.size += bytes.length;
  }

  /** A length-delimited field: its bytes, or a message as chunks. */
  add(field: number, bytes: Uint8Array | Chunks | undefined): void {
    if (bytes === undefined) return;
    const length = bytes instanceof Uint8Array ? bytes.length : chunksLength(bytes);
    this.entries.push([field, bytes]);
    this.size += varintSize((field << 3) | 2) + varintSize(length) + length;
  }

  /** Only the tag and length of a length-delimited field whose `length` bytes are written elsewhere, next. */
  head(field: number, length: number): void {
    this.entries.push([field, length]);
    this.size += varintSize((field << 3) | 2) + varintSize(length);
  }

  addString(field: number, s: string): void {
    if (s !== '') this.add(field, Buffer.from(s, 'utf8'));
  }

  finish(scratch?: Scratch): Buffer {
    const out = scratch ? scratch.take(this.size) : Buffer.allocUnsafe(this.size);
    let at = 0;
    const putVarint = (n: number): void => {
      let v = n;
      while (v > 0x7f) {
        out[at++] = (v & 0x7f) | 0x80;
        v = Math.floor(v / 128);
      }
      out[at++] = v;
    };
    for (const [field, bytes] of this.entries) {
      if (typeof bytes === 'number') {
        putVarint((field << 3) | 2);
        putVarint(bytes);
        continue;
      }
      if (bytes instanceof Uint8Array) {
        if (field !== 0) {
          putVarint((field << 3) | 2);
          putVarint(bytes.length);
        }
        out.set(bytes, at);
        at += bytes.length;
        continue;
      }
      if (field !== 0) {
        putVarint((field << 3) | 2);
        putVarint(chunksLength(bytes));
      }
      for (const c of bytes) {
        out.set(c, at);
        at += c.length;
      }
    }
    return out;
  }
}

/**
 * One reusable buffer for serialised responses. grpc-js copies a serialised message into its own
 * framed buffer at once (`serializeMessage`), before the serialiser runs again, so one scratch
 * buffer per method serves every response: no fresh megabytes per proxy for the collector.
 */
export class Scratch {
  private buf = Buffer.allocUnsafe(0);

  take(size: number): Buffer {
    if (this.buf.length < size) this.buf = Buffer.allocUnsafe(Math.max(size, this.buf.length * 2));
    return this.buf.subarray(0, size);
  }
}

/**
 * A (Delta)DiscoveryResponse, when every resource carries its bytes (else undefined): both put
 * the version in field 1, the resources in 2, the type in 4, the nonce in 5; delta adds removed
 * names in 6.
 */
function responseBytes(
  version: string,
  resources: readonly { [RAW]?: Chunks }[],
  typeUrl: string,
  nonce: string,
  removed: readonly string[],
  controlPlane: { field: number; msg: ControlPlaneMsg | undefined },
  scratch?: Scratch,
): Buffer | undefined {
  const w = new Writer();
  w.addString(1, version);
  for (const r of resources) {
    const raw = r[RAW];
    if (!raw) return undefined;
    w.add(2, raw);
  }
  w.addString(4, typeUrl);
  w.addString(5, nonce);
  for (const n of removed) w.add(6, Buffer.from(n, 'utf8'));
  if (controlPlane.msg) {
    const raw = controlPlane.msg[RAW];
    if (!raw) return undefined;
    w.add(controlPlane.field, raw);
  }
  return w.finish(scratch);
}

export function sotwBytes(
  m: { version_info: string; resources: readonly AnyMsg[]; type_url: string; nonce: string; control_plane?: ControlPlaneMsg },
  scratch?: Scratch,
): Buffer | undefined {
  // DiscoveryResponse.control_plane = 6.
  return responseBytes(m.version_info, m.resources, m.type_url, m.nonce, [], { field: 6, msg: m.control_plane }, scratch);
}

export function deltaBytes(
  m: {
    system_version_info: string;
    resources: readonly DeltaResourceMsg[];
    type_url: string;
    removed_resources: readonly string[];
    nonce: string;
    control_plane?: ControlPlaneMsg;
  },
  scratch?: Scratch,
): Buffer | undefined {
  // DeltaDiscoveryResponse.control_plane = 7.
  return responseBytes(m.system_version_info, m.resources, m.type_url, m.nonce, m.removed_resources, { field: 7, msg: m.control_plane }, scratch);
}

/** A decoded name list with the bytes it was decoded from. */
interface NameList {
  readonly raw: Buffer;
  readonly names: readonly string[];
}

/** Bytes sampled for a list's fingerprint: enough to tell most lists apart without reading them. */
const SAMPLES = 32;

/**
 * DiscoveryRequest decoding with shared name lists. Envoy repeats its whole subscription in every
 * ACK (thousands of EDS cluster names), and proxies alike subscribe alike: the names are decoded
 * once per distinct list and the same frozen array is handed out again, so the server sees an
 * unchanged subscription by identity. A list is found by its length and a few sampled bytes, then
 * confirmed by comparing its bytes (a memcmp, several times cheaper than hashing them).
 */
export class RequestDecoder {
  private readonly lists: LRUCache<string, NameList[]>;
  private readonly node: protobuf.Type;
  private readonly status: protobuf.Type;

  constructor(root: protobuf.Root, maxListBytes = 64 * 1024 * 1024) {
    this.node = root.lookupType('envoy.config.core.v3.Node');
    this.status = root.lookupType('google.rpc.Status');
    this.lists = new LRUCache<string, NameList[]>({ maxSize: maxListBytes, sizeCalculation: (ls) => ls.reduce((n, l) => n + 2 * l.raw.length + 64, 1) });
  }

  decode(buf: Uint8Array): Record<string, unknown> {
    const r = protobuf.Reader.create(buf);
    const out: Record<string, unknown> = {};
    // The resource_names entries as one span of the request, while they are adjacent (they are, from every known client).
    let spanStart = -1;
    let spanEnd = -1;
    let adjacent = true;
    while (r.pos < r.len) {
      const at = r.pos;
      const tag = r.uint32();
      switch (tag >>> 3) {
        case 1:
          out.version_info = r.string();
          break;
        case 2:
          out.node = this.node.decode(r, r.uint32());
          break;
        case 3: {
          // Only where the names are: they are looked at (and decoded) once the request is read.
          r.skip(r.uint32());
          if (spanStart < 0) spanStart = at;
          else if (spanEnd !== at) adjacent = false;
          spanEnd = r.pos;
          break;
        }
        case 4:
          out.type_url = r.string();
          break;
        case 5:
          out.response_nonce = r.string();
          break;
        case 6:
          out.error_detail = this.status.decode(r, r.uint32());
          break;
        default:
          r.skipType(tag & 7);
      }
    }
    if (spanStart < 0) out.resource_names = [];
    // A run of resource_names entries, as sent: the key their decoded list is shared by.
    else out.resource_names = this.names(adjacent ? buf.subarray(spanStart, spanEnd) : nameRun(buf));
    return out;
  }

  private names(run: Uint8Array): readonly string[] {
    const raw = Buffer.from(run.buffer, run.byteOffset, run.byteLength);
    const key = fingerprint(raw);
    const candidates = this.lists.get(key);
    const found = candidates?.find((l) => l.raw.equals(raw));
    if (found) return found.names;
    const names = Object.freeze(nameSlices(raw).map((s) => Buffer.from(s.buffer, s.byteOffset, s.byteLength).toString('utf8')));
    // A copy: the request's own buffer is not kept alive by the list.
    const list: NameList = { raw: Buffer.from(raw), names };
    this.lists.set(key, candidates ? [...candidates, list] : [list]);
    return names;
  }
}

/** The resource_names entries of a request whose names are split by other fields, joined into one run. */
function nameRun(buf: Uint8Array): Buffer {
  const r = protobuf.Reader.create(buf);
  const entries: Uint8Array[] = [];
  while (r.pos < r.len) {
    const at = r.pos;
    const tag = r.uint32();
    if (tag >>> 3 === 3 && (tag & 7) === 2) {
      r.skip(r.uint32());
      entries.push(buf.subarray(at, r.pos));
    } else r.skipType(tag & 7);
  }
  return Buffer.concat(entries);
}

/** The names in a run of resource_names (field 3) entries. */
function nameSlices(buf: Uint8Array): Uint8Array[] {
  const r = protobuf.Reader.create(buf);
  const out: Uint8Array[] = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 3 && (tag & 7) === 2) {
      const len = r.uint32();
      out.push(buf.subarray(r.pos, r.pos + len));
      r.skip(len);
    } else r.skipType(tag & 7);
  }
  return out;
}

function fingerprint(raw: Buffer): string {
  let s = `${raw.length}:`;
  if (raw.length <= SAMPLES) return s + raw.toString('latin1');
  const step = raw.length / SAMPLES;
  for (let i = 0; i < SAMPLES; i++) s += String.fromCharCode(raw[Math.floor(i * step)] as number);
  // The tail, where lists of one length that share a prefix most often differ.
  return s + raw.subarray(raw.length - 8).toString('latin1');
}
