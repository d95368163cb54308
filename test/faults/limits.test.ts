import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Redis } from 'ioredis';

import { startStack, waitForToken, type Stack } from '../support/stack.js';
import { command, expectClose, metric, rawClient, scrape } from './probe.js';

/**
 * redis-server's request limits, enforced by the proxy itself before anything
 * reaches the cache. redis 7 would accept a multibulk count of 1024*1024 + 1
 * (its own limit is INT_MAX) and wait; an inline line without newline would
 * sit in the proxy's memory forever. The counters tell the proxy's refusal
 * apart from redis-server refusing a frame the proxy passed on.
 */
const CASES = [
  {
    name: 'multibulk count above 1024*1024',
    bad: Buffer.from(`*${1024 * 1024 + 1}\r\n`),
    error: /^-ERR Protocol error: invalid multibulk length\r\n$/,
  },
  {
    name: 'bulk length above 512 MiB',
    bad: Buffer.from(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${512 * 1024 * 1024 + 1}\r\n`),
    error: /^-ERR Protocol error: invalid bulk length\r\n$/,
  },
  {
    name: 'inline line above 64 KiB without newline',
    bad: Buffer.alloc(64 * 1024 + 1, 'a'),
    error: /^-ERR Protocol error: too big inline request\r\n$/,
  },
];

const PREAMBLE = Buffer.concat([
  command('PING'),
  command('SET', 'limits:k', 'v1'),
  command('GET', 'limits:k'),
]);
const PREAMBLE_REPLIES = '+PONG\r\n+OK\r\n$2\r\nv1\r\n';

describe('request limits, end to end', () => {
  let stack: Stack;
  let bystander: Redis;
  let bystanderCloses = 0;

  before(async () => {
    stack = await startStack();
    await waitForToken(stack);
    bystander = new Redis({ port: stack.port, host: '127.0.0.1', lazyConnect: true });
    bystander.on('close', () => bystanderCloses++);
    await bystander.connect();
    await bystander.set('limits:bystander', 'still here');
  });
  after(async () => {
    bystander?.disconnect();
    await stack?.stop();
  });

  for (const row of CASES) {
    it(`${row.name}: earlier commands answered, then -ERR Protocol error and close`, async () => {
      const before = await scrape(stack.adminPort);
      const client = await rawClient(stack.port);
      // The bystander works in the same instant, on its own session.
      const pipeline = bystander.pipeline();
      for (let i = 0; i < 500; i++) pipeline.incr('limits:count');
      pipeline.get('limits:bystander');
      const bystanderDone = pipeline.exec();

      client.socket.write(Buffer.concat([PREAMBLE, row.bad]));
      assert.ok(await expectClose(client), `the proxy must close; got ${client.text()}`);
      const text = client.text();
      assert.ok(text.startsWith(PREAMBLE_REPLIES), `replies in order first; got ${text}`);
      assert.match(text.slice(PREAMBLE_REPLIES.length), row.error);
      assert.ok(client.endedByPeer(), 'the proxy closed the connection');

      const results = (await bystanderDone)!;
      assert.ok(results.every(([err]) => err === null));
      assert.equal(results[results.length - 1][1], 'still here');
      assert.equal(await bystander.ping(), 'PONG');
      assert.equal(bystanderCloses, 0, 'the other session was never dropped');

      const now = await scrape(stack.adminPort);
      const errors = 'redis_proxy_protocol_errors_total{side="client"}';
      const closes = 'redis_proxy_sessions_closed_total{reason="client_protocol_error"}';
      assert.equal(metric(now, errors) - metric(before, errors), 1, 'refused by the proxy');
      assert.equal(metric(now, closes) - metric(before, closes), 1);
    });
  }

  it('a new client is served after the refusals', async () => {
    const client = new Redis({ port: stack.port, host: '127.0.0.1' });
    try {
      assert.equal(await client.get('limits:bystander'), 'still here');
    } finally {
      client.disconnect();
    }
  });
});
