import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Redis } from 'ioredis';
import { Redis as Redis6 } from 'ioredis6';
import { createClient } from 'redis';

import { sleep, startStack, waitForToken, type Stack } from '../support/stack.js';

/** Tokens live 12 s; the run lasts long enough for at least five rotations. */
const LIFETIME_S = 12;
const ROTATIONS = 5;

/**
 * The reason the proxy exists: every kind of application connection survives
 * token rotations, while the upstream closes any connection whose token
 * expires (the token service deletes the token's user at expiry).
 */
describe('token rotation keeps every connection', () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack({ lifetimeSeconds: LIFETIME_S });
    await waitForToken(stack);
  });
  after(() => stack.stop());

  it(`${ROTATIONS} rotations: workers, MULTI, idle, RESP2/RESP3 subscribers, BLPOP 0`, async () => {
    const port = stack.port;
    const errors: string[] = [];
    const closed: string[] = [];
    const track = <T extends { on(event: string, fn: (...a: unknown[]) => void): unknown }>(
      name: string,
      client: T,
    ): T => {
      client.on('error', (err) => errors.push(`${name}: ${(err as Error).message}`));
      client.on('end', () => closed.push(name));
      return client;
    };
    const io = (name: string): Redis =>
      track(
        name,
        new Redis({
          port,
          host: '127.0.0.1',
          maxRetriesPerRequest: 0,
          autoResubscribe: false,
          retryStrategy: () => null,
        }),
      );

    // Subscribers, RESP2 and RESP3, through both libraries.
    const messages: Record<string, number[]> = { io2: [], io6: [], nr2: [], nr3: [], pattern: [] };
    const io2 = io('ioredis-resp2-subscriber');
    await io2.subscribe('stream');
    io2.on('message', (_c, m) => messages.io2.push(Number(m)));
    const pio = io('ioredis-resp2-psubscriber');
    await pio.psubscribe('str*');
    pio.on('pmessage', (_p, _c, m) => messages.pattern.push(Number(m)));
    const io6 = track(
      'ioredis6-resp3-subscriber',
      new Redis6({ port, host: '127.0.0.1', retryStrategy: () => null }),
    );
    await io6.subscribe('stream');
    io6.on('message', (_c: string, m: string) => messages.io6.push(Number(m)));
    const nr2 = createClient({ socket: { port, host: '127.0.0.1', reconnectStrategy: false } });
    const nr3 = createClient({
      socket: { port, host: '127.0.0.1', reconnectStrategy: false },
      RESP: 3,
    });
    for (const [name, c] of [
      ['node-redis-resp2-subscriber', nr2],
      ['node-redis-resp3-subscriber', nr3],
    ] as const) {
      c.on('error', (err: Error) => errors.push(`${name}: ${err.message}`));
      c.on('end', () => closed.push(name));
      await c.connect();
    }
    await nr2.subscribe('stream', (m) => messages.nr2.push(Number(m)));
    await nr3.subscribe('stream', (m) => messages.nr3.push(Number(m)));

    // Blocked for the whole run.
    const blocker = io('ioredis-blpop');
    const blpop = blocker.blpop('rotation:queue', 0);
    const nrBlocker = createClient({
      socket: { port, host: '127.0.0.1', reconnectStrategy: false },
      RESP: 3,
    });
    nrBlocker.on('error', (err: Error) => errors.push(`node-redis-blpop: ${err.message}`));
    await nrBlocker.connect();
    const nrBlpop = nrBlocker.blPop('rotation:queue3', 0);
    const zpopper = io('ioredis-bzpopmin');
    const zpop = zpopper.bzpopmin('rotation:zset', 120);
    const reader = io('ioredis-xread');
    const xread = reader.xread('BLOCK', 0, 'STREAMS', 'rotation:stream', '0-0');

    const idle = io('ioredis-idle');
    await idle.ping();

    // Traffic while tokens rotate.
    const publisher = io('ioredis-publisher');
    const worker = io('ioredis-worker');
    const transactions = io('ioredis-multi');
    // Ready first: ioredis's own ready check (INFO) would otherwise be sent
    // inside the first transaction, which is opened without pipelining.
    await transactions.ping();
    const nrWorker = createClient({
      socket: { port, host: '127.0.0.1', reconnectStrategy: false },
    });
    nrWorker.on('error', (err: Error) => errors.push(`node-redis-worker: ${err.message}`));
    await nrWorker.connect();

    const rotationsAtStart = stack.sts.issued;
    let published = 0;
    let running = true;
    const loops = [
      (async () => {
        while (running) {
          await publisher.publish('stream', String(published++));
          await sleep(10);
        }
      })(),
      (async () => {
        for (let i = 0; running; i++) {
          await worker.set(`w:${i % 100}`, String(i));
          assert.equal(await worker.get(`w:${i % 100}`), String(i));
          assert.equal(await nrWorker.incr('nr:counter'), i + 1);
          await sleep(5);
        }
      })(),
      (async () => {
        for (let i = 0; running; i++) {
          // MULTI and each command go out at once (ioredis would otherwise
          // send the whole transaction in one write at exec), so the pause
          // holds a transaction open upstream and rotations land inside it.
          await transactions.multi({ pipeline: false });
          const queued = await Promise.all([transactions.incr('tx:n'), transactions.get('tx:n')]);
          assert.deepEqual(queued, ['QUEUED', 'QUEUED']);
          await sleep(150);
          const results = await transactions.exec();
          assert.equal(results!.length, 2);
          assert.equal(results![0][0], null);
        }
      })(),
    ];
    while (stack.sts.issued - rotationsAtStart < ROTATIONS) await sleep(250);
    // Past the last rotation's re-authentication window and one more expiry.
    await sleep(LIFETIME_S * 1000 * 0.5);
    running = false;
    await Promise.all(loops);

    assert.equal(await idle.ping(), 'PONG', 'the idle connection is still there');
    await publisher.rpush('rotation:queue', 'last');
    await publisher.rpush('rotation:queue3', 'last3');
    await publisher.zadd('rotation:zset', 1, 'z');
    await publisher.xadd('rotation:stream', '*', 'f', 'v');
    assert.deepEqual(await blpop, ['rotation:queue', 'last']);
    assert.deepEqual(await nrBlpop, { key: 'rotation:queue3', element: 'last3' });
    assert.deepEqual(await zpop, ['rotation:zset', 'z', '1']);
    const streamed = await xread;
    assert.equal(streamed![0][1][0][1][1], 'v');

    await sleep(200);
    const expected = Array.from({ length: published }, (_, i) => i);
    for (const [name, got] of Object.entries(messages)) {
      assert.deepEqual(got, expected, `${name} got every message once, in order`);
    }
    assert.deepEqual(errors, []);
    assert.deepEqual(closed, []);
    const upstreamClosures = stack.proxy.lines.filter(
      (l) => l.event === 'session_closed' && String(l.reason).startsWith('upstream'),
    );
    assert.deepEqual(upstreamClosures, []);
    const failures = stack.proxy.lines.filter((l) => l.event === 'reauth_failed');
    assert.deepEqual(failures, []);
    assert.ok(stack.sts.issued - rotationsAtStart >= ROTATIONS);
    const metrics = await (await fetch(`http://127.0.0.1:${stack.adminPort}/metrics`)).text();
    const deferred = /^redis_proxy_reauthentications_total\{result="deferred"\} (\d+)/m.exec(
      metrics,
    );
    assert.ok(Number(deferred?.[1] ?? 0) > 0, 'rotations landed inside open transactions');
    const sliced = /^redis_proxy_blocking_reissues_total (\d+)/m.exec(metrics);
    assert.ok(Number(sliced?.[1] ?? 0) > 0, 'blocked clients waited in slices');

    for (const client of [
      io2,
      pio,
      io6,
      blocker,
      zpopper,
      reader,
      idle,
      publisher,
      worker,
      transactions,
    ]) {
      client.disconnect();
    }
    for (const client of [nr2, nr3, nrBlocker, nrWorker]) await client.close();
  });
});
