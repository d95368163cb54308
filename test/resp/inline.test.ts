/**
 * splitInline against redis-server's sdssplitargs(); each expectation was
 * checked with redis-server 7.0 (redis-parity.test.ts repeats a sample live).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProtocolError } from '../../src/resp/errors.js';
import { splitInline } from '../../src/resp/inline.js';

function split(line: string): string[] {
  return splitInline(Buffer.from(line, 'latin1')).map((arg) => arg.toString('latin1'));
}

describe('splitInline', () => {
  const cases: Array<[string, string, string[]]> = [
    ['words', 'a b c', ['a', 'b', 'c']],
    ['runs of blanks', ' \t a \t\t b  ', ['a', 'b']],
    ['empty line', '', []],
    ['only isspace() bytes', ' \t\v\f\r\n', []],
    ['double quotes', '"a b" c', ['a b', 'c']],
    ['single quotes', "'a b' c", ['a b', 'c']],
    ['empty quoted words', '"" \'\'', ['', '']],
    ['hex escape', '"\\x41\\x7a"', ['Az']],
    ['hex escape with one digit', '"\\x4"', ['x4']],
    ['hex escape with a non-hex digit', '"\\x4g" "\\xZZ"', ['x4g', 'xZZ']],
    ['control escapes', '"\\n\\r\\t\\b\\a"', ['\n\r\t\b\x07']],
    ['other escapes keep the char', '"\\q\\"\\\\"', ['q"\\']],
    ['backslash kept in single quotes', "'a\\nb'", ['a\\nb']],
    ['escaped single quote', "'it\\'s'", ["it's"]],
    ['quotes inside a word', 'a"b c"', ['ab c']],
    ['quote closed before a blank other than space', '"a"\vb', ['a', 'b']],
    ['vertical tab and form feed inside a word', 'a\vb c\fd', ['a\vb', 'c\fd']],
    ['CR inside the line ends a word', 'a\rb', ['a', 'b']],
    ['bytes above 0x7f', '\xff\xfe \x80', ['\xff\xfe', '\x80']],
    ['NUL ends the line, as in a C string', 'a\0b c', ['a']],
  ];

  for (const [description, line, expected] of cases) {
    it(description, () => {
      assert.deepEqual(split(line), expected);
    });
  }

  const unbalanced: Array<[string, string]> = [
    ['unterminated double quote', '"abc'],
    ['unterminated single quote', "'abc"],
    ['closing double quote followed by a letter', '"a"b'],
    ['closing single quote followed by a letter', "'a'b"],
    ['escaped closing quote', '"a\\"'],
    ['trailing backslash', '"\\'],
    ['NUL inside quotes', '"a\0"'],
  ];

  for (const [description, line] of unbalanced) {
    it(`refuses ${description}`, () => {
      assert.throws(
        () => split(line),
        (err: unknown) => {
          assert.ok(err instanceof ProtocolError);
          assert.equal(err.code, 'ERR_RESP_PROTOCOL');
          return true;
        },
      );
    });
  }
});
