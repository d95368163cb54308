import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { after, before, describe, it } from 'node:test';

import { expectClose, metricNow, pollUntil, rawClient, command } from './probe.js';
import { startSilentListener, type SilentListener } from './sockets.js';
import { startTestbed, type StartedProxy, type Testbed } from './testbed.js';

const CONNECT_TIMEOUT_MS = 1000;
/** Scheduling slack on a shared two-core machine; the proxy's own deadline is the 1 s. */
const SLACK_MS = 1500;

/** RFC 6761: names under .invalid never resolve. */
const UNRESOLVABLE = 'cache.redis-entra-proxy-test.invalid';

const dialFailures = (reason: string) =>
  `redis_proxy_upstream_dial_failures_total{reason="${reason}"}`;

/** One client's PING: the reply it got, and how long until the proxy closed it. */
async function pingOnce(port: number): Promise<{ reply: string; ms: number }> {
  const started = Date.now();
  const client = await rawClient(port);
  client.socket.write(command('PING'));
  const closed = await expectClose(client, CONNECT_TIMEOUT_MS + 10_000);
  const ms = Date.now() - started;
  client.socket.destroy();
  assert.ok(closed, `the proxy must answer and close; got ${JSON.stringify(client.text())}`);
  return { reply: client.text(), ms };
}

async function alive(proxy: StartedProxy): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${proxy.adminPort}/livez`);
  assert.equal(res.status, 200);
  await res.text();
  assert.equal(proxy.process.process.exitCode, null, 'the proxy process keeps running');
}

describe('upstream dial failures', () => {
  let bed: Testbed;

  before(async () => {
    bed = await startTestbed();
  });
  after(() => bed?.stop());

  describe('a TLS handshake that never completes', () => {
    let silent: SilentListener;
    let proxy: StartedProxy;

    before(async () => {
      silent = await startSilentListener();
      proxy = await bed.proxy({
        upstream: `127.0.0.1:${silent.port}`,
        args: ['--connect-timeout', `${CONNECT_TIMEOUT_MS}ms`],
      });
      await proxy.process.waitForLine((l) => l.event === 'token_refreshed', 10_000);
      // The pool's first dials (made at the first token) fail on their own
      // clock; wait for them so that each client below waits for a dial of its own.
      await pollUntil(
        () => metricNow(proxy.adminPort, dialFailures('timeout')),
        (n) => n >= 4,
        CONNECT_TIMEOUT_MS + 5000,
      );
    });
    after(async () => {
      await proxy?.stop();
      await silent?.close();
    });

    it('five clients at once: each gets -ERR within the connect timeout, reason timeout', async () => {
      const before = await metricNow(proxy.adminPort, dialFailures('timeout'));
      const acceptedBefore = silent.accepted;
      const failedBefore = proxy.process.lines.filter((l) => l.event === 'session_failed').length;

      const results = await Promise.all(Array.from({ length: 5 }, () => pingOnce(proxy.port)));
      for (const { reply, ms } of results) {
        assert.match(reply, /^-ERR [^\r\n]+\r\n$/);
        assert.ok(
          ms <= CONNECT_TIMEOUT_MS + SLACK_MS,
          `answered after ${ms} ms (connect timeout ${CONNECT_TIMEOUT_MS} ms)`,
        );
      }
      assert.ok(silent.accepted > acceptedBefore, 'the proxy did reach the silent listener');
      assert.ok(silent.bytesReceived > 0, 'and sent its ClientHello');

      const after = await metricNow(proxy.adminPort, dialFailures('timeout'));
      assert.ok(after - before >= 5, `timeout dial failures grew by ${after - before}`);
      // Log lines are written asynchronously: they may follow the replies.
      const reasons = await pollUntil(
        () => proxy.process.lines.filter((l) => l.event === 'session_failed').map((l) => l.reason),
        (r) => r.length >= failedBefore + 5,
        3000,
      );
      assert.deepEqual(reasons.slice(failedBefore), Array(5).fill('timeout'));
      await alive(proxy);
    });

    it('the proxy closes the connections it gave up on', async () => {
      const open = await pollUntil(
        () => silent.open,
        (n) => n === 0,
        CONNECT_TIMEOUT_MS + 3000,
      );
      assert.equal(open, 0, 'no half-open handshake is left behind');
      await alive(proxy);
    });
  });

  it('an upstream name that does not resolve: -ERR naming the resolution failure; reason dns', async (t) => {
    // Resolution must fail here, quickly and without a network; if this
    // machine's resolver does otherwise, the test cannot say anything.
    const started = Date.now();
    const outcome = await lookup(UNRESOLVABLE).then(
      () => 'resolved',
      (err: NodeJS.ErrnoException) => String(err.code),
    );
    const took = Date.now() - started;
    if (!['ENOTFOUND', 'EAI_AGAIN'].includes(outcome) || took > 2000) {
      t.skip(`this machine's resolver answers ${outcome} after ${took} ms for ${UNRESOLVABLE}`);
      return;
    }
    const proxy = await bed.proxy({
      upstream: `${UNRESOLVABLE}:6380`,
      args: ['--connect-timeout', '5s'],
    });
    t.after(() => proxy.stop());
    await proxy.process.waitForLine((l) => l.event === 'token_refreshed', 10_000);

    const before = await metricNow(proxy.adminPort, dialFailures('dns'));
    const { reply, ms } = await pingOnce(proxy.port);
    assert.match(reply, /^-ERR [^\r\n]*resolve[^\r\n]*\r\n$/i);
    assert.ok(reply.includes(UNRESOLVABLE), `the reply names the host: ${reply}`);
    assert.match(reply, /\((ENOTFOUND|EAI_AGAIN)\)/);
    assert.ok(ms < 5000, `answered after ${ms} ms, before the connect timeout`);

    const after = await metricNow(proxy.adminPort, dialFailures('dns'));
    assert.ok(after > before, 'dns dial failures counted');
    const failed = await proxy.process.waitForLine((l) => l.event === 'session_failed');
    assert.equal(failed.reason, 'dns');
    await alive(proxy);
  });
});
