/**
 * Finds a TCP port on 127.0.0.1 that is free right now, for servers that cannot listen on
 * port 0 themselves (redis-server's tls-port). Another process may take the port before
 * the caller binds it; callers that care retry on "address in use".
 */
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();

    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;

      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}
