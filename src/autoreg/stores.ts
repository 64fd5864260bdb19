/**
 * Where auto-registered WorkloadEntries live: the API server in Kubernetes mode (the source's
 * informer then brings them into the model like any other), or memory in folder mode (their
 * objects join the folder's in every snapshot).
 */
import { EventEmitter } from 'node:events';
import type { KubeConfig } from '@kubernetes/client-node';
import type { ConfigError, ConfigObject } from '../model/objects';
import type { WorkloadEntryObject } from '../model/workload-group';
import { KubeHttpError, requestJson } from '../sources/kube-http';
import { parseObject } from '../sources/parse';
import { validated } from '../sources/source';
import type { WorkloadEntryStore } from './registrar';

const GROUP_PATH = '/apis/networking.istio.io/v1';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An API object as the registrar reads it (annotations always a map). */
function asEntry(raw: unknown): WorkloadEntryObject | undefined {
  if (!isRecord(raw) || !isRecord(raw['metadata'])) return undefined;
  const m = raw['metadata'];
  return {
    apiVersion: String(raw['apiVersion'] ?? 'networking.istio.io/v1'),
    kind: 'WorkloadEntry',
    metadata: {
      name: String(m['name'] ?? ''),
      namespace: String(m['namespace'] ?? ''),
      ...(isRecord(m['labels']) ? { labels: m['labels'] as Record<string, string> } : {}),
      annotations: isRecord(m['annotations']) ? { ...(m['annotations'] as Record<string, string>) } : {},
      ...(Array.isArray(m['ownerReferences']) ? { ownerReferences: m['ownerReferences'] as NonNullable<WorkloadEntryObject['metadata']['ownerReferences']> } : {}),
      ...(typeof m['resourceVersion'] === 'string' ? { resourceVersion: m['resourceVersion'] } : {}),
    },
    spec: isRecord(raw['spec']) ? (raw['spec'] as WorkloadEntryObject['spec']) : {},
  };
}

/** WorkloadEntries through the API server (networking.istio.io/v1), as istiod's config store writes them. */
export class KubeWorkloadEntryStore implements WorkloadEntryStore {
  constructor(private readonly kc: KubeConfig) {}

  private path(namespace: string, name?: string): string {
    return `${GROUP_PATH}/namespaces/${encodeURIComponent(namespace)}/workloadentries${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;
  }

  async get(namespace: string, name: string): Promise<WorkloadEntryObject | undefined> {
    try {
      return asEntry(await requestJson(this.kc, 'GET', this.path(namespace, name)));
    } catch (err) {
      if (err instanceof KubeHttpError && err.statusCode === 404) return undefined;
      throw err;
    }
  }

  async create(entry: WorkloadEntryObject): Promise<void> {
    await requestJson(this.kc, 'POST', this.path(entry.metadata.namespace), entry);
  }

  async update(entry: WorkloadEntryObject): Promise<void> {
    await requestJson(this.kc, 'PUT', this.path(entry.metadata.namespace, entry.metadata.name), entry);
  }

  async delete(namespace: string, name: string): Promise<void> {
    try {
      await requestJson(this.kc, 'DELETE', this.path(namespace, name));
    } catch (err) {
      if (!(err instanceof KubeHttpError && err.statusCode === 404)) throw err;
    }
  }

  async groupUid(namespace: string, name: string): Promise<string> {
    const g = await requestJson(this.kc, 'GET', `${GROUP_PATH}/namespaces/${encodeURIComponent(namespace)}/workloadgroups/${encodeURIComponent(name)}`);
    const uid = isRecord(g) && isRecord(g['metadata']) ? g['metadata']['uid'] : undefined;
    return typeof uid === 'string' ? uid : '';
  }
}

/**
 * WorkloadEntries held in memory (folder mode, where nothing can be written back): `change` is
 * emitted on every write; `state()` gives them as the config objects a folder would hold.
 */
export class MemoryWorkloadEntryStore extends EventEmitter implements WorkloadEntryStore {
  private readonly entries = new Map<string, WorkloadEntryObject>();
  private version = 0;
  private cached?: { version: number; objects: ConfigObject[]; errors: ConfigError[] };

  async get(namespace: string, name: string): Promise<WorkloadEntryObject | undefined> {
    const e = this.entries.get(`${namespace}/${name}`);
    return e ? structuredClone(e) : undefined;
  }

  async create(entry: WorkloadEntryObject): Promise<void> {
    const key = `${entry.metadata.namespace}/${entry.metadata.name}`;
    if (this.entries.has(key)) throw new Error(`WorkloadEntry ${key} already exists`);
    this.set(key, entry);
  }

  async update(entry: WorkloadEntryObject): Promise<void> {
    const key = `${entry.metadata.namespace}/${entry.metadata.name}`;
    if (!this.entries.has(key)) throw new Error(`WorkloadEntry ${key} not found`);
    this.set(key, entry);
  }

  async delete(namespace: string, name: string): Promise<void> {
    const key = `${namespace}/${name}`;
    if (!this.entries.delete(key)) return;
    this.version++;
    this.emit('change', `memory:WorkloadEntry/${key}`);
  }

  async groupUid(): Promise<string> {
    return '';
  }

  /** The entries as validated config objects (origin `autoregistration:WorkloadEntry/<ns>/<name>`). */
  state(): { objects: ConfigObject[]; errors: ConfigError[] } {
    if (this.cached?.version !== this.version) {
      const objects: ConfigObject[] = [];
      const errors: ConfigError[] = [];
      for (const [key, e] of [...this.entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        const r = validated(parseObject(e as unknown as Record<string, unknown>, `autoregistration:WorkloadEntry/${key}`));
        objects.push(...r.objects);
        errors.push(...r.errors);
      }
      this.cached = { version: this.version, objects, errors };
    }
    return { objects: this.cached.objects, errors: this.cached.errors };
  }

  private set(key: string, entry: WorkloadEntryObject): void {
    this.entries.set(key, structuredClone(entry));
    this.version++;
    this.emit('change', `memory:WorkloadEntry/${key}`);
  }
}
