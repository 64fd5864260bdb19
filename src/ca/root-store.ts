/**
 * Where CA material lives between restarts, under istiod's names: a folder (files `ca-cert.pem`,
 * `ca-key.pem`, `root-cert.pem`, `cert-chain.pem`; the key 0600) or a Kubernetes Secret
 * (`istio-ca-secret`, type `istio.io/ca-root`, for the self-signed root; `cacerts` for a plug-in
 * root). Writing is create-or-replace with optimistic concurrency: a write that loses a race
 * (409) returns quietly, and the caller loads what won.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc, promises as fs, watch as fsWatch } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
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

const errCode = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? 'error';

/**
 * Writes `data` to `target` through a new file beside it, then renames it over `target`. The
 * temporary file is created exclusively (O_CREAT | O_EXCL | O_NOFOLLOW) with `mode`: a file or a
 * symlink someone planted at the temporary name is never opened, followed or reused (another name
 * is drawn instead), so a key cannot be written through it. Flushed before the rename.
 */
export async function writeFileExclusive(target: string, data: string, mode: number): Promise<void> {
  const flags = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | (fsc.O_NOFOLLOW ?? 0);
  let tmp = `${target}.tmp-${process.pid}`;
  let fh: FileHandle | undefined;
  for (let attempt = 0; !fh; attempt++) {
    try {
      fh = await fs.open(tmp, flags, mode);
    } catch (err) {
      if (errCode(err) !== 'EEXIST' || attempt >= 8) throw new RootMaterialError(`cannot create a temporary file for ${path.basename(target)}: ${errCode(err)}`);
      tmp = `${target}.tmp-${process.pid}-${randomBytes(8).toString('hex')}`;
    }
  }
  try {
    await fh.chmod(mode); // the umask may have narrowed it; never wider than asked
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw new RootMaterialError(`cannot write ${path.basename(target)}: ${errCode(err)}`);
  }
  await fh.close();
  try {
    await fs.rename(tmp, target);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw new RootMaterialError(`cannot replace ${path.basename(target)}: ${errCode(err)}`);
  }
}

/** A folder of the four files. Saves write each file beside and rename it in place (writeFileExclusive). */
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
    for (const [field, file] of KEYS) await writeFileExclusive(path.join(this.dir, file), m[field], field === 'caKeyPem' ? 0o600 : 0o644);
  }

  /**
   * Makes an existing folder private (0700) when group or others have any access to it. Returns
   * the mode it had when it was changed; undefined when it was private already or is not there.
   */
  async restrictFolder(): Promise<number | undefined> {
    let mode: number;
    try {
      mode = (await fs.stat(this.dir)).mode & 0o777;
    } catch (err) {
      if (errCode(err) === 'ENOENT') return undefined;
      throw new RootMaterialError(`cannot read the mode of ${this.description}: ${errCode(err)}`);
    }
    if ((mode & 0o077) === 0) return undefined;
    await fs.chmod(this.dir, 0o700);
    return mode;
  }

  /** The permission bits of the key file (through symlinks, as a mounted Secret has them); undefined when absent. */
  async keyFileMode(): Promise<number | undefined> {
    try {
      return (await fs.stat(path.join(this.dir, MATERIAL_FILES.caKeyPem))).mode & 0o777;
    } catch {
      return undefined;
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
