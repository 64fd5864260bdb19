/** What generators produce: named plain-object resources in Envoy's proto shape. */
import type { MeshSnapshot } from '../model/snapshot';
import type { Proxy } from '../model/proxy';
import type { ProtoTypes } from './envoyfilter/proto-json';

/** A JSON-like value in Envoy's proto field spelling (Any as `{'@type': …}`). */
export type ProtoValue = string | number | boolean | null | ProtoObject | ProtoValue[];
export interface ProtoObject {
  [field: string]: ProtoValue | undefined;
}

export interface Resource {
  name: string;
  build: () => ProtoObject;
  /**
   * Every value `build` uses besides the snapshot and proxy it reads through its context (for
   * example the service and DestinationRule a cluster is built from). When given, proxies whose
   * resource of this name was computed from identical inputs share one build, even if they
   * differ in what it took to choose those inputs (their namespace, say). Snapshots are
   * interned, so an input's identity stands for its content.
   */
  inputs?: readonly unknown[];
  /**
   * A large message made of many entries of one repeated field (a RouteConfiguration's virtual
   * hosts): each entry is built, checked and encoded on its own and reused while its own inputs
   * hold, so one changed entry does not rebuild, re-check and re-encode the rest. `build` still
   * returns the whole message (for callers outside the engine).
   */
  composite?: Composite;
  /**
   * Set when EnvoyFilter patches made this resource what it is. If the patched resource fails
   * its checks, the engine serves it without the patches that break it (each EnvoyFilter tried
   * on its own, in order, from `base`) and reports those EnvoyFilters; with no `base` (a
   * resource a patch added) nothing is served.
   */
  patched?: PatchedBy;
}

export interface PatchedBy {
  /** `namespace/name` of the EnvoyFilters whose patches apply, in order. */
  by: readonly string[];
  /** The resource as generated, before any patch. */
  base?: () => ProtoObject;
  /** Each EnvoyFilter's patches on their own, in order. */
  layers?: readonly { by: string; apply: (o: ProtoObject) => ProtoObject }[];
}

export interface CompositeItem {
  /** Unique among the items; with `inputs`, what the item is reused by. */
  key: string;
  inputs?: readonly unknown[];
  build: () => ProtoObject;
}

export interface Composite {
  /** The message without the repeated field. */
  head: () => ProtoObject;
  /** The repeated field: its proto field number and its message type URL. */
  fieldNumber: number;
  itemType: string;
  items: readonly CompositeItem[];
}

export interface GenerateContext {
  snap: MeshSnapshot;
  proxy: Proxy;
  /** Names the proxy asked for; undefined = all (wildcard). */
  names?: ReadonlySet<string>;
  /** Envoy's message types, for EnvoyFilter patch values (the engine passes its own). */
  protos?: ProtoTypes;
}
