import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProtocolError } from '../../src/resp/errors.js';
import { ReplyScanner } from '../../src/resp/reply-scanner.js';
import { RequestScanner } from '../../src/resp/request-scanner.js';
import { fixedChunks, oneByteChunks, twoChunks } from './feed.js';
import { malformedReplies, malformedRequests, type MalformedCase } from './malformed.js';

interface Scanner {
  scan(buf: Buffer, pos: number): number;
}

/** Feeds every chunk; returns what was thrown, or fails if nothing was. */
function thrown(scanner: Scanner, chunks: Buffer[]): unknown {
  try {
    for (const chunk of chunks) {
      let pos = 0;
      while (pos < chunk.length) {
        const end = scanner.scan(chunk, pos);
        if (end < 0) break;
        pos = end;
      }
    }
  } catch (err) {
    return err;
  }
  return assert.fail('no error thrown');
}

function assertProtocolError(err: unknown): asserts err is ProtocolError {
  assert.ok(err instanceof ProtocolError, `not a ProtocolError: ${String(err)}`);
  assert.equal(err.code, 'ERR_RESP_PROTOCOL');
  assert.match(err.message, /^Protocol error: /);
}

/** Whole, split at every byte boundary and byte by byte, or in chunks when long. */
function feedings(bytes: Buffer, long: boolean | undefined): Buffer[][] {
  if (long) return [[bytes], fixedChunks(bytes, 1000), fixedChunks(bytes, 16 * 1024)];
  return [[bytes], ...twoChunks(bytes), oneByteChunks(bytes)];
}

function table(cases: MalformedCase[], create: () => Scanner): void {
  for (const row of cases) {
    it(row.description, () => {
      for (const chunks of feedings(row.bytes, row.long)) {
        assertProtocolError(thrown(create(), chunks));
      }
      const err = thrown(create(), [row.bytes]) as Error;
      if (row.redis !== undefined) assert.equal(err.message, row.redis);
    });
  }
}

describe('ReplyScanner refuses malformed replies', () => {
  table(malformedReplies, () => new ReplyScanner());

  it('refuses a header line over 64 MiB', () => {
    const line = Buffer.alloc(64 * 1024 * 1024 + 1, 'a');
    line[0] = 0x2b; // +
    assertProtocolError(thrown(new ReplyScanner(), [line]));
  });
});

describe('RequestScanner refuses malformed commands', () => {
  table(malformedRequests, () => new RequestScanner());

  it('accepts a multibulk of exactly 1024*1024 arguments', () => {
    assert.equal(new RequestScanner().scan(Buffer.from('*1048576\r\n'), 0), -1);
  });

  it('accepts a bulk argument of exactly 512 MiB', () => {
    const header = Buffer.from('*1\r\n$536870912\r\n');
    assert.equal(new RequestScanner().scan(header, 0), -1);
  });

  it('accepts an inline line of exactly 64 KiB', () => {
    const line = Buffer.from(`${'x'.repeat(64 * 1024 - 1)}\r\n`);
    const scanner = new RequestScanner();
    assert.equal(scanner.scan(line, 0), line.length);
    for (const size of [1, 1000]) {
      let found = -1;
      const chunks = fixedChunks(line, size);
      const fresh = new RequestScanner();
      for (const chunk of chunks) found = fresh.scan(chunk, 0);
      assert.equal(found, chunks[chunks.length - 1].length, `chunks of ${size}`);
    }
  });
});
