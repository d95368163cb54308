/**
 * Bytes that are not RESP, one row per case. Every row must make the scanner
 * throw a ProtocolError. Where redis-server 7.0 refuses the same request bytes
 * at once, `redis` holds the text of its error reply after "-ERR "; the
 * scanner must say the same, since the proxy sends that text to the client.
 * redis-parity.test.ts checks the column against a live redis-server.
 */

export interface MalformedCase {
  description: string;
  bytes: Buffer;
  redis?: string;
  /** Too long to feed split at every byte boundary; fed in fixed chunks instead. */
  long?: boolean;
}

function malformed(description: string, text: string | Buffer, redis?: string): MalformedCase {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  return { description, bytes, redis, long: bytes.length > 4096 };
}

export const malformedReplies: MalformedCase[] = [
  malformed('unknown type byte', 'x\r\n'),
  malformed('unknown type byte @', '@5\r\n'),
  malformed('NUL type byte', '\0\r\n'),
  malformed('chunk header outside a streamed string', ';3\r\nabc\r\n'),
  malformed('end of aggregate outside one', '.\r\n'),
  malformed('end of aggregate inside a counted array', '*1\r\n.\r\n'),
  malformed('bulk length not a number', '$abc\r\n'),
  malformed('bulk length empty', '$\r\n'),
  malformed('bulk length with a sign', '$+1\r\na\r\n'),
  malformed('bulk length below -1', '$-2\r\n'),
  malformed('bulk length of 16 digits', '$1234567890123456\r\n'),
  malformed('array length below -1', '*-2\r\n'),
  malformed('array length not a number', '*x\r\n'),
  malformed('map length below -1', '%-3\r\n'),
  malformed('negative attribute length', '|-1\r\n+OK\r\n'),
  malformed('line ending in a bare LF', '+OK\n'),
  malformed('integer ending in a bare LF', ':1\n'),
  malformed('bulk header ending in a bare LF', '$3\nfoo\r\n'),
  malformed('element ending in a bare LF', '*1\r\n+OK\n'),
  malformed('streamed string chunk without ;', '$?\r\n+OK\r\n'),
  malformed('streamed string chunk of negative length', '$?\r\n;-1\r\nx\r\n'),
  malformed('streamed string chunk length not a number', '$?\r\n;x\r\n'),
];

const DIGITS_70 = '1'.repeat(70);
const FILLER = 'x'.repeat(70_000);

export const malformedRequests: MalformedCase[] = [
  malformed('multibulk count not a number', '*abc\r\n', 'Protocol error: invalid multibulk length'),
  malformed('multibulk count empty', '*\r\n', 'Protocol error: invalid multibulk length'),
  malformed(
    'multibulk count with a leading zero',
    '*01\r\n$4\r\nPING\r\n',
    'Protocol error: invalid multibulk length',
  ),
  malformed(
    'multibulk count with a sign',
    '*+1\r\n$4\r\nPING\r\n',
    'Protocol error: invalid multibulk length',
  ),
  malformed('multibulk count -0', '*-0\r\n', 'Protocol error: invalid multibulk length'),
  malformed(
    'multibulk count of 70 digits',
    `*${DIGITS_70}\r\n`,
    'Protocol error: invalid multibulk length',
  ),
  malformed(
    'multibulk count over INT_MAX',
    '*2147483648\r\n',
    'Protocol error: invalid multibulk length',
  ),
  // redis 7.0 allows up to INT_MAX elements; the proxy keeps redis 6's 1M limit.
  malformed('multibulk count over 1024*1024', '*1048577\r\n'),
  malformed(
    'multibulk header ending in a bare LF',
    '*1\n$4\r\nPING\r\n',
    'Protocol error: invalid multibulk length',
  ),
  malformed(
    'argument that is not a bulk string',
    '*1\r\n:5\r\n',
    "Protocol error: expected '$', got ':'",
  ),
  malformed('bulk length not a number', '*1\r\n$abc\r\n', 'Protocol error: invalid bulk length'),
  malformed('bulk length -1', '*1\r\n$-1\r\n', 'Protocol error: invalid bulk length'),
  malformed(
    'bulk length with a leading zero',
    '*1\r\n$04\r\nPING\r\n',
    'Protocol error: invalid bulk length',
  ),
  malformed(
    'bulk length over 512 MiB',
    '*1\r\n$536870913\r\n',
    'Protocol error: invalid bulk length',
  ),
  malformed(
    'bulk length of 70 digits',
    `*1\r\n$${DIGITS_70}\r\n`,
    'Protocol error: invalid bulk length',
  ),
  malformed(
    'bulk header ending in a bare LF',
    '*1\r\n$4\nPING\r\n',
    'Protocol error: invalid bulk length',
  ),
  malformed(
    'multibulk count line over 64 KiB',
    `*${'1'.repeat(70_000)}`,
    'Protocol error: too big mbulk count string',
  ),
  malformed(
    'bulk length line over 64 KiB',
    `*1\r\n$${'1'.repeat(70_000)}`,
    'Protocol error: too big bulk count string',
  ),
  malformed(
    'inline line over 64 KiB without newline',
    FILLER,
    'Protocol error: too big inline request',
  ),
  // redis accepts a long line that arrives with its newline in one read.
  malformed('inline line over 64 KiB', `${FILLER}\r\n`),
  malformed(
    'inline line held open by a NUL',
    `ECHO a\0b\r\nPING\r\n${FILLER}`,
    'Protocol error: too big inline request',
  ),
  malformed(
    'unterminated double quote',
    '"unbalanced\r\n',
    'Protocol error: unbalanced quotes in request',
  ),
  malformed(
    'unterminated single quote',
    "ECHO 'a\r\n",
    'Protocol error: unbalanced quotes in request',
  ),
  malformed(
    'closing quote followed by a letter',
    'ECHO "a"b\r\n',
    'Protocol error: unbalanced quotes in request',
  ),
  malformed(
    'escaped closing quote',
    'ECHO "a\\"\r\n',
    'Protocol error: unbalanced quotes in request',
  ),
];
