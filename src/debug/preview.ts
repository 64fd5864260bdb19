/**
 * What a config change would do, before it is applied (`meshctl x preview`): the change is laid
 * over a copy of the current objects, a snapshot is built from them, and every connected proxy's
 * subscribed resources are generated from it by a scratch engine and compared with what the live
 * engine serves now. Proxies whose differences are the same form one class in the report. Nothing
 * of the live state changes; the work yields to the event loop between proxies.
 */
import type { ConfigError, ConfigObject } from '../model/objects';
import type { MeshSnapshot } from '../model/snapshot';
import type { EncodedResource } from '../xds/cache';
import type { Connection } from '../xds/connection';
import { ConfigEngine, type EngineOptions, type ProxyHandle } from '../xds/engine';
import { PUSH_ORDER, SHORT_TYPE, type TypeUrl } from '../xds/protos';

export type PreviewMode = 'apply' | 'delete';

/** `Kind/namespace/name` (cluster-scoped: `Kind/name`). */
export function objectKey(o: Pick<ConfigObject, 'kind' | 'metadata'>): string {
  return o.metadata.namespace ? `${o.kind}/${o.metadata.namespace}/${o.metadata.name}` : `${o.kind}/${o.metadata.name}`;
}

/** The objects after the change: `apply` replaces objects with the same key and adds the rest; `delete` removes them. */
export function applyChange(current: readonly ConfigObject[], change: readonly ConfigObject[], mode: PreviewMode): { objects: ConfigObject[]; missing: string[] } {
  const keys = new Set(change.map(objectKey));
  const have = new Set(current.map(objectKey));
  const kept = current.filter((o) => !keys.has(objectKey(o)));
  const missing = mode === 'delete' ? [...keys].filter((k) => !have.has(k)) : [];
  return { objects: mode === 'apply' ? [...kept, ...change] : kept, missing };
}

export interface TypeDiff {
  added: string[];
  removed: string[];
  changed: string[];
}

export interface PreviewClass {
  /** How many connected proxies get exactly these differences. */
  proxies: number;
  /** Up to five of their node IDs. */
  examples: string[];
  proxyType: string;
  /** Per type (CDS, LDS, RDS, EDS, SDS): what a push would carry; types without a difference are left out. */
  changes: Record<string, TypeDiff>;
}

export interface PreviewReport {
  mode: PreviewMode;
  fromVersion: string;
  /** Problems of the change itself (objects that would be refused), and `delete` of objects that do not exist. */
  changeErrors: ConfigError[];
  missing: string[];
  /** Config errors the change would add (objects the whole mesh would then leave out). */
  newErrors: ConfigError[];
  /** Config errors the change would clear. */
  clearedErrors: ConfigError[];
  proxies: number;
  /** Proxies that would receive a push. */
  pushed: number;
  /** Classes with differences first (most proxies first), then the unchanged class. */
  classes: PreviewClass[];
}

function sameNames(all: ReadonlyMap<string, EncodedResource>, names: ReadonlySet<string> | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (names) {
    for (const n of names) {
      const r = all.get(n);
      if (r) out.set(n, r.hash);
    }
  } else for (const [n, r] of all) out.set(n, r.hash);
  return out;
}

function diff(before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>): TypeDiff | undefined {
  const d: TypeDiff = { added: [], removed: [], changed: [] };
  for (const [n, h] of after) {
    const b = before.get(n);
    if (b === undefined) d.added.push(n);
    else if (b !== h) d.changed.push(n);
  }
  for (const n of before.keys()) if (!after.has(n)) d.removed.push(n);
  if (d.added.length + d.removed.length + d.changed.length === 0) return undefined;
  d.added.sort();
  d.removed.sort();
  d.changed.sort();
  return d;
}

export interface PreviewArgs {
  live: ConfigEngine;
  next: MeshSnapshot;
  connections: readonly Connection[];
  engineOptions: EngineOptions;
  /** The report's error fields, filled by the caller (it knows how the change parsed). */
  base: Omit<PreviewReport, 'proxies' | 'pushed' | 'classes'>;
}

/** Every connected proxy's differences under `next`, grouped into classes. */
export async function previewChange(a: PreviewArgs): Promise<PreviewReport> {
  const scratch = new ConfigEngine(a.engineOptions);
  scratch.setSnapshot(a.next);
  const classes = new Map<string, PreviewClass>();
  let proxies = 0;
  let pushed = 0;
  for (const conn of a.connections) {
    const proxy = conn.proxy;
    const handle: ProxyHandle | undefined = conn.handle;
    if (!proxy || !handle || conn.closed) continue;
    proxies++;
    const h2 = scratch.attach(proxy);
    const changes: Record<string, TypeDiff> = {};
    for (const t of PUSH_ORDER as readonly TypeUrl[]) {
      const w = conn.watches.get(t);
      if (!w || !a.live.serves(handle, t)) continue;
      const before = sameNames(a.live.resources(handle, t, w.names).resources, w.names);
      const after = scratch.serves(h2, t) ? sameNames(scratch.resources(h2, t, w.names).resources, w.names) : new Map<string, string>();
      const d = diff(before, after);
      if (d) changes[SHORT_TYPE[t]] = d;
    }
    if (Object.keys(changes).length > 0) pushed++;
    const key = `${proxy.type}\u0000${JSON.stringify(changes)}`;
    const c = classes.get(key) ?? { proxies: 0, examples: [], proxyType: proxy.type, changes };
    c.proxies++;
    if (c.examples.length < 5) c.examples.push(proxy.id);
    classes.set(key, c);
    // Between proxies, let pushes and requests run.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const list = [...classes.values()].sort((x, y) => {
    const cx = Object.keys(x.changes).length > 0 ? 0 : 1;
    const cy = Object.keys(y.changes).length > 0 ? 0 : 1;
    return cx - cy || y.proxies - x.proxies;
  });
  return { ...a.base, proxies, pushed, classes: list };
}

/** The report as text: per class, the proxies and what each type's push would carry. */
export function describePreview(r: PreviewReport): string {
  const lines: string[] = [];
  for (const e of r.changeErrors)
    lines.push(`Error: ${e.kind ?? ''} ${e.namespace ? `${e.namespace}/` : ''}${e.name ?? ''} (${e.source}): ${e.errors.map((f) => `${f.path}: ${f.message}`).join('; ')}`);
  for (const m of r.missing) lines.push(`Warning: ${m} does not exist; nothing to delete`);
  for (const e of r.newErrors)
    lines.push(`Would be left out: ${e.kind ?? ''} ${e.namespace ? `${e.namespace}/` : ''}${e.name ?? ''}: ${e.errors.map((f) => `${f.path}: ${f.message}`).join('; ')}`);
  for (const e of r.clearedErrors) lines.push(`Would be served again: ${e.kind ?? ''} ${e.namespace ? `${e.namespace}/` : ''}${e.name ?? ''}`);
  lines.push(`${r.pushed} of ${r.proxies} connected proxies would receive a push (config ${r.fromVersion} + this ${r.mode}).`);
  for (const c of r.classes) {
    lines.push('');
    const more = c.proxies > c.examples.length ? `, and ${c.proxies - c.examples.length} more` : '';
    lines.push(`${c.proxies} ${c.proxyType} prox${c.proxies === 1 ? 'y' : 'ies'} (${c.examples.join(', ')}${more}):`);
    const types = Object.keys(c.changes);
    if (types.length === 0) lines.push('  no change');
    for (const t of types) {
      const d = c.changes[t] as TypeDiff;
      for (const n of d.added) lines.push(`  ${t} + ${n}`);
      for (const n of d.removed) lines.push(`  ${t} - ${n}`);
      for (const n of d.changed) lines.push(`  ${t} ~ ${n}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
