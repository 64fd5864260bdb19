/**
 * Derived values of one snapshot, computed on first use and shared by every proxy's generation
 * (istiod keeps such indexes on its PushContext). Values must be pure functions of the snapshot
 * and the key; the memo lives and dies with its snapshot, so nothing here is ever invalidated.
 */
export class SnapshotMemo {
  private readonly values = new Map<string, unknown>();

  get<T>(key: string, compute: () => T): T {
    // One lookup on a hit (undefined values, rare, take a second to tell "stored" from "absent").
    const hit = this.values.get(key);
    if (hit !== undefined || this.values.has(key)) return hit as T;
    const v = compute();
    this.values.set(key, v);
    return v;
  }

  get size(): number {
    return this.values.size;
  }
}
