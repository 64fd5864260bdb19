/**
 * The response bytes each proxy received from meshd, per phase, kept so the floor server can
 * replay them exactly. Raw Buffers are held while a phase runs (no work on the hot path); when
 * the phase ends they are compacted: the run of resource fields of each response (the bulk, and
 * usually the same for many proxies) is interned by hash, the rest (version, type, nonce) kept
 * per response. File format, a sequence of entries:
 *   'B' u32 blobId u32 len bytes          a resource run, first time seen
 *   'R' u32 phase u32 proxy u32 headLen head u32 blobId (0xffffffff: none) u32 tailLen tail
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';

const NO_BLOB = 0xffffffff;

interface Compacted {
  phase: number;
  proxy: number;
  head: Buffer;
  blob: number;
  tail: Buffer;
}

/** Finds the resource run of a response: [start, end) or undefined to store it whole. */
export type RunFinder = (buf: Buffer) => { start: number; end: number } | undefined;

export class RecordingWriter {
  private raw: { phase: number; proxy: number; buf: Buffer }[] = [];
  private readonly records: Compacted[] = [];
  private readonly blobIds = new Map<string, number>();
  private readonly blobs: Buffer[] = [];
  recordedBytes = 0;
  uniqueBytes = 0;

  constructor(private readonly findRun: RunFinder) {}

  private rawBytes = 0;

  /** Keeps a response; past `limitBytes` of raw Buffers it compacts early (bounds memory at scale). */
  add(phase: number, proxy: number, buf: Buffer, limitBytes = 512 * 2 ** 20): void {
    this.raw.push({ phase, proxy, buf });
    this.recordedBytes += buf.length;
    this.rawBytes += buf.length;
    if (this.rawBytes > limitBytes) this.compact();
  }

  /** Interns what was recorded so far (call between measured phases). */
  compact(): void {
    for (const { phase, proxy, buf } of this.raw) {
      const run = this.findRun(buf);
      if (!run || run.end <= run.start) {
        this.records.push({ phase, proxy, head: Buffer.from(buf), blob: NO_BLOB, tail: Buffer.alloc(0) });
        continue;
      }
      const body = buf.subarray(run.start, run.end);
      const key = `${body.length}:${createHash('sha1').update(body).digest('base64')}`;
      let id = this.blobIds.get(key);
      if (id === undefined) {
        id = this.blobs.length;
        this.blobs.push(Buffer.from(body));
        this.blobIds.set(key, id);
        this.uniqueBytes += body.length;
      }
      this.records.push({ phase, proxy, head: Buffer.from(buf.subarray(0, run.start)), blob: id, tail: Buffer.from(buf.subarray(run.end)) });
    }
    this.raw = [];
    this.rawBytes = 0;
  }

  /** Writes blobs then records; returns bytes written. */
  dump(file: string): number {
    this.compact();
    const fd = fs.openSync(file, 'w');
    let written = 0;
    const u32 = (n: number): Buffer => {
      const b = Buffer.allocUnsafe(4);
      b.writeUInt32LE(n);
      return b;
    };
    const write = (parts: Buffer[]): void => {
      const b = Buffer.concat(parts);
      fs.writeSync(fd, b);
      written += b.length;
    };
    try {
      this.blobs.forEach((b, id) => write([Buffer.from('B'), u32(id), u32(b.length), b]));
      for (const r of this.records) write([Buffer.from('R'), u32(r.phase), u32(r.proxy), u32(r.head.length), r.head, u32(r.blob), u32(r.tail.length), r.tail]);
    } finally {
      fs.closeSync(fd);
    }
    return written;
  }
}

/** One recorded response: its bytes are head + blob + tail (joined when sent). */
export interface Recorded {
  phase: number;
  proxy: number;
  parts: Buffer[];
  bytes: number;
}

/** Reads one dump file; blob ids are per file. */
export function readRecording(file: string): Recorded[] {
  const data = fs.readFileSync(file);
  const blobs = new Map<number, Buffer>();
  const out: Recorded[] = [];
  let p = 0;
  const u32 = (): number => {
    const n = data.readUInt32LE(p);
    p += 4;
    return n;
  };
  const bytes = (n: number): Buffer => {
    const b = data.subarray(p, p + n);
    p += n;
    return b;
  };
  while (p < data.length) {
    const kind = String.fromCharCode(data[p++] as number);
    if (kind === 'B') {
      const id = u32();
      blobs.set(id, bytes(u32()));
    } else if (kind === 'R') {
      const phase = u32();
      const proxy = u32();
      const head = bytes(u32());
      const blobId = u32();
      const tail = bytes(u32());
      const blob = blobId === NO_BLOB ? undefined : blobs.get(blobId);
      if (blobId !== NO_BLOB && !blob) throw new Error(`${file}: record refers to unknown blob ${blobId}`);
      const parts = blob ? [head, blob, tail] : [head, tail];
      out.push({ phase, proxy, parts, bytes: parts.reduce((s, b) => s + b.length, 0) });
    } else throw new Error(`${file}: corrupt recording at byte ${p - 1}`);
  }
  return out;
}
