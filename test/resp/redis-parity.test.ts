/**
 * The scanners stand in for redis-server's own parser on the client side and
 * for a client's parser on the upstream side; these tests hold them to what
 * a real redis-server 7.0 does with the same bytes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeFrame, ErrorReply } from '../../src/resp/decode.js';
import { encodeCommand } from '../../src/resp/encode.js';
import { splitInline } from '../../src/resp/inline.js';
import { oneByteChunks, scanReplies, twoChunks } from './feed.js';
import { malformedRequests } from './malformed.js';
import { exchange, redisInstalled, startPlainRedis, type PlainRedis } from './plain-redis.js';

const skip = redisInstalled ? false : 'redis-server is not installed';

/** Inline argument lists, written one char per byte, that redis must split like splitInline. */
const INLINE_LINES = [
  'a b  c',
  '"a b" \'c d\'',
  '"\\x41\\x7a\\n\\r\\t\\b\\a\\"\\\\\\q"',
  "'it\\'s' 'a\\nb'",
  'a\vb c\fd',
  '\v a \f b\v',
  'a"b c"',
  'x"y"\v z',
  '"" \'\'',
  '"\\x4g" "\\x" "\\xZZ"',
  'a\rb',
  '\xff\xfe \x80',
];

/** Commands whose RESP3 replies cover every type, with the frame types expected. */
const RESP3_COMMANDS: Array<[string[], string]> = [
  [['HELLO', '3'], '%'],
  [['DEBUG', 'PROTOCOL', 'attrib'], '$'],
  [['DEBUG', 'PROTOCOL', 'push'], '>$'],
  [['DEBUG', 'PROTOCOL', 'verbatim'], '='],
  [['DEBUG', 'PROTOCOL', 'bignum'], '('],
  [['DEBUG', 'PROTOCOL', 'double'], ','],
  [['DEBUG', 'PROTOCOL', 'map'], '%'],
  [['DEBUG', 'PROTOCOL', 'set'], '~'],
  [['DEBUG', 'PROTOCOL', 'true'], '#'],
  [['DEBUG', 'PROTOCOL', 'null'], '_'],
  [['DEBUG', 'PROTOCOL', 'array'], '*'],
  [['CLIENT', 'INFO'], '='],
  [['GET'], '-'],
];

function latin1(values: Buffer[]): string[] {
  return values.map((value) => value.toString('latin1'));
}

/** Answers until `count` frames have arrived. */
function frames(count: number): (received: Buffer) => boolean {
  return (received) => scanReplies([received]).length >= count;
}

describe('scanners agree with a live redis-server', { skip }, () => {
  let redis: PlainRedis;

  before(async () => {
    redis = await startPlainRedis();
  });

  after(() => redis?.stop());

  describe('redis answers malformed requests with the text in the table', () => {
    for (const row of malformedRequests.filter((r) => r.redis !== undefined)) {
      it(row.description, async () => {
        const answer = await exchange(redis.port, row.bytes);
        assert.equal(answer.toString('latin1'), `-ERR ${row.redis}\r\n`);
      });
    }
  });

  describe('redis splits inline lines like splitInline', () => {
    for (const line of INLINE_LINES) {
      it(JSON.stringify(line), async () => {
        const request = Buffer.concat([
          Buffer.from(`DEL l\r\nRPUSH l ${line}\r\n`, 'latin1'),
          encodeCommand(['LRANGE', 'l', '0', '-1']),
        ]);
        const answer = await exchange(redis.port, request, frames(3));
        const [, pushed, listed] = scanReplies([answer]);
        const stored = decodeFrame(answer.subarray(pushed.end, listed.end)) as Buffer[];
        assert.deepEqual(latin1(stored), latin1(splitInline(Buffer.from(line, 'latin1'))));
      });
    }
  });

  describe('ReplyScanner frames real RESP3 replies', () => {
    const request = Buffer.concat(RESP3_COMMANDS.map(([args]) => encodeCommand(args)));
    const types = RESP3_COMMANDS.map(([, type]) => type).join('');
    let answer: Buffer;

    before(async () => {
      answer = await exchange(redis.port, request, frames(types.length));
    });

    it('finds one frame per reply, whole, split anywhere and byte by byte', () => {
      const whole = scanReplies([answer]);
      assert.equal(whole.map((frame) => frame.type).join(''), types);
      assert.equal(whole[whole.length - 1].end, answer.length);
      for (const chunks of twoChunks(answer)) assert.deepEqual(scanReplies(chunks), whole);
      assert.deepEqual(scanReplies(oneByteChunks(answer)), whole);
    });

    it('decodes the values redis documents for DEBUG PROTOCOL', () => {
      const ends = [0, ...scanReplies([answer]).map((frame) => frame.end)];
      const values = ends.slice(1).map((end, i) => decodeFrame(answer.subarray(ends[i], end)));
      const [, attrib, push, , verbatim, bignum, double, map, set, yes, nil, array, , error] =
        values;
      assert.equal((attrib as Buffer).toString(), 'Some real reply following the attribute');
      assert.deepEqual((push as [Buffer, number])[1], 42);
      assert.equal((verbatim as Buffer).toString(), 'This is a verbatim\nstring');
      assert.equal(bignum, 1234567999999999999999999999999999999n);
      assert.equal(double, 3.141);
      assert.deepEqual(map, [0, false, 1, true, 2, false]);
      assert.deepEqual(set, [0, 1, 2]);
      assert.equal(yes, true);
      assert.equal(nil, null);
      assert.deepEqual(array, [0, 1, 2]);
      assert.ok(error instanceof ErrorReply);
      assert.equal(error.message, "ERR wrong number of arguments for 'get' command");
    });
  });
});
