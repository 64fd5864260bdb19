/**
 * The push engine: what each proxy gets, per type, for the current snapshot, with work in
 * proportion to what changed.
 *
 * - Generators run against tracked views (incr/views.ts), so every result is stored with exactly
 *   what it read: parts of the snapshot, and facets of the proxy (namespace, labels, …).
 * - A result is reused while those reads give the same values (snapshots are interned, so that
 *   is an identity check), and by every proxy that agrees on the facets read: proxies alike in
 *   what matters share one computed resource set (a proxy class, found rather than declared).
 * - A built resource is encoded, checked against validate.rules and hashed once per content.
 * - A resource that fails its checks keeps its last good version being served.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { type Part, partsFor } from '../generate/parts';
import type { Composite, GenerateContext, PatchedBy, ProtoObject, Resource } from '../generate/types';
import type { Proxy } from '../model/proxy';
import type { MeshSnapshot } from '../model/snapshot';
import { type DepSet, Revision, Tracker } from '../incr/deps';
import { type SlotStats, Slots, type Variant } from '../incr/slots';
import { ProxyFacets, trackedProxy, trackedSnapshot } from '../incr/views';
import { type EncodedResource, PARTS, type RejectedResource, type ResourceChecker } from './cache';
import type { EnvoyProtos, TypeUrl } from './protos';
import { REFERENCED, gate, hasMissingRefs, referencesOf } from './gate';
import { concatRepeated } from './composite';
import { ContentCache } from './content-cache';
import type { RuleViolation } from './validate-rules';

/** The resources of one type a proxy gets now. The same object while nothing in it changed. */
export interface ResourceSet {
  readonly resources: ReadonlyMap<string, EncodedResource>;
  /**
   * The names whose resource differs from `from` (changed, added or removed), when this set
   * replaced `from` for the proxy: a client that has `from` needs only these looked at.
   */
  changed?: { readonly from: ResourceSet; readonly names: readonly string[] };
}

/** The engine's per-proxy state; the server keeps one per connection. */
export interface ProxyHandle {
  readonly proxy: Proxy;
}

/** What the xDS server needs from the config side (go-control-plane's ConfigWatcher idea). */
export interface XdsWatcher {
  /** The version of the config being served; undefined before there is any. */
  version(): string | undefined;
  attach(proxy: Proxy): ProxyHandle;
  /** Whether this proxy gets resources of this type at all. */
  serves(h: ProxyHandle, typeUrl: TypeUrl): boolean;
  /**
   * Every resource of `typeUrl` the proxy gets now. `requested` must not change once passed (a
   * changed subscription is a new set: results are keyed by the set). `requested` (the names subscribed to, or
   * undefined for a wildcard) matters only for types served by name alone (SDS, gateway RDS);
   * callers filter the rest.
   */
  resources(h: ProxyHandle, typeUrl: TypeUrl, requested: ReadonlySet<string> | undefined): ResourceSet;
}

type ItemValue = { bytes: Uint8Array } | { errors: readonly RuleViolation[] };

interface ResourceValue {
  /** What is served: the new build, or the last good one when the new build was rejected. */
  served?: EncodedResource;
  rejected?: RejectedResource;
}

type PartValue = ReadonlyMap<string, EncodedResource>;

class Handle implements ProxyHandle {
  /** By type (and, for types served by name alone, the names asked for). */
  readonly last = new Map<string, { parts: PartValue[]; set: ResourceSet }>();
  /** The part variant this proxy used last, by part key: checked before any lookup. */
  readonly variants = new Map<string, Variant<PartValue>>();
  constructor(
    readonly proxy: Proxy,
    readonly facets: ProxyFacets,
    /** The proxy as generators see it: facet reads recorded. */
    readonly tracked: Proxy,
  ) {}
}

export interface EngineOptions {
  protos: EnvoyProtos;
  checker?: ResourceChecker;
  log?: Logger;
  /**
   * Encoded contents in use are always found again by content; besides those, the most recently
   * made are held, up to this many and this many bytes per cache (resources, virtual hosts), so
   * a content a change brings back is not validated again. Not correctness bounds.
   */
  maxContents?: number;
  maxContentBytes?: number;
  /**
   * Test mode: every result is also computed from scratch by a fresh engine and compared;
   * a difference throws. Slow; for tests and diagnosis.
   */
  checkFromScratch?: boolean;
}

export interface EngineStats {
  parts: SlotStats;
  resources: SlotStats;
  shared: SlotStats;
  items: SlotStats;
  contents: { size: number; encoded: number; reused: number };
  rejected: number;
}

const EMPTY: PartValue = new Map();

/** Bytes of recently made contents held per content cache, in use or not (meshd's --content-cache-bytes). */
export const DEFAULT_CONTENT_BYTES = 16 * 1024 * 1024;

interface MergeNode {
  next: WeakMap<PartValue, MergeNode>;
  map?: PartValue;
}
/** Snapshots between sweeps of unused results; a result unused for that long is dropped. */
const PRUNE_EVERY = 8;

export class ConfigEngine implements XdsWatcher {
  private readonly tracker = new Tracker();
  private readonly parts = new Slots<PartValue>();
  private readonly builds = new Slots<ResourceValue>();
  /** Builds of resources that declare their inputs, shared by every proxy that chose equal inputs. */
  private readonly shared = new Slots<ResourceValue>();
  /** Entries of composite resources (virtual hosts), and their checks by content. */
  private readonly items = new Slots<ItemValue>();
  private readonly checkedItems: ContentCache<ItemValue>;
  private readonly ids = new WeakMap<object, number>();
  private readonly nameKeys = new WeakMap<ReadonlySet<string>, string>();
  /** Merged part values, by the values in order (a trie of weak maps). */
  private readonly merges: MergeNode = { next: new WeakMap() };
  /** Sets whose references all resolve in a referenced set (the publish gate's quick answer). */
  private readonly gateResolved = new WeakMap<PartValue, WeakSet<PartValue>>();
  /** Names that differ between two values of a part (by value pair). */
  private readonly diffs = new WeakMap<PartValue, WeakMap<PartValue, readonly string[]>>();
  /** How a named part's value was made: its names and the resource variants, for the next round. */
  private readonly named = new WeakMap<PartValue, { names: readonly string[]; namesDeps: DepSet; entries: ReadonlyMap<string, Variant<ResourceValue>> }>();
  private nextId = 0;
  private readonly contents: ContentCache<EncodedResource | RejectedResource>;
  private readonly rejections = new Map<string, RejectedResource>();
  private snap?: MeshSnapshot;
  private rev?: Revision;
  private view?: MeshSnapshot;
  private seq = 0;
  /** The snapshot since which a sweep of unused results is due. */
  private pruneDueSince?: number;
  private encoded = 0;
  private reused = 0;

  constructor(private readonly opts: EngineOptions) {
    // Superseded contents (old route tables) must not pile up: beyond the ones in use, only the
    // most recent are held; a dropped one only costs a re-check the next time it is built.
    const bounds = {
      maxEntries: opts.maxContents ?? 200_000,
      maxBytes: opts.maxContentBytes ?? DEFAULT_CONTENT_BYTES,
      sizeOf: (v: object) => ('bytes' in v && v.bytes instanceof Uint8Array ? v.bytes.length : 0) + 64,
    };
    this.contents = new ContentCache<EncodedResource | RejectedResource>(bounds);
    this.checkedItems = new ContentCache<ItemValue>(bounds);
  }

  /**
   * Serves `snap` from now on. Every few snapshots a sweep of results no proxy used for a while
   * falls due; it runs in maintain() (a pass over all of them, so not on every change, and not
   * on a change's path), or here once it has been due for as many snapshots again.
   */
  setSnapshot(snap: MeshSnapshot): void {
    if (snap === this.snap) return;
    this.rev = new Revision(snap, this.snap);
    this.snap = snap;
    this.view = trackedSnapshot(snap, this.tracker);
    this.tracker.snapshot = snap;
    this.seq++;
    // A report of withheld EnvoyFilter patches lasts while those EnvoyFilters do (a changed one
    // rebuilds what it patched, which reports again or clears the report).
    for (const [key, r] of this.rejections) {
      if (r.envoyFilters?.some((ef) => !hasEnvoyFilter(snap, ef))) this.rejections.delete(key);
    }
    // The sweep costs a pass over every kept result (tens of ms at the load-test mesh): it is left
    // to maintain(), which the server calls once a push is done, unless nobody has for a while.
    if (this.seq % PRUNE_EVERY === 0) this.pruneDueSince ??= this.seq;
    if (this.pruneDueSince !== undefined && this.seq - this.pruneDueSince >= PRUNE_EVERY) this.maintain();
  }

  /** Drops results no proxy used for a while, if a sweep is due (off the path of a change). */
  maintain(): void {
    if (this.pruneDueSince === undefined) return;
    this.pruneDueSince = undefined;
    this.tracker.forgetShared();
    this.parts.prune(this.seq - PRUNE_EVERY);
    this.builds.prune(this.seq - PRUNE_EVERY);
    this.shared.prune(this.seq - PRUNE_EVERY);
    this.items.prune(this.seq - PRUNE_EVERY);
  }

  snapshot(): MeshSnapshot | undefined {
    return this.snap;
  }

  version(): string | undefined {
    return this.snap?.version;
  }

  attach(proxy: Proxy): ProxyHandle {
    const facets = new ProxyFacets(proxy);
    return new Handle(proxy, facets, trackedProxy(facets, this.tracker));
  }

  serves(h: ProxyHandle, typeUrl: TypeUrl): boolean {
    return partsFor(h.proxy)[typeUrl] !== undefined;
  }

  resources(ph: ProxyHandle, typeUrl: TypeUrl, requested: ReadonlySet<string> | undefined): ResourceSet {
    const h = ph as Handle;
    const snap = this.snap;
    const parts = partsFor(h.proxy)[typeUrl];
    if (!snap || !this.view || !parts) return { resources: EMPTY };
    const values = parts.map((p) => this.partValue(h, typeUrl, p, requested));
    const lastKey = parts.some((p) => p.kind === 'requested') ? `${typeUrl}|${this.namesKey(requested)}` : typeUrl;
    const last = h.last.get(lastKey);
    if (last && last.parts.length === values.length && last.parts.every((v, i) => v === values[i])) {
      // Reuse is exactly what the check is for: compare the reused set too.
      if (this.opts.checkFromScratch) this.compareWithScratch(h.proxy, typeUrl, requested, last.set);
      return last.set;
    }
    let resources: PartValue = values.length === 1 ? (values[0] ?? EMPTY) : this.merged(values);
    const dep = REFERENCED[typeUrl];
    const gated = dep && this.serves(h, dep);
    if (gated) {
      // Every proxy of a class has the same sets: once a set's references all resolve in the
      // other set, they do for the next proxy too, and there is nothing to replace or report.
      const available = this.resources(h, dep, undefined).resources;
      let resolved = this.gateResolved.get(resources);
      if (!resolved?.has(available)) {
        const before = resources;
        resources = gate(typeUrl, resources, available, last?.set.resources, this.rejections);
        if (resources === before && !hasMissingRefs(before, available)) {
          if (!resolved) this.gateResolved.set(before, (resolved = new WeakSet()));
          resolved.add(available);
        }
      }
    }
    // What changed, per part, is the same for every proxy whose parts moved from one value to
    // the next: computed once per pair and shared.
    const names = last && !gated && last.parts.length === values.length ? values.flatMap((v, i) => this.diff(last.parts[i] as PartValue, v)) : undefined;
    const set: ResourceSet = names && last ? { resources, changed: { from: last.set, names } } : { resources };
    // Only one step is kept: the replaced set forgets its own predecessor, so sets never chain.
    if (last) last.set.changed = undefined;
    h.last.set(lastKey, { parts: values, set });
    if (this.opts.checkFromScratch) this.compareWithScratch(h.proxy, typeUrl, requested, set);
    return set;
  }

  /**
   * A key for a set of subscribed names, equal for equal sets: made once per set object (proxies
   * of a class share their subscription's set), short however many names (a hash of them sorted).
   */
  private namesKey(requested: ReadonlySet<string> | undefined): string {
    if (!requested) return '*';
    let key = this.nameKeys.get(requested);
    if (key === undefined) {
      const hash = createHash('sha1');
      for (const n of [...requested].sort()) hash.update(n).update('\n');
      key = `${requested.size}:${hash.digest('base64')}`;
      this.nameKeys.set(requested, key);
    }
    return key;
  }

  /**
   * The parts' values as one map: the same map for every proxy whose parts have the same values
   * (so what is kept per set, the publish gate's answer and the wire wrappers, is shared too).
   */
  private merged(values: readonly PartValue[]): PartValue {
    let node = this.merges;
    for (const v of values) {
      let next = node.next.get(v);
      if (!next) node.next.set(v, (next = { next: new WeakMap() }));
      node = next;
    }
    // A view, not a copy: a sidecar's clusters are its namespace's outbound ones (shared) and its
    // own inbound ones, so a copy would hold the shared thousand entries again per workload.
    if (!node.map) node.map = new MergedParts(values);
    return node.map;
  }

  private diff(a: PartValue, b: PartValue): readonly string[] {
    if (a === b) return [];
    let byNext = this.diffs.get(a);
    if (!byNext) this.diffs.set(a, (byNext = new WeakMap()));
    let names = byNext.get(b);
    if (!names) {
      const out: string[] = [];
      for (const [n, r] of b) if (a.get(n) !== r) out.push(n);
      for (const n of a.keys()) if (!b.has(n)) out.push(n);
      byNext.set(b, (names = out));
    }
    return names;
  }

  /** Resources that fail their checks now (each keeps its last good version, if it had one). */
  currentRejections(): RejectedResource[] {
    return [...this.rejections.values()];
  }

  stats(): EngineStats {
    return {
      parts: this.parts.stats(),
      resources: this.builds.stats(),
      shared: this.shared.stats(),
      items: this.items.stats(),
      contents: { size: this.contents.size, encoded: this.encoded, reused: this.reused },
      rejected: this.rejections.size,
    };
  }

  private ctx(h: Handle, names?: ReadonlySet<string>): GenerateContext {
    return { snap: this.view as MeshSnapshot, proxy: h.tracked, protos: this.opts.protos, ...(names ? { names } : {}) };
  }

  private partValue(h: Handle, typeUrl: TypeUrl, part: Part, requested: ReadonlySet<string> | undefined): PartValue {
    const key = part.kind === 'requested' ? `${part.id}|${this.namesKey(requested)}` : part.id;
    const mine = h.variants.get(key);
    if (mine && mine.deps.holdsIn(this.rev as Revision)) {
      mine.lastUsed = this.seq;
      return mine.value;
    }
    const v = this.partVariant(h, typeUrl, part, requested);
    h.variants.set(key, v);
    return v.value;
  }

  private partVariant(h: Handle, typeUrl: TypeUrl, part: Part, requested: ReadonlySet<string> | undefined): Variant<PartValue> {
    const snap = this.rev as Revision;
    if (part.kind === 'requested') {
      // A wildcard asks for everything the part has.
      return this.parts.get(`${part.id}|${this.namesKey(requested)}`, h.facets, snap, this.seq, (prev) => {
        const wanted = requested ? [...requested].sort() : undefined;
        return this.tracker.run(() => (wanted?.length === 0 ? EMPTY : this.buildList(h, typeUrl, part.list(this.ctx(h, wanted && new Set(wanted))), prev)));
      });
    }
    if (part.kind === 'list') {
      return this.parts.get(part.id, h.facets, snap, this.seq, (prev) => this.tracker.run(() => this.buildList(h, typeUrl, part.list(this.ctx(h)), prev)));
    }
    return this.parts.get(part.id, h.facets, snap, this.seq, (prev) =>
      this.tracker.run(() => {
        const ctx = this.ctx(h);
        // The variant being replaced had these facet values too: where its list of names and
        // its resources still hold, they are taken as they are, without looking them up again.
        const before = prev ? this.named.get(prev.value) : undefined;
        let names: readonly string[];
        let namesDeps: DepSet;
        if (before && before.namesDeps.holdsIn(snap)) ({ names, namesDeps } = before);
        else ({ value: names, deps: namesDeps } = this.tracker.run(() => [...part.names(ctx)]));
        this.tracker.current?.addGroup(namesDeps);
        const out = new Map<string, EncodedResource>();
        const entries = new Map<string, Variant<ResourceValue>>();
        // Held in the previous snapshot: only entries that read a changed entry of the snapshot
        // (one service's endpoints, say) can differ; the rest are taken without a look.
        const suspects = before ? prev?.deps.groupsToCheck(snap) : undefined;
        for (const name of names) {
          const old = before?.entries.get(name);
          let rv: Variant<ResourceValue> | undefined;
          if (old && suspects !== undefined && !suspects.has(old.deps)) {
            old.deps.markHeld(snap.snap);
            rv = old;
          }
          rv ??=
            old && old.deps.holdsIn(snap)
              ? old
              : this.builds.get(`${part.id}|${name}`, h.facets, snap, this.seq, (prevBuild) => this.tracker.run(() => this.buildOne(h, typeUrl, part.build(ctx, name), prevBuild)));
          rv.lastUsed = this.seq;
          entries.set(name, rv);
          this.tracker.current?.addGroup(rv.deps);
          if (rv.value.served) out.set(name, rv.value.served);
        }
        const value = unchanged(prev?.value, out);
        this.named.set(value, { names, namesDeps, entries });
        return value;
      }),
    );
  }

  /** Builds a whole list in the running frame; a rejected resource keeps its previous bytes. */
  private buildList(h: Handle, typeUrl: TypeUrl, list: Resource[], prev: Variant<PartValue> | undefined): PartValue {
    const out = new Map<string, EncodedResource>();
    for (const r of list) {
      const v = this.encodeResource(h, typeUrl, r, prev?.value.get(r.name));
      if (v.served) out.set(r.name, v.served);
    }
    return unchanged(prev?.value, out);
  }

  private buildOne(h: Handle, typeUrl: TypeUrl, r: Resource | undefined, prev: Variant<ResourceValue> | undefined): ResourceValue {
    if (!r) return {};
    if (r.inputs) {
      const inputs = r.inputs;
      const key = `${typeUrl}|${r.name}|${this.inputsKey(inputs)}`;
      const v = this.shared.get(key, h.facets, this.rev as Revision, this.seq, (prevShared) =>
        this.tracker.run(() => this.buildOne(h, typeUrl, { ...r, inputs: undefined }, prevShared ?? prev)),
      );
      this.tracker.current?.addGroup(v.deps);
      return v.value;
    }
    const v = this.encodeResource(h, typeUrl, r, prev?.value.served);
    // The same bytes as before: keep the previous value object, so the part can tell nothing changed.
    if (prev && v.served === prev.value.served && !v.rejected && !prev.value.rejected) return prev.value;
    return v;
  }

  /** Objects by identity (interned, so identity is content), other values by value. */
  private inputsKey(inputs: readonly unknown[]): string {
    let s = '';
    for (const v of inputs) {
      if (typeof v === 'object' && v !== null) {
        let id = this.ids.get(v);
        if (id === undefined) this.ids.set(v, (id = ++this.nextId));
        s += `#${id}|`;
      } else s += `${typeof v}:${String(v)}|`;
    }
    return s;
  }

  /** Build → encode → hash → (once per content) validate.rules. */
  private encodeResource(h: Handle, typeUrl: TypeUrl, r: Resource, lastGood: EncodedResource | undefined): ResourceValue {
    let entry: EncodedResource | RejectedResource;
    try {
      entry = r.composite ? this.encodeComposite(h, typeUrl, r.name, r.composite) : this.encodeBody(typeUrl, r.name, r.build());
    } catch (err) {
      entry = { name: r.name, typeUrl, errors: [{ path: '', message: `generation failed: ${(err as Error).message}` }] };
    }
    // A resource EnvoyFilters patched is reported under its own key, so a proxy that gets the
    // same resource unpatched does not clear the report.
    const rkey = r.patched ? `${typeUrl}|${r.name}|${r.patched.by.join(',')}` : `${typeUrl}|${r.name}`;
    if ('errors' in entry) {
      if (r.patched) {
        const fb = this.withoutBrokenPatches(typeUrl, r.name, r.patched, entry);
        this.rejections.set(rkey, fb.rejected);
        return { served: fb.served ?? lastGood, rejected: fb.rejected };
      }
      this.rejections.set(rkey, entry);
      return { served: lastGood, rejected: entry };
    }
    this.rejections.delete(rkey);
    return { served: entry };
  }

  /**
   * A patched resource failed its checks: start from the resource as generated and add each
   * EnvoyFilter's patches in turn, keeping those after which it still encodes and passes
   * validate.rules. What is served is the resource with every patch that does not break it; the
   * report names the EnvoyFilters whose patches were withheld.
   */
  private withoutBrokenPatches(typeUrl: TypeUrl, name: string, p: PatchedBy, failed: RejectedResource): { served?: EncodedResource; rejected: RejectedResource } {
    const outcome = p.base ? 'patch withheld, the resource is served without it' : 'the resource it adds is not served';
    const tag = (by: string, errors: readonly RuleViolation[]): RuleViolation[] => errors.map((e) => ({ ...e, message: `EnvoyFilter ${by}: ${e.message}; ${outcome}` }));
    const whole = p.by.join(', ');
    const rejected = (errors: readonly RuleViolation[]): RejectedResource => ({ name, typeUrl, errors, envoyFilters: p.by });
    if (!p.base) {
      const r = rejected(tag(whole, failed.errors));
      this.opts.log?.warn({ resource: name, typeUrl, envoyFilters: p.by }, `EnvoyFilter ${whole}: ${name} not served: ${r.errors.map((e) => e.message).join('; ')}`);
      return { rejected: r };
    }
    let current: ProtoObject;
    let good: EncodedResource | RejectedResource;
    try {
      current = p.base();
      good = this.encodeBody(typeUrl, name, current);
    } catch (err) {
      good = { name, typeUrl, errors: [{ path: '', message: `generation failed: ${(err as Error).message}` }] };
      current = {};
    }
    // Broken before any patch: not the EnvoyFilters' doing.
    if ('errors' in good) return { rejected: good };
    const errors: RuleViolation[] = [];
    for (const layer of p.layers ?? []) {
      let next: ProtoObject;
      try {
        next = layer.apply(current);
      } catch (err) {
        errors.push(...tag(layer.by, [{ path: '', message: `patch failed: ${(err as Error).message}` }]));
        continue;
      }
      const enc = this.encodeBody(typeUrl, name, next);
      if ('errors' in enc) {
        errors.push(...tag(layer.by, enc.errors));
        continue;
      }
      current = next;
      good = enc;
    }
    if (errors.length === 0) errors.push(...tag(whole, failed.errors));
    const out = rejected(errors);
    this.opts.log?.warn({ resource: name, typeUrl, envoyFilters: p.by }, `EnvoyFilter patches withheld from ${name}: ${errors.map((e) => e.message).join('; ')}`);
    return { served: good, rejected: out };
  }

  /**
   * Head and items encoded apart and joined as bytes. Each item is built in its own tracked
   * frame and kept by (resource, item key, inputs) and the proxy facets it read, so an unchanged
   * item costs a lookup; items are checked once per content.
   */
  private encodeComposite(h: Handle, typeUrl: TypeUrl, name: string, c: Composite): EncodedResource | RejectedResource {
    const head = this.encodeBody(typeUrl, name, c.head());
    if ('errors' in head) return head;
    const parts: Uint8Array[] = [];
    for (const item of c.items) {
      const key = `${typeUrl}|${name}|${item.key}|${item.inputs ? this.inputsKey(item.inputs) : ''}`;
      const v = this.items.get(key, h.facets, this.rev as Revision, this.seq, () => this.tracker.run(() => this.encodeItem(c.itemType, item.build())));
      this.tracker.current?.addGroup(v.deps);
      if ('errors' in v.value) return { name, typeUrl, errors: v.value.errors.map((e) => ({ ...e, path: `${item.key}${e.path ? `.${e.path}` : ''}` })) };
      parts.push(v.value.bytes);
    }
    const bytes = concatRepeated(head.bytes, c.fieldNumber, parts);
    const hash = createHash('sha1').update(bytes).digest('hex');
    return this.remember(this.contents, `${typeUrl}|${hash}`, () => ({ name, bytes, hash }));
  }

  private encodeItem(itemType: string, body: object): ItemValue {
    return this.encodeChecked(
      itemType,
      body,
      this.checkedItems,
      (bytes, _hash, errors) => (errors.length > 0 ? { errors } : { bytes }),
      (message) => ({ errors: [{ path: '', message }] }),
    );
  }

  private encodeBody(typeUrl: TypeUrl, name: string, body: object): EncodedResource | RejectedResource {
    return this.encodeChecked(
      typeUrl,
      body,
      this.contents,
      (bytes, hash, errors) => {
        if (errors.length > 0) return { name, typeUrl, errors };
        const refs = referencesOf(typeUrl, body);
        return { name, bytes, hash, ...(refs ? { refs } : {}) };
      },
      (message) => ({ name, typeUrl, errors: [{ path: '', message }] }),
    );
  }

  /** Encode → hash → (once per content, kept in `cache`) check against validate.rules. */
  private encodeChecked<V extends object>(
    type: string,
    body: object,
    cache: ContentCache<V>,
    make: (bytes: Uint8Array, hash: string, errors: readonly RuleViolation[]) => V,
    failed: (message: string) => V,
  ): V {
    let bytes: Uint8Array;
    try {
      bytes = this.opts.protos.encode(type, body);
    } catch (err) {
      return failed(`encoding failed: ${(err as Error).message}`);
    }
    const hash = createHash('sha1').update(bytes).digest('hex');
    return this.remember(cache, `${type}|${hash}`, () => make(bytes, hash, this.opts.checker?.validate(type, body) ?? []));
  }

  /** One entry per content key: the first computes it, the rest reuse it (and are counted). */
  private remember<V extends object>(cache: ContentCache<V>, key: string, compute: () => V): V {
    const known = cache.get(key);
    if (known) {
      this.reused++;
      return known;
    }
    this.encoded++;
    const v = compute();
    cache.set(key, v);
    return v;
  }

  private compareWithScratch(proxy: Proxy, typeUrl: TypeUrl, requested: ReadonlySet<string> | undefined, set: ResourceSet): void {
    const fresh = new ConfigEngine({ ...this.opts, checkFromScratch: false });
    fresh.setSnapshot(this.snap as MeshSnapshot);
    const want = fresh.resources(fresh.attach(proxy), typeUrl, requested).resources;
    const got = set.resources;
    const diff: string[] = [];
    for (const [n, r] of want) if (got.get(n)?.hash !== r.hash) diff.push(got.has(n) ? `changed ${n}` : `missing ${n}`);
    for (const n of got.keys()) if (!want.has(n)) diff.push(`extra ${n}`);
    if (diff.length > 0) throw new Error(`incremental result differs from a fresh build for ${proxy.id} ${typeUrl}: ${diff.slice(0, 10).join(', ')}`);
  }
}

function hasEnvoyFilter(snap: MeshSnapshot, key: string): boolean {
  const slash = key.indexOf('/');
  return (snap.envoyFilters.get(key.slice(0, slash)) ?? []).some((f) => f.key === key);
}

/**
 * Part values read as one map without copying them: what a map filled with each part in turn
 * would hold (a later part's entry wins a name; the order is that of the first part that has it).
 */
export class MergedParts implements ReadonlyMap<string, EncodedResource> {
  private readonly parts: readonly PartValue[];
  readonly size: number;
  /** Whether some name is in more than one part (then a later part's entry wins it). */
  private readonly overlap: boolean;

  constructor(values: readonly PartValue[]) {
    this.parts = Object.freeze([...values]);
    let size = 0;
    for (let i = 0; i < values.length; i++) for (const n of (values[i] as PartValue).keys()) if (!this.inEarlier(n, i)) size++;
    this.size = size;
    this.overlap = size !== values.reduce((s, v) => s + v.size, 0);
  }

  /** The parts, when no name is in two of them (so the set is each part in turn). */
  get [PARTS](): readonly PartValue[] | undefined {
    return this.overlap ? undefined : this.parts;
  }

  private inEarlier(name: string, i: number): boolean {
    for (let j = 0; j < i; j++) if ((this.parts[j] as PartValue).has(name)) return true;
    return false;
  }

  get(name: string): EncodedResource | undefined {
    for (let i = this.parts.length - 1; i >= 0; i--) {
      const r = (this.parts[i] as PartValue).get(name);
      if (r !== undefined) return r;
    }
    return undefined;
  }

  has(name: string): boolean {
    return this.parts.some((v) => v.has(name));
  }

  *entries(): MapIterator<[string, EncodedResource]> {
    if (!this.overlap) {
      for (const v of this.parts) yield* v.entries();
      return;
    }
    for (let i = 0; i < this.parts.length; i++) {
      for (const n of (this.parts[i] as PartValue).keys()) if (!this.inEarlier(n, i)) yield [n, this.get(n) as EncodedResource];
    }
  }

  *keys(): MapIterator<string> {
    if (!this.overlap) {
      for (const v of this.parts) yield* v.keys();
      return;
    }
    for (const [n] of this.entries()) yield n;
  }

  *values(): MapIterator<EncodedResource> {
    if (!this.overlap) {
      for (const v of this.parts) yield* v.values();
      return;
    }
    for (const [, r] of this.entries()) yield r;
  }

  [Symbol.iterator](): MapIterator<[string, EncodedResource]> {
    return this.entries();
  }

  forEach(fn: (value: EncodedResource, key: string, map: ReadonlyMap<string, EncodedResource>) => void, thisArg?: unknown): void {
    for (const [n, r] of this.entries()) fn.call(thisArg, r, n, this);
  }
}

/** `next`, or `prev` when it holds exactly the same entries (so identity says "unchanged"). */
function unchanged(prev: PartValue | undefined, next: Map<string, EncodedResource>): PartValue {
  if (!prev || prev.size !== next.size) return next;
  for (const [n, r] of next) if (prev.get(n) !== r) return next;
  return prev;
}
