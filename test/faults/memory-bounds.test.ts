import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { sleep, startStack, waitForToken, type Stack } from '../support/stack.js';
import { command, expectClose, rawClient, rssBytes } from './probe.js';

const PASSWORD = 'memory-bounds-password';
const MiB = 1024 * 1024;

/**
 * What one connection can make the proxy hold, whatever it sends: the
 * commands the proxy keeps whole are capped, a client that has not given
 * the client password gets redis-server's limits for unauthenticated
 * clients, and a client that floods the proxy with commands it answers
 * itself while never reading stops being read.
 */
describe('memory bounds of a session', () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack({ args: ['--client-password', PASSWORD] });
    await waitForToken(stack);
  });
  after(() => stack.stop());

  it('a command the proxy inspects is refused beyond 1 MiB; plain ones stream', async () => {
    const client = await rawClient(stack.port);
    const big = Buffer.alloc(2 * MiB, 'p');
    client.socket.write(Buffer.concat([command('AUTH', PASSWORD), command('SET', 'mb:k', big)]));
    client.socket.write(command('STRLEN', 'mb:k'));
    // PING is answered in subscribe mode and inspected, so it is held whole.
    client.socket.write(command('PING', big));
    assert.ok(await expectClose(client), 'the proxy closes the connection');
    const text = client.text();
    assert.match(text, /^\+OK\r\n\+OK\r\n:2097152\r\n/, 'the plain SET streamed through');
    assert.match(text, /-ERR Protocol error: command too long for redis-entra-proxy/);
  });

  it('before the client password, redis-server limits for unauthenticated clients apply', async () => {
    const wide = await rawClient(stack.port);
    wide.socket.write(command('SET', 'mb:x', 'v', 'EX', '9', 'NX', 'GET', 'a', 'b', 'c', 'd'));
    assert.ok(await expectClose(wide));
    assert.match(wide.text(), /^-ERR Protocol error: unauthenticated multibulk length\r\n$/);

    const long = await rawClient(stack.port);
    long.socket.write(command('SET', 'mb:x', Buffer.alloc(16 * 1024 + 1, 'v')));
    assert.ok(await expectClose(long));
    assert.match(long.text(), /^-ERR Protocol error: unauthenticated bulk length\r\n$/);

    const authenticated = await rawClient(stack.port);
    authenticated.socket.write(
      Buffer.concat([
        command('AUTH', PASSWORD),
        command('SET', 'mb:x', Buffer.alloc(64 * 1024, 'v'), 'EX', '60', 'GET', 'NX'),
        command('STRLEN', 'mb:x'),
      ]),
    );
    await waitForText(authenticated, ':65536\r\n');
    authenticated.socket.destroy();
  });

  it('a client that never reads the answers the proxy makes itself stops being read', async () => {
    const pid = stack.proxy.process.pid!;
    const rssBefore = rssBytes(pid);
    const client = await rawClient(stack.port);
    client.socket.pause();
    // Unauthenticated: every PING gets -NOAUTH from the proxy, nothing goes
    // upstream. Keep writing until the socket has refused more for a while.
    const chunk = Buffer.from('PING\r\n'.repeat(10_000));
    let written = 0;
    let stalledSince = 0;
    while (written < 256 * MiB) {
      if (client.socket.writableLength > 8 * MiB) {
        stalledSince ||= Date.now();
        if (Date.now() - stalledSince > 2000) break;
        await sleep(50);
        continue;
      }
      stalledSince = 0;
      client.socket.write(chunk);
      written += chunk.length;
      await new Promise((resolve) => setImmediate(resolve));
    }
    const grown = rssBytes(pid) - rssBefore;
    client.socket.destroy();

    assert.ok(written < 256 * MiB, 'the proxy stopped reading from the client');
    // Socket buffers and the 1 MiB of answers the proxy lets wait account
    // for a few MiB; without the bound it grew by gigabytes.
    assert.ok(grown < 64 * MiB, `proxy memory grew by ${Math.round(grown / MiB)} MiB`);
  });
});

async function waitForText(
  client: Awaited<ReturnType<typeof rawClient>>,
  expected: string,
): Promise<void> {
  for (let i = 0; i < 100 && !client.text().includes(expected); i++) await sleep(50);
  assert.ok(client.text().includes(expected), `expected ${expected}; got ${client.text()}`);
}
