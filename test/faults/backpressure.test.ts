import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';

import { Redis } from 'ioredis';

import { command, metricNow, pollUntil, rssBytes } from './probe.js';
import { startTestbed, type StartedProxy, type Testbed } from './testbed.js';

/**
 * How much the proxy's resident memory may grow while one client holds
 * hundreds of MiB of replies (or requests) in flight. Backpressure keeps the
 * proxy at a few socket buffers; without it the whole backlog would sit in
 * the proxy (300 MiB and 128 MiB below), far above this bound.
 */
const RSS_BOUND = 64 * 1024 * 1024;
const MiB = 1024 * 1024;

/** A value whose every byte depends on its position, so that a shifted byte shows. */
function patterned(size: number, seed: number): Buffer {
  const value = Buffer.alloc(size);
  for (let i = 0; i < size; i++) value[i] = 0x21 + ((i * 7 + seed) % 90);
  return value;
}

/**
 * Checks a stream of `count` bulk replies, each exactly `value`, as it
 * arrives, without keeping it. Resolves with the number of replies checked
 * once all came; rejects at the first wrong byte.
 */
function verifyBulks(socket: Socket, value: Buffer, count: number): Promise<number> {
  const header = Buffer.from(`$${value.length}\r\n`);
  const frame = Buffer.concat([header, value, Buffer.from('\r\n')]);
  let offset = 0;
  let done = 0;
  return new Promise((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      let pos = 0;
      while (pos < chunk.length) {
        const take = Math.min(chunk.length - pos, frame.length - offset);
        if (chunk.compare(frame, offset, offset + take, pos, pos + take) !== 0) {
          socket.destroy();
          reject(new Error(`reply ${done} differs at byte ${offset}`));
          return;
        }
        pos += take;
        offset += take;
        if (offset === frame.length) {
          offset = 0;
          done++;
          if (done === count) resolve(done);
        }
      }
    });
    socket.on('close', () => {
      if (done < count) reject(new Error(`connection closed after ${done} of ${count} replies`));
    });
    socket.on('error', () => undefined);
  });
}

function connectPaused(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.pause();
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Samples the proxy's RSS until `until` settles; returns the peak seen. */
async function peakRssDuring(pid: number, until: Promise<unknown>): Promise<number> {
  let peak = rssBytes(pid);
  let finished = false;
  void until.finally(() => {
    finished = true;
  });
  while (!finished) {
    peak = Math.max(peak, rssBytes(pid));
    await new Promise((r) => setTimeout(r, 50));
  }
  return Math.max(peak, rssBytes(pid));
}

describe('backpressure', () => {
  let bed: Testbed;

  before(async () => {
    bed = await startTestbed({ redisConfig: ['enable-debug-command yes'] });
  });
  after(() => bed?.stop());

  /** A proxy with a few commands behind it, so its baseline memory is steady. */
  async function warmProxy(): Promise<{ proxy: StartedProxy; client: Redis }> {
    const proxy = await bed.proxy();
    const client = new Redis({ port: proxy.port, host: '127.0.0.1' });
    for (let i = 0; i < 20; i++) await client.ping();
    return { proxy, client };
  }

  it('a client that never reads: memory bounded, others served, every reply intact', async (t) => {
    const value = patterned(MiB, 1);
    await bed.redis.admin.set('bp:big', value);
    const { proxy, client: bystander } = await warmProxy();
    t.after(() => bystander.disconnect());
    const baseline = rssBytes(proxy.pid);

    const slow = await connectPaused(proxy.port);
    t.after(() => slow.destroy());
    const replies = 300;
    const requests = Buffer.concat(Array.from({ length: replies }, () => command('GET', 'bp:big')));
    slow.write(requests);

    // Wait until the proxy stops relaying: the slow client's buffers are full.
    const relayed = 'redis_proxy_bytes_total{direction="upstream_to_client"}';
    let last = -1;
    const stalled = pollUntil(
      async () => {
        const now = await metricNow(proxy.adminPort, relayed);
        const steady = now === last;
        last = now;
        return steady;
      },
      (steady) => steady,
      20_000,
      500,
    );
    const peak = await peakRssDuring(proxy.pid, stalled);
    t.diagnostic(`RSS +${((peak - baseline) / MiB).toFixed(1)} MiB, ${last} bytes relayed`);
    assert.ok(await stalled, 'relaying stops while the client does not read');
    assert.ok(last < (replies * MiB) / 2, `the proxy stopped early (relayed ${last} bytes)`);
    assert.ok(
      peak - baseline < RSS_BOUND,
      `RSS grew by ${((peak - baseline) / MiB).toFixed(1)} MiB (bound ${RSS_BOUND / MiB} MiB)`,
    );

    assert.equal(await bystander.ping(), 'PONG', 'another client is served meanwhile');
    assert.equal(await bystander.strlen('bp:big'), MiB);

    const verified = verifyBulks(slow, value, replies);
    slow.resume();
    assert.equal(await verified, replies);
  });

  it('an upstream that stalls: memory bounded, every reply after the stall', async (t) => {
    const { proxy, client: bystander } = await warmProxy();
    t.after(() => bystander.disconnect());
    const baseline = rssBytes(proxy.pid);
    const value = patterned(256 * 1024, 2);
    const count = 512;

    const client = await connectPaused(proxy.port);
    t.after(() => client.destroy());
    let text = '';
    const expected = '+OK\r\n'.repeat(count);
    const answered = new Promise<void>((resolve, reject) => {
      client.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
        if (text.length >= expected.length) resolve();
      });
      client.on('close', () => reject(new Error(`closed after ${text.length / 5} replies`)));
    });
    client.resume();

    // redis-server does nothing at all for 4 s: no reading, no replies.
    const sleeping = bed.redis.admin.call('DEBUG', 'SLEEP', '4');
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < count; i++) client.write(command('SET', `bp:stall:${i}`, value));

    const peak = await peakRssDuring(proxy.pid, Promise.all([answered, sleeping]));
    t.diagnostic(`RSS +${((peak - baseline) / MiB).toFixed(1)} MiB`);
    assert.equal(text, expected, 'every SET answered, in order');
    assert.ok(
      peak - baseline < RSS_BOUND,
      `RSS grew by ${((peak - baseline) / MiB).toFixed(1)} MiB (bound ${RSS_BOUND / MiB} MiB)`,
    );
    for (const i of [0, count / 2, count - 1]) {
      assert.ok(value.equals((await bed.redis.admin.getBuffer(`bp:stall:${i}`))!), `value ${i}`);
    }
    assert.equal(await bystander.ping(), 'PONG');
    await bed.redis.admin.flushall();
  });
});
