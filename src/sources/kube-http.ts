/**
 * Kubernetes API access for the source: the kubeconfig (a file, or the in-cluster service
 * account), and plain JSON GETs for discovery and LIST with client-node's authentication
 * (token, client certificate, exec plugins, CA) applied.
 *
 * LIST goes through here rather than the typed clients because the typed clients turn
 * timestamps into Dates and drop fields they do not know: a listed object must be the same
 * JSON a watch event carries, or an unchanged object would look changed after a relist.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';

export type KubeConnection = { kubeconfig: string } | { inCluster: true };

/** Loads the connection settings; throws with the reason if they are unusable. */
export function loadKubeConfig(c: KubeConnection): KubeConfig {
  const kc = new KubeConfig();
  if ('kubeconfig' in c) kc.loadFromFile(c.kubeconfig);
  else kc.loadFromCluster();
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig: no current cluster (set current-context)');
  if (!/^https?:\/\//.test(cluster.server)) throw new Error(`kubeconfig: cluster ${cluster.name} has no usable server URL (${JSON.stringify(cluster.server)})`);
  return kc;
}

/** An HTTP status other than 2xx, shaped as client-node's watch errors (`statusCode`). */
export class KubeHttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

const REQUEST_TIMEOUT_MS = 60_000;

function statusMessage(code: number, body: string): string {
  try {
    const s = JSON.parse(body) as { message?: unknown };
    if (typeof s.message === 'string') return s.message;
  } catch {
    // not a Status object
  }
  return body.trim().slice(0, 200) || http.STATUS_CODES[code] || `HTTP ${code}`;
}

export async function getJson(kc: KubeConfig, path: string, signal?: AbortSignal): Promise<unknown> {
  return requestJson(kc, 'GET', path, undefined, signal);
}

/** One JSON request (GET, POST, PUT, PATCH as a merge patch, DELETE); a non-2xx answer is a KubeHttpError. */
export async function requestJson(kc: KubeConfig, method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<unknown> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig: no current cluster');
  const url = new URL(cluster.server + path);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string | number> = { Accept: 'application/json' };
  if (payload) {
    headers['Content-Type'] = method === 'PATCH' ? 'application/merge-patch+json' : 'application/json';
    headers['Content-Length'] = payload.length;
  }
  const opts: https.RequestOptions = { method, headers };
  await kc.applyToHTTPSOptions(opts);
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { ...opts, timeout: REQUEST_TIMEOUT_MS, signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const code = res.statusCode ?? 0;
        if (code < 200 || code > 299) {
          reject(new KubeHttpError(code, `${method} ${path}: ${code} ${statusMessage(code, text)}`));
          return;
        }
        try {
          resolve(text === '' ? undefined : JSON.parse(text));
        } catch (err) {
          reject(new Error(`${method} ${path}: invalid JSON: ${(err as Error).message}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

export interface RawList {
  metadata?: { resourceVersion?: string; continue?: string };
  items: Array<Record<string, unknown>>;
}

const PAGE_SIZE = 500;

/** A full LIST in pages of 500 (as client-go's informers); restarts if a continue token expires. */
export async function listAll(kc: KubeConfig, path: string, signal?: AbortSignal): Promise<RawList> {
  for (let attempt = 0; ; attempt++) {
    const items: Array<Record<string, unknown>> = [];
    let cont: string | undefined;
    let rv: string | undefined;
    try {
      do {
        const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
        if (cont) q.set('continue', cont);
        const page = (await getJson(kc, `${path}?${q.toString()}`, signal)) as RawList;
        if (!page || !Array.isArray(page.items)) throw new Error(`GET ${path}: not a list`);
        items.push(...page.items);
        rv = page.metadata?.resourceVersion;
        cont = page.metadata?.continue || undefined;
      } while (cont);
    } catch (err) {
      if (err instanceof KubeHttpError && err.statusCode === 410 && cont && attempt < 2) continue;
      throw err;
    }
    return { metadata: { resourceVersion: rv }, items };
  }
}
