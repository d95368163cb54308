import { ProtocolError } from './errors.js';

/** A decoded error reply: kept apart from strings so callers cannot mix them up. */
export class ErrorReply {
  constructor(readonly message: string) {}
}

export type Value = null | boolean | number | bigint | string | Buffer | ErrorReply | Value[];

/**
 * Decodes one complete frame. Used only for the few small frames the proxy
 * reads itself (replies to its own commands, pub/sub pushes); everything
 * else is forwarded as bytes. Maps become flat arrays of keys and values;
 * attributes are dropped. Bulk strings stay Buffers.
 */
export function decodeFrame(buf: Buffer): Value {
  const cursor = { pos: 0 };
  return readValue(buf, cursor);
}

function readValue(buf: Buffer, cursor: { pos: number }): Value {
  const lf = buf.indexOf(10, cursor.pos);
  if (lf < 0) throw new ProtocolError('incomplete frame');
  const start = cursor.pos;
  const type = buf[start];
  const text = buf.toString('latin1', start + 1, lf - 1);
  cursor.pos = lf + 1;

  switch (type) {
    case 0x2b: // +
      return text;
    case 0x2d: // -
      return new ErrorReply(buf.toString('utf8', start + 1, lf - 1));
    case 0x3a: // :
      return Number(text);
    case 0x2c: // , RESP3 spells infinities inf and -inf, which Number() rejects
      return text === 'inf' ? Infinity : text === '-inf' ? -Infinity : Number(text);
    case 0x28: // (
      return BigInt(text);
    case 0x23: // #
      return text === 't';
    case 0x5f: // _
      return null;
    case 0x24: // $
    case 0x3d: // =
    case 0x21: {
      // !
      const n = Number(text);
      if (n < 0) return null;
      const value = buf.subarray(cursor.pos, cursor.pos + n);
      cursor.pos += n + 2;
      if (type === 0x21) return new ErrorReply(value.toString('utf8'));
      // A verbatim string starts with its format ("txt:"), which is not text.
      return type === 0x3d ? value.subarray(4) : value;
    }
    case 0x2a: // *
    case 0x7e: // ~
    case 0x3e: // >
    case 0x25: {
      // %
      const n = Number(text);
      if (n < 0) return null;
      const count = type === 0x25 ? 2 * n : n;
      const items: Value[] = [];
      for (let i = 0; i < count; i++) items.push(readValue(buf, cursor));
      return items;
    }
    case 0x7c: {
      // | attribute: skip it, return the value it annotates
      const n = Number(text);
      for (let i = 0; i < 2 * n; i++) readValue(buf, cursor);
      return readValue(buf, cursor);
    }
    default:
      throw new ProtocolError(`cannot decode type byte 0x${type.toString(16)}`);
  }
}

/** Text of a decoded value, for small values the proxy inspects. */
export function asText(value: Value): string | null {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return null;
}
