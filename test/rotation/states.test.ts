import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';

import { Redis } from 'ioredis';

import { rawExchange } from '../support/raw.js';
import { sleep, startStack, waitForToken, type Stack } from '../support/stack.js';

const LIFETIME_S = 8;

/** A raw client that keeps everything it receives. */
class RawClient {
  readonly socket: Socket;
  text = '';
  closed = false;

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (chunk) => {
      this.text += chunk.toString('latin1');
    });
    this.socket.on('close', () => {
      this.closed = true;
    });
  }

  send(text: string): void {
    this.socket.write(text);
  }

  async waitFor(test: (text: string) => boolean, ms = 5000): Promise<string> {
    const deadline = Date.now() + ms;
    while (!test(this.text)) {
      if (Date.now() > deadline)
        assert.fail(`timed out; got ${JSON.stringify(this.text.slice(-500))}`);
      await sleep(20);
    }
    return this.text;
  }
}

/** Waits until the token service has issued `count` more tokens. */
async function rotations(stack: Stack, count: number): Promise<void> {
  const target = stack.sts.issued + count;
  while (stack.sts.issued < target) await sleep(100);
  // Let the re-authentication window pass.
  await sleep(LIFETIME_S * 250 + 500);
}

/** Rare connection states across token rotations, decided and documented in docs/. */
describe('connection states across rotations', () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack({ lifetimeSeconds: LIFETIME_S });
    await waitForToken(stack);
  });
  after(() => stack.stop());

  it('MONITOR keeps its feed across rotations', async (t) => {
    const monitor = new RawClient(stack.port);
    t.after(() => monitor.socket.destroy());
    monitor.send('MONITOR\r\n');
    await monitor.waitFor((text) => text.startsWith('+OK\r\n'));
    const other = new Redis({ port: stack.port, host: '127.0.0.1' });
    t.after(() => other.disconnect());
    await rotations(stack, 2);
    await other.set('seen-by-monitor', '1');
    await monitor.waitFor((text) => text.includes('"set" "seen-by-monitor"'));
    assert.doesNotMatch(monitor.text, /\+OK\r\n\+OK|-ERR|-WRONGPASS/, 'no AUTH reply leaked');
    assert.equal(monitor.closed, false);
  });

  it('a RESP2 subscriber is refused other commands like redis does, then gets RESP2 replies', async (t) => {
    const client = new RawClient(stack.port);
    t.after(() => client.socket.destroy());
    client.send('SUBSCRIBE a b\r\n');
    await client.waitFor((text) => text.includes('$1\r\nb\r\n:2\r\n'));
    assert.ok(client.text.startsWith('*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n'));
    client.text = '';
    client.send('GET x\r\nPING\r\nPING hi\r\n');
    await client.waitFor((text) => text.includes('hi\r\n'));
    assert.equal(
      client.text,
      "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET " +
        'are allowed in this context\r\n' +
        '*2\r\n$4\r\npong\r\n$0\r\n\r\n*2\r\n$4\r\npong\r\n$2\r\nhi\r\n',
    );
    await rotations(stack, 1);
    client.text = '';
    client.send('UNSUBSCRIBE\r\nHSET h f v\r\nHGETALL h\r\n');
    await client.waitFor((text) => text.endsWith('$1\r\nv\r\n'));
    assert.match(client.text, /unsubscribe.*:0\r\n:[01]\r\n\*2\r\n\$1\r\nf\r\n\$1\r\nv\r\n$/s);
  });

  it('a transaction open across a rotation still commits, then the connection re-authenticates', async (t) => {
    const client = new RawClient(stack.port);
    t.after(() => client.socket.destroy());
    client.send('MULTI\r\nINCR tx\r\n');
    await client.waitFor((text) => text === '+OK\r\n+QUEUED\r\n');
    await rotations(stack, 1);
    client.send('EXEC\r\n');
    await client.waitFor((text) => text.includes('*1\r\n:'));
    await rotations(stack, 2);
    client.text = '';
    client.send('PING\r\n');
    await client.waitFor((text) => text === '+PONG\r\n');
  });

  it('RESET authenticates the upstream connection again', async () => {
    const reply = await rawExchange(stack.port, 'SELECT 2\r\nRESET\r\nACL WHOAMI\r\n', 3);
    const lines = reply.split('\r\n');
    assert.deepEqual(lines.slice(0, 2), ['+OK', '+RESET']);
    assert.ok(stack.sts.tokens.has(lines[3]), `${lines[3]} is a token principal`);
  });

  it('CLIENT REPLY OFF is refused with a reason; QUIT answers OK and closes', async () => {
    const reply = await rawExchange(stack.port, 'CLIENT REPLY OFF\r\nQUIT\r\n', 2);
    assert.match(reply, /^-ERR CLIENT REPLY OFF\/SKIP is not supported.*\r\n\+OK\r\n$/);
  });

  it('a client that half-closes after sending still receives every reply', async () => {
    const socket = connect(stack.port, '127.0.0.1');
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
    });
    const closed = new Promise((resolve) => socket.on('close', resolve));
    socket.end('SET hc 1\r\nINCR hc\r\nGET hc\r\n');
    await closed;
    assert.equal(text, '+OK\r\n:2\r\n$1\r\n2\r\n');
  });

  it('a malformed command gets a protocol error and the connection closes', async () => {
    const socket = connect(stack.port, '127.0.0.1');
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
    });
    const closed = new Promise((resolve) => socket.on('close', resolve));
    socket.write('PING\r\n*1\r\n:5\r\n');
    await closed;
    assert.equal(text, "+PONG\r\n-ERR Protocol error: expected '$', got ':'\r\n");
  });
});
