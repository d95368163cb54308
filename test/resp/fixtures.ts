/**
 * Well-formed traffic for the scanners, one row per case. A row lists its
 * frames (replies) or commands (requests) one by one; the bytes fed to the
 * scanner are their concatenation, so each piece's end is an expected
 * boundary. Text is written one char per byte ("\xff" is the byte 0xff).
 */
import { Kind } from '../../src/resp/commands.js';

type Piece = string | Buffer;

export interface ReplyFixture {
  description: string;
  bytes: Buffer;
  /** Offset just past each top-level frame. */
  ends: number[];
  /** Type byte of each frame, attributes skipped. */
  types: string;
}

export interface ExpectedCommand {
  kind: Kind;
  /** Arguments the scanner must keep (latin1 text); checked for non-Plain kinds. */
  args?: string[];
}

export interface RequestFixture {
  description: string;
  bytes: Buffer;
  ends: number[];
  commands: ExpectedCommand[];
  /** Whether each command was inline (did not start with '*'). */
  inline: boolean[];
}

function toBuffer(piece: Piece): Buffer {
  return typeof piece === 'string' ? Buffer.from(piece, 'latin1') : piece;
}

function layout(pieces: Piece[]): { bytes: Buffer; ends: number[]; buffers: Buffer[] } {
  const buffers = pieces.map(toBuffer);
  const ends: number[] = [];
  let offset = 0;
  for (const buffer of buffers) {
    offset += buffer.length;
    ends.push(offset);
  }
  return { bytes: Buffer.concat(buffers), ends, buffers };
}

function reply(description: string, frames: Piece[], types: string): ReplyFixture {
  if (frames.length !== types.length) throw new Error(`${description}: one type per frame`);
  const { bytes, ends } = layout(frames);
  return { description, bytes, ends, types };
}

function request(description: string, commands: Array<[Piece, ExpectedCommand]>): RequestFixture {
  const { bytes, ends, buffers } = layout(commands.map(([piece]) => piece));
  return {
    description,
    bytes,
    ends,
    commands: commands.map(([, expected]) => expected),
    inline: buffers.map((buffer) => buffer[0] !== 0x2a),
  };
}

/** A bulk string of `payload`, with the given type byte ($, ! or =). */
function blob(payload: Piece, type = '$'): Buffer {
  const data = toBuffer(payload);
  return Buffer.concat([toBuffer(`${type}${data.length}\r\n`), data, toBuffer('\r\n')]);
}

/** Bytes that look like RESP headers, so a scanner reading payloads as lines would trip. */
const DECOY = '\r\n*3\r\n$-1\r\n:1\r\n+OK\r\n|1\r\n>2\r\n%1\r\n.\r\n;0\r\n$?\r\n*?\r\n\n\r';

/** 70 KiB of decoys: more than one socket read, and more than the inline limit. */
export const LARGE = Buffer.from(DECOY.repeat(Math.ceil((70 * 1024) / DECOY.length)), 'latin1');

/**
 * A kept argument longer than a small chunk. Kept arguments are copied, so
 * LARGE would make the every-split tests quadratic in its size.
 */
const LONG_KEY = LARGE.subarray(0, 5000);

/** Every byte value once. */
export const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

/** An array nested `depth` levels deep around a single integer. */
function nested(depth: number): string {
  return '*1\r\n'.repeat(depth) + ':7\r\n';
}

export const replyFixtures: ReplyFixture[] = [
  // RESP2 scalars
  reply('simple string', ['+OK\r\n'], '+'),
  reply('empty simple string', ['+\r\n'], '+'),
  reply('error', ["-ERR unknown command 'FOO'\r\n"], '-'),
  reply('error with code only', ['-WRONGPASS\r\n'], '-'),
  reply('integers', [':0\r\n', ':-42\r\n', ':9223372036854775807\r\n'], ':::'),
  reply('bulk string', ['$5\r\nhello\r\n'], '$'),
  reply('empty bulk string', ['$0\r\n\r\n'], '$'),
  reply('bulk string holding only CRLF', ['$2\r\n\r\n\r\n'], '$'),
  reply('null bulk string', ['$-1\r\n'], '$'),
  reply('binary bulk string', [blob(ALL_BYTES)], '$'),
  reply('large bulk string of header-like bytes', [blob(LARGE)], '$'),

  // RESP2 arrays
  reply('array', ['*2\r\n$3\r\nfoo\r\n:1\r\n'], '*'),
  reply('empty array', ['*0\r\n'], '*'),
  reply('null array', ['*-1\r\n'], '*'),
  reply('array of nulls', ['*3\r\n$-1\r\n*-1\r\n$0\r\n\r\n'], '*'),
  reply('nested arrays', ['*2\r\n*2\r\n:1\r\n:2\r\n*1\r\n*0\r\n'], '*'),
  reply('deeply nested array', [nested(64)], '*'),
  reply(
    'array holding a large bulk',
    [Buffer.concat([toBuffer('*2\r\n'), blob(LARGE), blob('x')])],
    '*',
  ),
  reply('pipelined RESP2 replies', ['+OK\r\n', '$3\r\nbar\r\n', ':3\r\n', '-ERR no\r\n'], '+$:-'),

  // RESP3 scalars
  reply('null', ['_\r\n'], '_'),
  reply('booleans', ['#t\r\n', '#f\r\n'], '##'),
  reply('doubles', [',3.14\r\n', ',-1.5e10\r\n', ',inf\r\n', ',-inf\r\n', ',nan\r\n'], ',,,,,'),
  reply('big numbers', ['(3492890328409238509324850943850943825024385\r\n', '(-1\r\n'], '(('),
  reply('verbatim string', ['=15\r\ntxt:Some string\r\n'], '='),
  reply('verbatim string with CRLF', [blob('mkd:# a\r\n* b\r\n', '=')], '='),
  reply('blob error', ['!21\r\nSYNTAX invalid syntax\r\n'], '!'),
  reply('blob error with CRLF', [blob('ERR line one\r\nline two', '!')], '!'),

  // RESP3 aggregates
  reply('map', ['%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n'], '%'),
  reply('empty map', ['%0\r\n'], '%'),
  reply('map of aggregates', ['%1\r\n*2\r\n:1\r\n:2\r\n%1\r\n+k\r\n~1\r\n_\r\n'], '%'),
  reply('set', ['~3\r\n+a\r\n:1\r\n#t\r\n'], '~'),
  reply('empty set', ['~0\r\n'], '~'),
  reply('push', ['>3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$5\r\nhello\r\n'], '>'),
  reply('push between replies', ['+OK\r\n', '>2\r\n+pubsub\r\n:1\r\n', ':5\r\n'], '+>:'),
  reply(
    'HELLO 3 reply',
    [
      '%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n' +
        '$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:5\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n' +
        '$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n',
    ],
    '%',
  ),

  // Attributes annotate the value after them; the frame type is that value's.
  reply('attribute before a scalar', ['|1\r\n+ttl\r\n:3600\r\n+OK\r\n'], '+'),
  reply(
    'attribute before an aggregate',
    ['|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n' + '*2\r\n:2039123\r\n:9543892\r\n'],
    '*',
  ),
  reply('attribute with no pairs', ['|0\r\n:1\r\n'], ':'),
  reply('two attributes in a row', ['|1\r\n+a\r\n+b\r\n|1\r\n+c\r\n+d\r\n$1\r\nx\r\n'], '$'),
  reply('attribute nested in an array', ['*2\r\n|1\r\n+k\r\n+v\r\n:1\r\n:2\r\n'], '*'),
  reply('attribute nested in a map value', ['%1\r\n+k\r\n|1\r\n+a\r\n*1\r\n_\r\n*0\r\n'], '%'),
  reply('attribute before a push', ['|1\r\n+a\r\n+b\r\n>1\r\n+x\r\n'], '>'),
  reply('attribute before a null', ['|1\r\n+a\r\n+b\r\n$-1\r\n'], '$'),

  // Streamed strings: `$?` then `;len` chunks, ended by `;0`.
  reply('streamed string', ['$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;2\r\nld\r\n;0\r\n'], '$'),
  reply('empty streamed string', ['$?\r\n;0\r\n'], '$'),
  reply(
    'streamed string of header-like bytes',
    [
      Buffer.concat([
        toBuffer('$?\r\n'),
        blob(LARGE, ';'),
        blob(ALL_BYTES, ';'),
        blob(';0\r\n', ';'),
        toBuffer(';0\r\n'),
      ]),
    ],
    '$',
  ),

  // Streamed aggregates: `*?` then elements, ended by `.`.
  reply('streamed array', ['*?\r\n:1\r\n:2\r\n.\r\n'], '*'),
  reply('empty streamed array', ['*?\r\n.\r\n'], '*'),
  reply('streamed map', ['%?\r\n+a\r\n:1\r\n+b\r\n*1\r\n:2\r\n.\r\n'], '%'),
  reply('streamed set', ['~?\r\n+a\r\n.\r\n'], '~'),
  reply('streamed array in an array', ['*2\r\n*?\r\n:1\r\n.\r\n:2\r\n'], '*'),
  reply(
    'nested streamed aggregates',
    ['*?\r\n*?\r\n:1\r\n.\r\n*2\r\n:1\r\n$?\r\n;1\r\nx\r\n;0\r\n%?\r\n.\r\n.\r\n'],
    '*',
  ),
  reply('attribute in a streamed array', ['*?\r\n|1\r\n+a\r\n+b\r\n:1\r\n.\r\n'], '*'),
  reply(
    'streamed frames back to back',
    ['$?\r\n;1\r\na\r\n;0\r\n', '*?\r\n.\r\n', '+OK\r\n'],
    '$*+',
  ),
];

/** A multibulk command of the given arguments. */
function command(...args: Piece[]): Buffer {
  const parts = [toBuffer(`*${args.length}\r\n`)];
  for (const arg of args) parts.push(blob(arg));
  return Buffer.concat(parts);
}

function kept(kind: Kind, ...args: string[]): ExpectedCommand {
  return { kind, args };
}

const plain: ExpectedCommand = { kind: Kind.Plain };
const empty: ExpectedCommand = { kind: Kind.Empty };

/** Exactly 32 and 33 bytes: the longest command name classified, and one more. */
const NAME_32 = 'X'.repeat(32);
const NAME_33 = 'X'.repeat(33);

export const requestFixtures: RequestFixture[] = [
  // Multibulk
  request('GET', [[command('GET', 'key'), plain]]),
  request('binary arguments', [[command('SET', ALL_BYTES, '\r\n*1\r\n$0\r\n'), plain]]),
  request('large argument of a plain command', [[command('SET', 'k', LARGE), plain]]),
  request('empty argument', [[command('SET', 'k', ''), plain]]),
  request('name of 32 bytes', [[command(NAME_32), plain]]),
  request('name of 33 bytes', [[command(NAME_33, 'x'), plain]]),
  request('near misses of known names', [
    [command('AUTHX', 'a'), plain],
    [command('PIN'), plain],
    [command('SUBSCRIBER', 'a'), plain],
    [command(''), plain],
  ]),
  request('*0 is ignored, like redis', [['*0\r\n', empty]]),
  request('negative counts are ignored, like redis', [
    ['*-1\r\n', empty],
    ['*-2\r\n', empty],
  ]),

  // One command of each kind, with the arguments the proxy acts upon.
  request('AUTH password', [[command('AUTH', 'secret'), kept(Kind.Auth, 'AUTH', 'secret')]]),
  request('auth, lower case', [[command('auth', 'u', 'p'), kept(Kind.Auth, 'auth', 'u', 'p')]]),
  request('HELLO 3 AUTH', [
    [command('HELLO', '3', 'AUTH', 'u', 'p'), kept(Kind.Hello, 'HELLO', '3', 'AUTH', 'u', 'p')],
  ]),
  request('transaction', [
    [command('MULTI'), kept(Kind.Multi, 'MULTI')],
    [command('INCR', 'n'), plain],
    [command('EXEC'), kept(Kind.Exec, 'EXEC')],
    [command('discard'), kept(Kind.Discard, 'discard')],
  ]),
  request('RESET and QUIT', [
    [command('RESET'), kept(Kind.Reset, 'RESET')],
    [command('QUIT'), kept(Kind.Quit, 'QUIT')],
  ]),
  request('subscriptions', [
    [command('SUBSCRIBE', 'a', 'b'), kept(Kind.Subscribe, 'SUBSCRIBE', 'a', 'b')],
    [command('PSUBSCRIBE', 'n*'), kept(Kind.Subscribe, 'PSUBSCRIBE', 'n*')],
    [command('SSUBSCRIBE', 's'), kept(Kind.Subscribe, 'SSUBSCRIBE', 's')],
    [command('UNSUBSCRIBE'), kept(Kind.Unsubscribe, 'UNSUBSCRIBE')],
    [command('PUNSUBSCRIBE', 'n*'), kept(Kind.Unsubscribe, 'PUNSUBSCRIBE', 'n*')],
    [command('SUNSUBSCRIBE', 's'), kept(Kind.Unsubscribe, 'SUNSUBSCRIBE', 's')],
  ]),
  request('binary channel', [
    [
      command('SUBSCRIBE', ALL_BYTES),
      kept(Kind.Subscribe, 'SUBSCRIBE', ALL_BYTES.toString('latin1')),
    ],
  ]),
  request('PING', [
    [command('PING'), kept(Kind.Ping, 'PING')],
    [command('ping', 'hi'), kept(Kind.Ping, 'ping', 'hi')],
  ]),
  request('blocking commands', [
    [command('BLPOP', 'a', 'b', '0'), kept(Kind.Blocking, 'BLPOP', 'a', 'b', '0')],
    [command('BRPOP', 'a', '1.5'), kept(Kind.Blocking, 'BRPOP', 'a', '1.5')],
    [command('BRPOPLPUSH', 's', 'd', '5'), kept(Kind.Blocking, 'BRPOPLPUSH', 's', 'd', '5')],
    [
      command('BLMOVE', 's', 'd', 'LEFT', 'RIGHT', '2'),
      kept(Kind.Blocking, 'BLMOVE', 's', 'd', 'LEFT', 'RIGHT', '2'),
    ],
    [
      command('BLMPOP', '3', '1', 'k', 'LEFT'),
      kept(Kind.Blocking, 'BLMPOP', '3', '1', 'k', 'LEFT'),
    ],
    [command('BZPOPMIN', 'z', '0'), kept(Kind.Blocking, 'BZPOPMIN', 'z', '0')],
    [command('BZPOPMAX', 'z', '0'), kept(Kind.Blocking, 'BZPOPMAX', 'z', '0')],
    [command('BZMPOP', '1', '1', 'z', 'MIN'), kept(Kind.Blocking, 'BZMPOP', '1', '1', 'z', 'MIN')],
  ]),
  request('blocking command with a long key', [
    [
      command('BLPOP', LONG_KEY, '0'),
      kept(Kind.Blocking, 'BLPOP', LONG_KEY.toString('latin1'), '0'),
    ],
  ]),
  request('stream reads', [
    [
      command('XREAD', 'BLOCK', '0', 'STREAMS', 's', '$'),
      kept(Kind.StreamRead, 'XREAD', 'BLOCK', '0', 'STREAMS', 's', '$'),
    ],
    [
      command('XREADGROUP', 'GROUP', 'g', 'c', 'STREAMS', 's', '>'),
      kept(Kind.StreamRead, 'XREADGROUP', 'GROUP', 'g', 'c', 'STREAMS', 's', '>'),
    ],
  ]),
  request('MONITOR and CLIENT', [
    [command('MONITOR'), kept(Kind.Monitor, 'MONITOR')],
    [command('CLIENT', 'SETNAME', 'app'), kept(Kind.Client, 'CLIENT', 'SETNAME', 'app')],
  ]),
  request('replication', [
    [command('SYNC'), kept(Kind.Replication, 'SYNC')],
    [command('PSYNC', '?', '-1'), kept(Kind.Replication, 'PSYNC', '?', '-1')],
  ]),

  // Inline commands: split like redis-server's sdssplitargs().
  request('inline PING', [['PING\r\n', kept(Kind.Ping, 'PING')]]),
  request('inline ending in a bare LF', [['ping\n', kept(Kind.Ping, 'ping')]]),
  request('inline plain command', [['GET key\r\n', plain]]),
  request('inline with blanks around words', [
    [' \t SUBSCRIBE \t a   b \r\n', kept(Kind.Subscribe, 'SUBSCRIBE', 'a', 'b')],
  ]),
  request('inline quotes', [
    ["AUTH \"pass word\" 'it\\'s'\r\n", kept(Kind.Auth, 'AUTH', 'pass word', "it's")],
  ]),
  request('inline escapes in double quotes', [
    [
      'AUTH "\\x41\\x7a\\n\\r\\t\\b\\a\\"\\\\\\q"\r\n',
      kept(Kind.Auth, 'AUTH', 'Az\n\r\t\b\x07"\\q'),
    ],
  ]),
  request('inline backslash kept in single quotes', [
    ["AUTH 'a\\nb'\r\n", kept(Kind.Auth, 'AUTH', 'a\\nb')],
  ]),
  request('inline empty quoted argument', [['AUTH ""\r\n', kept(Kind.Auth, 'AUTH', '')]]),
  request('inline quote inside a word', [['AUTH a"b c"\r\n', kept(Kind.Auth, 'AUTH', 'ab c')]]),
  request('inline vertical tab inside a word', [
    ['AUTH a\vb\r\n', kept(Kind.Auth, 'AUTH', 'a\vb')],
  ]),
  request('inline CR inside the line splits words', [
    ['AUTH a\rb\r\n', kept(Kind.Auth, 'AUTH', 'a', 'b')],
  ]),
  request('empty inline lines are ignored, like redis', [
    ['\r\n', empty],
    ['\n', empty],
    [' \t\r\n', empty],
  ]),
  request('inline and multibulk mixed', [
    ['MULTI\r\n', kept(Kind.Multi, 'MULTI')],
    [command('SET', 'k', 'v'), plain],
    ['EXEC\n', kept(Kind.Exec, 'EXEC')],
  ]),
];
