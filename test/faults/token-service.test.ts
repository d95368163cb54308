import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import type { FailMode, LogLine } from '../../testbed/index.js';
import { command, expectClose, metricNow, openFds, pollUntil, rawClient } from './probe.js';
import { findSecrets, hasStackTrace, recordIssuedTokens } from './secrets.js';
import { connectionsTo } from './sockets.js';
import { startTestbed, type StartedProxy, type Testbed } from './testbed.js';

/**
 * Tokens live 4 s: the proxy asks for the next one after about 3 s, so a
 * failing service leaves it without a valid token a second later.
 * test/rotation/outage.test.ts covers a service that refuses connections;
 * here the service answers, but wrongly, or not at all.
 */
const LIFETIME_S = 4;
const TOKEN_TIMEOUT_MS = 1000;

const FAILURES = 'redis_proxy_token_refreshes_total{result="failure"}';

/** PING on a new connection: the whole reply, the connection closed by either side. */
async function ping(port: number): Promise<string> {
  const client = await rawClient(port);
  client.socket.write(command('PING'));
  await pollUntil(
    () => client.text(),
    (t) => t.endsWith('\r\n'),
    5000,
    10,
  );
  client.socket.write(command('QUIT'));
  await expectClose(client, 2000);
  client.socket.destroy();
  return client.text().replace(/\+OK\r\n$/, '');
}

async function readyz(proxy: StartedProxy): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${proxy.adminPort}/readyz`);
  await res.text();
  return res.status;
}

const CASES: { mode: Exclude<FailMode, null>; what: string; reason: RegExp }[] = [
  { mode: 'http500', what: 'answers 500', reason: /AADSTS50000/ },
  { mode: 'hang', what: 'never answers', reason: /timed out/ },
  { mode: 'garbage', what: 'answers 200 with a body that is not JSON', reason: /network_error/ },
];

describe('the token service fails while the proxy runs', () => {
  let bed: Testbed;
  let proxy: StartedProxy;
  let tokens: string[];

  before(async () => {
    bed = await startTestbed({ lifetimeSeconds: LIFETIME_S });
    tokens = recordIssuedTokens(bed.sts);
    proxy = await bed.proxy({ args: ['--token-timeout', `${TOKEN_TIMEOUT_MS}ms`] });
    await proxy.process.waitForLine((l) => l.event === 'token_refreshed', 10_000);
  });
  after(async () => {
    bed?.sts.fail(null);
    await bed?.stop();
  });

  for (const { mode, what, reason } of CASES) {
    it(`${mode}: the service ${what}; new clients get -ERR, then are served again without a restart`, async (t) => {
      t.after(() => bed.sts.fail(null));
      const pid = proxy.pid;
      // Served before (after the previous case's failure, too).
      assert.equal(
        await pollUntil(
          () => ping(proxy.port),
          (r) => r === '+PONG\r\n',
          15_000,
          200,
        ),
        '+PONG\r\n',
      );
      const fdsBefore = openFds(pid);
      const linesBefore = proxy.process.lines.length;
      const failuresBefore = await metricNow(proxy.adminPort, FAILURES);

      bed.sts.fail(mode);
      const status = await pollUntil(
        () => readyz(proxy),
        (s) => s === 503,
        LIFETIME_S * 1000 + 5000,
        100,
      );
      assert.equal(status, 503, 'no valid token left');

      const reply = await ping(proxy.port);
      const match = /^-ERR [^\r\n]*no access token: ([^\r\n]+)\r\n$/.exec(reply);
      assert.ok(match !== null, `a clear -ERR; got ${JSON.stringify(reply)}`);
      assert.match(match[1], reason);
      t.diagnostic(`client reply: ${reply.trim()}`);

      // Failures go on being logged (and retried) while no token is valid.
      const failures = await pollUntil(
        () =>
          proxy.process.lines.slice(linesBefore).filter((l) => l.event === 'token_refresh_failed'),
        (lines) => lines.some((l) => l.currentTokenValid === false),
        8000,
      );
      assert.ok(
        failures.some((l) => l.currentTokenValid === false),
        `a failure logged without a valid token; logged: ${JSON.stringify(failures)}`,
      );
      assertCleanFailures(failures, reason);
      assert.ok((await metricNow(proxy.adminPort, FAILURES)) > failuresBefore);
      const fdsFailing = openFds(pid);

      bed.sts.fail(null);
      const healing = Date.now();
      const served = await pollUntil(
        () => ping(proxy.port),
        (r) => r === '+PONG\r\n',
        15_000,
        100,
      );
      assert.equal(served, '+PONG\r\n', 'a new client is served again');
      t.diagnostic(
        `served again ${Date.now() - healing} ms after the service healed; ` +
          `proxy fds ${fdsBefore} before, ${fdsFailing} failing, ${openFds(pid)} after`,
      );
      assert.equal(proxy.process.process.exitCode, null, 'the same process, never restarted');
      assert.equal(await readyz(proxy), 200);
    });
  }

  it('requests that timed out do not keep their connections to a hanging service open', async (t) => {
    t.after(() => bed.sts.fail(null));
    const stsPort = Number(new URL(bed.sts.authorityHost).port);
    const attempts = () =>
      proxy.process.lines.filter((l) => l.event === 'token_refresh_failed').length;
    const before = attempts();
    const openBefore = connectionsTo(proxy.pid, stsPort);
    bed.sts.fail('hang');
    let most = 0;
    await pollUntil(
      () => {
        most = Math.max(most, connectionsTo(proxy.pid, stsPort));
        return attempts();
      },
      (n) => n >= before + 4,
      LIFETIME_S * 1000 + 10_000,
      100,
    );
    // Past its timeout an attempt is over; a timed-out request may not hold a connection.
    await new Promise((r) => setTimeout(r, 200));
    const open = connectionsTo(proxy.pid, stsPort);
    t.diagnostic(
      `${attempts() - before} timed-out attempts; connections to the token service: ` +
        `${openBefore} before, ${open} now, ${most} at most`,
    );
    assert.ok(attempts() - before >= 4);
    assert.ok(open <= 1, `${open} connections to the token service stay open`);
  });

  it('no log line carries a stack trace, a token or the client secret', () => {
    const output = proxy.process.output();
    assert.ok(output.length < 200 * 1024, 'the whole output was kept');
    assert.ok(tokens.length >= 4, `tokens were issued (${tokens.length})`);
    assert.equal(tokens.length, bed.sts.issued, 'every issued token was recorded');
    assert.equal(hasStackTrace(output), false, 'no stack trace');
    assert.deepEqual(
      findSecrets(output, { tokens, others: { 'client secret': bed.sts.clientSecret } }),
      [],
    );
  });
});

/** One line each, at level error, no stack, no secret. */
function assertCleanFailures(lines: LogLine[], reason: RegExp): void {
  for (const line of lines) {
    assert.equal(line.level, 'error');
    const msg = String(line.msg);
    assert.match(msg, reason);
    assert.ok(!msg.includes('\n'), `one line: ${JSON.stringify(msg)}`);
    assert.equal(hasStackTrace(JSON.stringify(line)), false, JSON.stringify(line));
    assert.equal(line.stack, undefined);
    assert.equal(line.err, undefined);
  }
}
