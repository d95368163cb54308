/**
 * The bare Node pipe of docs/performance.md: plain TCP in, TLS out, bytes
 * piped both ways with no parsing and no AUTH. It is what Node's sockets and
 * TLS cost on their own, the floor under anything the proxy adds.
 *
 * Usage: node node-pipe.js <upstream port> <ca file>
 * Prints {"event":"listening","address":"127.0.0.1:PORT"} once ready.
 *
 * One TLS context is built at start; sessions are not resumed, so a new
 * client costs a full handshake, as it would for a naive implementation.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { connect, createSecureContext, type SecureContext } from 'node:tls';

function main(): void {
  const [portText, caFile] = process.argv.slice(2);
  const port = Number(portText);
  if (!Number.isInteger(port) || caFile === undefined) {
    process.stderr.write('usage: node-pipe <upstream port> <ca file>\n');
    process.exitCode = 2;
    return;
  }

  const context = createSecureContext({ ca: readFileSync(caFile, 'utf8') });
  const server = createServer((client) => relay(client, port, context));

  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    const bound = typeof address === 'object' && address !== null ? address.port : 0;
    process.stdout.write(
      `${JSON.stringify({ event: 'listening', address: `127.0.0.1:${bound}` })}\n`,
    );
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => process.exit(0));
  }
}

function relay(client: Socket, port: number, secureContext: SecureContext): void {
  const upstream = connect({ host: '127.0.0.1', port, secureContext });
  const close = (): void => {
    client.destroy();
    upstream.destroy();
  };

  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.pipe(upstream);
  upstream.pipe(client);
  client.once('error', close);
  upstream.once('error', close);
  client.once('close', close);
  upstream.once('close', close);
}

main();
