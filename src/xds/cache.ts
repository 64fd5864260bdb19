/**
 * Encode once: a resource is built, checked against Envoy's protos and validate.rules, and
 * serialised once per (snapshot version, flavour, type, name, key); every proxy that needs the
 * same input gets the same bytes.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Resource } from '../generate/types';
import { type EnvoyProtos, SHORT_TYPE, type TypeUrl } from './protos';
import type { RuleViolation } from './validate-rules';

export interface EncodedResource {
  name: string;
  bytes: Uint8Array;
  /** sha1 of bytes, hex; content identity for change detection. */
  hash: string;
}

export interface RejectedResource {
  name: string;
  typeUrl: TypeUrl;
  errors: readonly RuleViolation[];
}

export interface ResourceChecker {
  validate(typeUrl: string, obj: object): RuleViolation[];
}

type Entry = EncodedResource | RejectedResource;

function isRejected(e: Entry): e is RejectedResource {
  return 'errors' in e;
}

export interface CacheStats {
  hits: number;
  misses: number;
  rejected: number;
  size: number;
}

export class ResourceCache {
  private readonly lru: LRUCache<string, Entry>;
  private readonly stats = { hits: 0, misses: 0, rejected: 0 };
  /** Rejections of the current snapshot, by type/name, for debug and metrics. */
  private readonly rejections = new Map<string, RejectedResource>();
  private rejectionsVersion = '';

  constructor(
    private readonly protos: EnvoyProtos,
    private readonly checker: ResourceChecker | undefined,
    maxEntries = 100_000,
  ) {
    this.lru = new LRUCache<string, Entry>({ max: maxEntries });
  }

  /**
   * Encodes resources for one proxy request. Resources that fail the proto check are left
   * out and remembered as rejections; the rest are served.
   */
  encode(snapVersion: string, flavor: string, typeUrl: TypeUrl, resources: readonly Resource[]): EncodedResource[] {
    if (snapVersion !== this.rejectionsVersion) {
      this.rejections.clear();
      this.rejectionsVersion = snapVersion;
    }
    const out: EncodedResource[] = [];
    const prefix = `${snapVersion}|${flavor}|${SHORT_TYPE[typeUrl]}|`;
    for (const r of resources) {
      const cacheKey = prefix + r.name + '|' + r.key;
      let entry = this.lru.get(cacheKey);
      if (entry) {
        this.stats.hits++;
      } else {
        this.stats.misses++;
        entry = this.build(typeUrl, r);
        this.lru.set(cacheKey, entry);
      }
      if (isRejected(entry)) {
        this.rejections.set(`${typeUrl}|${r.name}`, entry);
        continue;
      }
      out.push(entry);
    }
    return out;
  }

  private build(typeUrl: TypeUrl, r: Resource): Entry {
    let body: object;
    try {
      body = r.build();
    } catch (err) {
      this.stats.rejected++;
      return { name: r.name, typeUrl, errors: [{ path: '', message: `generation failed: ${(err as Error).message}` }] };
    }
    const errors = this.checker?.validate(typeUrl, body) ?? [];
    if (errors.length > 0) {
      this.stats.rejected++;
      return { name: r.name, typeUrl, errors };
    }
    try {
      const bytes = this.protos.encode(typeUrl, body);
      return { name: r.name, bytes, hash: createHash('sha1').update(bytes).digest('hex') };
    } catch (err) {
      this.stats.rejected++;
      return { name: r.name, typeUrl, errors: [{ path: '', message: `encoding failed: ${(err as Error).message}` }] };
    }
  }

  rejectionCount(): number {
    return this.rejections.size;
  }

  currentRejections(): RejectedResource[] {
    return [...this.rejections.values()];
  }

  getStats(): CacheStats {
    return { ...this.stats, size: this.lru.size };
  }
}

/** The identity of a set of resources: changes iff any resource was added, removed or changed. */
export function setHash(resources: readonly EncodedResource[]): string {
  const h = createHash('sha1');
  for (const r of [...resources].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) h.update(r.name).update('\0').update(r.hash);
  return h.digest('hex');
}
