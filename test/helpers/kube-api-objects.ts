/**
 * The fake API server's objects for tests to read and write directly (no HTTP, no token),
 * addressed by apiVersion and kind as in YAML. Writes go through the same store as HTTP
 * requests: they get resourceVersions and reach open watches.
 */
import { type JsonObject, isObject } from './kube-api-patch';
import { KubeApiError, type KubeStore, type PatchType } from './kube-api-store';

type Obj = Record<string, unknown>;

function metaOf(o: Obj): { name: string; namespace: string } {
  const m = isObject(o['metadata']) ? o['metadata'] : {};
  return { name: String(m['name'] ?? ''), namespace: String(m['namespace'] ?? '') };
}

export class KubeObjectStore {
  constructor(private readonly store: KubeStore) {}

  /** The latest resourceVersion handed out. */
  resourceVersion(): string {
    return String(this.store.resourceVersion());
  }

  private resolve(o: Obj): { apiVersion: string; kind: string; namespace: string; name: string } {
    const apiVersion = String(o['apiVersion'] ?? '');
    const kind = String(o['kind'] ?? '');
    const { res } = this.store.byKind(apiVersion, kind);
    const { name, namespace } = metaOf(o);
    return { apiVersion, kind, name, namespace: res.namespaced ? namespace || 'default' : '' };
  }

  private present(apiVersion: string, kind: string, o: JsonObject): JsonObject {
    const { res, version } = this.store.byKind(apiVersion, kind);
    return this.store.present(res, version, o);
  }

  /** Create (status included, as if its controller had set it); throws KubeApiError 409 AlreadyExists. */
  create(obj: object): JsonObject {
    const o = obj as Obj;
    const r = this.resolve(o);
    const { res } = this.store.byKind(r.apiVersion, r.kind);
    return this.present(r.apiVersion, r.kind, this.store.create(res, r.namespace, o as JsonObject, { keepStatus: true }));
  }

  /** PUT; a metadata.resourceVersion in `obj` must be the current one (409 Conflict). */
  update(obj: object): JsonObject {
    const o = obj as Obj;
    const r = this.resolve(o);
    const { res } = this.store.byKind(r.apiVersion, r.kind);
    return this.present(r.apiVersion, r.kind, this.store.replace(res, r.namespace, r.name, o as JsonObject));
  }

  /** PUT …/status: only `status` changes. */
  updateStatus(obj: object): JsonObject {
    const o = obj as Obj;
    const r = this.resolve(o);
    const { res } = this.store.byKind(r.apiVersion, r.kind);
    return this.present(r.apiVersion, r.kind, this.store.replace(res, r.namespace, r.name, o as JsonObject, { subresource: 'status' }));
  }

  /** Create, or replace whatever is there (any resourceVersion in `obj` is ignored). */
  apply(obj: object): JsonObject {
    const o = obj as Obj;
    const r = this.resolve(o);
    if (this.get(r.apiVersion, r.kind, r.namespace, r.name) === undefined) return this.create(o);
    const m = isObject(o['metadata']) ? { ...o['metadata'] } : {};
    delete m['resourceVersion'];
    return this.update({ ...o, metadata: m });
  }

  patch(apiVersion: string, kind: string, namespace: string, name: string, patch: unknown, type: PatchType = 'merge', subresource?: 'status'): JsonObject {
    const { res } = this.store.byKind(apiVersion, kind);
    return this.present(apiVersion, kind, this.store.patch(res, res.namespaced ? namespace || 'default' : '', name, type, patch, { subresource }));
  }

  /** DELETE; returns the deleted object, or undefined if there was none. */
  delete(apiVersion: string, kind: string, namespace: string, name: string): JsonObject | undefined {
    const { res } = this.store.byKind(apiVersion, kind);
    try {
      return this.present(apiVersion, kind, this.store.remove(res, res.namespaced ? namespace || 'default' : '', name));
    } catch (e) {
      if (e instanceof KubeApiError && e.code === 404) return undefined;
      throw e;
    }
  }

  get(apiVersion: string, kind: string, namespace: string, name: string): JsonObject | undefined {
    const { res } = this.store.byKind(apiVersion, kind);
    try {
      return this.present(apiVersion, kind, this.store.get(res, res.namespaced ? namespace || 'default' : '', name));
    } catch (e) {
      if (e instanceof KubeApiError && e.code === 404) return undefined;
      throw e;
    }
  }

  list(apiVersion: string, kind: string, namespace?: string): JsonObject[] {
    const { res } = this.store.byKind(apiVersion, kind);
    return this.store.list(res, { namespace }).map((o) => this.store.present(res, this.store.byKind(apiVersion, kind).version, o));
  }
}
