import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Kind } from '../../src/resp/commands.js';
import { CRLF, OK, encodeCommand, encodeError } from '../../src/resp/encode.js';
import { scanRequests } from './feed.js';

describe('encodeCommand', () => {
  it('writes a multibulk of bulk strings', () => {
    const bytes = encodeCommand(['SET', 'k', Buffer.from([0, 13, 10])]);
    assert.equal(bytes.toString('latin1'), '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n\0\r\n\r\n');
  });

  it('counts UTF-8 bytes, not characters', () => {
    assert.equal(encodeCommand(['é']).toString('latin1'), '*1\r\n$2\r\n\xc3\xa9\r\n');
  });

  it('writes what the request scanner reads back', () => {
    const bytes = encodeCommand(['AUTH', 'user', 'to\r\nken']);
    const [found] = scanRequests([bytes]);
    assert.equal(found.end, bytes.length);
    assert.equal(found.kind, Kind.Auth);
    assert.deepEqual(found.args, ['AUTH', 'user', 'to\r\nken']);
  });
});

describe('encodeError', () => {
  it('keeps CR and LF out of the error line', () => {
    assert.equal(encodeError('ERR a\r\nb\nc').toString(), '-ERR a b c\r\n');
  });

  it('has constants for CRLF and +OK', () => {
    assert.equal(CRLF.toString(), '\r\n');
    assert.equal(OK.toString(), '+OK\r\n');
  });
});
