/**
 * Plain JSON requests to the API server with client-node's authentication applied. The Gateway
 * API kinds have no typed client, and the writers here compare JSON with JSON: the typed
 * clients would turn timestamps into Dates and drop fields they do not know.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** A non-2xx answer: `code` as client-node's ApiException has it (see leader/lease.ts statusOf). */
export class KubeRestError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export type Json = Record<string, unknown>;

const REQUEST_TIMEOUT_MS = 30_000;

export interface KubeRest {
  get(path: string): Promise<Json>;
  /** GET that answers undefined for 404. */
  find(path: string): Promise<Json | undefined>;
  post(path: string, body: Json): Promise<Json>;
  put(path: string, body: Json): Promise<Json>;
  /** PATCH with the given content type (`application/merge-patch+json`, `application/apply-patch+yaml`, …). */
  patch(path: string, body: Json, contentType: string): Promise<Json>;
}

/** `userAgent` names the writer in the API server's audit log (istiod's pilot-discovery/<version>). */
export function kubeRest(kc: KubeConfig, userAgent?: string): KubeRest {
  const request = async (method: string, path: string, body?: Json, contentType = 'application/json'): Promise<Json> => {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig: no current cluster');
    const url = new URL(cluster.server + path);
    const text = body === undefined ? undefined : JSON.stringify(body);
    const opts: https.RequestOptions = {
      method,
      headers: {
        Accept: 'application/json',
        ...(userAgent ? { 'User-Agent': userAgent } : {}),
        ...(text !== undefined ? { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text) } : {}),
      },
    };
    await kc.applyToHTTPSOptions(opts);
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, { ...opts, timeout: REQUEST_TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const out = Buffer.concat(chunks).toString('utf8');
          const code = res.statusCode ?? 0;
          let parsed: unknown;
          try {
            parsed = out ? JSON.parse(out) : {};
          } catch {
            parsed = undefined;
          }
          if (code < 200 || code > 299) {
            const msg = typeof (parsed as { message?: unknown } | undefined)?.message === 'string' ? (parsed as { message: string }).message : out.trim().slice(0, 200);
            reject(new KubeRestError(code, `${method} ${path}: ${code} ${msg}`));
            return;
          }
          if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
            reject(new Error(`${method} ${path}: the answer is not a JSON object`));
            return;
          }
          resolve(parsed as Json);
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end(text);
    });
  };
  return {
    get: (p) => request('GET', p),
    find: async (p) => {
      try {
        return await request('GET', p);
      } catch (err) {
        if (err instanceof KubeRestError && err.code === 404) return undefined;
        throw err;
      }
    },
    post: (p, b) => request('POST', p, b),
    put: (p, b) => request('PUT', p, b),
    patch: (p, b, ct) => request('PATCH', p, b, ct),
  };
}

export function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function records(v: unknown): Json[] {
  return Array.isArray(v) ? v.filter(isRecord) : [];
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
