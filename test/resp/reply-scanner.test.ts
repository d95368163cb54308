import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReplyScanner } from '../../src/resp/reply-scanner.js';
import { replyFixtures, type ReplyFixture } from './fixtures.js';
import {
  bytes,
  fixedChunks,
  oneByteChunks,
  scanReplies,
  twoChunks,
  type FoundReply,
} from './feed.js';

function expected(fixture: ReplyFixture, offset = 0): FoundReply[] {
  return fixture.ends.map((end, i) => ({ end: offset + end, type: fixture.types[i] }));
}

describe('ReplyScanner on each fixture', () => {
  for (const fixture of replyFixtures) {
    describe(fixture.description, () => {
      const want = expected(fixture);

      it('finds the frames when fed whole', () => {
        assert.deepEqual(scanReplies([fixture.bytes]), want);
      });

      it('finds the same frames when split at every byte boundary', () => {
        for (const chunks of twoChunks(fixture.bytes)) {
          const split = chunks[0].length;
          assert.deepEqual(scanReplies(chunks), want, `split at ${split}`);
        }
      });

      it('finds the same frames when fed one byte at a time', () => {
        assert.deepEqual(scanReplies(oneByteChunks(fixture.bytes)), want);
      });
    });
  }
});

describe('ReplyScanner on all fixtures pipelined in one stream', () => {
  const stream = Buffer.concat(replyFixtures.map((fixture) => fixture.bytes));
  const want: FoundReply[] = [];
  let offset = 0;
  for (const fixture of replyFixtures) {
    want.push(...expected(fixture, offset));
    offset += fixture.bytes.length;
  }

  it('finds every frame in one chunk', () => {
    assert.deepEqual(scanReplies([stream]), want);
  });

  it('finds every frame one byte at a time', () => {
    assert.deepEqual(scanReplies(oneByteChunks(stream)), want);
  });

  for (const size of [2, 3, 7, 16, 1000, 4096, 16 * 1024, 65536]) {
    it(`finds every frame in chunks of ${size} bytes`, () => {
      assert.deepEqual(scanReplies(fixedChunks(stream, size)), want);
    });
  }
});

describe('ReplyScanner state', () => {
  it('starts at a boundary and stays there on an empty chunk', () => {
    const scanner = new ReplyScanner();
    assert.equal(scanner.atBoundary, true);
    assert.equal(scanner.scan(Buffer.alloc(0), 0), -1);
    assert.equal(scanner.atBoundary, true);
    assert.equal(scanner.scan(bytes('+OK\r\n'), 5), -1);
    assert.equal(scanner.atBoundary, true);
  });

  it('does not end a bulk string split inside its payload early', () => {
    // A top-level bulk owes no value once its header is read; the payload
    // must still pass before the next frame starts.
    const scanner = new ReplyScanner();
    assert.equal(scanner.scan(bytes('$3\r\nfo'), 0), -1);
    assert.equal(scanner.atBoundary, false);
    assert.equal(scanner.scan(bytes('o\r\n+OK\r\n'), 0), 3);
    assert.equal(String.fromCharCode(scanner.type), '$');
    assert.equal(scanner.scan(bytes('o\r\n+OK\r\n'), 3), 8);
    assert.equal(String.fromCharCode(scanner.type), '+');
  });

  it('keeps the type of the frame in progress across chunks', () => {
    const scanner = new ReplyScanner();
    assert.equal(scanner.scan(bytes('|1\r\n+a\r\n+b\r\n*2\r\n:1'), 0), -1);
    assert.equal(String.fromCharCode(scanner.type), '*');
    assert.equal(scanner.scan(bytes('\r\n:2\r\n'), 0), 6);
  });

  it('forgets a partial frame on reset', () => {
    const scanner = new ReplyScanner();
    for (const partial of ['*3\r\n:1\r\n', '$10\r\nabc', '+O', '*?\r\n$?\r\n;2\r\na']) {
      assert.equal(scanner.scan(bytes(partial), 0), -1, partial);
      scanner.reset();
      assert.equal(scanner.atBoundary, true);
      assert.deepEqual(scanReplies([bytes(':1\r\n')], scanner), [{ end: 4, type: ':' }]);
    }
  });
});
