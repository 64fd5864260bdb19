/**
 * One cheap pass over YAML text before any parser sees it (about ten times quicker than
 * parsing, and never recursive):
 *
 * - where each document starts (a `---` line), so a large file is parsed a slice at a time
 *   and the document count is known before the first one is read;
 * - for each document, an upper estimate of how deep its mappings and lists nest (block
 *   collections by indentation and `- ` / `? ` / `key:` indicators, flow collections by their
 *   brackets, skipping quoted strings, comments and block scalars). The recursive reader is
 *   used only where the estimate is within the limit; elsewhere the careful reader measures
 *   the real depth on its token tree first.
 *
 * Text with directives (`%YAML`) or document end markers (`...`) is not cut into segments
 * (their meaning spans documents); it is still counted and estimated.
 */

export interface YamlSegment {
  /** Character offsets: [start, end). Every segment but the first starts at a `---` line. */
  start: number;
  end: number;
  /** 0-based line number of `start`. */
  line: number;
  /** Upper estimate of the nesting depth of mappings and lists (a top-level mapping is 1). */
  depth: number;
  /** Documents the segment holds (the first segment holds none if it is only comments). */
  documents: number;
  /** 0-based line where the estimate first passed the depth limit, if it did. */
  deepLine?: number;
}

export interface YamlScan {
  segments: YamlSegment[];
  /** Documents in the whole text. */
  documents: number;
}

const TAB = 9;
const LF = 10;
const CR = 13;
const SP = 32;
const BANG = 33;
const DQ = 34;
const HASH = 35;
const PCT = 37;
const AMP = 38;
const SQ = 39;
const STAR = 42;
const COMMA = 44;
const DASH = 45;
const DOT = 46;
const COLON = 58;
const GT = 62;
const QM = 63;
const LBR = 91;
const BSL = 92;
const RBR = 93;
const LBC = 123;
const PIPE = 124;
const RBC = 125;

const MAP = 0;
const SEQ = 1;

function blank(c: number): boolean {
  return c === SP || c === TAB;
}
/** End of line, or past the end of the text (charCodeAt gives NaN). */
function eol(c: number): boolean {
  return c === LF || c === CR || c !== c;
}
function wsOrEol(c: number): boolean {
  return blank(c) || eol(c);
}
function flowIndicator(c: number): boolean {
  return c === COMMA || c === LBR || c === RBR || c === LBC || c === RBC;
}

/** Scanner state that lives across lines. */
class Scanner {
  private readonly cols: number[] = [];
  private readonly kinds: number[] = [];
  private flow = 0;
  /** Inside a quoted scalar that continues on the next line: its quote character. */
  private quote = 0;
  /** Inside a block scalar: lines indented more than this are its content. */
  private blockParent: number | undefined;
  /** The quoted scalar or flow collection just closed (a JSON-like node: `:` may follow it directly). */
  private jsonLike = false;
  depth = 0;
  /** The line being scanned, and the first one where the depth passed the limit. */
  line = 0;
  deepLine: number | undefined;

  constructor(
    private readonly t: string,
    private readonly limit: number,
  ) {}

  reset(): void {
    this.cols.length = 0;
    this.kinds.length = 0;
    this.flow = 0;
    this.quote = 0;
    this.blockParent = undefined;
    this.jsonLike = false;
  }

  private note(): void {
    const d = this.cols.length + this.flow;
    if (d > this.depth) this.depth = d;
    if (d > this.limit && this.deepLine === undefined) this.deepLine = this.line;
  }

  private top(): number {
    return this.cols.length > 0 ? (this.cols[this.cols.length - 1] as number) : -1;
  }

  private seqAt(col: number): void {
    if (this.top() === col && this.kinds[this.kinds.length - 1] === SEQ) return;
    this.cols.push(col);
    this.kinds.push(SEQ);
    this.note();
  }

  private mapAt(col: number): void {
    if (this.top() === col && this.kinds[this.kinds.length - 1] === SEQ) {
      // `key:` at the column of a sequence that sat under a key: the sequence ends.
      this.cols.pop();
      this.kinds.pop();
    }
    if (this.top() === col && this.kinds[this.kinds.length - 1] === MAP) return;
    this.cols.push(col);
    this.kinds.push(MAP);
    this.note();
  }

  /** Ends a quoted scalar started before `p`; the offset after it, or -1 if it goes on past the line. */
  private closeQuote(p: number, end: number, q: number): number {
    const t = this.t;
    for (let i = p; i < end; i++) {
      const c = t.charCodeAt(i);
      if (q === DQ && c === BSL) {
        i++;
        continue;
      }
      if (c === q) {
        if (q === SQ && t.charCodeAt(i + 1) === SQ) {
          i++;
          continue;
        }
        return i + 1;
      }
    }
    return -1;
  }

  /** One line, [lineStart, end) with `end` at its line break. */
  scanLine(lineStart: number, end: number): void {
    const t = this.t;
    let p = lineStart;
    if (this.quote !== 0) {
      const after = this.closeQuote(p, end, this.quote);
      if (after < 0) return;
      this.quote = 0;
      this.jsonLike = true;
      p = after;
      if (this.flow > 0) {
        p = this.flowScan(p, end, false);
        if (p < 0) return;
      }
      this.afterNode(p, end, -1, lineStart);
      return;
    }
    // Indentation is spaces; a tab there is a syntax error the parsers report, but it must not
    // make a line look less indented than it is.
    while (p < end && blank(t.charCodeAt(p))) p++;
    const indent = p - lineStart;
    if (this.blockParent !== undefined) {
      if (p >= end || indent > this.blockParent) return;
      this.blockParent = undefined;
    }
    if (p >= end || t.charCodeAt(p) === HASH) return;
    if (this.flow > 0) {
      const after = this.flowScan(p, end, true);
      if (after >= 0) this.afterNode(after, end, -1, lineStart);
      return;
    }
    while (this.cols.length > 0 && (this.cols[this.cols.length - 1] as number) > indent) {
      this.cols.pop();
      this.kinds.pop();
    }
    this.node(p, end, lineStart);
  }

  private skipBlank(p: number, end: number): number {
    while (p < end && blank(this.t.charCodeAt(p))) p++;
    return p;
  }

  /** A node starts at `p` (block context): indicators, properties, then its content. */
  node(p: number, end: number, lineStart: number): void {
    const t = this.t;
    for (;;) {
      p = this.skipBlank(p, end);
      if (p >= end) return;
      const c = t.charCodeAt(p);
      const next = t.charCodeAt(p + 1);
      if (c === DASH && wsOrEol(next)) {
        this.seqAt(p - lineStart);
        p++;
        continue;
      }
      if (c === QM && wsOrEol(next)) {
        this.mapAt(p - lineStart);
        p++;
        continue;
      }
      if (c === COLON && wsOrEol(next)) {
        p++;
        continue;
      }
      if (c === AMP || c === BANG) {
        while (p < end && !blank(t.charCodeAt(p))) p++;
        continue;
      }
      break;
    }
    const col = p - lineStart;
    const c = t.charCodeAt(p);
    if (c === HASH) return;
    if (c === LBR || c === LBC) {
      this.flow = 1;
      this.note();
      const after = this.flowScan(p + 1, end, false);
      if (after >= 0) this.afterNode(after, end, col, lineStart);
      return;
    }
    if (c === DQ || c === SQ) {
      const after = this.closeQuote(p + 1, end, c);
      if (after < 0) {
        this.quote = c;
        return;
      }
      this.afterNode(after, end, col, lineStart);
      return;
    }
    if (c === PIPE || c === GT) {
      // Its content: the following lines indented more than the collection it sits in.
      this.blockParent = this.top();
      return;
    }
    if (c === STAR) {
      while (p < end && !blank(t.charCodeAt(p))) p++;
      this.afterNode(p, end, col, lineStart);
      return;
    }
    // A plain scalar: a key if `: ` follows on this line, else a value running to the end of line.
    for (let i = p; i < end; i++) {
      const x = t.charCodeAt(i);
      if (x === COLON && wsOrEol(t.charCodeAt(i + 1))) {
        this.mapAt(col);
        this.node(i + 1, end, lineStart);
        return;
      }
      if (x === HASH && blank(t.charCodeAt(i - 1))) return;
    }
  }

  /** After a complete node at column `col` (-1: not a key candidate): `: value` makes it a key. */
  private afterNode(p: number, end: number, col: number, lineStart: number): void {
    p = this.skipBlank(p, end);
    if (p < end && this.t.charCodeAt(p) === COLON && wsOrEol(this.t.charCodeAt(p + 1))) {
      if (col >= 0) this.mapAt(col);
      this.node(p + 1, end, lineStart);
    }
  }

  /**
   * Flow context from `p`: every bracket outside quotes and comments opens or closes a
   * collection. Returns the offset just after the outermost closing bracket, or -1 when the
   * line ends still inside (or inside a quoted scalar).
   */
  private flowScan(p: number, end: number, lineStart: boolean): number {
    const t = this.t;
    let nodeStart = true;
    let afterBlank = lineStart;
    while (p < end) {
      const c = t.charCodeAt(p);
      if (blank(c)) {
        afterBlank = true;
        p++;
        continue;
      }
      if (c === HASH && afterBlank) return -1;
      afterBlank = false;
      if (nodeStart && (c === DQ || c === SQ)) {
        const after = this.closeQuote(p + 1, end, c);
        if (after < 0) {
          this.quote = c;
          return -1;
        }
        p = after;
        nodeStart = false;
        this.jsonLike = true;
        continue;
      }
      if (c === LBR || c === LBC) {
        this.flow++;
        this.note();
        nodeStart = true;
        this.jsonLike = false;
        p++;
        continue;
      }
      if (c === RBR || c === RBC) {
        if (this.flow > 0) this.flow--;
        this.jsonLike = true;
        nodeStart = false;
        p++;
        if (this.flow === 0) return p;
        continue;
      }
      if (c === COMMA) {
        nodeStart = true;
        this.jsonLike = false;
        p++;
        continue;
      }
      const next = t.charCodeAt(p + 1);
      if ((c === COLON || c === QM) && (wsOrEol(next) || flowIndicator(next) || (c === COLON && this.jsonLike))) {
        nodeStart = true;
        this.jsonLike = false;
        p++;
        continue;
      }
      if ((c === AMP || c === BANG) && nodeStart) {
        while (p < end && !blank(t.charCodeAt(p)) && !flowIndicator(t.charCodeAt(p))) p++;
        continue;
      }
      nodeStart = false;
      this.jsonLike = false;
      p++;
    }
    return -1;
  }
}

/** Cuts `text` into document segments and estimates each one's depth (noting where it passes `limit`). */
export function scanYaml(text: string, limit = Infinity): YamlScan {
  const segments: YamlSegment[] = [];
  const s = new Scanner(text, limit);
  let segStart = 0;
  let segLine = 0;
  let segDocs = 0;
  let documents = 0;
  let splittable = true;
  // After `...`: the next content starts a document even without `---`.
  let afterEnd = false;
  let line = 0;
  let maxDepth = 0;
  let deepLine: number | undefined;
  const close = (end: number): void => {
    if (end > segStart || segDocs > 0) {
      const seg: YamlSegment = { start: segStart, end, line: segLine, depth: s.depth, documents: segDocs };
      if (s.deepLine !== undefined) seg.deepLine = s.deepLine;
      segments.push(seg);
    }
    if (s.depth > maxDepth) maxDepth = s.depth;
    deepLine ??= s.deepLine;
  };
  for (let i = 0; i <= text.length;) {
    let end = text.indexOf('\n', i);
    if (end < 0) end = text.length;
    const lineEnd = end > i && text.charCodeAt(end - 1) === CR ? end - 1 : end;
    const c0 = text.charCodeAt(i);
    s.line = line;
    const marker = (c0 === DASH || c0 === DOT) && text.charCodeAt(i + 1) === c0 && text.charCodeAt(i + 2) === c0 && wsOrEol(text.charCodeAt(i + 3));
    if (marker && c0 === DASH) {
      close(i);
      s.reset();
      s.depth = 0;
      s.deepLine = undefined;
      segStart = i;
      segLine = line;
      segDocs = 1;
      documents++;
      afterEnd = false;
      s.node(i + 3, lineEnd, i);
    } else if (marker) {
      splittable = false;
      s.reset();
      afterEnd = true;
    } else {
      if (c0 === PCT && segDocs === 0) splittable = false;
      const content = lineHasContent(text, i, lineEnd);
      if (content && (afterEnd || (documents === 0 && segDocs === 0))) {
        if (c0 !== PCT) {
          documents++;
          segDocs++;
          afterEnd = false;
        }
      }
      s.scanLine(i, lineEnd);
    }
    line++;
    i = end + 1;
  }
  close(text.length);
  if (!splittable) {
    const whole: YamlSegment = { start: 0, end: text.length, line: 0, depth: maxDepth, documents };
    if (deepLine !== undefined) whole.deepLine = deepLine;
    return { segments: [whole], documents };
  }
  return { segments, documents };
}

function lineHasContent(t: string, p: number, end: number): boolean {
  while (p < end && blank(t.charCodeAt(p))) p++;
  return p < end && t.charCodeAt(p) !== HASH;
}
