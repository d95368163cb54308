import { Carry } from './carry.js';
import { ProtocolError } from './errors.js';

const CR = 13;
const LF = 10;

/** Longest header line (simple string, error, number) accepted from upstream. */
const MAX_REPLY_LINE = 64 * 1024 * 1024;

/**
 * Streamed aggregates (`*?`) have no element count. While inside one, `need`
 * is set this high so element completions never bring it to zero; the
 * terminating `.` restores the count saved for the enclosing level.
 */
const OPEN_ENDED = 2 ** 40;

/**
 * ReplyScanner finds where each top-level RESP2/RESP3 frame sent by the
 * upstream ends, without decoding values. Payloads are skipped by length, so
 * an 8 MiB string costs the same as an 8 byte one; only a header line that
 * straddles two chunks is copied.
 *
 * The frame is tracked with a single counter of values still owed (`need`):
 * a scalar pays one, an aggregate of n elements pays one and owes n more, an
 * attribute owes its pairs and the value it annotates. The frame ends when
 * nothing is owed.
 */
export class ReplyScanner {
  /** Type byte of the current (or last completed) frame, attributes skipped. */
  type = 0;

  private need = 0;
  private skip = 0;
  private readonly carry = new Carry();
  private readonly outer: number[] = [];
  private inStreamedString = false;

  /** True when the next byte starts a new top-level frame. */
  get atBoundary(): boolean {
    // A top-level bulk string owes nothing once its header is read, but its
    // payload (`skip`) still has to pass before the next frame starts.
    return this.need === 0 && this.skip === 0;
  }

  /**
   * Scans `buf` from `pos`. Returns the offset just past the end of the
   * current frame, or -1 when the chunk ends first (state is kept for the
   * next chunk). Throws ProtocolError on bytes that are not RESP.
   */
  scan(buf: Buffer, pos: number): number {
    const end = buf.length;
    if (this.atBoundary) {
      if (pos >= end) return -1;
      this.need = 1;
      this.type = 0;
    }

    for (;;) {
      if (this.skip > 0) {
        const available = end - pos;
        if (available < this.skip) {
          this.skip -= available;
          return -1;
        }
        pos += this.skip;
        this.skip = 0;
        if (this.need === 0) return pos;
      }
      if (pos >= end) return -1;

      if (!this.carry.empty) {
        const lf = buf.indexOf(LF, pos);
        if (lf < 0) {
          this.stash(buf, pos, end);
          return -1;
        }
        const line = this.carry.take(buf.subarray(pos, lf + 1));
        pos = lf + 1;
        this.header(line, 0, line.length - 1);
      } else {
        const lf = buf.indexOf(LF, pos + 1);
        if (lf < 0) {
          this.stash(buf, pos, end);
          return -1;
        }
        this.header(buf, pos, lf);
        pos = lf + 1;
      }
      if (this.need === 0 && this.skip === 0) return pos;
    }
  }

  private stash(buf: Buffer, from: number, to: number): void {
    this.carry.add(buf.subarray(from, to));
    if (this.carry.length > MAX_REPLY_LINE) {
      throw new ProtocolError('reply header line too long');
    }
  }

  /** Applies one header line: `buf[start]` is the type, `buf[lf]` is LF. */
  private header(buf: Buffer, start: number, lf: number): void {
    if (lf - start < 2 || buf[lf - 1] !== CR) {
      throw new ProtocolError('reply line without CRLF');
    }
    const t = buf[start];

    if (this.inStreamedString) {
      if (t !== 0x3b /* ; */) throw new ProtocolError("expected ';' in streamed string");
      const n = readLength(buf, start + 1, lf - 1);
      if (n < 0) throw new ProtocolError('invalid streamed string chunk length');
      if (n === 0) {
        this.inStreamedString = false;
        this.need -= 1;
      } else {
        this.skip = n + 2;
      }
      return;
    }

    // Only the annotated value is owed once a top-level attribute is done;
    // before that, headers belong to the attribute's keys and values.
    if (this.type === 0 && this.need === 1 && t !== 0x7c /* | */) this.type = t;

    switch (t) {
      case 0x2b: // + simple string
      case 0x2d: // - error
      case 0x3a: // : integer
      case 0x5f: // _ null
      case 0x23: // # boolean
      case 0x2c: // , double
      case 0x28: // ( big number
        this.need -= 1;
        return;
      case 0x24: // $ bulk string
      case 0x21: // ! bulk error
      case 0x3d: {
        // = verbatim string
        if (buf[start + 1] === 0x3f /* ? */) {
          this.inStreamedString = true;
          return;
        }
        const n = readLength(buf, start + 1, lf - 1);
        this.need -= 1;
        if (n >= 0) this.skip = n + 2;
        return;
      }
      case 0x2a: // * array
      case 0x7e: // ~ set
      case 0x3e: // > push
        this.aggregate(buf, start, lf, 1);
        return;
      case 0x25: // % map
        this.aggregate(buf, start, lf, 2);
        return;
      case 0x7c: {
        // | attribute: pairs, then the value it annotates
        const n = readLength(buf, start + 1, lf - 1);
        if (n < 0) throw new ProtocolError('invalid attribute length');
        this.need += 2 * n;
        return;
      }
      case 0x2e: // . end of a streamed aggregate
        // Known limit: a '.' arriving while an element is unfinished
        // (`*?` `*2` `:1` `.`) is taken as the end; the one counter cannot
        // tell it from a finished element. A real server never sends it.
        if (this.outer.length === 0) throw new ProtocolError("unexpected '.'");
        this.need = this.outer.pop()!;
        return;
      default:
        throw new ProtocolError(`unknown reply type byte 0x${t.toString(16)}`);
    }
  }

  private aggregate(buf: Buffer, start: number, lf: number, per: number): void {
    if (buf[start + 1] === 0x3f /* ? */) {
      this.outer.push(this.need - 1);
      this.need = OPEN_ENDED;
      return;
    }
    const n = readLength(buf, start + 1, lf - 1);
    this.need -= 1;
    if (n > 0) this.need += per * n;
  }

  /** Forgets any partial frame, e.g. after the upstream connection is replaced. */
  reset(): void {
    this.need = 0;
    this.skip = 0;
    this.carry.clear();
    this.outer.length = 0;
    this.inStreamedString = false;
    this.type = 0;
  }
}

/** Parses a decimal length in buf[from, to); -1 is allowed (null). */
export function readLength(buf: Buffer, from: number, to: number): number {
  let i = from;
  let negative = false;
  if (buf[i] === 0x2d) {
    negative = true;
    i++;
  }
  if (i >= to || to - i > 15) throw new ProtocolError('invalid length');
  let n = 0;
  for (; i < to; i++) {
    const d = buf[i] - 0x30;
    if (d < 0 || d > 9) throw new ProtocolError('invalid length');
    n = n * 10 + d;
  }
  if (negative) {
    if (n !== 1) throw new ProtocolError('invalid length');
    return -1;
  }
  return n;
}
