/**
 * Arbitrary RESP2/RESP3 replies and client commands for the property tests,
 * as small trees with their own encoder: the scanners are checked against
 * an independent statement of the wire format, not against themselves.
 */
import fc from 'fast-check';
import { Kind } from '../../src/resp/commands.js';

export type Reply =
  /** `+ - : , ( # _`: a type byte, text, CRLF. */
  | { kind: 'line'; type: string; text: string }
  /** `$ ! =`: a length, the bytes, CRLF; `$-1` when data is null. */
  | { kind: 'blob'; type: string; data: Buffer | null }
  /** `$?` then `;len` chunks, ended by `;0`. */
  | { kind: 'chunked'; chunks: Buffer[] }
  /** `* ~ > %`, counted or streamed (`*?` ... `.`); maps hold keys and values in turn. */
  | { kind: 'aggregate'; type: string; items: Reply[] | null; streamed: boolean }
  /** `|` pairs, then the value they annotate. */
  | { kind: 'annotated'; pairs: Reply[]; value: Reply };

const CRLF = Buffer.from('\r\n');

function latin1(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

export function encodeReply(reply: Reply, out: Buffer[] = []): Buffer[] {
  switch (reply.kind) {
    case 'line':
      out.push(latin1(`${reply.type}${reply.text}\r\n`));
      break;
    case 'blob':
      if (reply.data === null) out.push(latin1(`${reply.type}-1\r\n`));
      else out.push(latin1(`${reply.type}${reply.data.length}\r\n`), reply.data, CRLF);
      break;
    case 'chunked':
      out.push(latin1('$?\r\n'));
      for (const chunk of reply.chunks) out.push(latin1(`;${chunk.length}\r\n`), chunk, CRLF);
      out.push(latin1(';0\r\n'));
      break;
    case 'aggregate':
      encodeAggregate(reply.type, reply.items, reply.streamed, out);
      break;
    case 'annotated':
      out.push(latin1(`|${reply.pairs.length / 2}\r\n`));
      for (const item of reply.pairs) encodeReply(item, out);
      encodeReply(reply.value, out);
      break;
  }
  return out;
}

function encodeAggregate(type: string, items: Reply[] | null, streamed: boolean, out: Buffer[]) {
  if (items === null) {
    out.push(latin1(`${type}-1\r\n`));
    return;
  }
  const count = type === '%' ? items.length / 2 : items.length;
  out.push(latin1(streamed ? `${type}?\r\n` : `${type}${count}\r\n`));
  for (const item of items) encodeReply(item, out);
  if (streamed) out.push(latin1('.\r\n'));
}

/** The type byte a scanner reports for the frame: that of the annotated value. */
export function replyType(reply: Reply): string {
  switch (reply.kind) {
    case 'chunked':
      return '$';
    case 'annotated':
      return replyType(reply.value);
    default:
      return reply.type;
  }
}

const bytesOf = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));

/** Payloads, biased towards bytes that look like RESP headers. */
const payload = fc.oneof(
  bytesOf(24),
  fc
    .array(fc.constantFrom('\r\n', '*1', '$3', ';0', '.', '|', '\n', 'x'), { maxLength: 8 })
    .map((parts) => latin1(parts.join(''))),
);

/** Text of a line: anything but CR and LF. */
const lineText = fc
  .array(
    fc.integer({ min: 0, max: 255 }).filter((c) => c !== 10 && c !== 13),
    { maxLength: 16 },
  )
  .map((codes) => String.fromCharCode(...codes));

const line: fc.Arbitrary<Reply> = fc.oneof(
  fc
    .tuple(fc.constantFrom('+', '-'), lineText)
    .map(([type, text]) => ({ kind: 'line' as const, type, text })),
  fc.bigInt().map((n) => ({ kind: 'line' as const, type: ':', text: String(n) })),
  fc.bigInt().map((n) => ({ kind: 'line' as const, type: '(', text: String(n) })),
  fc.double().map((x) => ({ kind: 'line' as const, type: ',', text: doubleText(x) })),
  fc.boolean().map((b) => ({ kind: 'line' as const, type: '#', text: b ? 't' : 'f' })),
  fc.constant({ kind: 'line' as const, type: '_', text: '' }),
);

function doubleText(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  return String(x);
}

const blob: fc.Arbitrary<Reply> = fc.oneof(
  fc
    .tuple(fc.constantFrom('$', '!'), payload)
    .map(([type, data]) => ({ kind: 'blob' as const, type, data })),
  payload.map((data) => ({ kind: 'blob' as const, type: '=', data: withFormat(data) })),
  fc.constant({ kind: 'blob' as const, type: '$', data: null }),
);

/** A verbatim string starts with its three-letter format and a colon. */
function withFormat(data: Buffer): Buffer {
  return Buffer.concat([latin1('txt:'), data]);
}

const chunk = payload.filter((data) => data.length > 0);

const chunked: fc.Arbitrary<Reply> = fc
  .array(chunk, { maxLength: 3 })
  .map((chunks) => ({ kind: 'chunked' as const, chunks }));

const scalar = fc.oneof(line, blob, chunked);

type Trees = { reply: Reply; aggregate: Reply; annotated: Reply };

/** Replies nested up to four aggregates deep. */
export const replyArb: fc.Arbitrary<Reply> = fc.letrec<Trees>((tie) => ({
  reply: fc.oneof(
    { maxDepth: 4, depthIdentifier: 'reply' },
    scalar,
    tie('aggregate'),
    tie('annotated'),
  ),
  aggregate: fc.oneof(
    fc.record({
      kind: fc.constant('aggregate' as const),
      type: fc.constantFrom('*', '~', '>'),
      items: fc.array(tie('reply'), { maxLength: 4 }),
      streamed: fc.boolean(),
    }),
    fc.record({
      kind: fc.constant('aggregate' as const),
      type: fc.constant('%'),
      items: fc.array(fc.tuple(tie('reply'), tie('reply')), { maxLength: 3 }).map((p) => p.flat()),
      streamed: fc.boolean(),
    }),
    fc.constant({ kind: 'aggregate' as const, type: '*', items: null, streamed: false }),
  ),
  annotated: fc.record({
    kind: fc.constant('annotated' as const),
    pairs: fc.array(fc.tuple(tie('reply'), tie('reply')), { maxLength: 2 }).map((p) => p.flat()),
    value: tie('reply'),
  }),
})).reply;

/** A client command and what the request scanner must report for it. */
export interface Command {
  bytes: Buffer;
  kind: Kind;
  /** Arguments, name first, as latin1 text; null for `*0` and empty lines. */
  args: string[] | null;
}

/** Known names, in any letter case, with their kinds. */
const KNOWN: Array<[string, Kind]> = [
  ['AUTH', Kind.Auth],
  ['HELLO', Kind.Hello],
  ['MULTI', Kind.Multi],
  ['EXEC', Kind.Exec],
  ['DISCARD', Kind.Discard],
  ['RESET', Kind.Reset],
  ['QUIT', Kind.Quit],
  ['SUBSCRIBE', Kind.Subscribe],
  ['PUNSUBSCRIBE', Kind.Unsubscribe],
  ['PING', Kind.Ping],
  ['BLPOP', Kind.Blocking],
  ['BZMPOP', Kind.Blocking],
  ['XREADGROUP', Kind.StreamRead],
  ['MONITOR', Kind.Monitor],
  ['CLIENT', Kind.Client],
  ['PSYNC', Kind.Replication],
];

const name: fc.Arbitrary<[string, Kind]> = fc.oneof(
  fc
    .tuple(fc.constantFrom(...KNOWN), fc.boolean())
    .map(([[text, kind], lower]) => [lower ? text.toLowerCase() : text, kind] as [string, Kind]),
  // An X prefix keeps random names clear of every known one.
  fc.string({ maxLength: 40 }).map((text) => [`X${text}`, Kind.Plain] as [string, Kind]),
);

const argument = fc.oneof(bytesOf(12), payload).map((bytes) => bytes.toString('latin1'));

const multibulk: fc.Arbitrary<Command> = fc
  .tuple(name, fc.array(argument, { maxLength: 5 }))
  .map(([[text, kind], rest]) => {
    const args = [text, ...rest];
    const parts = [latin1(`*${args.length}\r\n`)];
    for (const arg of args) parts.push(latin1(`$${latin1(arg).length}\r\n`), latin1(arg), CRLF);
    return { bytes: Buffer.concat(parts), kind, args };
  });

/** A word as an inline command would write it: bare when it can be, else double-quoted. */
function inlineWord(word: string, quote: boolean): string {
  const bare = /^[\x21\x23-\x26\x28-\x5b\x5d-\x7e\x80-\xff]+$/.test(word);
  if (bare && !quote) return word;
  let quoted = '"';
  for (const char of word) {
    const code = char.charCodeAt(0);
    if (char === '"' || char === '\\') quoted += `\\${char}`;
    else if (code < 0x20 || code === 0x7f) quoted += `\\x${code.toString(16).padStart(2, '0')}`;
    else quoted += char;
  }
  return `${quoted}"`;
}

const blanks = fc
  .array(fc.constantFrom(' ', '\t'), { minLength: 1, maxLength: 3 })
  .map((parts) => parts.join(''));

const inline: fc.Arbitrary<Command> = fc
  .record({
    name,
    rest: fc.array(fc.tuple(argument, fc.boolean(), blanks), { maxLength: 4 }),
    lead: fc.constantFrom('', ' ', '\t '),
    end: fc.constantFrom('\r\n', '\n', ' \r\n'),
  })
  .map(({ name: [text, kind], rest, lead, end }) => {
    let line = lead + inlineWord(text, false);
    for (const [word, quote, gap] of rest) line += gap + inlineWord(word, quote);
    return { bytes: latin1(line + end), kind, args: [text, ...rest.map(([word]) => word)] };
  });

const empty: fc.Arbitrary<Command> = fc
  .constantFrom('*0\r\n', '*-1\r\n', '\r\n', '\n', ' \t\r\n')
  .map((text) => ({ bytes: latin1(text), kind: Kind.Empty, args: null }));

export const commandArb: fc.Arbitrary<Command> = fc.oneof(multibulk, inline, empty);

/** Cut offsets inside a buffer of `length` bytes, from arbitrary numbers. */
export function cutsFor(length: number, raw: number[]): number[] {
  if (length < 2) return [];
  const cuts = new Set(raw.map((n) => 1 + (n % (length - 1))));
  return [...cuts].sort((a, b) => a - b);
}

/** Byte soup made of pieces of RESP, so random input reaches deep states. */
export function soup(pieces: string[]): fc.Arbitrary<Buffer> {
  return fc.oneof(
    bytesOf(200),
    fc.array(fc.constantFrom(...pieces), { maxLength: 80 }).map((parts) => latin1(parts.join(''))),
  );
}
