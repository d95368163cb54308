import { Carry } from './carry.js';
import { Kind, classify, needsArguments } from './commands.js';
import { ProtocolError } from './errors.js';
import { splitInline } from './inline.js';

const CR = 13;
const LF = 10;
const EMPTY = Buffer.alloc(0);

/** Limits as redis-server applies them to its clients. */
export const MAX_MULTIBULK = 1024 * 1024;
export const MAX_BULK = 512 * 1024 * 1024;
export const MAX_INLINE = 64 * 1024;
/**
 * Limits redis-server applies before a client has authenticated, so that
 * it cannot be made to buffer large commands by anyone who can connect.
 * The proxy applies them until a client gave `--client-password`.
 */
export const MAX_UNAUTHENTICATED_MULTIBULK = 10;
export const MAX_UNAUTHENTICATED_BULK = 16 * 1024;
/** Longest command name classified; longer names are Plain commands. */
const MAX_NAME = 32;

const enum State {
  /** Next byte starts a command. */
  Start,
  /** Expecting a `$len` header of the next argument. */
  BulkHeader,
  /** Inside an argument payload (plus its CRLF). */
  Payload,
}

/**
 * RequestScanner finds the end of each command a client sends (RESP
 * multibulk or inline) and classifies it, without copying ordinary commands.
 * After `scan` returns an end offset, `kind` says what the command was and,
 * for kinds the proxy acts upon, `args` holds its arguments (name first).
 * Large arguments of Plain commands are skipped by length, never buffered.
 */
export class RequestScanner {
  kind: Kind = Kind.Empty;
  args: Buffer[] | null = null;
  /** True when the last command was an inline one. */
  inline = false;
  /** The client has not authenticated yet: redis's tighter limits apply. */
  unauthenticated = false;

  private state = State.Start;
  private remaining = 0;
  private argc = 0;
  private skip = 0;
  private readonly carry = new Carry();
  /**
   * Pieces of the argument being kept. They are copied as they arrive rather
   * than into a buffer sized from the header, so a `$536870912` header alone
   * cannot make the proxy allocate 512 MiB.
   */
  private capture: Buffer[] | null = null;
  private captureLength = 0;
  /** The carried inline line holds a NUL byte. */
  private nul = false;
  /** The header line being read (see readLine). */
  private readonly line: Line = { buf: EMPTY, start: 0, lf: 0, next: 0 };

  /** True once the command being scanned has been classified (`kind` is final). */
  get named(): boolean {
    return this.state !== State.Start && this.remaining < this.argc;
  }

  get atBoundary(): boolean {
    return this.state === State.Start && this.carry.empty;
  }

  /**
   * Scans `buf` from `pos`. Returns the offset just past the end of the
   * command, or -1 when the chunk ends first. Throws ProtocolError.
   */
  scan(buf: Buffer, pos: number): number {
    const end = buf.length;
    for (;;) {
      switch (this.state) {
        case State.Start: {
          if (pos >= end) return -1;
          const first = this.carry.empty ? buf[pos] : this.carry.first();
          if (first !== 0x2a /* * */) return this.inlineCommand(buf, pos);
          if (!this.readLine(buf, pos, 'mbulk')) return -1;
          pos = this.line.next;
          const n = readCount(this.line, 'multibulk');
          if (n > MAX_MULTIBULK) throw new ProtocolError('invalid multibulk length');
          if (this.unauthenticated && n > MAX_UNAUTHENTICATED_MULTIBULK) {
            throw new ProtocolError('unauthenticated multibulk length');
          }
          // redis ignores `*0` and negative counts alike.
          if (n <= 0) {
            this.finish(Kind.Empty, false);
            return pos;
          }
          this.argc = n;
          this.remaining = n;
          this.kind = Kind.Plain;
          this.args = null;
          this.inline = false;
          this.state = State.BulkHeader;
          break;
        }
        case State.BulkHeader: {
          if (pos >= end) return -1;
          if (!this.readLine(buf, pos, 'bulk')) return -1;
          const line = this.line;
          if (line.buf[line.start] !== 0x24 /* $ */) {
            const got = String.fromCharCode(line.buf[line.start]);
            throw new ProtocolError(`expected '$', got '${got}'`);
          }
          pos = line.next;
          const n = readCount(line, 'bulk');
          if (n < 0 || n > MAX_BULK) throw new ProtocolError('invalid bulk length');
          if (this.unauthenticated && n > MAX_UNAUTHENTICATED_BULK) {
            throw new ProtocolError('unauthenticated bulk length');
          }
          this.skip = n + 2;
          const first = this.remaining === this.argc;
          const keep = first ? n <= MAX_NAME : this.args !== null;
          this.capture = keep ? [] : null;
          this.captureLength = 0;
          this.state = State.Payload;
          break;
        }
        case State.Payload: {
          const available = end - pos;
          const payloadLeft = this.skip - 2;
          if (
            this.capture !== null &&
            this.captureLength === 0 &&
            this.remaining === this.argc &&
            available >= payloadLeft
          ) {
            // The whole command name is in this chunk (nearly always):
            // classify it where it lies, copy it only if it must be kept.
            this.nameInPlace(buf, pos, pos + payloadLeft);
          } else if (this.capture !== null && payloadLeft > 0) {
            const take = Math.min(payloadLeft, available);
            if (take > 0) this.capture.push(Buffer.from(buf.subarray(pos, pos + take)));
            this.captureLength += take;
          }
          if (available < this.skip) {
            this.skip -= available;
            return -1;
          }
          // redis skips the two bytes after a payload without looking at
          // them; checking them here would refuse commands redis runs.
          pos += this.skip;
          this.skip = 0;
          this.argumentDone();
          if (this.remaining === 0) {
            this.state = State.Start;
            return pos;
          }
          this.state = State.BulkHeader;
          break;
        }
      }
    }
  }

  /** Classifies the command name in buf[from, to); called instead of capturing it. */
  private nameInPlace(buf: Buffer, from: number, to: number): void {
    this.kind = classify(buf, from, to);
    this.capture = null;
    if (needsArguments(this.kind)) this.args = [Buffer.from(buf.subarray(from, to))];
  }

  private argumentDone(): void {
    const first = this.remaining === this.argc;
    this.remaining -= 1;
    const value = this.capture === null ? null : joinPieces(this.capture, this.captureLength);
    this.capture = null;
    if (first) {
      // A name classified in place (nameInPlace) has set `kind` already.
      if (value !== null) {
        this.kind = classify(value, 0, value.length);
        if (needsArguments(this.kind)) this.args = [value];
      }
      return;
    }
    if (this.args !== null && value !== null) this.args.push(value);
  }

  private inlineCommand(buf: Buffer, pos: number): number {
    let lf = buf.indexOf(LF, pos);
    // redis looks for the newline with strchr(), which stops at a NUL byte:
    // a line holding one never ends, and the client is dropped once more
    // than MAX_INLINE bytes wait. Framing it here would desynchronise us.
    if (lf >= 0 && (this.nul || buf.subarray(pos, lf).includes(0))) lf = -1;
    if (lf < 0) {
      const piece = buf.subarray(pos);
      this.nul ||= piece.includes(0);
      this.carry.add(piece);
      if (this.carry.length > MAX_INLINE) throw new ProtocolError('too big inline request');
      return -1;
    }

    const text = this.take(buf, pos, lf);
    if (text.length > MAX_INLINE) throw new ProtocolError('too big inline request');
    // A bare LF ends an inline line too, as in redis.
    const cr = text.length > 0 && text[text.length - 1] === CR ? 1 : 0;
    const args = splitInline(text.subarray(0, text.length - cr));
    if (args.length === 0) {
      this.finish(Kind.Empty, true);
    } else {
      const name = args[0];
      this.finish(classify(name, 0, name.length), true);
      this.args = args;
    }
    return lf + 1;
  }

  private finish(kind: Kind, inline: boolean): void {
    this.kind = kind;
    this.args = null;
    this.inline = inline;
    this.state = State.Start;
  }

  /**
   * Reads one header line starting at `pos` into `line`, joining it with
   * bytes carried over from the previous chunk. Returns false (and carries
   * the bytes) when the line is not complete yet. `line` is reused: one
   * header is looked at at a time, and nothing is allocated per command.
   */
  private readLine(buf: Buffer, pos: number, what: 'mbulk' | 'bulk'): boolean {
    const line = this.line;
    const lf = buf.indexOf(LF, pos);
    if (lf < 0) {
      this.carry.add(buf.subarray(pos));
      if (this.carry.length > MAX_HEADER_LINE) {
        throw new ProtocolError(`too big ${what} count string`);
      }
      return false;
    }
    line.next = lf + 1;
    if (this.carry.empty) {
      line.buf = buf;
      line.start = pos;
      line.lf = lf;
    } else {
      line.buf = this.take(buf, pos, lf);
      line.start = 0;
      line.lf = line.buf.length;
    }
    return true;
  }

  /** The line ending before buf[lf], carried bytes first; clears the carry. */
  private take(buf: Buffer, pos: number, lf: number): Buffer {
    this.nul = false;
    if (this.carry.empty) return buf.subarray(pos, lf);
    return this.carry.take(buf.subarray(pos, lf));
  }
}

/** One piece (the usual case: the whole argument came in one chunk) needs no copy. */
function joinPieces(pieces: Buffer[], length: number): Buffer {
  return pieces.length === 1 ? pieces[0] : Buffer.concat(pieces, length);
}

interface Line {
  buf: Buffer;
  start: number;
  /** Index of the LF in `buf`, or `buf.length` when the line was joined. */
  lf: number;
  /** Offset in the scanned chunk just past the LF. */
  next: number;
}

/**
 * A header line longer than this cannot hold a valid count. redis waits for
 * 64 KiB before giving up; failing sooner costs a client nothing it could use.
 */
const MAX_HEADER_LINE = 64;

/** Largest magnitudes string2ll() accepts, by sign. */
const LLONG_MAX = '9223372036854775807';
const LLONG_MIN = '9223372036854775808';

/**
 * Parses the count of a `*` or `$` header line, ending in CRLF, the way
 * redis's string2ll() does: an optional '-', then no leading zero, no '+' and
 * no blanks. Anything else is an invalid length, as redis reports it.
 */
function readCount(line: Line, what: 'multibulk' | 'bulk'): number {
  const { buf, lf } = line;
  if (lf - line.start < 2 || buf[lf - 1] !== CR) invalidLength(what);

  let i = line.start + 1;
  const to = lf - 1;
  const negative = buf[i] === 0x2d; /* - */
  if (negative) i++;
  const digits = to - i;
  if (digits === 0 || digits > 19) invalidLength(what);
  if (buf[i] === 0x30 /* 0 */ && (digits > 1 || negative)) invalidLength(what);
  let n = 0;
  for (let j = i; j < to; j++) {
    const d = buf[j] - 0x30;
    if (d < 0 || d > 9) invalidLength(what);
    n = n * 10 + d;
  }
  // Beyond 15 digits a double is no longer exact: compare as text. Every
  // such count is refused by the limits anyway; only the error differs.
  if (digits > 15) {
    const text = buf.toString('latin1', i, to);
    if (digits === 19 && text > (negative ? LLONG_MIN : LLONG_MAX)) invalidLength(what);
    n = Number(text);
  }
  return negative ? -n : n;
}

function invalidLength(what: string): never {
  throw new ProtocolError(`invalid ${what} length`);
}
