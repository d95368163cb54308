import { decodeFrame, ErrorReply, asText } from '../resp/decode.js';

/**
 * RESP2 subscribers cannot re-authenticate: redis-server rejects AUTH from a
 * RESP2 connection in subscribe mode. The proxy therefore moves the upstream
 * connection to RESP3 (HELLO 3) before the first SUBSCRIBE of a RESP2 client.
 * Confirmations and messages then arrive as push frames, which this module
 * turns back into the RESP2 arrays the client expects: `>3` and `*3` have the
 * same length, so only the type byte changes and payloads are never copied.
 */

export const PUSH = 0x3e;
export const ARRAY = 0x2a;

/** Push frames larger than this are messages, never confirmations. */
export const CONFIRMATION_MAX_BYTES = 4096;

const COUNTED = new Set(['subscribe', 'unsubscribe', 'psubscribe', 'punsubscribe']);
const SHARD = new Set(['ssubscribe', 'sunsubscribe']);

/** Subscription counts as the server reports them in confirmations. */
export class Subscriptions {
  /** Channels plus patterns. */
  regular = 0;
  shard = 0;

  get active(): boolean {
    return this.regular + this.shard > 0;
  }

  /** Updates the counts from a complete push frame (confirmation or message). */
  observe(frame: Buffer): void {
    let value;
    try {
      value = decodeFrame(frame);
    } catch {
      return;
    }
    if (!Array.isArray(value) || value.length !== 3) return;
    const kind = asText(value[0])?.toLowerCase();
    const count = value[2];
    if (kind === undefined || typeof count !== 'number') return;
    if (COUNTED.has(kind)) this.regular = count;
    else if (SHARD.has(kind)) this.shard = count;
  }

  clear(): void {
    this.regular = 0;
    this.shard = 0;
  }
}

/** The error redis-server gives a RESP2 subscriber for any other command. */
export function notAllowedWhileSubscribed(name: Buffer): Buffer {
  const command = name
    .toString('latin1')
    .toLowerCase()
    .replace(/[\r\n]/g, '');
  return Buffer.from(
    `-ERR Can't execute '${command}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / ` +
      'RESET are allowed in this context\r\n',
    'latin1',
  );
}

/**
 * PING of a RESP2 subscriber: redis answers `*2 pong <arg or "">`; the RESP3
 * upstream answered `+PONG` or the bulk argument. Errors pass unchanged.
 */
export function pingReplyForSubscriber(frame: Buffer): Buffer {
  const value = decodeFrame(frame);
  if (value instanceof ErrorReply) return frame;
  const payload = Buffer.isBuffer(value) ? value : Buffer.alloc(0);
  return Buffer.concat([
    Buffer.from(`*2\r\n$4\r\npong\r\n$${payload.length}\r\n`, 'latin1'),
    payload,
    Buffer.from('\r\n', 'latin1'),
  ]);
}

/** True for `+...`/error-free marker replies: the PONG of the proxy's marker PING. */
export function isErrorFrame(frame: Buffer): boolean {
  return frame[0] === 0x2d || frame[0] === 0x21;
}
