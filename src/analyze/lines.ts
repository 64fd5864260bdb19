/**
 * Field path → line in the file an object was read from, for istioctl's `file.yaml:12`
 * references. The file is read again with the `yaml` library's CST (meshd's own reader keeps
 * no positions); a document is found by its kind and name, so comment-only documents counted
 * differently by the two readers cannot shift a message onto another object.
 */
import { isMap, isSeq, LineCounter, parseAllDocuments, type Document } from 'yaml';
import type { Message } from './messages';

type Seg = string | number;

/** `spec.http[0].route["a.b"]` → ['spec', 'http', 0, 'route', 'a.b']. */
export function splitPath(path: string): Seg[] {
  const out: Seg[] = [];
  const re = /([^.[\]]+)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]/g;
  for (let m = re.exec(path); m; m = re.exec(path)) {
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] !== undefined) out.push(Number(m[2]));
    else if (m[3] !== undefined) out.push(m[3].replace(/\\(.)/g, '$1'));
  }
  return out;
}

interface Node {
  range?: [number, number, number] | null;
}

function child(node: unknown, seg: Seg): { key?: Node; value?: Node } | undefined {
  if (isMap(node) && typeof seg === 'string') {
    const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === seg);
    return pair ? { key: pair.key as Node, value: pair.value as Node } : undefined;
  }
  if (isSeq(node) && typeof seg === 'number') {
    const v = node.items[seg] as Node | undefined;
    return v ? { value: v } : undefined;
  }
  return undefined;
}

interface ParsedFile {
  docs: Document[];
  lines: LineCounter;
}

/** Resolves lines for messages about objects read from files; `read` gives a file's text. */
export class LineFinder {
  private readonly files = new Map<string, ParsedFile | undefined>();

  constructor(private readonly read: (file: string) => string | undefined) {}

  private file(name: string): ParsedFile | undefined {
    if (!this.files.has(name)) {
      const text = this.read(name);
      let parsed: ParsedFile | undefined;
      if (text !== undefined) {
        try {
          const lines = new LineCounter();
          parsed = { docs: parseAllDocuments(text, { lineCounter: lines, uniqueKeys: false }) as Document[], lines };
          if (!Array.isArray(parsed.docs)) parsed = undefined;
        } catch {
          parsed = undefined;
        }
      }
      this.files.set(name, parsed);
    }
    return this.files.get(name);
  }

  /** The 1-based line of `field` in the object (or of the object), if the file can be read. */
  line(file: string, kind: string, name: string, document: number | undefined, field: string | undefined): number | undefined {
    const f = this.file(file);
    if (!f) return undefined;
    const candidates: Array<{ root: unknown; index: number }> = [];
    f.docs.forEach((d, index) => {
      const roots: unknown[] = [d.contents];
      const items = child(d.contents, 'items')?.value;
      if (isSeq(items)) roots.push(...items.items);
      for (const root of roots) {
        const k = (child(root, 'kind')?.value as { value?: unknown } | undefined)?.value;
        const meta = child(root, 'metadata')?.value;
        const n = (child(meta, 'name')?.value as { value?: unknown } | undefined)?.value;
        if (k === kind && n === name) candidates.push({ root, index });
      }
    });
    if (candidates.length === 0) return undefined;
    const doc = document ?? 0;
    candidates.sort((a, b) => Math.abs(a.index - doc) - Math.abs(b.index - doc));
    const root = candidates[0]?.root as Node;
    let node: Node | undefined = root;
    let at: Node | undefined = root;
    for (const seg of field ? splitPath(field) : []) {
      const c = child(node, seg);
      if (!c) break;
      node = c.value;
      at = c.key ?? c.value;
    }
    const offset = at?.range?.[0];
    return offset === undefined ? undefined : f.lines.linePos(offset).line;
  }

  /** Fills in `resource.line` for every message about an object read from a file. */
  annotate(messages: readonly Message[]): void {
    for (const m of messages) {
      const r = m.resource;
      if (!r || r.file === undefined || r.line !== undefined) continue;
      const line = this.line(r.file, r.kind, r.name, r.document, m.field);
      if (line !== undefined) r.line = line;
    }
  }
}
