/**
 * EnvoyFilter patches applied where resources are built: wrappers around the parts' generators
 * (parts.ts), as istiod applies them after building each kind (listeners per patch context,
 * clusters as they are built plus the ADDed ones, route configurations). A proxy no EnvoyFilter
 * applies to gets the generators' resources untouched (and keeps sharing them); a patched
 * resource carries its unpatched build and each EnvoyFilter's patches on their own, so the
 * engine can serve it without the ones that break it.
 */
import type { EnvoyFilterContext } from '../../model/objects-envoyfilter';
import type { GenerateContext, ProtoObject, Resource } from '../types';
import { ClusterPatcher } from './cluster';
import { LISTENER_CLASS, ListenerPatcher } from './listener';
import { ROUTE_CLASS, RoutePatcher } from './route';
import { type PatchRef, PatchValues, type ProxyPatches, ofType, proxyPatches } from './select';

type ListFn = (ctx: GenerateContext) => Resource[];

interface Group {
  by: string;
  refs: PatchRef[];
}

function groups(pp: ProxyPatches, refs: readonly PatchRef[]): Group[] {
  return pp.filters.map((f) => ({ by: f.filter.key, refs: refs.filter((r) => r.filter === f.filter) })).filter((g) => g.refs.length > 0);
}

function once(fn: () => ProtoObject): () => ProtoObject {
  let v: ProtoObject | undefined;
  return () => (v ??= fn());
}

/** A resource with patches: the full application, and each EnvoyFilter's on its own for the engine's fallback. */
function patchedResource(r: Resource, gs: readonly Group[], apply: (refs: readonly PatchRef[], o: ProtoObject) => ProtoObject): Resource {
  const base = once(r.build);
  const all = gs.flatMap((g) => g.refs);
  return {
    name: r.name,
    build: () => apply(all, base()),
    ...(r.inputs ? { inputs: [...r.inputs, ...all.map((x) => x.patch)] } : {}),
    patched: { by: gs.map((g) => g.by), base, layers: gs.map((g) => ({ by: g.by, apply: (o: ProtoObject) => apply(g.refs, o) })) },
  };
}

/** Resources an ADD patch makes: named by the value's `name`, served only if valid. */
function addedResources(refs: readonly PatchRef[], pv: PatchValues, want: (name: string) => boolean): Resource[] {
  const out: Resource[] = [];
  for (const ref of refs) {
    const name = ref.patch.value?.['name'];
    if (typeof name !== 'string' || name === '' || !want(name)) continue;
    out.push({ name, build: () => pv.value(ref), patched: { by: [ref.filter.key] } });
  }
  return out;
}

function setup(ctx: GenerateContext, classes: Parameters<typeof ofType>[1], pctx: EnvoyFilterContext): { pp: ProxyPatches; refs: PatchRef[]; pv: PatchValues } | undefined {
  if (!ctx.protos) return undefined;
  const pp = proxyPatches(ctx);
  if (!pp) return undefined;
  const refs = ofType(pp, classes, pctx);
  if (refs.length === 0) return undefined;
  return { pp, refs, pv: new PatchValues(ctx.protos, ctx) };
}

/** Listeners of one patch context with their EnvoyFilter patches, REMOVEd ones left out, ADDed ones appended. */
export function withListenerPatches(pctx: EnvoyFilterContext, list: ListFn): ListFn {
  return (ctx) => {
    const resources = list(ctx);
    const s = setup(ctx, LISTENER_CLASS, pctx);
    if (!s) return resources;
    const patcher = new ListenerPatcher(s.pv, pctx, s.refs);
    const gs = groups(s.pp, s.refs);
    const out: Resource[] = [];
    for (const r of resources) {
      const built = once(r.build);
      // A REMOVE matches the listener's name and port: the listener is built to know them.
      if (patcher.removes(built())) continue;
      out.push(patchedResource({ ...r, build: built }, gs, (refs, o) => new ListenerPatcher(s.pv, pctx, refs).patch(o)));
    }
    const have = new Set(out.map((r) => r.name));
    out.push(...addedResources(patcher.added(), s.pv, (n) => !have.has(n) && (!ctx.names || ctx.names.has(n))));
    return out;
  };
}

function clusterPatched(r: Resource, s: { pp: ProxyPatches; pv: PatchValues }, patcher: ClusterPatcher, pctx: EnvoyFilterContext): Resource | undefined {
  if (patcher.removes(r.name)) return undefined;
  if (!patcher.touches(r.name)) return r;
  const refs = ofType(s.pp, ['CLUSTER'], pctx).filter((cp) => cp.patch.operation === 'MERGE');
  return patchedResource(r, groups(s.pp, refs), (refs2, o) => new ClusterPatcher(s.pv, pctx, refs2).merge(o));
}

/** A list of clusters patched, each in the context its name says; `adds`: the context whose ADDed clusters join this list. */
export function withClusterListPatches(contextOf: (ctx: GenerateContext, name: string) => EnvoyFilterContext, adds: EnvoyFilterContext | undefined, list: ListFn): ListFn {
  return (ctx) => {
    const resources = list(ctx);
    if (!ctx.protos) return resources;
    const pp = proxyPatches(ctx);
    if (!pp) return resources;
    const pv = new PatchValues(ctx.protos, ctx);
    const patchers = new Map<EnvoyFilterContext, ClusterPatcher>();
    const patcherFor = (pctx: EnvoyFilterContext): ClusterPatcher => {
      let p = patchers.get(pctx);
      if (!p) patchers.set(pctx, (p = new ClusterPatcher(pv, pctx, ofType(pp, ['CLUSTER'], pctx))));
      return p;
    };
    const out: Resource[] = [];
    for (const r of resources) {
      const pctx = contextOf(ctx, r.name);
      const p = clusterPatched(r, { pp, pv }, patcherFor(pctx), pctx);
      if (p) out.push(p);
    }
    if (adds) {
      const have = new Set(out.map((r) => r.name));
      out.push(...addedResources(patcherFor(adds).added(), pv, (n) => !have.has(n) && (!ctx.names || ctx.names.has(n))));
    }
    return out;
  };
}

/** Outbound clusters built by name, patched in `pctx`, with the ADDed clusters among the names. */
export function withNamedClusterPatches(
  pctx: EnvoyFilterContext,
  part: { names: (ctx: GenerateContext) => Iterable<string>; build: (ctx: GenerateContext, name: string) => Resource | undefined },
): { names: (ctx: GenerateContext) => Iterable<string>; build: (ctx: GenerateContext, name: string) => Resource | undefined } {
  const added = (ctx: GenerateContext): Resource[] => {
    const s = setup(ctx, ['CLUSTER'], pctx);
    return s ? addedResources(new ClusterPatcher(s.pv, pctx, s.refs).added(), s.pv, () => true) : [];
  };
  return {
    names: (ctx) => {
      const base = [...part.names(ctx)];
      const have = new Set(base);
      return [
        ...base,
        ...added(ctx)
          .map((r) => r.name)
          .filter((n) => !have.has(n)),
      ];
    },
    build: (ctx, name) => {
      const r = part.build(ctx, name);
      const s = setup(ctx, ['CLUSTER'], pctx);
      if (!s) return r;
      if (!r) return added(ctx).find((a) => a.name === name);
      return clusterPatched(r, s, new ClusterPatcher(s.pv, pctx, s.refs), pctx);
    },
  };
}

function routePatched(ctx: GenerateContext, r: Resource, pctx: EnvoyFilterContext): Resource {
  const s = setup(ctx, ROUTE_CLASS, pctx);
  if (!s) return r;
  const patcher = new RoutePatcher(s.pv, pctx, s.refs);
  if (!patcher.touches(r.name)) return r;
  // Patched as a whole: the entry-by-entry composite encoding does not apply.
  const whole: Resource = { name: r.name, build: r.build, ...(r.inputs ? { inputs: r.inputs } : {}) };
  return patchedResource(whole, groups(s.pp, s.refs), (refs, o) => new RoutePatcher(s.pv, pctx, refs).patch(o));
}

export function withNamedRoutePatches(
  pctx: EnvoyFilterContext,
  build: (ctx: GenerateContext, name: string) => Resource | undefined,
): (ctx: GenerateContext, name: string) => Resource | undefined {
  return (ctx, name) => {
    const r = build(ctx, name);
    return r ? routePatched(ctx, r, pctx) : r;
  };
}

export function withRouteListPatches(pctx: EnvoyFilterContext, list: ListFn): ListFn {
  return (ctx) => list(ctx).map((r) => routePatched(ctx, r, pctx));
}

/**
 * ECDS: the TypedExtensionConfigs EnvoyFilter EXTENSION_CONFIG patches ADD (the only operation
 * istiod applies there, with no match beyond the EnvoyFilter's selection of the proxy), served
 * by name when the proxy asks for them, after the WasmPlugins' (which win a name both give).
 */
export function withExtensionConfigPatches(list: ListFn): ListFn {
  return (ctx) => {
    const base = list(ctx);
    if (!ctx.protos) return base;
    const pp = proxyPatches(ctx);
    if (!pp) return base;
    const refs = pp.all.filter((r) => r.patch.applyTo === 'EXTENSION_CONFIG' && r.patch.operation === 'ADD');
    if (refs.length === 0) return base;
    const have = new Set(base.map((r) => r.name));
    const want = (name: string): boolean => !have.has(name) && (ctx.names === undefined || ctx.names.has(name));
    return [...base, ...addedResources(refs, new PatchValues(ctx.protos, ctx), want)];
  };
}
