import { ProtocolError } from './errors.js';

/**
 * Splits an inline command line into arguments the way redis-server does:
 * words separated by blanks, "double quotes" with backslash escapes (\n, \xHH
 * ...) and 'single quotes' where only \' is special. A closing quote must be
 * followed by a blank or the end of the line.
 *
 * redis reads the line as a C string, so a NUL byte ends it. It skips any
 * isspace() byte between words but ends an unquoted word only at a space,
 * tab, CR or LF: "a\vb" is one word.
 */
export function splitInline(line: Buffer): Buffer[] {
  const args: Buffer[] = [];
  let i = 0;
  const nul = line.indexOf(0);
  const n = nul < 0 ? line.length : nul;

  for (;;) {
    while (i < n && isBlank(line[i])) i++;
    if (i >= n) return args;

    const bytes: number[] = [];
    let quote = 0;
    for (;;) {
      if (quote === 0) {
        if (i >= n || endsWord(line[i])) break;
        const c = line[i++];
        if (c === 0x22 || c === 0x27) quote = c;
        else bytes.push(c);
        continue;
      }
      if (i >= n) throw new ProtocolError('unbalanced quotes in request');
      const c = line[i++];
      if (c === quote) {
        if (i < n && !isBlank(line[i])) throw new ProtocolError('unbalanced quotes in request');
        break;
      }
      if (c === 0x5c /* \ */ && i < n) {
        i = unescape(line, i, quote, bytes);
        continue;
      }
      bytes.push(c);
    }
    args.push(Buffer.from(bytes));
  }
}

function unescape(line: Buffer, i: number, quote: number, out: number[]): number {
  const c = line[i];
  if (quote === 0x27) {
    if (c === 0x27) {
      out.push(c);
      return i + 1;
    }
    out.push(0x5c);
    return i;
  }
  if (c === 0x78 /* x */ && i + 2 < line.length && isHex(line[i + 1]) && isHex(line[i + 2])) {
    out.push(parseInt(String.fromCharCode(line[i + 1], line[i + 2]), 16));
    return i + 3;
  }
  const escapes: Record<number, number> = { 0x6e: 10, 0x72: 13, 0x74: 9, 0x62: 8, 0x61: 7 };
  out.push(escapes[c] ?? c);
  return i + 1;
}

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0b || c === 0x0c;
}

function endsWord(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66);
}
