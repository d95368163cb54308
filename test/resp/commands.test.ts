import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  Kind,
  blockingTimeout,
  changesConnection,
  classify,
  needsArguments,
  streamEnds,
  withTimeout,
  type BlockingTimeout,
} from '../../src/resp/commands.js';

function args(line: string): Buffer[] {
  return line.split(' ').map((word) => Buffer.from(word === '""' ? '' : word, 'latin1'));
}

function text(values: Buffer[]): string {
  return values.map((value) => value.toString('latin1')).join(' ');
}

describe('classify', () => {
  const cases: Array<[string, Kind]> = [
    ['GET', Kind.Plain],
    ['set', Kind.Plain],
    ['HSET', Kind.Plain],
    ['', Kind.Plain],
    ['AUTH', Kind.Auth],
    ['auth', Kind.Auth],
    ['AuTh', Kind.Auth],
    ['HELLO', Kind.Hello],
    ['multi', Kind.Multi],
    ['EXEC', Kind.Exec],
    ['Discard', Kind.Discard],
    ['RESET', Kind.Reset],
    ['quit', Kind.Quit],
    ['SUBSCRIBE', Kind.Subscribe],
    ['psubscribe', Kind.Subscribe],
    ['SSUBSCRIBE', Kind.Subscribe],
    ['UNSUBSCRIBE', Kind.Unsubscribe],
    ['PUNSUBSCRIBE', Kind.Unsubscribe],
    ['sunsubscribe', Kind.Unsubscribe],
    ['PING', Kind.Ping],
    ['BLPOP', Kind.Blocking],
    ['brpop', Kind.Blocking],
    ['BRPOPLPUSH', Kind.Blocking],
    ['BLMOVE', Kind.Blocking],
    ['BLMPOP', Kind.Blocking],
    ['BZPOPMIN', Kind.Blocking],
    ['bzpopmax', Kind.Blocking],
    ['BZMPOP', Kind.Blocking],
    ['WAIT', Kind.Blocking],
    ['waitaof', Kind.Blocking],
    ['XREAD', Kind.StreamRead],
    ['xreadgroup', Kind.StreamRead],
    ['MONITOR', Kind.Monitor],
    ['client', Kind.Client],
    ['SYNC', Kind.Replication],
    ['psync', Kind.Replication],
    ['SELECT', Kind.Stateful],
    ['watch', Kind.Stateful],
    ['UNWATCH', Kind.Stateful],
    ['READONLY', Kind.Stateful],
    ['readwrite', Kind.Stateful],
    ['ASKING', Kind.Stateful],
    // Near misses stay plain.
    ['AUT', Kind.Plain],
    ['AUTHS', Kind.Plain],
    ['PINGS', Kind.Plain],
    ['LPOP', Kind.Plain],
    ['XADD', Kind.Plain],
    ['CLIENTS', Kind.Plain],
    ['SUBSCRIBE ', Kind.Plain],
    ['SUBSCRIBEXYZ', Kind.Plain],
    ['PUNSUBSCRIBES', Kind.Plain],
    // toUpperCase() turns the latin1 byte 0xdf into "SS"; redis compares ASCII only.
    ['\xdfUBSCRIBE', Kind.Plain],
    ['\xdfSUBSCRIBE', Kind.Plain],
  ];

  for (const [name, kind] of cases) {
    it(`${JSON.stringify(name)} is ${kind}`, () => {
      const buf = Buffer.from(name, 'latin1');
      assert.equal(classify(buf, 0, buf.length), kind);
    });
  }

  it('reads only the given range of the buffer', () => {
    const buf = Buffer.from('xxAUTHyy', 'latin1');
    assert.equal(classify(buf, 2, 6), Kind.Auth);
    assert.equal(classify(buf, 1, 6), Kind.Plain);
  });

  it('keeps arguments of every kind but Plain, Empty and Stateful', () => {
    assert.equal(needsArguments(Kind.Plain), false);
    assert.equal(needsArguments(Kind.Empty), false);
    assert.equal(needsArguments(Kind.Stateful), false);
    for (const kind of [Kind.Auth, Kind.Subscribe, Kind.Blocking, Kind.StreamRead]) {
      assert.equal(needsArguments(kind), true);
    }
  });
});

describe('changesConnection', () => {
  it('holds for what can leave state on the connection, not for plain or local commands', () => {
    const changing = [Kind.Hello, Kind.Multi, Kind.Exec, Kind.Discard, Kind.Reset];
    changing.push(Kind.Subscribe, Kind.Unsubscribe, Kind.Monitor, Kind.Client, Kind.Stateful);
    for (const kind of changing) assert.equal(changesConnection(kind), true, `kind ${kind}`);
    const leaving = [Kind.Plain, Kind.Empty, Kind.Auth, Kind.Quit, Kind.Ping];
    leaving.push(Kind.Blocking, Kind.StreamRead, Kind.Replication);
    for (const kind of leaving) assert.equal(changesConnection(kind), false, `kind ${kind}`);
  });
});

describe('streamEnds', () => {
  const cases: Array<[string, Array<[number, string]>]> = [
    ['XREAD BLOCK 0 STREAMS s $', [[5, 's']]],
    ['xread COUNT 2 BLOCK 0 streams a b $ 0-1', [[8, 'a']]],
    [
      'XREAD BLOCK 0 STREAMS a b $ $',
      [
        [6, 'a'],
        [7, 'b'],
      ],
    ],
    ['XREAD BLOCK 0 STREAMS $ $', [[5, '$']]],
    ['XREAD BLOCK 0 STREAMS s 0-0', []],
    // Unbalanced or malformed: redis answers the error, nothing to pin.
    ['XREAD BLOCK 0 STREAMS a b $', []],
    ['XREAD BLOCK x STREAMS s $', []],
    // The group tracks what it delivered; `$` there is not XREAD's.
    ['XREADGROUP GROUP g c BLOCK 0 STREAMS s $', []],
    ['BLPOP $ 0', []],
  ];
  for (const [line, expected] of cases) {
    it(line, () => {
      const found = streamEnds(args(line)).map(({ index, key }) => [index, key.toString()]);
      assert.deepEqual(found, expected);
    });
  }
});

describe('blockingTimeout', () => {
  const seconds = (index: number, ms: number): BlockingTimeout => ({ index, ms, unit: 'seconds' });
  const millis = (index: number, ms: number): BlockingTimeout => ({
    index,
    ms,
    unit: 'milliseconds',
  });

  const cases: Array<[string, BlockingTimeout | null]> = [
    ['BLPOP a b 0', seconds(3, 0)],
    ['BLPOP a 1.5', seconds(2, 1500)],
    ['blpop a 2', seconds(2, 2000)],
    ['BRPOP a 1.1', seconds(2, 1100)],
    // redis rounds up: 0.0001 s blocks for 1 ms, where 0 would mean forever.
    ['BRPOP a 0.0001', seconds(2, 1)],
    ['BRPOP a .5', seconds(2, 500)],
    ['BRPOP a 1e1', seconds(2, 10_000)],
    ['BRPOPLPUSH s d 5', seconds(3, 5000)],
    ['BLMOVE s d LEFT RIGHT 2.5', seconds(5, 2500)],
    ['BZPOPMIN z 0', seconds(2, 0)],
    ['BZPOPMAX z y 3', seconds(3, 3000)],
    ['BLMPOP 3 1 k LEFT', seconds(1, 3000)],
    ['BZMPOP 0.5 1 z MIN COUNT 2', seconds(1, 500)],
    ['XREAD BLOCK 100 STREAMS s $', millis(2, 100)],
    ['WAIT 1 0', millis(2, 0)],
    ['wait 2 1500', millis(2, 1500)],
    ['WAITAOF 0 1 250', millis(3, 250)],
    // Wrong arity or timeout: redis answers the error at once.
    ['WAIT 1', null],
    ['WAIT 1 -5', null],
    ['WAIT 1 2 3', null],
    ['WAITAOF 1 100', null],
    ['XREAD COUNT 5 BLOCK 0 STREAMS s 0', millis(4, 0)],
    ['xread block 10 streams s 0', millis(2, 10)],
    ['XREADGROUP GROUP g c BLOCK 500 STREAMS s >', millis(5, 500)],
    ['XREADGROUP GROUP g c COUNT 1 NOACK BLOCK 0 STREAMS s >', millis(8, 0)],
    // Group and consumer names are values, not options.
    ['XREADGROUP GROUP STREAMS c BLOCK 100 STREAMS s >', millis(5, 100)],
    ['XREADGROUP GROUP BLOCK 5 STREAMS s >', null],
    // Does not block.
    ['XREAD STREAMS s 0', null],
    ['XREAD COUNT 5 STREAMS s 0', null],
    ['XREAD STREAMS BLOCK 5', null],
    // Malformed: redis answers an error at once.
    ['BLPOP', null],
    ['BLPOP a -1', null],
    ['BLPOP a abc', null],
    ['BLPOP a ""', null],
    ['BLPOP a 0x10', null],
    ['BLMPOP', null],
    ['XREAD BLOCK -1 STREAMS s 0', null],
    ['XREAD BLOCK 1.5 STREAMS s 0', null],
    ['XREAD BLOCK 010 STREAMS s 0', null],
    ['XREAD BLOCK "" STREAMS s 0', null],
    ['XREAD BLOCK 5', null],
    ['XREAD NOACK BLOCK 5 STREAMS s 0', null],
    ['XREAD BOGUS BLOCK 5 STREAMS s 0', null],
  ];

  for (const [line, expected] of cases) {
    it(line, () => {
      assert.deepEqual(blockingTimeout(args(line)), expected);
    });
  }
});

describe('withTimeout', () => {
  const cases: Array<[string, number, string]> = [
    ['BLPOP a b 10', 2500, 'BLPOP a b 2.500'],
    ['BLPOP a 10', 1, 'BLPOP a 0.001'],
    // Never 0, which redis reads as "block forever".
    ['BLPOP a 10', 0.4, 'BLPOP a 0.001'],
    ['BLPOP a 10', 0, 'BLPOP a 0.001'],
    ['BLMPOP 3 1 k LEFT', 1500, 'BLMPOP 1.500 1 k LEFT'],
    ['XREAD BLOCK 100 STREAMS s $', 40.2, 'XREAD BLOCK 41 STREAMS s $'],
    ['XREAD BLOCK 100 STREAMS s $', 0, 'XREAD BLOCK 1 STREAMS s $'],
  ];

  for (const [line, remaining, expected] of cases) {
    it(`${line} with ${remaining} ms left`, () => {
      const original = args(line);
      const timeout = blockingTimeout(original)!;
      assert.equal(text(withTimeout(original, timeout, remaining)), expected);
      assert.equal(text(original), line, 'the original arguments are left alone');
    });
  }

  it('writes a timeout that reads back within a millisecond, never forever', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('BLPOP a 9', 'BZMPOP 9 1 z MIN', 'XREAD BLOCK 9 STREAMS s 0'),
        fc.double({ min: 0, max: 1e9, noNaN: true }),
        (line, remaining) => {
          const original = args(line);
          const rewritten = withTimeout(original, blockingTimeout(original)!, remaining);
          const { ms } = blockingTimeout(rewritten)!;
          assert.ok(ms >= 1, `${ms} ms would block forever`);
          assert.ok(Math.abs(ms - Math.max(remaining, 1)) < 1, `${ms} ms for ${remaining}`);
        },
      ),
    );
  });
});
