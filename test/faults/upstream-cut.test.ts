import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Redis } from 'ioredis';

import {
  command,
  expectClose,
  metric,
  metricNow,
  pollUntil,
  rawClient,
  scrape,
  type RawClient,
} from './probe.js';
import { startRelay, type CutStyle, type Relay } from './sockets.js';
import { startTestbed, type StartedProxy, type Testbed } from './testbed.js';

const MiB = 1024 * 1024;
/** Large enough that redis-server still holds part of the reply when it is cut. */
const VICTIM_SIZE = 12 * MiB;
const BYSTANDER_SIZE = MiB;

/** A value whose every byte depends on its position and seed: shifted or foreign bytes show. */
function patterned(size: number, seed: number): Buffer {
  const value = Buffer.alloc(size);
  for (let i = 0; i < size; i++) value[i] = 0x21 + ((i * 7 + seed) % 90);
  return value;
}

function bulk(value: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`$${value.length}\r\n`), value, Buffer.from('\r\n')]);
}

const VICTIM = patterned(VICTIM_SIZE, 1);
const BYSTANDER = patterned(BYSTANDER_SIZE, 2);
const VICTIM_REPLY = bulk(VICTIM);

/**
 * What the victim may have seen: a strict prefix of what it asked for. A
 * complete reply after a cut would have to come from somewhere else; a byte
 * that differs is another session's, or a shifted stream.
 */
function assertTruncatedPrefix(received: Buffer, expected: Buffer): void {
  assert.ok(
    received.length < expected.length,
    `the reply was cut, yet ${received.length} of ${expected.length} bytes arrived`,
  );
  const differs = received.compare(expected, 0, received.length) !== 0;
  if (differs) {
    let at = 0;
    while (at < received.length && received[at] === expected[at]) at++;
    assert.fail(`byte ${at} of ${received.length} received is not the victim's own`);
  }
}

/**
 * A client on another session that GETs its own value in a loop the whole
 * time, checking every byte; it must never be closed or see a wrong reply.
 */
function startBystander(port: number): {
  stop(): Promise<{ replies: number; wrong: number; closes: number; errors: string[] }>;
  repliesSoFar(): number;
} {
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  let closes = 0;
  let replies = 0;
  let wrong = 0;
  const errors: string[] = [];
  let running = true;
  client.on('close', () => closes++);
  client.on('error', (err: Error) => errors.push(err.message));
  const loop = (async () => {
    while (running) {
      try {
        const got = await client.getBuffer('cut:bystander');
        if (got === null || !got.equals(BYSTANDER)) wrong++;
        replies++;
      } catch (err) {
        errors.push((err as Error).message);
        return;
      }
    }
  })();
  return {
    repliesSoFar: () => replies,
    async stop() {
      running = false;
      await loop;
      // Closes counted so far are the proxy's doing; ours comes next.
      const result = { replies, wrong, closes, errors };
      client.disconnect();
      return result;
    },
  };
}

/** Waits until the bystander has completed `more` replies beyond `from`. */
async function bystanderProgress(
  bystander: ReturnType<typeof startBystander>,
  more: number,
): Promise<void> {
  const from = bystander.repliesSoFar();
  await pollUntil(
    () => bystander.repliesSoFar(),
    (n) => n >= from + more,
    10_000,
    20,
  );
}

async function readUntil(client: RawClient, pattern: RegExp, timeoutMs = 5000): Promise<string> {
  const text = await pollUntil(
    () => client.text(),
    (t) => pattern.test(t),
    timeoutMs,
    10,
  );
  assert.match(text, pattern);
  return text;
}

const UPSTREAM_CLOSED = 'redis_proxy_sessions_closed_total{reason="upstream_closed"}';

describe('the upstream connection dies in the middle of a reply', () => {
  let bed: Testbed;
  let proxy: StartedProxy;

  before(async () => {
    bed = await startTestbed();
    await bed.redis.admin.set('cut:victim', VICTIM);
    await bed.redis.admin.set('cut:bystander', BYSTANDER);
    await bed.redis.admin.set('cut:small', 'small');
    proxy = await bed.proxy({ args: ['--pool-size', '1'] });
    await proxy.process.waitForLine((l) => l.event === 'token_refreshed', 10_000);
  });
  after(() => bed?.stop());

  it('CLIENT KILL while redis still holds part of a 12 MiB reply: the client is closed, the bystander is not', async (t) => {
    const bystander = startBystander(proxy.port);
    t.after(() => bystander.stop());
    await bystanderProgress(bystander, 2);
    const before = await metricNow(proxy.adminPort, UPSTREAM_CLOSED);

    const victim = await rawClient(proxy.port);
    t.after(() => victim.socket.destroy());
    victim.socket.write(command('CLIENT', 'ID'));
    const idReply = await readUntil(victim, /^:\d+\r\n/);
    const id = /^:(\d+)\r\n/.exec(idReply)![1];
    // The victim stops reading: the proxy stops reading upstream, and
    // redis-server keeps the rest of the reply in its output buffer.
    victim.socket.pause();
    victim.socket.write(command('GET', 'cut:victim'));
    const info = await pollUntil(
      async () => String(await bed.redis.admin.call('CLIENT', 'LIST', 'ID', id)),
      (line) => /\bcmd=get\b/.test(line) && Number(/\bomem=(\d+)/.exec(line)?.[1] ?? 0) > 0,
      10_000,
      20,
    );
    assert.match(info, /\bomem=[1-9]\d*/, `redis must hold unsent output: ${info}`);
    assert.equal(await bed.redis.admin.call('CLIENT', 'KILL', 'ID', id), 1);
    victim.socket.resume();

    assert.ok(await expectClose(victim), 'the proxy must close the victim');
    assert.ok(victim.endedByPeer(), 'closed by the proxy');
    const received = victim.received();
    const prefix = Buffer.from(`:${id}\r\n`);
    assert.ok(received.subarray(0, prefix.length).equals(prefix));
    assertTruncatedPrefix(received.subarray(prefix.length), VICTIM_REPLY);
    t.diagnostic(`victim got ${received.length - prefix.length} of ${VICTIM_REPLY.length} bytes`);

    await bystanderProgress(bystander, 3);
    const seen = await bystander.stop();
    assert.deepEqual(
      { wrong: seen.wrong, closes: seen.closes, errors: seen.errors },
      { wrong: 0, closes: 0, errors: [] },
    );
    assert.equal((await metricNow(proxy.adminPort, UPSTREAM_CLOSED)) - before, 1);
    const closed = await proxy.process.waitForLine(
      (l) => l.event === 'session_closed' && l.reason === 'upstream_closed',
    );
    assert.equal(closed.level, 'warn');
  });

  it('a client that leaves in the middle of a reply: the next client gets only its own replies', async (t) => {
    const first = await rawClient(proxy.port);
    t.after(() => first.socket.destroy());
    first.socket.write(command('CLIENT', 'ID'));
    const id = /^:(\d+)\r\n/.exec(await readUntil(first, /^:\d+\r\n/))![1];
    // Stop reading 2 MiB in, so that most of the reply is still on its way.
    let got = 0;
    first.socket.on('data', (chunk: Buffer) => {
      got += chunk.length;
      if (got > 2 * MiB) first.socket.pause();
    });
    first.socket.write(command('GET', 'cut:victim'));
    await pollUntil(
      () => got,
      (n) => n > 2 * MiB,
      10_000,
      10,
    );
    // Clients that wait for a connection as the first one leaves: a
    // connection given back goes straight to one of them. Had the half-read
    // one gone back, that client would get the rest of the 12 MiB reply.
    const own = /^:(\d+)\r\n\+PONG\r\n\$5\r\nsmall\r\n\+OK\r\n$/;
    const waiting = await Promise.all(Array.from({ length: 4 }, () => rawClient(proxy.port)));
    t.after(() => waiting.forEach((c) => c.socket.destroy()));
    const requests = Buffer.concat([
      command('CLIENT', 'ID'),
      command('PING'),
      command('GET', 'cut:small'),
      command('QUIT'),
    ]);
    for (const c of waiting) c.socket.write(requests);
    first.socket.destroy();
    assertTruncatedPrefix(first.received().subarray(`:${id}\r\n`.length), VICTIM_REPLY);
    for (const c of waiting) {
      assert.ok(await expectClose(c), 'QUIT closes');
      assert.match(c.text(), own);
      assert.notEqual(own.exec(c.text())![1], id, 'not the half-read connection');
    }
    // And later ones, which find the pool as the first client left it.
    for (let i = 0; i < 3; i++) {
      const next = await rawClient(proxy.port);
      next.socket.write(requests);
      assert.ok(await expectClose(next), 'QUIT closes');
      assert.match(next.text(), own);
      assert.notEqual(own.exec(next.text())![1], id, 'not the half-read connection');
    }
    // The abandoned upstream connection is closed, not left open in redis.
    const gone = await pollUntil(
      async () => String(await bed.redis.admin.call('CLIENT', 'LIST', 'ID', id)),
      (line) => line === '',
      5000,
    );
    assert.equal(gone, '', 'the half-read upstream connection was closed');
  });
});

describe('the network cuts the TLS stream from the cache in the middle of a record', () => {
  let bed: Testbed;
  let relay: Relay;
  let proxy: StartedProxy;

  before(async () => {
    bed = await startTestbed();
    await bed.redis.admin.set('cut:victim', VICTIM);
    await bed.redis.admin.set('cut:bystander', BYSTANDER);
    relay = await startRelay(bed.redis.tlsPort);
    // No pool: each client dials its own connection through the relay when it
    // connects, so the relay's next connection is the next client's.
    proxy = await bed.proxy({
      upstream: `127.0.0.1:${relay.port}`,
      args: ['--pool-size', '0'],
    });
    await proxy.process.waitForLine((l) => l.event === 'token_refreshed', 10_000);
  });
  after(async () => {
    await relay?.close();
    await bed?.stop();
  });

  const cases: { style: CutStyle; what: string }[] = [
    { style: 'reset', what: 'a reset (RST)' },
    { style: 'fin', what: 'a clean FIN without TLS close_notify' },
  ];
  for (const { style, what } of cases) {
    it(`${what} 3 MiB into a 12 MiB reply: the client is closed, the bystander is not`, async (t) => {
      const bystander = startBystander(proxy.port);
      t.after(() => bystander.stop());
      await bystanderProgress(bystander, 2);
      const before = await scrape(proxy.adminPort);

      // An odd offset: the cut lands inside a TLS record.
      const cut = relay.cutNext(3 * MiB + 4321, style);
      const victim = await rawClient(proxy.port);
      t.after(() => victim.socket.destroy());
      victim.socket.write(command('GET', 'cut:victim'));
      await cut;

      assert.ok(await expectClose(victim), 'the proxy must close the victim');
      assert.ok(victim.endedByPeer(), 'closed by the proxy');
      assertTruncatedPrefix(victim.received(), VICTIM_REPLY);
      t.diagnostic(`victim got ${victim.received().length} of ${VICTIM_REPLY.length} bytes`);

      await bystanderProgress(bystander, 3);
      const seen = await bystander.stop();
      assert.deepEqual(
        { wrong: seen.wrong, closes: seen.closes, errors: seen.errors },
        { wrong: 0, closes: 0, errors: [] },
      );
      const now = await scrape(proxy.adminPort);
      assert.equal(metric(now, UPSTREAM_CLOSED) - metric(before, UPSTREAM_CLOSED), 1);

      // And the proxy goes on serving new clients.
      const next = new Redis({ port: proxy.port, host: '127.0.0.1' });
      t.after(() => next.disconnect());
      assert.equal(await next.strlen('cut:victim'), VICTIM_SIZE);
    });
  }
});
