import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Kind, needsArguments } from '../../src/resp/commands.js';
import { RequestScanner } from '../../src/resp/request-scanner.js';
import { requestFixtures, type RequestFixture } from './fixtures.js';
import {
  bytes,
  fixedChunks,
  oneByteChunks,
  scanRequests,
  twoChunks,
  type FoundRequest,
} from './feed.js';

/** Checks what the fixture promises: boundaries, kinds, kept arguments. */
function check(found: FoundRequest[], fixture: RequestFixture, offset = 0): void {
  assert.deepEqual(
    found.map((command) => command.end),
    fixture.ends.map((end) => offset + end),
  );
  assert.deepEqual(
    found.map((command) => command.kind),
    fixture.commands.map((c) => c.kind),
  );
  assert.deepEqual(
    found.map((command) => command.inline),
    fixture.inline,
  );
  fixture.commands.forEach((command, i) => {
    if (!needsArguments(command.kind)) return;
    assert.deepEqual(found[i].args, command.args, `arguments of command ${i}`);
  });
}

describe('RequestScanner on each fixture', () => {
  for (const fixture of requestFixtures) {
    describe(fixture.description, () => {
      const whole = scanRequests([fixture.bytes]);

      it('finds the commands when fed whole', () => {
        check(whole, fixture);
      });

      it('finds the same commands when split at every byte boundary', () => {
        for (const chunks of twoChunks(fixture.bytes)) {
          const split = chunks[0].length;
          assert.deepEqual(scanRequests(chunks), whole, `split at ${split}`);
        }
      });

      it('finds the same commands when fed one byte at a time', () => {
        assert.deepEqual(scanRequests(oneByteChunks(fixture.bytes)), whole);
      });
    });
  }
});

describe('RequestScanner on all fixtures pipelined in one stream', () => {
  const stream = Buffer.concat(requestFixtures.map((fixture) => fixture.bytes));
  const whole = scanRequests([stream]);

  it('finds every command in one chunk', () => {
    let offset = 0;
    let first = 0;
    for (const fixture of requestFixtures) {
      const count = fixture.commands.length;
      check(whole.slice(first, first + count), fixture, offset);
      first += count;
      offset += fixture.bytes.length;
    }
    assert.equal(whole.length, first);
  });

  it('finds every command one byte at a time', () => {
    assert.deepEqual(scanRequests(oneByteChunks(stream)), whole);
  });

  for (const size of [2, 3, 7, 16, 1000, 4096, 65536]) {
    it(`finds every command in chunks of ${size} bytes`, () => {
      assert.deepEqual(scanRequests(fixedChunks(stream, size)), whole);
    });
  }
});

describe('RequestScanner state', () => {
  it('keeps no arguments for plain multibulk commands', () => {
    const [found] = scanRequests([bytes('*2\r\n$3\r\nGET\r\n$1\r\nk\r\n')]);
    assert.equal(found.kind, Kind.Plain);
    assert.equal(found.args, null);
  });

  it('does not keep the arguments of one command for the next', () => {
    const stream = bytes('*2\r\n$4\r\nAUTH\r\n$1\r\np\r\n*1\r\n$4\r\nINCR\r\n*0\r\n');
    const found = scanRequests([stream]);
    assert.deepEqual(
      found.map((command) => command.args),
      [['AUTH', 'p'], null, null],
    );
  });

  it('starts at a boundary and stays there on an empty chunk', () => {
    const scanner = new RequestScanner();
    assert.equal(scanner.atBoundary, true);
    assert.equal(scanner.scan(Buffer.alloc(0), 0), -1);
    assert.equal(scanner.atBoundary, true);
  });

  it('does not allocate a kept argument before its bytes arrive', () => {
    // A header alone must not make the proxy reserve 512 MiB.
    const before = process.memoryUsage().arrayBuffers;
    const scanner = new RequestScanner();
    assert.equal(scanner.scan(bytes('*2\r\n$4\r\nAUTH\r\n$536870912\r\nab'), 0), -1);
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.ok(grown < 64 * 1024 * 1024, `grew by ${grown} bytes`);
  });

  it('waits forever on an inline line holding a NUL, as redis does', () => {
    // redis finds the end of an inline line with strchr(), which stops at
    // the NUL: nothing after it is a command until the line limit trips.
    const found = scanRequests([bytes('PING\r\nECHO a\0b\r\nPING\r\n'), bytes('PING\r\n')]);
    assert.deepEqual(
      found.map((command) => command.end),
      [6],
    );
  });
});
