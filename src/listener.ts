import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';

import type { ListenAddress } from './config.js';

/** A bound client listener and the address it actually got (port 0 resolved). */
export interface Listener {
  server: Server;
  address: string;
}

/**
 * Binds one client listener. Half-open connections are allowed so that a
 * client that sends its commands and then shuts down its side (as
 * `redis-cli < file` or `nc -N` do) still receives every reply.
 * A stale unix socket file left by a crashed run is removed first; any other
 * kind of file at that path is an error, never deleted.
 */
export function listen(
  address: ListenAddress,
  onConnection: (socket: Socket) => void,
  unixSocketMode: number,
): Promise<Listener> {
  const server = createServer({ allowHalfOpen: true, noDelay: true }, onConnection);
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new ListenError(describe(address), err.code ?? err.message));
    });
    if (address.kind === 'unix') {
      try {
        removeStaleSocket(address.path);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      server.listen(address.path, () => {
        chmodSync(address.path, unixSocketMode);
        resolve({ server, address: address.path });
      });
      return;
    }
    server.listen({ host: address.host, port: address.port }, () => {
      const bound = server.address();
      const port = typeof bound === 'object' && bound !== null ? bound.port : address.port;
      const host = address.host.includes(':') ? `[${address.host}]` : address.host;
      resolve({ server, address: `${host}:${port}` });
    });
  });
}

function removeStaleSocket(path: string): void {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return;
  }
  if (!isSocket) throw new ListenError(path, 'a file that is not a socket exists there');
  unlinkSync(path);
}

function describe(address: ListenAddress): string {
  return address.kind === 'unix' ? address.path : `${address.host}:${address.port}`;
}

export class ListenError extends Error {
  readonly code = 'ERR_LISTEN';

  constructor(address: string, why: string) {
    const hint = why === 'EADDRINUSE' ? ' (address already in use: is another proxy running?)' : '';
    super(`cannot listen on ${address}: ${why}${hint}`);
  }
}
