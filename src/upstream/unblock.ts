import { ErrorReply, decodeFrame } from '../resp/decode.js';
import { encodeCommand } from '../resp/encode.js';
import { ReplyScanner } from '../resp/reply-scanner.js';
import type { Token } from '../auth/token-source.js';
import type { Dialer } from './dial.js';

/**
 * Sends `CLIENT UNBLOCK <id> TIMEOUT` on a short-lived connection of its own.
 * Unblocks are rare (one per blocked client per rotation), so a dedicated
 * connection that would itself need re-authenticating is not worth keeping.
 * Resolves with whether a client was unblocked.
 */
export async function unblockClient(
  dialer: Dialer,
  token: Token,
  clientId: number,
): Promise<boolean> {
  const upstream = await dialer.dial(token);
  const socket = upstream.socket;
  try {
    const reply = await new Promise<unknown>((resolve, reject) => {
      const scanner = new ReplyScanner();
      const parts: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => {
        const end = scanner.scan(chunk, 0);
        parts.push(end < 0 ? chunk : chunk.subarray(0, end));
        if (end >= 0) resolve(decodeFrame(Buffer.concat(parts)));
      });
      socket.once('error', reject);
      socket.once('close', () =>
        reject(new Error('connection closed before CLIENT UNBLOCK replied')),
      );
      socket.resume();
      socket.write(encodeCommand(['CLIENT', 'UNBLOCK', String(clientId), 'TIMEOUT']));
    });
    if (reply instanceof ErrorReply) throw new Error(`CLIENT UNBLOCK refused: ${reply.message}`);
    return reply === 1;
  } finally {
    socket.destroy();
  }
}
