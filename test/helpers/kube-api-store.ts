/**
 * The fake Kubernetes API server's storage: every object of every resource, one global
 * monotonically increasing resourceVersion (as etcd's revision), and the event history that
 * watches replay from a resourceVersion until it is compacted away (then: 410 Gone).
 *
 * Objects are stored without apiVersion/kind and are readable at every served version of
 * their resource, as a real API server converts between versions.
 */
import { randomUUID } from 'node:crypto';
import { type ApiResource, groupVersion, qualifiedResource } from './kube-api-resources';
import {
  type Json,
  type JsonObject,
  PatchError,
  clone,
  fieldSelectorFields,
  isObject,
  jsonEqual,
  jsonPatch,
  matchesSelector,
  mergePatch,
  parseFieldSelector,
  parseLabelSelector,
} from './kube-api-patch';

/** An API error, answered as a Kubernetes `Status` object. */
export class KubeApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export function statusObject(code: number, reason: string, message: string, details?: Record<string, unknown>): JsonObject {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details: details as JsonObject } : {}), code };
}

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  rv: number;
  /** The resource's `<resource>.<group>`. */
  resource: string;
  type: EventType;
  object: JsonObject;
  /** The previous state, for MODIFIED and DELETED (watch selectors need it). */
  old?: JsonObject;
}

export type PatchType = 'merge' | 'strategic' | 'json' | 'apply';

export interface ListFilter {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export interface WriteOptions {
  fieldManager?: string;
  /** Write only `status` (the /status subresource). */
  subresource?: 'status';
  /**
   * Create with the given status. A real API server drops status on create for resources
   * with a status subresource (POST does too); tests writing directly may set it at once,
   * as the controller owning it would right after.
   */
  keepStatus?: boolean;
}

function meta(o: JsonObject): JsonObject {
  if (!isObject(o['metadata'])) o['metadata'] = {};
  return o['metadata'] as JsonObject;
}

function nowSeconds(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Everything but metadata and status: what `generation` counts changes of. */
function specPart(o: JsonObject): JsonObject {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = o;
  return rest;
}

export class KubeStore {
  private rv: number;
  private compactedRv: number;
  private resources: ApiResource[];
  private objects = new Map<string, Map<string, JsonObject>>();
  private history: StoreEvent[] = [];
  private readonly listeners = new Set<(e: StoreEvent) => void>();
  private readonly requireNamespace: boolean;

  constructor(resources: readonly ApiResource[], opts: { firstResourceVersion?: number; requireNamespace?: boolean } = {}) {
    this.resources = [...resources];
    this.rv = opts.firstResourceVersion ?? 1000;
    this.compactedRv = this.rv;
    this.requireNamespace = opts.requireNamespace ?? false;
  }

  resourceVersion(): number {
    return this.rv;
  }

  /** The oldest resourceVersion a watch may still start from. */
  oldestResourceVersion(): number {
    return this.compactedRv;
  }

  installed(): readonly ApiResource[] {
    return this.resources;
  }

  /** The resource served at `/…/<group>/<version>/<plural>`, if installed at that version. */
  byPath(group: string, version: string, plural: string): ApiResource | undefined {
    return this.resources.find((r) => r.group === group && r.resource === plural && r.versions.includes(version));
  }

  /** The resource for an object's apiVersion and kind. */
  byKind(apiVersion: string, kind: string): { res: ApiResource; version: string } {
    const slash = apiVersion.indexOf('/');
    const group = slash < 0 ? '' : apiVersion.slice(0, slash);
    const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
    const res = this.resources.find((r) => r.group === group && r.kind === kind && r.versions.includes(version));
    if (!res) throw new KubeApiError(404, 'NotFound', `the server could not find the requested resource (${kind} ${apiVersion} is not installed)`);
    return { res, version };
  }

  install(res: ApiResource): void {
    this.resources = [...this.resources.filter((r) => !(r.group === res.group && r.resource === res.resource)), res];
  }

  /** Removes a resource type and, as deleting a CRD does, all of its objects (no events). */
  uninstall(kind: string, group?: string): ApiResource | undefined {
    const res = this.resources.find((r) => r.kind === kind && (group === undefined || r.group === group));
    if (!res) return undefined;
    this.resources = this.resources.filter((r) => r !== res);
    this.objects.delete(qualifiedResource(res));
    return res;
  }

  subscribe(listener: (e: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Compaction: resourceVersions before `olderThan` become too old to watch from (410 Gone);
   * by default every resourceVersion issued so far.
   */
  expire(olderThan?: number): void {
    if (olderThan === undefined) {
      this.rv++;
      this.compactedRv = this.rv;
    } else {
      this.compactedRv = Math.max(this.compactedRv, Math.min(olderThan, this.rv));
    }
    this.history = this.history.filter((e) => e.rv > this.compactedRv);
  }

  /** Forget every object (as a new etcd would), keeping resourceVersions increasing. */
  reset(): void {
    this.objects.clear();
    this.expire();
  }

  /** Events of one resource after `rv`; throws 410 Expired if that part of history is gone. */
  eventsSince(resource: ApiResource, rv: number): StoreEvent[] {
    if (rv < this.compactedRv) {
      throw new KubeApiError(410, 'Expired', `too old resource version: ${rv} (${this.compactedRv})`);
    }
    const key = qualifiedResource(resource);
    return this.history.filter((e) => e.rv > rv && e.resource === key);
  }

  /** The object as served at `version`: with apiVersion and kind. */
  present(res: ApiResource, version: string, o: JsonObject): JsonObject {
    return { apiVersion: groupVersion(res.group, version), kind: res.kind, ...clone(o) };
  }

  list(res: ApiResource, filter: ListFilter = {}): JsonObject[] {
    const labels = filter.labelSelector ? this.selector(() => parseLabelSelector(filter.labelSelector as string)) : [];
    const fields = filter.fieldSelector ? this.selector(() => parseFieldSelector(filter.fieldSelector as string)) : [];
    const bucket = this.objects.get(qualifiedResource(res)) ?? new Map<string, JsonObject>();
    return [...bucket.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => o)
      .filter((o) => filter.namespace === undefined || meta(o)['namespace'] === filter.namespace)
      .filter((o) => matchesSelector(labels, (meta(o)['labels'] ?? {}) as Record<string, string>))
      .filter((o) => matchesSelector(fields, fieldSelectorFields(o)))
      .map(clone);
  }

  private selector<T>(parse: () => T): T {
    try {
      return parse();
    } catch (e) {
      throw new KubeApiError(400, 'BadRequest', (e as Error).message);
    }
  }

  get(res: ApiResource, namespace: string, name: string): JsonObject {
    const o = this.objects.get(qualifiedResource(res))?.get(this.key(res, namespace, name));
    if (!o) throw this.notFound(res, name);
    return clone(o);
  }

  create(res: ApiResource, namespace: string, body: JsonObject, opts: WriteOptions = {}): JsonObject {
    const obj = clone(body);
    const m = meta(obj);
    this.checkNamespace(res, namespace, m);
    if (typeof m['name'] !== 'string' || m['name'] === '') {
      if (typeof m['generateName'] === 'string' && m['generateName'] !== '') m['name'] = `${m['generateName']}${randomUUID().slice(0, 5)}`;
      else throw new KubeApiError(422, 'Invalid', `${res.kind} "" is invalid: metadata.name: Required value: name or generateName is required`, { kind: res.kind });
    }
    const name = m['name'] as string;
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name) || name.length > 253) {
      throw new KubeApiError(
        422,
        'Invalid',
        `${res.kind} "${name}" is invalid: metadata.name: Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`,
        { name, kind: res.kind },
      );
    }
    if (res.namespaced && this.requireNamespace && !this.objects.get('namespaces')?.has(namespace)) {
      throw new KubeApiError(404, 'NotFound', `namespaces "${namespace}" not found`, { name: namespace, kind: 'namespaces' });
    }
    const bucket = this.bucket(res);
    const key = this.key(res, namespace, name);
    if (bucket.has(key)) {
      throw new KubeApiError(409, 'AlreadyExists', `${qualifiedResource(res)} "${name}" already exists`, { name, group: res.group, kind: res.resource });
    }
    delete obj['apiVersion'];
    delete obj['kind'];
    if (res.namespaced) m['namespace'] = namespace;
    else delete m['namespace'];
    m['uid'] = randomUUID();
    m['creationTimestamp'] = nowSeconds();
    m['generation'] = 1;
    delete m['deletionTimestamp'];
    if (res.status && !opts.keepStatus) delete obj['status'];
    return this.commit(res, key, obj, undefined, 'ADDED', opts);
  }

  /** PUT: replace the object (or only its status); 409 Conflict on a stale resourceVersion. */
  replace(res: ApiResource, namespace: string, name: string, body: JsonObject, opts: WriteOptions = {}): JsonObject {
    const key = this.key(res, namespace, name);
    const old = this.bucket(res).get(key);
    if (!old) throw this.notFound(res, name);
    const obj = clone(body);
    const m = meta(obj);
    this.checkNamespace(res, namespace, m);
    if (m['name'] !== undefined && m['name'] !== name) {
      throw new KubeApiError(400, 'BadRequest', `the name of the object (${String(m['name'])}) does not match the name on the URL (${name})`);
    }
    const om = meta(old);
    if (m['resourceVersion'] !== undefined && m['resourceVersion'] !== '' && m['resourceVersion'] !== om['resourceVersion']) {
      throw new KubeApiError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${qualifiedResource(res)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        {
          name,
          group: res.group,
          kind: res.resource,
        },
      );
    }
    let next: JsonObject;
    if (opts.subresource === 'status') {
      next = clone(old);
      if (obj['status'] === undefined) delete next['status'];
      else next['status'] = obj['status'] as Json;
    } else {
      next = obj;
      delete next['apiVersion'];
      delete next['kind'];
      // Fields the server owns.
      for (const f of ['uid', 'creationTimestamp', 'generation', 'deletionTimestamp']) {
        if (om[f] === undefined) delete m[f];
        else m[f] = om[f] as Json;
      }
      m['name'] = name;
      if (res.namespaced) m['namespace'] = namespace;
      if (res.status) {
        if (old['status'] === undefined) delete next['status'];
        else next['status'] = clone(old['status'] as Json);
      }
      if (!jsonEqual(specPart(next), specPart(old))) m['generation'] = Number(om['generation'] ?? 0) + 1;
    }
    return this.commit(res, key, next, old, 'MODIFIED', opts);
  }

  patch(res: ApiResource, namespace: string, name: string, type: PatchType, patch: unknown, opts: WriteOptions = {}): JsonObject {
    const key = this.key(res, namespace, name);
    const old = this.bucket(res).get(key);
    if (!old) {
      if (type === 'apply' && isObject(patch))
        return this.create(res, namespace, { ...patch, metadata: { ...(isObject(patch['metadata']) ? patch['metadata'] : {}), name } }, opts);
      throw this.notFound(res, name);
    }
    let next: Json;
    try {
      next = type === 'json' ? jsonPatch(old, patch) : mergePatch(old, patch as Json);
    } catch (e) {
      if (e instanceof PatchError) throw new KubeApiError(422, 'Invalid', `${res.kind} "${name}" is invalid: ${e.message}`);
      throw e;
    }
    if (!isObject(next)) throw new KubeApiError(422, 'Invalid', 'the patch must leave an object');
    const pm = isObject(patch) && isObject(patch['metadata']) ? patch['metadata'] : {};
    // A resourceVersion inside the patch is a precondition; otherwise the patch applies to the latest.
    if (pm['resourceVersion'] === undefined) meta(next)['resourceVersion'] = meta(old)['resourceVersion'] as Json;
    return this.replace(res, namespace, name, next, opts);
  }

  remove(res: ApiResource, namespace: string, name: string, preconditions: { resourceVersion?: string; uid?: string } = {}): JsonObject {
    const key = this.key(res, namespace, name);
    const old = this.bucket(res).get(key);
    if (!old) throw this.notFound(res, name);
    const om = meta(old);
    for (const f of ['resourceVersion', 'uid'] as const) {
      if (preconditions[f] !== undefined && preconditions[f] !== om[f]) {
        throw new KubeApiError(
          409,
          'Conflict',
          `Operation cannot be fulfilled on ${qualifiedResource(res)} "${name}": Precondition failed: ${f}: ${preconditions[f]}, ${f}: ${String(om[f])}`,
          { name, kind: res.resource },
        );
      }
    }
    if (res.kind === 'Namespace' && res.group === '') {
      // Deleting a namespace deletes everything in it (immediately, without Terminating).
      for (const r of this.resources) {
        if (!r.namespaced) continue;
        for (const o of this.list(r, { namespace: name })) this.remove(r, name, String(meta(o)['name']));
      }
    }
    this.bucket(res).delete(key);
    const gone = clone(old);
    meta(gone)['resourceVersion'] = String(++this.rv);
    this.emit({ rv: this.rv, resource: qualifiedResource(res), type: 'DELETED', object: gone, old });
    this.collectGarbage();
    return clone(gone);
  }

  /**
   * The garbage collector (background propagation, run at once): an object whose every
   * ownerReference names a uid that no longer exists is deleted, and so on down the chain.
   */
  private collectGarbage(): void {
    const uids = new Set<string>();
    for (const bucket of this.objects.values()) for (const o of bucket.values()) uids.add(String(meta(o)['uid']));
    for (const r of this.resources) {
      for (const o of this.list(r)) {
        const refs = meta(o)['ownerReferences'];
        if (!Array.isArray(refs) || refs.length === 0) continue;
        if (refs.some((ref) => isObject(ref) && uids.has(String(ref['uid'])))) continue;
        const m = meta(o);
        // Already removed further down the chain.
        if (!this.objects.get(qualifiedResource(r))?.has(this.key(r, String(m['namespace'] ?? ''), String(m['name'])))) continue;
        this.remove(r, String(m['namespace'] ?? ''), String(m['name']));
      }
    }
  }

  private commit(res: ApiResource, key: string, obj: JsonObject, old: JsonObject | undefined, type: EventType, opts: WriteOptions): JsonObject {
    const m = meta(obj);
    if (old) {
      // A write that changes nothing is not persisted: no new resourceVersion, no event.
      const strip = (o: JsonObject): JsonObject => {
        const c = clone(o);
        delete meta(c)['resourceVersion'];
        delete meta(c)['managedFields'];
        return c;
      };
      if (jsonEqual(strip(obj), strip(old))) return clone(old);
    }
    m['resourceVersion'] = String(++this.rv);
    m['managedFields'] = [
      {
        manager: opts.fieldManager ?? 'meshd-test',
        operation: 'Update',
        apiVersion: groupVersion(res.group, res.versions[0] as string),
        time: nowSeconds(),
        fieldsType: 'FieldsV1',
        fieldsV1: {},
        ...(opts.subresource ? { subresource: opts.subresource } : {}),
      },
    ];
    this.bucket(res).set(key, obj);
    this.emit({ rv: this.rv, resource: qualifiedResource(res), type, object: clone(obj), ...(old ? { old: clone(old) } : {}) });
    return clone(obj);
  }

  private emit(e: StoreEvent): void {
    this.history.push(e);
    for (const l of [...this.listeners]) l(e);
  }

  private checkNamespace(res: ApiResource, namespace: string, m: JsonObject): void {
    if (!res.namespaced) return;
    const ns = m['namespace'];
    if (ns !== undefined && ns !== '' && ns !== namespace) {
      throw new KubeApiError(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
    }
  }

  private bucket(res: ApiResource): Map<string, JsonObject> {
    const k = qualifiedResource(res);
    let b = this.objects.get(k);
    if (!b) {
      b = new Map();
      this.objects.set(k, b);
    }
    return b;
  }

  private key(res: ApiResource, namespace: string, name: string): string {
    return res.namespaced ? `${namespace}/${name}` : name;
  }

  private notFound(res: ApiResource, name: string): KubeApiError {
    return new KubeApiError(404, 'NotFound', `${qualifiedResource(res)} "${name}" not found`, { name, group: res.group, kind: res.resource });
  }
}
