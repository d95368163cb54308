import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { needsArguments } from '../../src/resp/commands.js';
import { ProtocolError } from '../../src/resp/errors.js';
import { ReplyScanner } from '../../src/resp/reply-scanner.js';
import { RequestScanner } from '../../src/resp/request-scanner.js';
import { cut, scanReplies, scanRequests } from './feed.js';
import { commandArb, cutsFor, encodeReply, replyArb, replyType, soup } from './resp-values.js';

/** A hang in a scanner fails the test instead of stalling the run. */
const timeout = 20_000;

const cutPoints = fc.array(fc.nat(), { maxLength: 12 });

/** Runs `feed`; a ProtocolError is an acceptable outcome, anything else is not. */
function onlyProtocolErrors(feed: () => unknown): void {
  try {
    feed();
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    assert.equal(err.code, 'ERR_RESP_PROTOCOL');
  }
}

describe('ReplyScanner properties', () => {
  it('finds exactly the frames of any encoded replies, however chunked', { timeout }, () => {
    fc.assert(
      fc.property(fc.array(replyArb, { minLength: 1, maxLength: 6 }), cutPoints, (replies, raw) => {
        const frames = replies.map((reply) => Buffer.concat(encodeReply(reply)));
        const bytes = Buffer.concat(frames);
        let end = 0;
        const want = frames.map((frame, i) => {
          end += frame.length;
          return { end, type: replyType(replies[i]) };
        });
        assert.deepEqual(scanReplies(cut(bytes, cutsFor(bytes.length, raw))), want);
      }),
      { numRuns: 400 },
    );
  });

  it('throws nothing but ProtocolError on random bytes and always progresses', { timeout }, () => {
    const pieces = [
      '*',
      '$',
      '%',
      '~',
      '>',
      '|',
      '?',
      '.',
      ';',
      '_',
      '#',
      '+',
      '-',
      ':',
      ',',
      '(',
      '=',
      '!',
      '0',
      '1',
      '2',
      '3',
      '-1',
      '\r\n',
      '\r',
      '\n',
      'x',
      '$?',
      '*?',
      ';0',
    ];
    fc.assert(
      fc.property(soup(pieces), cutPoints, (bytes, raw) => {
        onlyProtocolErrors(() => scanReplies(cut(bytes, cutsFor(bytes.length, raw))));
      }),
      { numRuns: 1500 },
    );
  });

  it('frames the same after a reset as a fresh scanner', { timeout }, () => {
    fc.assert(
      fc.property(soup(['*2\r\n', ':1\r\n', '$3\r\n', 'abc']), replyArb, (junk, reply) => {
        const scanner = new ReplyScanner();
        onlyProtocolErrors(() => scanner.scan(junk, 0));
        scanner.reset();
        const bytes = Buffer.concat(encodeReply(reply));
        const want = [{ end: bytes.length, type: replyType(reply) }];
        assert.deepEqual(scanReplies([bytes], scanner), want);
      }),
      { numRuns: 200 },
    );
  });
});

describe('RequestScanner properties', () => {
  it('finds exactly the commands sent, however chunked', { timeout }, () => {
    fc.assert(
      fc.property(
        fc.array(commandArb, { minLength: 1, maxLength: 6 }),
        cutPoints,
        (commands, raw) => {
          const bytes = Buffer.concat(commands.map((command) => command.bytes));
          const found = scanRequests(cut(bytes, cutsFor(bytes.length, raw)));
          let end = 0;
          assert.deepEqual(
            found.map((command) => command.end),
            commands.map((command) => {
              end += command.bytes.length;
              return end;
            }),
          );
          assert.deepEqual(
            found.map((command) => command.kind),
            commands.map((c) => c.kind),
          );
          commands.forEach((command, i) => {
            if (needsArguments(command.kind)) assert.deepEqual(found[i].args, command.args);
          });
        },
      ),
      { numRuns: 400 },
    );
  });

  it('throws nothing but ProtocolError on random bytes and always progresses', { timeout }, () => {
    const pieces = [
      '*',
      '$',
      '0',
      '1',
      '2',
      '3',
      '-',
      '-1',
      '\r\n',
      '\r',
      '\n',
      ' ',
      '\t',
      '"',
      "'",
      '\\',
      '\\x4',
      '\0',
      '\v',
      'x',
      'PING',
      'AUTH',
      'subscribe',
      '*1\r\n',
      '$4\r\n',
    ];
    fc.assert(
      fc.property(soup(pieces), cutPoints, (bytes, raw) => {
        onlyProtocolErrors(() => scanRequests(cut(bytes, cutsFor(bytes.length, raw))));
      }),
      { numRuns: 1500 },
    );
  });

  it('stops at the same point whether fed whole or in chunks', { timeout }, () => {
    // Either both feedings throw, or both find the same commands.
    fc.assert(
      fc.property(soup(['*1\r\n', '$4\r\n', 'PING', '\r\n', ' ', '"']), cutPoints, (bytes, raw) => {
        const outcome = (chunks: Buffer[]) => {
          try {
            return scanRequests(chunks, new RequestScanner());
          } catch (err) {
            if (err instanceof ProtocolError) return 'ProtocolError';
            throw err;
          }
        };
        assert.deepEqual(outcome(cut(bytes, cutsFor(bytes.length, raw))), outcome([bytes]));
      }),
      { numRuns: 500 },
    );
  });
});
