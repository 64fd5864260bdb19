/**
 * Responses shared by every proxy of a class. Proxies with equal config inputs get equal
 * resources (engine.ts), so at one version they are sent equal responses: each distinct response
 * is serialised once, with its gRPC frame header, and the same bytes are written to every stream
 * that is sent it. A nonce only has to be unique within a stream, so a shared response carries
 * one nonce for all of them.
 *
 * This is what keeps a push to 2,000 proxies from allocating 2,000 copies of a 620 kB route
 * table (and the garbage collections that external memory brings with it on a large heap).
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';

/** The framed gRPC message (5-byte header, then the serialised response) a response object carries. */
export const FRAMED = Symbol('framed gRPC message');

export interface SharedResponse {
  readonly nonce: string;
  /** Increases with every new response (its nonce's number): a stream takes only ever newer ones. */
  readonly seq: number;
  /** The gRPC message: flag byte 0 (not compressed), 4-byte length, the DiscoveryResponse. */
  readonly framed: Buffer;
}

export interface SharedResponsesOptions {
  /** Bytes of framed responses kept for reuse (0: none shared). */
  maxBytes: number;
}

/** Shared responses of the current version, keyed by what they carry. */
export class SharedResponses {
  private readonly ids = new WeakMap<object, number>();
  /** Keys of lists made once per set, by the list (the key names the kind and type it was made for). */
  private readonly keys = new WeakMap<readonly object[], { kind: string; typeUrl: string; key: string }>();
  /** What a kept list holds, as a short string: made once per list. */
  private readonly listKeys = new WeakMap<readonly object[], string>();
  private nextId = 0;
  private nonceCounter = 0;
  private version?: string;
  /** Responses sent at least twice, with their bytes. */
  private readonly frames: LRUCache<string, SharedResponse> | undefined;
  /** Responses sent so far, by their number only: a response one proxy alone gets never holds its bytes here. */
  private readonly seen = new LRUCache<string, number>({ max: 20_000 });

  constructor(opts: SharedResponsesOptions) {
    this.frames = opts.maxBytes > 0 ? new LRUCache<string, SharedResponse>({ maxSize: opts.maxBytes, sizeCalculation: (r) => r.framed.length + 64 }) : undefined;
  }

  /**
   * Lets go of the kept bytes (when nothing is being pushed, nothing is written again soon); the
   * nonces stay, so a proxy of the class that comes later still gets the class's response.
   */
  releaseBytes(): void {
    this.frames?.clear();
  }

  /** Forgets every response. */
  clear(): void {
    this.frames?.clear();
    this.seen.clear();
  }

  /** Framed responses kept, and their bytes (for tests and debug). */
  stats(): { responses: number; bytes: number } {
    return { responses: this.frames?.size ?? 0, bytes: this.frames?.calculatedSize ?? 0 };
  }

  private id(o: object): number {
    let id = this.ids.get(o);
    if (id === undefined) this.ids.set(o, (id = ++this.nextId));
    return id;
  }

  private listKey(list: readonly object[]): string {
    let key = this.listKeys.get(list);
    if (key === undefined) {
      key = '';
      for (const r of list) key += `${this.id(r)},`;
      if (key.length > 64) key = createHash('sha1').update(key).digest('base64');
      this.listKeys.set(list, key);
    }
    return key;
  }

  private entry(version: string, key: string, build: (nonce: string) => Buffer | undefined): SharedResponse | undefined {
    if (!this.frames) return undefined;
    if (version !== this.version) {
      // Responses of an older version are never sent again.
      this.clear();
      this.version = version;
    }
    const kept = this.frames.get(key);
    if (kept) return kept;
    // The first time, the response gets the nonce all later copies will carry, and its own bytes;
    // a second proxy asking for it shows it is shared, and its bytes are kept.
    let seq = this.seen.get(key);
    const first = seq === undefined;
    if (seq === undefined) this.seen.set(key, (seq = ++this.nonceCounter));
    const nonce = `s${seq}`;
    const framed = build(nonce);
    if (!framed) return undefined;
    const e = { nonce, seq, framed };
    if (!first) this.frames.set(key, e);
    return e;
  }

  /**
   * The response of these resources at this version, for every stream sent it: `body` serialises
   * it with a nonce (called at most twice per distinct response). `kind` tells apart responses of
   * other shapes (delta) with the same resources; `extra` is the rest of what the body holds.
   * `lists`, when given, are kept lists whose concatenation is `resources`: the key is made from
   * theirs, so a list made afresh for each proxy costs no pass over its resources.
   */
  response(
    version: string,
    kind: string,
    typeUrl: string,
    resources: readonly object[],
    extra: readonly string[],
    body: (nonce: string) => Buffer | undefined,
    lists?: readonly (readonly object[])[],
  ): SharedResponse | undefined {
    // A list made once per set (a whole CDS or LDS set) keeps its key.
    const frozen = extra.length === 0 && Object.isFrozen(resources);
    const known = frozen ? this.keys.get(resources) : undefined;
    let key = known?.kind === kind && known.typeUrl === typeUrl ? known.key : undefined;
    if (key === undefined && lists && extra.length === 0) {
      key = `${kind}\0${typeUrl}\0lists`;
      for (const l of lists) key += `\0${this.listKey(l)}`;
      if (key.length > 256) key = createHash('sha1').update(key).digest('base64');
    }
    if (key === undefined) {
      key = `${kind}\0${typeUrl}\0`;
      for (const r of resources) key += `${this.id(r)},`;
      for (const x of extra) key += `\0${x}`;
      if (key.length > 256) key = createHash('sha1').update(key).digest('base64');
      if (frozen) this.keys.set(resources, { kind, typeUrl, key });
    }
    return this.entry(version, key, (nonce) => frame(body(nonce)));
  }
}

/** A serialised message with its gRPC frame header: flag 0 (not compressed), the 4-byte length. */
function frame(body: Buffer | undefined): Buffer | undefined {
  if (!body) return undefined;
  const out = Buffer.allocUnsafe(body.length + 5);
  out.writeUInt8(0, 0);
  out.writeUInt32BE(body.length, 1);
  body.copy(out, 5);
  return out;
}
