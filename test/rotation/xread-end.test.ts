import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Redis } from 'ioredis';

import { pollUntil } from '../faults/probe.js';
import { startRelay, type Relay } from '../faults/sockets.js';
import { startTestbed, type StartedProxy, type Testbed } from '../faults/testbed.js';
import { sleep } from '../support/stack.js';

const LIFETIME_S = 3;
/** How late the proxy's commands reach the cache: the gap between two slices of a wait. */
const DELAY_MS = 250;
/** A CLIENT LIST line of a connection blocked in XREAD. */
const BLOCKED_XREAD = /^id=(\d+) .* flags=b .*cmd=xread/m;

/**
 * `XREAD BLOCK 0 STREAMS s $` waits for entries added after it began. Sent
 * in slices around token expiry, its later slices must not start from the
 * stream's end as it is then: an entry appended between two slices would be
 * skipped and the client would wait forever. The cache here sees the
 * proxy's commands a quarter of a second late, so that the entry lands in
 * that gap.
 */
describe('XREAD from $ across slices', () => {
  let bed: Testbed;
  let relay: Relay;
  let proxy: StartedProxy;
  let reader: Redis;

  before(async () => {
    bed = await startTestbed({ lifetimeSeconds: LIFETIME_S });
    relay = await startRelay(bed.redis.tlsPort, { delayMs: DELAY_MS });
    proxy = await bed.proxy({
      upstream: `127.0.0.1:${relay.port}`,
      args: ['--pool-size', '0', '--connect-timeout', '10s'],
    });
    await proxy.process.waitForLine((l) => l.event === 'token_refreshed', 10_000);
    reader = new Redis({ port: proxy.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  });
  after(async () => {
    reader?.disconnect();
    await relay?.close();
    await bed?.stop();
  });

  it('an entry appended between two slices reaches the waiting client', async () => {
    const { admin } = bed.redis;
    await admin.xadd('gap:stream', '*', 'n', '0');
    await reader.ping();
    const reading = reader.xread('BLOCK', 0, 'STREAMS', 'gap:stream', '$');

    // The reader's upstream connection, blocked in the first slice.
    const blocked = await pollUntil(
      async () => String(await admin.call('CLIENT', 'LIST', 'TYPE', 'normal')),
      (list) => BLOCKED_XREAD.test(list),
      5000,
      5,
    );
    const id = BLOCKED_XREAD.exec(blocked)?.[1];
    assert.ok(id !== undefined, `no blocked XREAD upstream: ${blocked}`);
    // That slice ends before the token expires; the next one reaches the
    // cache DELAY_MS later. Append in between.
    const between = await pollUntil(
      async () => String(await admin.call('CLIENT', 'LIST', 'ID', id)),
      (line) => !/flags=\w*b/.test(line),
      LIFETIME_S * 1000,
      5,
    );
    assert.ok(!/flags=\w*b/.test(between), `the first slice never ended: ${between}`);
    const added = await admin.xadd('gap:stream', '*', 'n', '1');

    const reply = await Promise.race([reading, sleep(LIFETIME_S * 1000).then(() => 'timeout')]);
    assert.deepEqual(reply, [['gap:stream', [[added, ['n', '1']]]]]);
  });
});
