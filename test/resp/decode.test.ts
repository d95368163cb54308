import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorReply, asText, decodeFrame, type Value } from '../../src/resp/decode.js';
import { ProtocolError } from '../../src/resp/errors.js';

function decode(text: string): Value {
  return decodeFrame(Buffer.from(text, 'latin1'));
}

const bulk = (text: string) => Buffer.from(text, 'latin1');

describe('decodeFrame', () => {
  const cases: Array<[string, string, Value]> = [
    ['simple string', '+OK\r\n', 'OK'],
    ['empty simple string', '+\r\n', ''],
    ['error, without its type byte', '-ERR bad thing\r\n', new ErrorReply('ERR bad thing')],
    ['integer', ':42\r\n', 42],
    ['negative integer', ':-1\r\n', -1],
    ['bulk string', '$5\r\nhello\r\n', bulk('hello')],
    ['bulk string holding CRLF', '$4\r\na\r\nb\r\n', bulk('a\r\nb')],
    ['empty bulk string', '$0\r\n\r\n', bulk('')],
    ['null bulk string', '$-1\r\n', null],
    ['null array', '*-1\r\n', null],
    ['RESP3 null', '_\r\n', null],
    ['double', ',3.14\r\n', 3.14],
    ['double with exponent', ',1.5e3\r\n', 1500],
    ['infinity', ',inf\r\n', Infinity],
    ['negative infinity', ',-inf\r\n', -Infinity],
    ['not a number', ',nan\r\n', NaN],
    [
      'big number',
      '(3492890328409238509324850943850943825024385\r\n',
      3492890328409238509324850943850943825024385n,
    ],
    ['true', '#t\r\n', true],
    ['false', '#f\r\n', false],
    ['verbatim string, without its format', '=15\r\ntxt:Some string\r\n', bulk('Some string')],
    ['blob error', '!21\r\nSYNTAX invalid syntax\r\n', new ErrorReply('SYNTAX invalid syntax')],
    ['array', '*2\r\n$3\r\nfoo\r\n:1\r\n', [bulk('foo'), 1]],
    ['empty array', '*0\r\n', []],
    ['nested array', '*2\r\n*1\r\n:1\r\n*0\r\n', [[1], []]],
    ['map, flattened', '%2\r\n+a\r\n:1\r\n+b\r\n#t\r\n', ['a', 1, 'b', true]],
    ['set', '~2\r\n+a\r\n+b\r\n', ['a', 'b']],
    [
      'push',
      '>3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n',
      [bulk('message'), bulk('c'), bulk('hi')],
    ],
    ['attribute dropped', '|1\r\n+ttl\r\n:5\r\n+OK\r\n', 'OK'],
    ['attribute nested in an array', '*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n', [1, 2]],
  ];

  for (const [description, frame, expected] of cases) {
    it(description, () => {
      assert.deepEqual(decode(frame), expected);
    });
  }

  it('reads error text as UTF-8', () => {
    const frame = Buffer.from('-ERR clé inconnue\r\n', 'utf8');
    assert.deepEqual(decodeFrame(frame), new ErrorReply('ERR clé inconnue'));
  });

  for (const [description, frame] of [
    ['unknown type byte', 'x\r\n'],
    ['no line end', '+OK'],
  ]) {
    it(`refuses ${description}`, () => {
      assert.throws(
        () => decode(frame),
        (err: unknown) => {
          assert.ok(err instanceof ProtocolError);
          assert.equal(err.code, 'ERR_RESP_PROTOCOL');
          return true;
        },
      );
    });
  }
});

describe('asText', () => {
  it('gives the text of strings and bulk strings only', () => {
    assert.equal(asText('OK'), 'OK');
    assert.equal(asText(Buffer.from('é', 'utf8')), 'é');
    for (const value of [null, 1, true, [], new ErrorReply('ERR')]) {
      assert.equal(asText(value), null);
    }
  });
});
