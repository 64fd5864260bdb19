/**
 * An RE2 syntax checker. Istio compiles StringMatch regexes with Go's regexp package (RE2
 * syntax) and Envoy runs them with RE2, so JavaScript's RegExp is the wrong judge: it accepts
 * lookarounds and backreferences, which RE2 lacks, and rejects `(?i)` and `(?P<name>…)`, which
 * RE2 has. This follows Go's regexp/syntax parser with Perl flags and reports its errors.
 */

const MAX_REPEAT = 1000;
const MAX_DEPTH = 1000;
const POSIX_CLASSES: ReadonlySet<string> = new Set(['alnum', 'alpha', 'ascii', 'blank', 'cntrl', 'digit', 'graph', 'lower', 'print', 'punct', 'space', 'upper', 'word', 'xdigit']);
const UNICODE_CATEGORIES: ReadonlySet<string> = new Set([
  'Any',
  'C',
  'Cc',
  'Cf',
  'Co',
  'Cs',
  'L',
  'Ll',
  'Lm',
  'Lo',
  'Lt',
  'Lu',
  'M',
  'Mc',
  'Me',
  'Mn',
  'N',
  'Nd',
  'Nl',
  'No',
  'P',
  'Pc',
  'Pd',
  'Pe',
  'Pf',
  'Pi',
  'Po',
  'Ps',
  'S',
  'Sc',
  'Sk',
  'Sm',
  'So',
  'Z',
  'Zl',
  'Zp',
  'Zs',
]);

class Re2Error extends Error {}

function fail(what: string, text: string): never {
  throw new Re2Error(text === '' ? what : `${what}: \`${text}\``);
}

function isUnicodeClassName(name: string): boolean {
  if (UNICODE_CATEGORIES.has(name)) return true;
  if (!/^[A-Za-z_]+$/.test(name)) return false;
  try {
    new RegExp(`\\p{Script=${name}}`, 'u');
    return true;
  } catch {
    return false;
  }
}

/** Parses RE2 syntax left to right; each method consumes from `pos`. */
class Checker {
  pos = 0;
  constructor(private readonly src: string) {}

  private peek(off = 0): string {
    return this.src[this.pos + off] ?? '';
  }

  private rest(): string {
    return this.src.slice(this.pos);
  }

  /** One code point (so astral characters count once). */
  private nextChar(): string {
    const cp = this.src.codePointAt(this.pos);
    if (cp === undefined) return '';
    const ch = String.fromCodePoint(cp);
    this.pos += ch.length;
    return ch;
  }

  run(): void {
    // 'none': nothing to repeat (start, after `(` or `|`); 'atom': repeatable; 'repeat': just repeated
    let state: 'none' | 'atom' | 'repeat' = 'none';
    let lastOp = '';
    let depth = 0;
    while (this.pos < this.src.length) {
      const c = this.peek();
      if (c === '(') {
        if (this.group()) depth++;
        if (depth > MAX_DEPTH) fail('expression nests too deeply', this.src);
        state = 'none';
      } else if (c === ')') {
        if (depth === 0) fail('unexpected )', this.src);
        depth--;
        this.pos++;
        state = 'atom';
      } else if (c === '|') {
        this.pos++;
        state = 'none';
      } else if (c === '*' || c === '+' || c === '?' || (c === '{' && this.repeatCount() !== undefined)) {
        const start = this.pos;
        if (c === '{') this.pos += this.repeatCount() ?? 0;
        else this.pos++;
        if (this.peek() === '?') this.pos++;
        const op = this.src.slice(start, this.pos);
        if (state === 'none') fail('missing argument to repetition operator', op);
        if (state === 'repeat') fail('invalid nested repetition operator', lastOp + op);
        state = 'repeat';
        lastOp = op;
      } else if (c === '[') {
        this.charClass();
        state = 'atom';
      } else if (c === '\\') {
        if (this.peek(1) === 'Q') this.quoted();
        else if (this.peek(1) === 'E') fail('invalid escape sequence', '\\E');
        else this.escape(false);
        state = 'atom';
      } else {
        this.nextChar();
        state = 'atom';
      }
    }
    if (depth > 0) fail('missing closing )', this.src);
  }

  /** Length of a `{n}`, `{n,}` or `{n,m}` repeat at pos, or undefined if `{` is a literal. */
  private repeatCount(): number | undefined {
    const m = /^\{([0-9]+)(,([0-9]*))?\}/.exec(this.rest());
    if (m === null) return undefined;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : m[3] === '' ? -1 : Number(m[3]);
    if (lo > MAX_REPEAT || hi > MAX_REPEAT || (hi >= 0 && hi < lo)) fail('invalid repeat count', m[0]);
    return m[0].length;
  }

  /** Consumes a group opener; true when it opened a group that a later `)` closes. */
  private group(): boolean {
    const rest = this.rest();
    if (!rest.startsWith('(?')) {
      this.pos++;
      return true;
    }
    for (const bad of ['(?=', '(?!', '(?<=', '(?<!', '(?P=', '(?>', '(?#']) {
      if (rest.startsWith(bad)) fail('invalid or unsupported Perl syntax', bad);
    }
    const named = /^\(\?P?<([^>]*)>/.exec(rest);
    if (named !== null) {
      if (!/^[A-Za-z0-9_]+$/.test(named[1] ?? '')) fail('invalid named capture', named[0]);
      this.pos += named[0].length;
      return true;
    }
    if (rest.startsWith('(?P')) fail('invalid named capture', rest.slice(0, 4));
    // flags: (?flags) or (?flags:re), flags from imsU with at most one '-'
    const m = /^\(\?([a-zA-Z-]*)([:)])/.exec(rest);
    if (m === null) fail('missing closing )', this.src);
    const flags = m[1] ?? '';
    const negations = flags.split('-').length - 1;
    const valid = /^[imsU]*(-[imsU]+)?$/.test(flags) && negations <= 1 && (flags !== '' || m[2] === ':');
    if (!valid) fail('invalid or unsupported Perl syntax', m[0]);
    this.pos += m[0].length;
    // `(?i)` sets flags for the rest of the group and opens nothing; `(?i:` opens a group
    return m[2] === ':';
  }

  private quoted(): void {
    const end = this.src.indexOf('\\E', this.pos + 2);
    this.pos = end < 0 ? this.src.length : end + 2;
  }

  /** An escape outside (`inClass` false) or inside a character class. */
  private escape(inClass: boolean): void {
    const start = this.pos;
    this.pos++; // backslash
    if (this.pos >= this.src.length) fail('trailing backslash at end of expression', '');
    const c = this.nextChar();
    const text = (): string => this.src.slice(start, this.pos);
    if (c.length === 1 && c < '\x80' && !/[A-Za-z0-9]/.test(c)) return; // escaped punctuation
    if (/[1-7]/.test(c)) {
      if (!/[0-7]/.test(this.peek())) fail('invalid escape sequence', text());
      this.octal();
      return;
    }
    if (c === '0') {
      this.octal();
      return;
    }
    if ('afnrtv'.includes(c) || 'dDsSwW'.includes(c)) return;
    if (!inClass && 'bBAz'.includes(c)) return;
    if (c === 'x') {
      const m = /^(\{([0-9A-Fa-f]+)\}|[0-9A-Fa-f]{2})/.exec(this.rest());
      if (m === null) fail('invalid escape sequence', text() + this.rest().slice(0, 2));
      this.pos += m[0].length;
      if (m[2] !== undefined && (m[2].length > 8 || parseInt(m[2], 16) > 0x10ffff)) fail('invalid escape sequence', text());
      return;
    }
    if (c === 'p' || c === 'P') {
      const m = /^(\{\^?([^}]*)\}|[A-Za-z])/.exec(this.rest());
      if (m === null) fail('invalid character class range', text());
      this.pos += m[0].length;
      if (!isUnicodeClassName(m[2] ?? m[1] ?? '')) fail('invalid character class range', text());
      return;
    }
    fail('invalid escape sequence', text());
  }

  private octal(): void {
    for (let n = 0; n < 2 && /[0-7]/.test(this.peek()); n++) this.pos++;
  }

  private charClass(): void {
    const start = this.pos;
    this.pos++; // [
    if (this.peek() === '^') this.pos++;
    let first = true;
    while (first || this.peek() !== ']') {
      if (this.pos >= this.src.length) fail('missing closing ]', this.src.slice(start));
      first = false;
      const posix = /^\[:(\^?)([a-z]*):\]/.exec(this.rest());
      if (posix !== null) {
        if (!POSIX_CLASSES.has(posix[2] ?? '')) fail('invalid character class range', posix[0]);
        this.pos += posix[0].length;
        continue;
      }
      const itemStart = this.pos;
      const lo = this.classChar();
      if (lo === undefined) continue; // a class escape like \d cannot start a range
      if (this.peek() === '-' && this.peek(1) !== ']' && this.peek(1) !== '') {
        this.pos++;
        const hi = this.classChar();
        const loCp = lo.codePointAt(0) ?? 0;
        const hiCp = hi?.codePointAt(0) ?? -1;
        if (hi === undefined || hiCp < loCp) fail('invalid character class range', this.src.slice(itemStart, this.pos));
      }
    }
    this.pos++; // ]
  }

  /** A single class character (returned), or a class escape such as \d or \pL (undefined). */
  private classChar(): string | undefined {
    if (this.peek() !== '\\') return this.nextChar();
    const next = this.peek(1);
    if ('dDsSwWpP'.includes(next) && next !== '') {
      this.escape(true);
      return undefined;
    }
    const before = this.pos;
    this.escape(true);
    return literalOfEscape(this.src.slice(before, this.pos));
  }
}

/** The character an escape stands for (for range bounds); approximate for octal and hex. */
function literalOfEscape(esc: string): string {
  const body = esc.slice(1);
  const simple: Record<string, string> = { a: '\x07', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };
  if (simple[body] !== undefined) return simple[body] ?? '';
  if (body.startsWith('x')) {
    const hex = body.replace(/^x\{?/, '').replace(/\}$/, '');
    return String.fromCodePoint(parseInt(hex, 16));
  }
  if (/^[0-7]+$/.test(body)) return String.fromCodePoint(parseInt(body, 8));
  return body;
}

/** An error message in Go's words when `pattern` is not valid RE2 syntax, else undefined. */
export function re2Error(pattern: string): string | undefined {
  try {
    new Checker(pattern).run();
    return undefined;
  } catch (e) {
    if (e instanceof Re2Error) return `error parsing regexp: ${e.message}`;
    throw e;
  }
}
