import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { rawExchange } from '../support/raw.js';
import { sleep, startStack, waitForToken, type Stack } from '../support/stack.js';

const LIFETIME_S = 6;

async function status(stack: Stack, path: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${stack.adminPort}${path}`);
  await res.text();
  return res.status;
}

/** Polls `probe` until it returns true or `ms` pass. */
async function eventually(probe: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await sleep(200);
  }
  assert.fail(`not within ${ms} ms: ${what}`);
}

/**
 * The token service goes away for longer than a token lives. The upstream
 * then closes the connections (nothing can prevent that), new clients are
 * told why, and service resumes by itself once tokens can be had again.
 */
describe('token service outage', () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack({ lifetimeSeconds: LIFETIME_S });
    await waitForToken(stack);
  });
  after(() => stack.stop());

  it('explains the outage, then recovers without a restart', async () => {
    assert.equal(await rawExchange(stack.port, 'PING\r\n', 1), '+PONG\r\n');
    assert.equal(await status(stack, '/readyz'), 200);

    await stack.sts.pause();
    await eventually(
      async () => (await status(stack, '/readyz')) === 503,
      LIFETIME_S * 2000,
      'readiness turns false once the token expired',
    );
    const reply = await rawExchange(stack.port, 'PING\r\n', 1);
    assert.match(reply, /^-ERR redis-entra-proxy: no access token: .+\r\n$/);
    const failure = stack.proxy.lines.find((l) => l.event === 'token_refresh_failed');
    assert.ok(failure !== undefined && typeof failure.msg === 'string' && failure.msg.length > 0);
    assert.equal(await status(stack, '/livez'), 200, 'the process is alive throughout');

    await sleep(LIFETIME_S * 1000);
    await stack.sts.resume();
    await eventually(
      async () => (await rawExchange(stack.port, 'PING\r\n', 1)) === '+PONG\r\n',
      15_000,
      'a new client is served again',
    );
    assert.equal(await status(stack, '/readyz'), 200);
    assert.equal(stack.proxy.process.exitCode, null);
  });
});
