import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

import { Redis } from 'ioredis';
import { Redis as Redis6 } from 'ioredis6';
import { createClient, RESP_TYPES } from 'redis';

import { rawExchange } from '../support/raw.js';
import { startStack, waitForToken, type Stack } from '../support/stack.js';

const run = promisify(execFile);

/**
 * Real client libraries through the proxy, against a TLS redis-server that
 * only accepts tokens from the local token service.
 */
describe('clients through the proxy', () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack();
    await waitForToken(stack);
  });
  after(() => stack.stop());

  const ioredis = (): Redis =>
    new Redis({ port: stack.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });

  it('ioredis 5 (RESP2): ACL WHOAMI names the token principal', async (t) => {
    const client = ioredis();
    t.after(() => client.disconnect());
    const whoami = String(await client.call('ACL', 'WHOAMI'));
    assert.ok(stack.sts.tokens.has(whoami), `${whoami} is an oid the token service issued`);
  });

  it('ioredis 5: a pipeline of 5000 commands comes back in order', async (t) => {
    const client = ioredis();
    t.after(() => client.disconnect());
    const pipeline = client.pipeline();
    for (let i = 0; i < 5000; i++) pipeline.set(`p:${i}`, String(i)).get(`p:${i}`);
    const results = await pipeline.exec();
    assert.equal(results!.length, 10000);
    for (let i = 0; i < 5000; i++) {
      assert.deepEqual(results![2 * i], [null, 'OK']);
      assert.deepEqual(results![2 * i + 1], [null, String(i)]);
    }
  });

  it('ioredis 5: 8 MiB binary values round-trip intact', async (t) => {
    const client = ioredis();
    t.after(() => client.disconnect());
    const value = randomBytes(8 * 1024 * 1024);
    await client.set('big', value);
    const back = await client.getBuffer('big');
    assert.ok(back !== null && value.equals(back));
  });

  it('ioredis 5: MULTI/EXEC, SELECT and error replies', async (t) => {
    const client = ioredis();
    t.after(() => client.disconnect());
    await client.select(3);
    await client.set('db3', 'x');
    const results = await client.multi().incr('counter').incr('counter').exec();
    assert.deepEqual(
      results!.map(([, v]) => v),
      [1, 2],
    );
    await client.select(0);
    assert.equal(await client.get('db3'), null);
    await client.set('str', 'x');
    await assert.rejects(client.lpush('str', 'y'), /WRONGTYPE/);
    await assert.rejects(client.call('NOSUCHCOMMAND'), /unknown command/);
  });

  it('ioredis 5: pub/sub and BLPOP', async (t) => {
    const sub = ioredis();
    const pub = ioredis();
    const blocker = ioredis();
    t.after(() => {
      sub.disconnect();
      pub.disconnect();
      blocker.disconnect();
    });
    const received: string[] = [];
    await sub.subscribe('news');
    sub.on('message', (_channel, message) => received.push(message));
    const popped = blocker.blpop('queue', 0);
    for (let i = 0; i < 10; i++) await pub.publish('news', String(i));
    await pub.rpush('queue', 'job');
    assert.deepEqual(await popped, ['queue', 'job']);
    while (received.length < 10) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(received, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    await sub.unsubscribe('news');
    assert.equal(await sub.ping(), 'PONG');
  });

  it('100 concurrent connections each get their own answers', async () => {
    const clients = Array.from({ length: 100 }, () => ioredis());
    try {
      const answers = await Promise.all(
        clients.map(async (client, i) => {
          await client.set(`c:${i}`, `v${i}`);
          return client.get(`c:${i}`);
        }),
      );
      assert.deepEqual(
        answers,
        clients.map((_, i) => `v${i}`),
      );
    } finally {
      for (const client of clients) client.disconnect();
    }
  });

  it('ioredis 6 with its defaults (HELLO 3) works', async (t) => {
    const client = new Redis6({ port: stack.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    t.after(() => client.disconnect());
    await client.hset('h', 'a', '1', 'b', '2');
    assert.deepEqual(await client.hgetall('h'), { a: '1', b: '2' });
    const sub = new Redis6({ port: stack.port, host: '127.0.0.1' });
    t.after(() => sub.disconnect());
    const got = new Promise<string>((resolve) =>
      sub.on('message', (_c: string, m: string) => resolve(m)),
    );
    await sub.subscribe('six');
    await client.publish('six', 'hello');
    assert.equal(await got, 'hello');
  });

  it('node-redis with RESP3: maps, pub/sub, transactions, blocking', async (t) => {
    const client = createClient({ socket: { port: stack.port, host: '127.0.0.1' }, RESP: 3 });
    const sub = client.duplicate();
    t.after(async () => {
      await client.close();
      await sub.close();
    });
    await client.connect();
    await sub.connect();
    await client.hSet('nr', { x: '1' });
    const map = await client.withTypeMapping({ [RESP_TYPES.MAP]: Map }).hGetAll('nr');
    assert.deepEqual([...map.entries()], [['x', '1']]);
    const got = new Promise<string>((resolve) => {
      void sub.subscribe('nr-ch', (message) => resolve(message));
    });
    await new Promise((r) => setTimeout(r, 50));
    await client.publish('nr-ch', 'm1');
    assert.equal(await got, 'm1');
    assert.deepEqual(await client.multi().incr('nr-n').incr('nr-n').exec(), [1, 2]);
    const blocked = client.duplicate();
    t.after(() => blocked.close());
    await blocked.connect();
    const pop = blocked.blPop('nr-q', 0);
    await client.rPush('nr-q', 'e');
    assert.deepEqual(await pop, { key: 'nr-q', element: 'e' });
  });

  it('redis-cli, including inline commands', async () => {
    const cli = (...args: string[]) =>
      run('redis-cli', ['-h', '127.0.0.1', '-p', String(stack.port), ...args]);
    assert.equal((await cli('set', 'cli', 'hello')).stdout.trim(), 'OK');
    assert.equal((await cli('get', 'cli')).stdout.trim(), 'hello');
    const whoami = (await cli('acl', 'whoami')).stdout.trim();
    assert.ok(stack.sts.tokens.has(whoami));
    const raw = await rawExchange(
      stack.port,
      'PING\r\nSET inline "two words"\r\nGET inline\r\n',
      3,
    );
    assert.equal(raw, '+PONG\r\n+OK\r\n$9\r\ntwo words\r\n');
  });

  it('AUTH with any password and HELLO 3 AUTH ... SETNAME are accepted and not forwarded', async () => {
    const reply = await rawExchange(
      stack.port,
      'AUTH whatever\r\nAUTH user pass\r\n*7\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n' +
        '$1\r\np\r\n$7\r\nSETNAME\r\n$3\r\napp\r\n',
      1,
      (text) => text.includes('%'),
    );
    assert.ok(reply.startsWith('+OK\r\n+OK\r\n%'), reply);
    const name = await rawExchange(
      stack.port,
      'HELLO 3 SETNAME app\r\nCLIENT GETNAME\r\n',
      1,
      (text) => text.endsWith('$3\r\napp\r\n'),
    );
    assert.ok(name.endsWith('$3\r\napp\r\n'));
  });
});
