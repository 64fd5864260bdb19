/**
 * Istio kinds the API server serves that meshd does not model (e.g. TrafficExtension, or a
 * kind from a newer Istio release): found through discovery of every `*.istio.io` group,
 * logged once per kind, and kept as source errors so that /debug/configz lists them.
 * Objects of such kinds are never silently ignored: an operator sees that meshd leaves them out.
 *
 * Discovery runs once before the source counts as loaded and again every `retryMs`, so a CRD
 * installed (or removed) later is reported (or no longer).
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ConfigError } from '../model/objects';
import { KubeHttpError, getJson } from './kube-http';
import { KUBE_KINDS } from './kube-kinds';

/** One served kind meshd does not know. */
export interface UnknownKind {
  group: string;
  /** The group's versions that serve it, preferred first. */
  versions: string[];
  kind: string;
  plural: string;
}

/** Groups whose kinds are Istio configuration: `istio.io` and every `<x>.istio.io`. */
export function isIstioGroup(group: string): boolean {
  return group === 'istio.io' || group.endsWith('.istio.io');
}

/** `<group>/<Kind>` for every kind meshd watches in Kubernetes mode. */
const KNOWN = new Set(KUBE_KINDS.map((k) => `${k.group}/${k.kind}`));

export function isKnownKind(group: string, kind: string): boolean {
  return KNOWN.has(`${group}/${kind}`);
}

interface GroupList {
  groups?: Array<{ name?: unknown; versions?: Array<{ version?: unknown }> }>;
}
interface ResourceList {
  resources?: Array<{ name?: unknown; kind?: unknown }>;
}

/** One discovery pass: the Istio kinds served that meshd does not know, sorted by group and kind. */
export async function discoverUnknownKinds(kc: KubeConfig, signal?: AbortSignal): Promise<UnknownKind[]> {
  const list = (await getJson(kc, '/apis', signal)) as GroupList;
  const found = new Map<string, UnknownKind>();
  for (const g of list.groups ?? []) {
    if (typeof g.name !== 'string' || !isIstioGroup(g.name)) continue;
    for (const v of g.versions ?? []) {
      if (typeof v.version !== 'string') continue;
      let doc: ResourceList;
      try {
        doc = (await getJson(kc, `/apis/${g.name}/${v.version}`, signal)) as ResourceList;
      } catch (err) {
        // Gone between the group list and this read: nothing served there.
        if (err instanceof KubeHttpError && err.statusCode === 404) continue;
        throw err;
      }
      for (const r of doc.resources ?? []) {
        // Subresources (`x/status`) name the kind of their parent.
        if (typeof r.name !== 'string' || r.name.includes('/') || typeof r.kind !== 'string') continue;
        if (isKnownKind(g.name, r.kind)) continue;
        const key = `${g.name}/${r.kind}`;
        const prev = found.get(key);
        if (prev) prev.versions.push(v.version);
        else found.set(key, { group: g.name, versions: [v.version], kind: r.kind, plural: r.name });
      }
    }
  }
  return [...found.values()].sort((a, b) => `${a.group}/${a.kind}`.localeCompare(`${b.group}/${b.kind}`));
}

/** The message an unknown kind is reported with (source error, log line). */
export function unknownKindMessage(u: UnknownKind): string {
  return `${u.group} ${u.kind} is served by the API server (${u.versions.join(', ')}) but meshd does not support it; objects of this kind are ignored`;
}

/** The source error listing one unknown kind. */
export function unknownKindError(u: UnknownKind): ConfigError {
  return { source: `kubernetes:${u.kind}`, kind: u.kind, apiVersion: `${u.group}/${u.versions[0] ?? ''}`, errors: [{ path: '', message: unknownKindMessage(u) }] };
}

export interface UnknownKindScannerOptions {
  kc: KubeConfig;
  log: Logger;
  /** How often discovery is repeated (and how soon after a failed one). */
  retryMs: number;
  /** The set of unknown kinds changed. */
  onChange: () => void;
}

/** Repeats discovery; holds the latest unknown kinds; logs each one once while it stays served. */
export class UnknownKindScanner {
  private kinds: UnknownKind[] = [];
  private readonly logged = new Set<string>();
  private timer?: NodeJS.Timeout;
  private closed = false;
  private failing = false;
  private readonly aborter = new AbortController();

  constructor(private readonly o: UnknownKindScannerOptions) {}

  /** The first pass: resolves when it is done, whether it found something, failed or not. */
  async start(): Promise<void> {
    await this.scan();
  }

  errors(): ConfigError[] {
    return this.kinds.map(unknownKindError);
  }

  unknown(): readonly UnknownKind[] {
    return this.kinds;
  }

  close(): void {
    this.closed = true;
    this.aborter.abort();
    if (this.timer) clearTimeout(this.timer);
  }

  private async scan(): Promise<void> {
    if (this.closed) return;
    try {
      const next = await discoverUnknownKinds(this.o.kc, this.aborter.signal);
      if (this.closed) return;
      this.failing = false;
      this.apply(next);
    } catch (err) {
      if (this.closed) return;
      // Keep what the last pass found; say so once per streak of failures.
      if (!this.failing)
        this.o.log.warn({ err: (err as Error).message, retryInMs: this.o.retryMs }, 'discovery of Istio API groups failed; unknown kinds are looked for again later');
      this.failing = true;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.scan();
    }, this.o.retryMs);
  }

  private apply(next: UnknownKind[]): void {
    const keyOf = (u: UnknownKind): string => `${u.group}/${u.kind}@${u.versions.join(',')}`;
    const changed = next.map(keyOf).join(' ') !== this.kinds.map(keyOf).join(' ');
    const served = new Set(next.map((u) => `${u.group}/${u.kind}`));
    for (const u of next) {
      const k = `${u.group}/${u.kind}`;
      if (this.logged.has(k)) continue;
      this.logged.add(k);
      this.o.log.warn({ kind: u.kind, group: u.group, versions: u.versions }, unknownKindMessage(u));
    }
    // A kind that went away is logged again if it comes back.
    for (const k of [...this.logged]) if (!served.has(k)) this.logged.delete(k);
    this.kinds = next;
    if (changed) this.o.onChange();
  }
}
