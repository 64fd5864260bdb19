/**
 * The JWKS resolver: fetches the key sets RequestAuthentications name (their jwksUri, or the
 * jwks_uri of their issuer's OpenID discovery document), keeps them, and refreshes them, as
 * istiod's JwksResolver does with PILOT_JWT_ENABLE_REMOTE_JWKS=false (its default):
 *
 * - a source named for the first time is fetched before the config that names it is built
 *   (`want` resolves when those fetches settle, each bounded by its timeout, 5 s by default);
 * - every wanted source is fetched again every 20 minutes; after a round with failures the next
 *   comes after 1 minute, doubling up to 60 minutes while failures go on;
 * - a source that fails keeps the keys fetched before; one never fetched has none, and the
 *   generators inline a JWKS that rejects every token in its place; either way the error is in
 *   `entries()` (so in the snapshot's errors and /debug/configz) and in the log, once per change;
 * - documents are bounded: each by bytes, the cache by count and total bytes (lru-cache); a
 *   source beyond the count bound is not fetched, and says so.
 *
 * This is I/O: it lives outside the model. The model only sees `entries()`, passed to
 * buildSnapshot; a refresh that changes anything calls `onChange`, which triggers a rebuild and
 * a push like any config change.
 */
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { JwksFetchRequest } from '../model/build-reqauthn';
import { type JwksEntry, parseJwks } from '../model/jwks';
import { type TextFetcher, httpsFetcher } from './fetch';

export interface JwksResolverOptions {
  /** How documents are fetched (default: https with the system roots plus `extraCaPems`). */
  fetcher?: TextFetcher;
  /** PEM CAs trusted besides the system roots (the default fetcher's `--jwks-ca-file`). */
  extraCaPems?: readonly string[];
  /** Per fetch, when the rule sets no timeout (istiod: 5 s). */
  timeoutMs?: number;
  /** Refresh period (istiod's PILOT_JWT_PUB_KEY_REFRESH_INTERVAL: 20 min). */
  refreshIntervalMs?: number;
  /** After a round with failures (istiod: 1 min), doubling up to `maxFailureIntervalMs` (60 min). */
  failureIntervalMs?: number;
  maxFailureIntervalMs?: number;
  /** Most sources kept and fetched. */
  maxEntries?: number;
  /** Most bytes of JWKS kept in all. */
  maxBytes?: number;
  /** Largest document fetched. */
  maxDocumentBytes?: number;
  /** Called after a refresh changed `entries()` (not after `want`, whose caller waits for it). */
  onChange?: () => void;
  log?: Logger;
  /** Registers istiod's pilot_jwks_resolver_network_fetch_{success,fail}_total. */
  registry?: Registry;
  now?: () => number;
}

export const JWKS_DEFAULTS = {
  timeoutMs: 5_000,
  refreshIntervalMs: 20 * 60_000,
  failureIntervalMs: 60_000,
  maxFailureIntervalMs: 60 * 60_000,
  maxEntries: 1_000,
  maxBytes: 32 * 1024 * 1024,
  maxDocumentBytes: 1024 * 1024,
} as const;

interface Doc {
  json: string;
  fetchedAt: number;
}

interface Failure {
  error: string;
  at: number;
  since: number;
}

/** One source as /debug/configz shows it. */
export interface JwksStatus {
  source: string;
  url: string;
  discovery: boolean;
  state: 'ok' | 'stale' | 'failed' | 'pending';
  fetched_at?: string;
  bytes?: number;
  error?: string;
  failing_since?: string;
}

export class JwksResolver {
  private readonly opts: Required<Omit<JwksResolverOptions, 'fetcher' | 'extraCaPems' | 'onChange' | 'log' | 'registry'>>;
  private readonly fetcher: TextFetcher;
  private readonly docs: LRUCache<string, Doc>;
  private readonly failures = new Map<string, Failure>();
  private readonly inflight = new Map<string, Promise<boolean>>();
  private wanted = new Map<string, JwksFetchRequest>();
  /** Wanted sources beyond the count bound: never fetched. */
  private over = new Set<string>();
  private view?: ReadonlyMap<string, JwksEntry>;
  private timer?: NodeJS.Timeout;
  private nextAt = Infinity;
  private failedRounds = 0;
  private closed = false;
  private readonly success?: Counter;
  private readonly fail?: Counter;

  constructor(private readonly o: JwksResolverOptions = {}) {
    this.opts = {
      timeoutMs: o.timeoutMs ?? JWKS_DEFAULTS.timeoutMs,
      refreshIntervalMs: o.refreshIntervalMs ?? JWKS_DEFAULTS.refreshIntervalMs,
      failureIntervalMs: o.failureIntervalMs ?? JWKS_DEFAULTS.failureIntervalMs,
      maxFailureIntervalMs: o.maxFailureIntervalMs ?? JWKS_DEFAULTS.maxFailureIntervalMs,
      maxEntries: o.maxEntries ?? JWKS_DEFAULTS.maxEntries,
      maxBytes: o.maxBytes ?? JWKS_DEFAULTS.maxBytes,
      maxDocumentBytes: o.maxDocumentBytes ?? JWKS_DEFAULTS.maxDocumentBytes,
      now: o.now ?? Date.now,
    };
    this.fetcher = o.fetcher ?? httpsFetcher({ extraCaPems: o.extraCaPems });
    this.docs = new LRUCache<string, Doc>({
      max: this.opts.maxEntries,
      maxSize: this.opts.maxBytes,
      sizeCalculation: (d) => Math.max(1, d.json.length),
      // A wanted source pushed out by others changes what is served.
      dispose: (_d, key, reason) => {
        if (reason === 'evict' && this.wanted.has(key)) this.view = undefined;
      },
    });
    if (o.registry) {
      const registers = [o.registry];
      this.success = new Counter({ name: 'pilot_jwks_resolver_network_fetch_success_total', help: 'Total number of successfully network fetch by pilot jwks resolver', registers });
      this.fail = new Counter({ name: 'pilot_jwks_resolver_network_fetch_fail_total', help: 'Total number of failed network fetch by pilot jwks resolver', registers });
    }
  }

  /**
   * The sources the config names now. Sources not seen before are fetched; the promise
   * resolves once they (and any fetch already running for a wanted source) have settled.
   */
  async want(requests: readonly JwksFetchRequest[]): Promise<void> {
    if (this.closed) return;
    const sorted = [...requests].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const next = new Map(sorted.slice(0, this.opts.maxEntries).map((r) => [r.key, r]));
    const over = new Set(sorted.slice(this.opts.maxEntries).map((r) => r.key));
    const same = next.size === this.wanted.size && [...next.keys()].every((k) => this.wanted.has(k)) && over.size === this.over.size && [...over].every((k) => this.over.has(k));
    if (!same) this.view = undefined;
    if (over.size > this.over.size) this.o.log?.warn({ sources: [...over] }, `more than ${this.opts.maxEntries} JWKS sources are named; ${over.size} are not fetched`);
    const before = this.wanted;
    this.wanted = next;
    this.over = over;
    for (const k of [...this.failures.keys()]) if (!next.has(k)) this.failures.delete(k);
    const waits: Promise<boolean>[] = [];
    const now = this.opts.now();
    for (const [key, req] of next) {
      const running = this.inflight.get(key);
      const doc = this.docs.peek(key);
      // A source named again after a while keeps no refresh going: older keys are fetched anew.
      const stale = doc !== undefined && !before.has(key) && now - doc.fetchedAt > this.opts.refreshIntervalMs;
      if (running) waits.push(running);
      else if ((!doc && !this.failures.has(key)) || stale) waits.push(this.fetch(req));
    }
    await Promise.all(waits);
    if (this.failures.size > 0) this.schedule(this.opts.failureIntervalMs);
    else if (next.size > 0) this.schedule(this.opts.refreshIntervalMs);
  }

  /** Per wanted source, what the snapshot should hold (one map until something changes). */
  entries(): ReadonlyMap<string, JwksEntry> {
    if (this.view) return this.view;
    const out = new Map<string, JwksEntry>();
    for (const key of this.wanted.keys()) {
      const doc = this.docs.get(key);
      const failure = this.failures.get(key);
      if (doc) out.set(key, failure ? { keys: doc.json, error: failure.error } : { keys: doc.json });
      else
        out.set(key, {
          error:
            failure?.error ?? (this.inflight.has(key) ? 'not fetched yet' : `evicted from the JWKS cache (at most ${this.opts.maxEntries} documents, ${this.opts.maxBytes} bytes)`),
        });
    }
    for (const key of this.over) out.set(key, { error: `not fetched: more than ${this.opts.maxEntries} JWKS sources are named` });
    this.view = out;
    return out;
  }

  /** Fetches every wanted source again now; resolves true when anything served changed. */
  async refresh(): Promise<boolean> {
    if (this.closed) return false;
    const changed = (await Promise.all([...this.wanted.values()].map((r) => this.inflight.get(r.key) ?? this.fetch(r)))).some(Boolean);
    this.failedRounds = this.failures.size > 0 ? this.failedRounds + 1 : 0;
    const delay = this.failedRounds > 0 ? Math.min(this.opts.failureIntervalMs * 2 ** (this.failedRounds - 1), this.opts.maxFailureIntervalMs) : this.opts.refreshIntervalMs;
    this.nextAt = Infinity;
    if (this.wanted.size > 0) this.schedule(delay);
    if (changed && !this.closed) this.o.onChange?.();
    return changed;
  }

  status(): { sources: JwksStatus[]; cache: { documents: number; bytes: number; max_documents: number; max_bytes: number } } {
    const iso = (t: number): string => new Date(t).toISOString();
    const sources: JwksStatus[] = [...this.wanted.values()].map((r) => {
      const doc = this.docs.peek(r.key);
      const f = this.failures.get(r.key);
      const state = doc ? (f ? 'stale' : 'ok') : f ? 'failed' : 'pending';
      return {
        source: r.key,
        url: r.url,
        discovery: r.discovery,
        state,
        ...(doc ? { fetched_at: iso(doc.fetchedAt), bytes: doc.json.length } : {}),
        ...(f ? { error: f.error, failing_since: iso(f.since) } : {}),
      };
    });
    for (const key of this.over)
      sources.push({ source: key, url: key, discovery: false, state: 'failed', error: `not fetched: more than ${this.opts.maxEntries} JWKS sources are named` });
    return { sources, cache: { documents: this.docs.size, bytes: this.docs.calculatedSize, max_documents: this.opts.maxEntries, max_bytes: this.opts.maxBytes } };
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Runs the next refresh after `delay`, unless one is due sooner already. */
  private schedule(delay: number): void {
    if (this.closed) return;
    const at = this.opts.now() + delay;
    if (at >= this.nextAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.nextAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.nextAt = Infinity;
      this.refresh().catch((err: unknown) => this.o.log?.error({ err }, 'JWKS refresh failed'));
    }, delay);
    this.timer.unref();
  }

  private fetch(req: JwksFetchRequest): Promise<boolean> {
    const p = this.fetchOnce(req).finally(() => this.inflight.delete(req.key));
    this.inflight.set(req.key, p);
    return p;
  }

  /** Fetches one source; records the result; true when what is served for it changed. */
  private async fetchOnce(req: JwksFetchRequest): Promise<boolean> {
    const limits = { timeoutMs: req.timeoutMs ?? this.opts.timeoutMs, maxBytes: this.opts.maxDocumentBytes };
    const before = this.docs.peek(req.key)?.json;
    const hadError = this.failures.get(req.key)?.error;
    let json: string;
    try {
      let url = req.url;
      if (req.discovery) url = jwksUriOf(await this.get(url, limits), url);
      const parsed = parseJwks(await this.get(url, limits));
      if ('error' in parsed) throw new Error(`${url} is not a usable JWKS: ${parsed.error}`);
      json = parsed.json;
    } catch (err) {
      if (this.closed || !this.wanted.has(req.key)) return false;
      const error = (err as Error).message;
      const now = this.opts.now();
      const prev = this.failures.get(req.key);
      this.failures.set(req.key, { error, at: now, since: prev?.since ?? now });
      if (error !== hadError) {
        const served = before !== undefined ? 'the keys fetched before are still served' : 'a JWKS that rejects every token is served';
        this.o.log?.warn({ source: req.key, error }, `JWKS ${req.url} could not be fetched: ${error}; ${served}`);
      }
      const changed = error !== hadError;
      if (changed) this.view = undefined;
      return changed;
    }
    if (this.closed || !this.wanted.has(req.key)) return false;
    const now = this.opts.now();
    this.docs.set(req.key, { json, fetchedAt: now });
    if (this.docs.has(req.key)) this.failures.delete(req.key);
    else {
      // Larger than the whole cache: lru-cache drops it (and any older copy).
      const error = `the JWKS of ${json.length} bytes does not fit the JWKS cache of ${this.opts.maxBytes} bytes`;
      this.failures.set(req.key, { error, at: now, since: this.failures.get(req.key)?.since ?? now });
      if (error !== hadError) this.o.log?.warn({ source: req.key, error }, `JWKS ${req.url} is not served: ${error}`);
    }
    const error = this.failures.get(req.key)?.error;
    if (error === undefined && hadError !== undefined) this.o.log?.info({ source: req.key }, `JWKS ${req.url} fetched after failing (${hadError})`);
    else if (error === undefined && before !== undefined && json !== before) this.o.log?.info({ source: req.key }, `JWKS ${req.url} changed`);
    const changed = this.docs.peek(req.key)?.json !== before || error !== hadError;
    if (changed) this.view = undefined;
    return changed;
  }

  private async get(url: string, limits: { timeoutMs: number; maxBytes: number }): Promise<string> {
    try {
      const body = await this.fetcher(url, limits);
      this.success?.inc();
      return body;
    } catch (err) {
      this.fail?.inc();
      throw err;
    }
  }
}

/** The `jwks_uri` of an OpenID discovery document, which must be https. */
function jwksUriOf(body: string, from: string): string {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    throw new Error(`${from} is not JSON`);
  }
  const uri = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>)['jwks_uri'] : undefined;
  if (typeof uri !== 'string' || uri === '') throw new Error(`invalid jwks_uri ${JSON.stringify(uri ?? null)} in OpenID discovery configuration ${from}`);
  if (!uri.startsWith('https://')) throw new Error(`jwks_uri ${JSON.stringify(uri)} in ${from} is not https`);
  return uri;
}
