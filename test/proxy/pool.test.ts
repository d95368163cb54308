import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';

import { Redis } from 'ioredis';

import { rawExchange } from '../support/raw.js';
import { sleep, startStack, waitForToken, type Stack } from '../support/stack.js';

const LIFETIME_S = 8;

function clientId(reply: string): number {
  const match = /:(\d+)\r\n/.exec(reply);
  assert.ok(match, reply);
  return Number(match[1]);
}

/** How many RESETs the server has run. */
async function resetCalls(stack: Stack): Promise<number> {
  const info = await stack.redis.admin.info('commandstats');
  return Number(/^cmdstat_reset:calls=(\d+)/m.exec(info)?.[1] ?? 0);
}

async function clientList(stack: Stack): Promise<string> {
  return (await stack.redis.admin.call('CLIENT', 'LIST', 'TYPE', 'normal')) as string;
}

/** Upstream connections are reused only in a clean, authenticated state. */
describe('upstream pool', () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack({ lifetimeSeconds: LIFETIME_S, args: ['--pool-size', '1'] });
    await waitForToken(stack);
    await sleep(200);
  });
  after(() => stack.stop());

  it('a returned connection is reset before the next client gets it', async () => {
    const first = await rawExchange(
      stack.port,
      'CLIENT ID\r\nSELECT 5\r\nCLIENT SETNAME dirty\r\nSET in5 x\r\nMULTI\r\n',
      5,
    );
    const id = clientId(first);
    await sleep(100);
    const second = await rawExchange(
      stack.port,
      'CLIENT ID\r\nCLIENT GETNAME\r\nGET in5\r\nACL WHOAMI\r\n',
      4,
    );
    const lines = second.split('\r\n');
    assert.equal(clientId(second), id, 'the same upstream connection was reused');
    assert.equal(lines[1], '$-1', 'no client name');
    assert.equal(lines[2], '$-1', 'back in database 0, outside any transaction');
    assert.ok(stack.sts.tokens.has(lines[4]), 'authenticated as the token principal');
  });

  it('a connection left quiet is reset by its next client, ahead of its first command', async () => {
    await sleep(100);
    const first = await rawExchange(
      stack.port,
      'CLIENT ID\r\nSELECT 6\r\nCLIENT SETNAME quiet\r\nSET in6 x\r\n',
      4,
    );
    await sleep(100);
    const second = await rawExchange(stack.port, 'CLIENT ID\r\nCLIENT GETNAME\r\nGET in6\r\n', 3);
    const lines = second.split('\r\n');
    assert.equal(clientId(second), clientId(first), 'the same upstream connection was reused');
    assert.equal(lines[1], '$-1', 'no client name');
    assert.equal(lines[2], '$-1', 'back in database 0');
  });

  it('a connection its client changed nothing on is handed on without RESET', async () => {
    await sleep(100);
    // A script's SELECT ends with the script: nothing is left on the connection.
    const first = await rawExchange(
      stack.port,
      'SET plain 1\r\nGET plain\r\nPING\r\nEVAL "redis.call(\'SELECT\', 3) return 1" 0\r\n',
      4,
    );
    assert.equal(first, '+OK\r\n$1\r\n1\r\n+PONG\r\n:1\r\n');
    const used = /id=(\d+) [^\n]* cmd=eval /.exec(await clientList(stack));
    assert.ok(used, 'the first client ran EVAL on a connection of its own');
    const resets = await resetCalls(stack);
    await sleep(100);
    const second = await rawExchange(stack.port, 'GET plain\r\nCLIENT ID\r\n', 2);
    assert.equal(second.split('\r\n')[1], '1', 'database 0');
    assert.equal(clientId(second), Number(used[1]), 'the same upstream connection was reused');
    assert.equal(await resetCalls(stack), resets, 'no RESET was sent');
  });

  for (const command of [
    'SELECT 0',
    'WATCH plain',
    'UNWATCH',
    'READONLY',
    'CLIENT SETNAME changed',
    'HELLO 2',
    'HELLO 3',
    'MULTI',
  ]) {
    it(`a connection that ran ${command} is reset before its next client`, async () => {
      // Whatever the last test left is reset by this PING's session.
      await rawExchange(stack.port, 'PING\r\n', 1);
      await sleep(100);
      const resets = await resetCalls(stack);
      await rawExchange(stack.port, `${command}\r\n`, 1, (text) => text.length > 0);
      await sleep(100);
      assert.equal(await rawExchange(stack.port, 'PING\r\n', 1), '+PONG\r\n');
      assert.equal(await resetCalls(stack), resets + 1);
    });
  }

  it('a connection with a reply still in flight is not reused', async () => {
    const first = await rawExchange(stack.port, 'CLIENT ID\r\nBLPOP never 0\r\n', 1);
    await sleep(100);
    const second = await rawExchange(stack.port, 'CLIENT ID\r\n', 1);
    assert.notEqual(clientId(second), clientId(first));
  });

  it('pooled connections are re-authenticated at rotation', async () => {
    await sleep(100);
    const before = clientId(await rawExchange(stack.port, 'CLIENT ID\r\n', 1));
    const issued = stack.sts.issued;
    while (stack.sts.issued < issued + 2) await sleep(100);
    // Past the expiry of the token the pooled connection first had.
    await sleep(LIFETIME_S * 1000 * 0.5);
    const reply = await rawExchange(stack.port, 'CLIENT ID\r\nPING\r\n', 2);
    assert.equal(clientId(reply), before, 'the pooled connection survived the expiry');
    assert.ok(reply.endsWith('+PONG\r\n'));
  });
});

/**
 * Many clients that connect for a few commands each, more at once than the
 * pool holds: connections go straight from a departing client to a waiting
 * one, and each must arrive reset and authenticated all the same.
 */
describe('upstream pool under short-lived clients', () => {
  let stack: Stack;
  const WORKERS = 10;
  const CYCLES = 30;

  before(async () => {
    stack = await startStack({ args: ['--pool-size', '2'] });
    await waitForToken(stack);
  });
  after(() => stack.stop());

  it('every client finds a clean connection, and departing clients hand theirs on', async () => {
    // Clean state first, then leave it dirty for the next client of this
    // connection to find: another database, a name and a key; half of the
    // clients also leave a transaction open, which makes the pool reset the
    // connection as soon as it is back instead of leaving that to its next
    // user.
    const check = 'CLIENT ID\r\nCLIENT GETNAME\r\nGET dirtykey\r\nACL WHOAMI\r\n';
    const dirty = 'SELECT 7\r\nCLIENT SETNAME dirty\r\nSET dirtykey x\r\n';
    const ids: number[] = [];
    const worker = async (index: number) => {
      const multi = index % 2 === 0;
      const request = check + dirty + (multi ? 'MULTI\r\n' : '');
      const expected = multi ? '+OK,+OK,+OK,+OK' : '+OK,+OK,+OK';
      for (let i = 0; i < CYCLES; i++) {
        const reply = await rawExchange(stack.port, request, multi ? 8 : 7);
        const lines = reply.split('\r\n');
        ids.push(clientId(reply));
        assert.equal(lines[1], '$-1', `no client name left over: ${reply}`);
        assert.equal(lines[2], '$-1', `database 0, no key left over: ${reply}`);
        assert.ok(stack.sts.tokens.has(lines[4]), `authenticated as a token's principal: ${reply}`);
        assert.equal(lines.slice(5, multi ? 9 : 8).join(','), expected);
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, (_, i) => worker(i)));

    const metrics = await (await fetch(`http://127.0.0.1:${stack.adminPort}/metrics`)).text();
    const handedOut = (source: string) =>
      Number(
        new RegExp(
          `^redis_proxy_upstream_acquisitions_total\\{source="${source}"\\} (\\d+)`,
          'm',
        ).exec(metrics)?.[1] ?? 0,
      );
    assert.ok(handedOut('returned') > 0, 'connections went from one client to the next');
    assert.ok(handedOut('idle') > 0, 'connections waited in the pool between clients');
    assert.ok(new Set(ids).size < ids.length / 2, 'most clients reused a connection');
  });

  it("a subscriber's connection never carries its messages to the next client", async () => {
    const publisher = new Redis({ port: stack.port, host: '127.0.0.1' });
    let publishing = true;
    const publishLoop = (async () => {
      while (publishing) {
        const pipeline = publisher.pipeline();
        for (let i = 0; i < 200; i++) pipeline.publish('private', `for-the-subscriber-${i}`);
        await pipeline.exec();
      }
    })();
    const strays: string[] = [];
    try {
      for (let round = 0; round < 40; round++) {
        const subscriber = await openRaw(stack.port, 'SUBSCRIBE private\r\n');
        await sleep(20);
        // Two clients wait for a connection while the subscriber leaves with
        // messages still on their way to it.
        const next = await Promise.all([openRaw(stack.port), openRaw(stack.port)]);
        subscriber.socket.end();
        await sleep(5);
        for (const client of next) client.socket.write('PING\r\n');
        // Wait for each reply (slow on a loaded machine), then a little for
        // anything that would follow it.
        for (const client of next) {
          for (let i = 0; i < 100 && !client.received().includes('\r\n'); i++) await sleep(20);
        }
        await sleep(30);
        for (const client of next) {
          if (client.received() !== '+PONG\r\n') strays.push(client.received().slice(0, 120));
          client.socket.destroy();
        }
        subscriber.socket.destroy();
      }
    } finally {
      publishing = false;
      await publishLoop;
      publisher.disconnect();
    }
    assert.deepEqual(strays, [], 'every new client saw only the reply to its own PING');
  });
});

interface RawClient {
  socket: Socket;
  received(): string;
}

function openRaw(port: number, text?: string): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.once('error', reject);
    socket.on('connect', () => {
      if (text !== undefined) socket.write(text);
      resolve({ socket, received: () => received });
    });
  });
}
