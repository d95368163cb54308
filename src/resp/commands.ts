/**
 * What the proxy needs to know about a command. Most commands are Plain: the
 * proxy forwards them and expects exactly one reply. The others change the
 * state of the connection in a way that decides when the proxy may inject its
 * own commands (AUTH at rotation), or are answered by the proxy itself.
 */
export const enum Kind {
  /** Forwarded untouched, one reply. */
  Plain = 0,
  /** A frame with no command (empty inline line, `*0`): redis sends nothing. */
  Empty,
  Auth,
  Hello,
  Multi,
  Exec,
  Discard,
  Reset,
  Quit,
  Subscribe,
  Unsubscribe,
  Ping,
  /** Blocks until data arrives (or replicas acknowledge, for WAIT) or its timeout passes. */
  Blocking,
  /** XREAD / XREADGROUP: blocking only with a BLOCK option. */
  StreamRead,
  Monitor,
  Client,
  /** Turns the connection into a replica link: not supported by the proxy. */
  Replication,
  /**
   * Forwarded like Plain, but leaves something on the connection the next
   * client of a pooled connection must not inherit (database, watched keys,
   * cluster flags).
   */
  Stateful,
}

const KINDS = new Map<string, Kind>([
  ['AUTH', Kind.Auth],
  ['HELLO', Kind.Hello],
  ['MULTI', Kind.Multi],
  ['EXEC', Kind.Exec],
  ['DISCARD', Kind.Discard],
  ['RESET', Kind.Reset],
  ['QUIT', Kind.Quit],
  ['SUBSCRIBE', Kind.Subscribe],
  ['PSUBSCRIBE', Kind.Subscribe],
  ['SSUBSCRIBE', Kind.Subscribe],
  ['UNSUBSCRIBE', Kind.Unsubscribe],
  ['PUNSUBSCRIBE', Kind.Unsubscribe],
  ['SUNSUBSCRIBE', Kind.Unsubscribe],
  ['PING', Kind.Ping],
  ['BLPOP', Kind.Blocking],
  ['BRPOP', Kind.Blocking],
  ['BRPOPLPUSH', Kind.Blocking],
  ['BLMOVE', Kind.Blocking],
  ['BLMPOP', Kind.Blocking],
  ['BZPOPMIN', Kind.Blocking],
  ['BZPOPMAX', Kind.Blocking],
  ['BZMPOP', Kind.Blocking],
  ['WAIT', Kind.Blocking],
  ['WAITAOF', Kind.Blocking],
  ['XREAD', Kind.StreamRead],
  ['XREADGROUP', Kind.StreamRead],
  ['MONITOR', Kind.Monitor],
  ['CLIENT', Kind.Client],
  ['SYNC', Kind.Replication],
  ['PSYNC', Kind.Replication],
  ['SELECT', Kind.Stateful],
  ['WATCH', Kind.Stateful],
  ['UNWATCH', Kind.Stateful],
  ['READONLY', Kind.Stateful],
  ['READWRITE', Kind.Stateful],
  ['ASKING', Kind.Stateful],
]);

/**
 * Candidate filter indexed by name length and lower-cased first letter, so
 * that ordinary commands (GET, SET, HSET...) are classified without creating
 * a string.
 */
const candidates = new Set<number>();
for (const name of KINDS.keys()) candidates.add(filterKey(name.length, name.charCodeAt(0)));

function filterKey(length: number, first: number): number {
  return length * 256 + (first | 0x20);
}

/** Classifies the command name in buf[start, end). */
export function classify(buf: Buffer, start: number, end: number): Kind {
  const length = end - start;
  if (length > 12 || !candidates.has(filterKey(length, buf[start]))) return Kind.Plain;
  return KINDS.get(buf.toString('latin1', start, end).toUpperCase()) ?? Kind.Plain;
}

/** Kinds whose arguments the request scanner keeps. */
export function needsArguments(kind: Kind): boolean {
  return kind !== Kind.Plain && kind !== Kind.Empty && kind !== Kind.Stateful;
}

/**
 * Whether a command of this kind, once forwarded, may leave the server
 * keeping something for this connection beyond the proxy's own AUTH: a
 * database, watched keys, a name, tracking, a protocol, subscriptions, a
 * transaction. A connection that carried none is handed to the next client
 * as it is; any other is RESET first. Plain commands cannot: a script's
 * SELECT, for one, ends with the script.
 */
export function changesConnection(kind: Kind): boolean {
  switch (kind) {
    case Kind.Hello:
    case Kind.Multi:
    case Kind.Exec:
    case Kind.Discard:
    case Kind.Reset:
    case Kind.Subscribe:
    case Kind.Unsubscribe:
    case Kind.Monitor:
    case Kind.Client:
    case Kind.Stateful:
      return true;
    default:
      return false;
  }
}

/**
 * Where a blocking command keeps its timeout, and in which unit. Used to
 * send the command in slices that end before the token expires, each with
 * the time that remains (session/blocking.ts).
 */
export interface BlockingTimeout {
  /** Index into the arguments (0 is the command name). */
  index: number;
  /** Timeout in milliseconds; 0 means forever. */
  ms: number;
  unit: 'seconds' | 'milliseconds';
}

/**
 * Finds the timeout of a blocking command, or null when the command does not
 * block (XREAD without BLOCK) or is malformed (redis will answer the error).
 */
export function blockingTimeout(args: readonly Buffer[]): BlockingTimeout | null {
  const name = args[0].toString('latin1').toUpperCase();
  switch (name) {
    case 'BLMPOP':
    case 'BZMPOP':
      return secondsAt(args, 1);
    case 'XREAD':
    case 'XREADGROUP':
      return streamBlock(args);
    case 'WAIT':
      return args.length === 3 ? millisecondsAt(args, 2) : null;
    case 'WAITAOF':
      return args.length === 4 ? millisecondsAt(args, 3) : null;
    default:
      return secondsAt(args, args.length - 1);
  }
}

function secondsAt(args: readonly Buffer[], index: number): BlockingTimeout | null {
  if (index < 1 || index >= args.length) return null;
  const text = args[index].toString('latin1');
  if (!DECIMAL.test(text)) return null;
  const seconds = Number(text);
  // redis rounds up: a timeout of 0.0001 s blocks for 1 ms, not forever.
  // Float noise (1.1 * 1000 = 1100.0000000000002) must not add a millisecond.
  const exact = seconds * 1000;
  const near = Math.round(exact);
  const ms = Math.abs(exact - near) <= exact * 1e-12 ? near : Math.ceil(exact);
  if (!Number.isSafeInteger(ms) || ms < 0) return null;
  return { index, ms, unit: 'seconds' };
}

/** What strtold() reads in a timeout, apart from hex and inf forms. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** What string2ll() reads: no '+', no leading zero. */
const INTEGER = /^(0|-?[1-9]\d*)$/;

/** Where XREAD / XREADGROUP options put the wait and the stream list. */
interface StreamOptions {
  block: BlockingTimeout | null;
  /** Index of the STREAMS keyword. */
  streams: number;
}

/**
 * Walks the options the way redis does: each option consumes its values, so
 * a group or consumer named BLOCK or STREAMS is not mistaken for one. Null
 * when malformed or without STREAMS (redis answers a syntax error at once).
 */
function streamOptions(args: readonly Buffer[]): StreamOptions | null {
  const group = args[0].toString('latin1').toUpperCase() === 'XREADGROUP';
  let block: BlockingTimeout | null = null;
  for (let i = 1; i < args.length; i++) {
    const more = args.length - i - 1;
    const word = args[i].toString('latin1').toUpperCase();
    if (word === 'BLOCK' && more >= 1) {
      i++;
      block = millisecondsAt(args, i);
      if (block === null) return null;
    } else if (word === 'COUNT' && more >= 1) {
      i++;
    } else if (word === 'GROUP' && group && more >= 2) {
      i += 2;
    } else if (word === 'STREAMS' && more >= 1) {
      return { block, streams: i };
    } else if (!(word === 'NOACK' && group)) {
      return null;
    }
  }
  return null;
}

function streamBlock(args: readonly Buffer[]): BlockingTimeout | null {
  return streamOptions(args)?.block ?? null;
}

/** A `$` id of an XREAD: its place in the arguments and the stream it is for. */
export interface StreamEnd {
  index: number;
  key: Buffer;
}

/**
 * The `$` ids of an XREAD ("only entries added from now on"), which a wait
 * sent again must replace with the stream's last id as it was when the
 * client's wait began (see blocking.ts). XREADGROUP's `>` needs nothing:
 * the group remembers what it delivered.
 */
export function streamEnds(args: readonly Buffer[]): StreamEnd[] {
  if (args[0].toString('latin1').toUpperCase() !== 'XREAD') return [];
  const options = streamOptions(args);
  if (options === null) return [];
  const listed = args.length - options.streams - 1;
  if (listed % 2 !== 0) return [];
  const count = listed / 2;
  const ends: StreamEnd[] = [];
  for (let i = 0; i < count; i++) {
    const index = options.streams + 1 + count + i;
    if (args[index].length === 1 && args[index][0] === 0x24 /* $ */) {
      ends.push({ index, key: args[options.streams + 1 + i] });
    }
  }
  return ends;
}

function millisecondsAt(args: readonly Buffer[], index: number): BlockingTimeout | null {
  const text = args[index].toString('latin1');
  if (!INTEGER.test(text)) return null;
  const ms = Number(text);
  if (ms < 0) return null;
  return { index, ms, unit: 'milliseconds' };
}

/** Arguments with the blocking timeout replaced by `remainingMs`. */
export function withTimeout(
  args: readonly Buffer[],
  timeout: BlockingTimeout,
  remainingMs: number,
): Buffer[] {
  const copy = args.slice();
  const value =
    timeout.unit === 'seconds'
      ? (Math.max(remainingMs, 1) / 1000).toFixed(3)
      : String(Math.max(Math.ceil(remainingMs), 1));
  copy[timeout.index] = Buffer.from(value, 'latin1');
  return copy;
}
