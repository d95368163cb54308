import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it } from 'node:test';

import { encodeCommand } from '../../src/resp/encode.js';
import { sleep, startStack, waitForToken } from '../support/stack.js';

const COMMANDS = 50_000;

/** Counts complete `+OK` / `:n` / `$n` replies in a growing text. */
function countSimpleReplies(text: string): number {
  let count = 0;
  for (let i = text.indexOf('\r\n'); i >= 0; i = text.indexOf('\r\n', i + 2)) count++;
  return count;
}

describe('graceful shutdown', () => {
  it('SIGTERM mid-pipeline: every reply arrives, new clients are refused, exit 0', async (t) => {
    const stack = await startStack();
    t.after(() => stack.stop());
    await waitForToken(stack);

    const socket = connect(stack.port, '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    const closed = new Promise((resolve) => socket.on('close', resolve));
    const parts: Buffer[] = [];
    for (let i = 0; i < COMMANDS; i++) parts.push(encodeCommand(['INCR', 'shutdown:counter']));
    socket.write(Buffer.concat(parts));
    while (text.length === 0) await sleep(1);

    const exited = stack.proxy.stop('SIGTERM');
    await stack.proxy.waitForLine((l) => l.event === 'shutdown_started');
    // Refused at connect, reset from the closing backlog, or told so: never served.
    const late = await new Promise<string>((resolve) => {
      const socket = connect(stack.port, '127.0.0.1');
      let reply = '';
      socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      socket.on('data', (chunk) => {
        reply += chunk.toString('latin1');
      });
      socket.on('close', () => resolve(reply));
      socket.on('connect', () => socket.write('PING\r\n'));
    });
    assert.match(late, /^(ECONNREFUSED|ECONNRESET|-ERR redis-entra-proxy is shutting down\r\n)$/);

    await closed;
    assert.equal(countSimpleReplies(text), COMMANDS, 'one reply per command');
    assert.ok(text.endsWith(`:${COMMANDS}\r\n`), 'the last reply is the last increment');
    assert.equal(await exited, 0);
    const done = stack.proxy.lines.find((l) => l.event === 'shutdown_complete');
    assert.equal(done?.exitCode, 0);
  });

  it('POST /quitquitquit stops the proxy when enabled', async (t) => {
    const stack = await startStack({ args: ['--enable-quitquitquit'] });
    t.after(() => stack.stop());
    await waitForToken(stack);
    const res = await fetch(`http://127.0.0.1:${stack.adminPort}/quitquitquit`, { method: 'POST' });
    assert.equal(res.status, 200);
    await stack.proxy.waitForLine((l) => l.event === 'shutdown_complete', 5000);
    await new Promise((resolve) => stack.proxy.process.once('close', resolve));
    assert.equal(stack.proxy.process.exitCode, 0);
  });

  it('a session that stays busy is cut at --shutdown-timeout: exit 1', async (t) => {
    const stack = await startStack({ args: ['--shutdown-timeout', '1s'] });
    t.after(() => stack.stop());
    await waitForToken(stack);
    const socket = connect(stack.port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write('BLPOP shutdown:never 0\r\n');
    await sleep(200);
    const code = await stack.proxy.stop('SIGTERM');
    assert.equal(code, 1);
    socket.destroy();
  });
});
