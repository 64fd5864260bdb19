/**
 * Where CA material lives between restarts, under istiod's names: a folder (files `ca-cert.pem`,
 * `ca-key.pem`, `root-cert.pem`, `cert-chain.pem`; the key 0600) or a Kubernetes Secret
 * (`istio-ca-secret`, type `istio.io/ca-root`, for the self-signed root; `cacerts` for a plug-in
 * root). Writing is create-or-replace with optimistic concurrency: a write that loses a race
 * (409) returns quietly, and the caller loads what won.
 */
import { constants as fsc, promises as fs, watch as fsWatch } from 'node:fs';
import * as path from 'node:path';
import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { statusOf } from '../leader/lease';
import { MATERIAL_FILES, type RootMaterial, RootMaterialError } from './roots';

export const SELF_SIGNED_SECRET = 'istio-ca-secret';
export const PLUGIN_SECRET = 'cacerts';
export const CA_SECRET_TYPE = 'istio.io/ca-root';

export interface RootStore {
  /** For logs: `folder /etc/cacerts`, `Secret istio-system/istio-ca-secret`. */
  readonly description: string;
  /** The stored material, or undefined when there is none yet. */
  load(): Promise<RootMaterial | undefined>;
  /** Stores `m`; losing a concurrent write is not an error (load() then returns the winner). */
  save(m: RootMaterial): Promise<void>;
  /** Calls onChange (debounced) when the stored material may have changed; returns a stop function. */
  watch?(onChange: () => void): () => void;
}

const KEYS = Object.entries(MATERIAL_FILES) as Array<[keyof RootMaterial, string]>;

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RootMaterialError(`cannot read ${path.basename(file)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

function material(get: (file: string) => string | undefined, where: string): RootMaterial | undefined {
  const cert = get(MATERIAL_FILES.caCertPem);
  const key = get(MATERIAL_FILES.caKeyPem);
  if (cert === undefined && key === undefined) return undefined;
  if (!cert?.trim()) throw new RootMaterialError(`${where} lacks ${MATERIAL_FILES.caCertPem}`);
  if (!key?.trim()) throw new RootMaterialError(`${where} lacks ${MATERIAL_FILES.caKeyPem}`);
  return { caCertPem: cert, caKeyPem: key, rootCertPem: get(MATERIAL_FILES.rootCertPem) ?? '', certChainPem: get(MATERIAL_FILES.certChainPem) ?? '' };
}

/** A folder of the four files. Saves write each file beside and rename it in place. */
export class FolderRootStore implements RootStore {
  readonly description: string;

  constructor(
    readonly dir: string,
    private readonly debounceMs = 100,
  ) {
    this.description = `folder ${dir}`;
  }

  async load(): Promise<RootMaterial | undefined> {
    const files = new Map<string, string | undefined>();
    for (const [, file] of KEYS) files.set(file, await readOptional(path.join(this.dir, file)));
    return material((f) => files.get(f), this.description);
  }

  async save(m: RootMaterial): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const [field, file] of KEYS) {
      const target = path.join(this.dir, file);
      const tmp = `${target}.tmp-${process.pid}`;
      const mode = field === 'caKeyPem' ? 0o600 : 0o644;
      await fs.writeFile(tmp, m[field], { mode, flag: fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC });
      await fs.chmod(tmp, mode);
      await fs.rename(tmp, target);
    }
  }

  watch(onChange: () => void): () => void {
    let timer: NodeJS.Timeout | undefined;
    const fire = (): void => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(onChange, this.debounceMs);
    };
    let w: ReturnType<typeof fsWatch> | undefined;
    try {
      // A mounted Secret swaps a `..data` symlink: that shows up as events on the folder.
      w = fsWatch(this.dir, { persistent: false }, fire);
      w.on('error', () => undefined);
    } catch {
      w = undefined; // no folder (yet): the authority's periodic check still re-reads it
    }
    return () => {
      if (timer) clearTimeout(timer);
      w?.close();
    };
  }
}

type SecretsApi = Pick<CoreV1Api, 'readNamespacedSecret' | 'createNamespacedSecret' | 'replaceNamespacedSecret'>;

export interface KubeSecretRootStoreOptions {
  kubeConfig: KubeConfig;
  /** meshd's namespace (istio-system). */
  namespace: string;
  /** Default `istio-ca-secret`; `cacerts` for a plug-in root. */
  name?: string;
}

/** A Secret holding the four keys. Only the leader should call save(). */
export class KubeSecretRootStore implements RootStore {
  readonly description: string;
  private readonly api: SecretsApi;
  private readonly name: string;

  constructor(private readonly opts: KubeSecretRootStoreOptions) {
    this.name = opts.name ?? SELF_SIGNED_SECRET;
    this.description = `Secret ${opts.namespace}/${this.name}`;
    this.api = opts.kubeConfig.makeApiClient(CoreV1Api);
  }

  private async read(): Promise<V1Secret | undefined> {
    try {
      return await this.api.readNamespacedSecret({ name: this.name, namespace: this.opts.namespace });
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw new RootMaterialError(`cannot read ${this.description}: HTTP ${statusOf(err) ?? 'error'}`);
    }
  }

  async load(): Promise<RootMaterial | undefined> {
    const s = await this.read();
    if (!s) return undefined;
    const data = s.data ?? {};
    return material((f) => (data[f] === undefined ? undefined : Buffer.from(data[f] as string, 'base64').toString('utf8')), this.description);
  }

  async save(m: RootMaterial): Promise<void> {
    const data: Record<string, string> = {};
    for (const [field, file] of KEYS) data[file] = Buffer.from(m[field]).toString('base64');
    const existing = await this.read();
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: this.name, namespace: this.opts.namespace, resourceVersion: existing?.metadata?.resourceVersion },
      type: existing?.type ?? CA_SECRET_TYPE,
      data,
    };
    try {
      if (existing) await this.api.replaceNamespacedSecret({ name: this.name, namespace: this.opts.namespace, body });
      else await this.api.createNamespacedSecret({ namespace: this.opts.namespace, body });
    } catch (err) {
      if (statusOf(err) === 409) return; // another replica wrote first: load() returns theirs
      throw new RootMaterialError(`cannot write ${this.description}: HTTP ${statusOf(err) ?? 'error'}`);
    }
  }
}
