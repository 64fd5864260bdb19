/**
 * Encoded contents by content key (type and hash), so a content built again is not validated and
 * kept twice. Two tiers:
 *
 * - every content still in use (held by a kept result or a served set) is found by its key
 *   through a weak reference: finding it costs no bytes, however many there are;
 * - the contents made most recently are also held, up to a byte bound, so one nothing uses any
 *   more (a route table replaced by a change) is found again when a later change brings the same
 *   content back (a weight moved and moved back).
 *
 * Before, one byte-bounded LRU did both, and at its bound (128 MiB) it held superseded contents
 * nothing would serve again, besides the ones in use that other objects held anyway.
 */
import { LRUCache } from 'lru-cache';

export interface ContentCacheOptions<V> {
  /** Bytes of recently made contents held, in use or not (0: only contents in use are found). */
  maxBytes: number;
  /** Most recently made contents held, whatever their bytes. */
  maxEntries: number;
  sizeOf: (v: V) => number;
}

export class ContentCache<V extends object> {
  private readonly weak = new Map<string, WeakRef<V>>();
  private readonly recent: LRUCache<string, V> | undefined;
  private readonly gone: FinalizationRegistry<string>;

  constructor(opts: ContentCacheOptions<V>) {
    this.recent =
      opts.maxBytes > 0 && opts.maxEntries > 0
        ? new LRUCache<string, V>({ max: opts.maxEntries, maxSize: opts.maxBytes, sizeCalculation: (v) => Math.max(1, opts.sizeOf(v)) })
        : undefined;
    // A collected content's key goes, unless the key was given to a newer content meanwhile.
    this.gone = new FinalizationRegistry<string>((key) => {
      if (this.weak.get(key)?.deref() === undefined) this.weak.delete(key);
    });
  }

  get(key: string): V | undefined {
    return this.recent?.get(key) ?? this.weak.get(key)?.deref();
  }

  set(key: string, v: V): void {
    this.recent?.set(key, v);
    if (this.weak.get(key)?.deref() === v) return;
    this.weak.set(key, new WeakRef(v));
    this.gone.register(v, key);
  }

  /** Contents that can be found (in use, or recently made). */
  get size(): number {
    return this.weak.size;
  }

  /** Recently made contents held, and their bytes. */
  held(): { entries: number; bytes: number } {
    return { entries: this.recent?.size ?? 0, bytes: this.recent?.calculatedSize ?? 0 };
  }
}
