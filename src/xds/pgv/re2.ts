/** Translation of RE2 patterns (`string.pattern`, `bytes.pattern`) into JS regular expressions. */

const POSIX_CLASSES: Readonly<Record<string, string>> = Object.freeze({
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7F',
  blank: '\\t ',
  cntrl: '\\x00-\\x1F\\x7F',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
});
/** RE2 pattern → JS RegExp (partial-match semantics), or undefined when JS cannot express it. */
export function compileRe2(src: string): RegExp | undefined {
  let flags = '';
  let s = src;
  const lead = /^\(\?([imsU]+)\)/.exec(s);
  if (lead) {
    if (lead[1].includes('U')) return undefined;
    flags = [...new Set(lead[1])].join('');
    s = s.slice(lead[0].length);
  }
  let out = '';
  let inClass = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') {
      const e = s[++i];
      if (e === undefined) return undefined;
      if (e === 'Q') {
        const end = s.indexOf('\\E', i + 1);
        const lit = s.slice(i + 1, end < 0 ? undefined : end);
        out += lit.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
        i = end < 0 ? s.length : end + 1;
      } else if (!inClass && e === 'z') out += '$';
      else if (!inClass && e === 'A') out += '^';
      else if (e === 'C') return undefined;
      else if ((e === 'p' || e === 'P') && s[i + 1] !== '{' && s[i + 1] !== undefined) out += `\\${e}{${s[++i]}}`;
      else out += `\\${e}`;
    } else if (inClass) {
      const posix = /^\[:(\^?)([a-z]+):\]/.exec(s.slice(i));
      if (posix) {
        const cls = POSIX_CLASSES[posix[2]];
        if (posix[1] === '^' || cls === undefined) return undefined;
        out += cls;
        i += posix[0].length - 1;
      } else {
        if (c === ']') inClass = false;
        out += c === '[' ? '\\[' : c;
      }
    } else if (c === '[') {
      inClass = true;
      out += c;
      if (s[i + 1] === '^') out += s[++i];
      if (s[i + 1] === ']') {
        out += '\\]';
        i++;
      } // RE2: a leading ']' is literal
    } else if (s.startsWith('(?P<', i)) {
      out += '(?<';
      i += 3;
    } else out += c;
  }
  for (const f of [`${flags}u`, flags]) {
    try {
      return new RegExp(out, f);
    } catch {
      // try the next flag set; RE2 syntax JS cannot compile is skipped
    }
  }
  return undefined;
}
