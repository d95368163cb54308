/**
 * The little HTTP plumbing the token service needs: reading a bounded body and
 * answering with JSON.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Token requests are a few KB; anything much larger is not a credential talking. */
const BODY_LIMIT = 64 * 1024;

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;

    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > BODY_LIMIT) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);

  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    // Entra ID marks token responses uncacheable; some HTTP stacks honour that.
    'cache-control': 'no-store, no-cache',
  });
  res.end(text);
}
