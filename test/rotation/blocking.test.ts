import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Redis } from 'ioredis';

import { ADMIN_USER } from '../../testbed/index.js';
import { sleep, startStack, waitForToken, type Stack } from '../support/stack.js';

/** Tokens live this long: every wait below spans several of them. */
const LIFETIME_S = 4;

async function metric(stack: Stack, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${stack.adminPort}/metrics`)).text();
  const match = new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\d+)`, 'm').exec(text);
  return Number(match?.[1] ?? 0);
}

/**
 * Clients blocked longer than a token lives, with users upstream that may
 * not run CLIENT UNBLOCK (as under Azure's Data Contributor policy): each
 * wait is sent in slices that end before the token expires, and the client
 * sees one command and one reply.
 */
describe('blocking commands across token expiry', () => {
  let stack: Stack;
  const clients: Redis[] = [];
  const closes: string[] = [];

  function client(name: string): Redis {
    const redis = new Redis({ port: stack.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    redis.on('close', () => closes.push(name));
    clients.push(redis);
    return redis;
  }

  before(async () => {
    stack = await startStack({ lifetimeSeconds: LIFETIME_S, args: ['--pool-size', '0'] });
    await waitForToken(stack);
  });
  after(async () => {
    for (const redis of clients) redis.disconnect();
    await stack.stop();
  });

  it('BLPOP, BLMOVE, BZPOPMIN and XREAD BLOCK wait through expiries and get their element', async () => {
    const feeder = client('feeder');
    const startId = await feeder.xadd('block:stream', '*', 'n', '0');
    const waits = Promise.all([
      client('blpop').blpop('block:list', 0),
      client('blmove').blmove('block:src', 'block:dst', 'LEFT', 'RIGHT', 0),
      client('bzpopmin').bzpopmin('block:zset', 0),
      client('xread').xread('BLOCK', 0, 'STREAMS', 'block:stream', startId!),
    ]);
    const slicesBefore = await metric(stack, 'redis_proxy_blocking_reissues_total');

    await sleep(LIFETIME_S * 1000 * 2.5);
    await feeder.rpush('block:list', 'a');
    await feeder.rpush('block:src', 'b');
    await feeder.zadd('block:zset', 7, 'c');
    const lastId = await feeder.xadd('block:stream', '*', 'n', '1');
    const [blpop, blmove, bzpopmin, xread] = await waits;

    assert.deepEqual(blpop, ['block:list', 'a']);
    assert.equal(blmove, 'b');
    assert.deepEqual(bzpopmin, ['block:zset', 'c', '7']);
    assert.deepEqual(xread, [['block:stream', [[lastId, ['n', '1']]]]]);
    const slices = (await metric(stack, 'redis_proxy_blocking_reissues_total')) - slicesBefore;
    assert.ok(slices >= 4, `each wait was sliced at least once (${slices} reissues)`);
    assert.deepEqual(closes, [], 'no connection was closed');
  });

  it('elements pushed while waits are sliced arrive once each, in order', async () => {
    const consumer = client('consumer');
    const producer = client('producer');
    const received: string[] = [];
    let pushed = 0;
    const deadline = Date.now() + LIFETIME_S * 1000 * 2.5;

    const consuming = (async () => {
      for (;;) {
        const reply = await consumer.blpop('block:race', 0);
        if (reply![1] === 'end') return;
        received.push(reply![1]);
      }
    })();
    // Bursts with pauses, so that some elements land while a slice is ending.
    while (Date.now() < deadline) {
      for (let i = 0; i < 5; i++) await producer.rpush('block:race', String(pushed++));
      await sleep(Math.random() * 40);
    }
    await producer.rpush('block:race', 'end');
    await consuming;

    assert.deepEqual(
      received,
      Array.from({ length: pushed }, (_, i) => String(i)),
      'every element once, in order',
    );
    assert.deepEqual(closes, []);
  });

  it(
    'WAIT for a replica waits through expiries: its own timeout, or the first acknowledgement',
    { timeout: 60_000 },
    async (t) => {
      const timed = client('wait-timed');
      const forever = client('wait-forever');
      await forever.set('wait:key', 'v');
      const slicesBefore = await metric(stack, 'redis_proxy_blocking_reissues_total');

      // No replica yet: both wait; one gives up after its own timeout.
      const timeoutMs = LIFETIME_S * 1000 * 1.5;
      const started = Date.now();
      const waitingForever = forever.call('WAIT', '1', '0');
      assert.equal(await timed.call('WAIT', '1', String(timeoutMs)), 0);
      const waited = Date.now() - started;
      assert.ok(waited >= timeoutMs - 50, `answered after ${waited} ms, asked ${timeoutMs}`);

      // A replica connects and acknowledges the write: the other wait ends with it.
      const replica = await startReplica(stack);
      t.after(() => replica.stop());
      assert.equal(await waitingForever, 1);

      const slices = (await metric(stack, 'redis_proxy_blocking_reissues_total')) - slicesBefore;
      assert.ok(slices >= 2, `both waits were sliced (${slices} reissues)`);
      assert.deepEqual(closes, [], 'no connection was closed');
    },
  );
});

/** A redis-server replicating the testbed's over TLS, listening on a unix socket only. */
async function startReplica(stack: Stack): Promise<{ stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'replica-'));
  const { certs, redis } = stack;
  const child: ChildProcess = spawn(
    'redis-server',
    [
      ...['--port', '0', '--unixsocket', join(dir, 'replica.sock')],
      ...['--save', '', '--appendonly', 'no', '--dir', dir],
      ...['--replicaof', '127.0.0.1', String(redis.tlsPort), '--tls-replication', 'yes'],
      ...['--tls-cert-file', certs.serverCertFile, '--tls-key-file', certs.serverKeyFile],
      ...['--tls-ca-cert-file', certs.caFile],
      ...['--masteruser', ADMIN_USER, '--masterauth', redis.adminPassword],
    ],
    { stdio: 'ignore' },
  );
  return {
    async stop() {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
