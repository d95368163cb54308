import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';

import { command, metricNow, pollUntil, rawClient, scrape, type RawClient } from './probe.js';
import { findSecrets, hasStackTrace, recordIssuedTokens } from './secrets.js';
import { listenLocal } from './sockets.js';
import { startTestbed, type StartedProxy, type Testbed } from './testbed.js';

/** Sends `bytes` on a new connection and collects the replies until `done` or the close. */
async function exchange(
  port: number,
  bytes: Buffer | string,
  done: (text: string) => boolean,
  timeoutMs = 5000,
): Promise<string> {
  const client = await rawClient(port);
  client.socket.write(bytes);
  const text = await pollUntil(
    () => client.text(),
    (t) => done(t) || client.socket.destroyed,
    timeoutMs,
    10,
  );
  client.socket.destroy();
  return text;
}

/** Complete top-level replies in `text` (simple, error, integer and bulk replies only). */
function countReplies(text: string): number {
  let count = 0;
  let i = 0;
  while (i < text.length) {
    const lf = text.indexOf('\n', i);
    if (lf < 0) break;
    if (text[i] === '$') {
      const n = Number(text.slice(i + 1, lf - 1));
      i = n < 0 ? lf + 1 : lf + 1 + n + 2;
    } else {
      i = lf + 1;
    }
    if (i <= text.length) count++;
  }
  return count;
}

const replies = (n: number) => (text: string) => countReplies(text) >= n;

async function httpText(port: number, path: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return `${res.status} ${await res.text()}`;
}

/**
 * A TLS server that speaks only TLS 1.0 and 1.1 (OpenSSL 3 needs security
 * level 0 for them) in front of a tiny fake redis: it answers AUTH, CLIENT ID
 * and PING as redis-server would, so that a proxy that accepted the old
 * protocol would go on to authenticate and serve its client through it.
 */
async function startTls11Server(certs: Testbed['certs']) {
  const received: string[] = [];
  const handshakeErrors: string[] = [];
  let secured = 0;
  const server = createTlsServer(
    {
      key: readFileSync(certs.serverKeyFile),
      cert: readFileSync(certs.serverCertFile),
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT:@SECLEVEL=0',
    },
    (socket: TLSSocket) => {
      secured++;
      let text = '';
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
        // Multibulk commands: take every complete one.
        for (;;) {
          const match = /^\*(\d+)\r\n/.exec(text);
          if (match === null) return;
          let pos = match[0].length;
          const args: string[] = [];
          for (let i = 0; i < Number(match[1]); i++) {
            const head = /^\$(\d+)\r\n/.exec(text.slice(pos));
            if (head === null || text.length < pos + head[0].length + Number(head[1]) + 2) return;
            pos += head[0].length;
            args.push(text.slice(pos, pos + Number(head[1])));
            pos += Number(head[1]) + 2;
          }
          text = text.slice(pos);
          const name = args[0].toUpperCase();
          received.push(name);
          socket.write(name === 'CLIENT' ? ':42\r\n' : name === 'PING' ? '+PONG\r\n' : '+OK\r\n');
        }
      });
    },
  );
  server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
    handshakeErrors.push(err.code ?? err.message);
  });
  const port = await listenLocal(server);
  return {
    port,
    /** Names of the commands received over completed TLS connections. */
    received,
    handshakeErrors,
    get secured() {
      return secured;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Can this machine's OpenSSL complete a TLS 1.1 handshake with `port` at all? */
function tls11Handshake(port: number, ca: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ca,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT:@SECLEVEL=0',
    });
    socket.once('secureConnect', () => {
      socket.write(command('PING'));
      socket.once('data', (reply: Buffer) => {
        resolve(`${socket.getProtocol()} ${reply.toString('latin1').trim()}`);
        socket.destroy();
      });
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code}`));
  });
}

describe('security', () => {
  describe('an upstream that offers only TLS 1.1 or lower', () => {
    let bed: Testbed;
    let old: Awaited<ReturnType<typeof startTls11Server>>;
    let proxy: StartedProxy;

    before(async () => {
      bed = await startTestbed();
      old = await startTls11Server(bed.certs);
      proxy = await bed.proxy({ upstream: `127.0.0.1:${old.port}` });
      await proxy.process.waitForLine((l) => l.event === 'token_refreshed', 10_000);
    });
    after(async () => {
      await proxy?.stop();
      await old?.close();
      await bed?.stop();
    });

    it('the fake server does speak TLS 1.1 on this machine', async (t) => {
      const result = await tls11Handshake(old.port, bed.certs.ca);
      t.diagnostic(`a TLS 1.1 client got: ${result}`);
      assert.equal(result, 'TLSv1.1 +PONG');
    });

    it('is refused: the client gets -ERR, the token never goes out', async () => {
      const securedBefore = old.secured;
      const receivedBefore = old.received.length;
      const before = await metricNow(
        proxy.adminPort,
        'redis_proxy_upstream_dial_failures_total{reason="tls_handshake"}',
      );
      const reply = await exchange(proxy.port, command('PING'), replies(1));
      assert.match(reply, /^-ERR [^\r\n]*TLS[^\r\n]*\r\n$/);
      assert.doesNotMatch(reply, /PONG/);

      const failed = await proxy.process.waitForLine((l) => l.event === 'session_failed');
      assert.equal(failed.reason, 'tls_handshake');
      const after = await metricNow(
        proxy.adminPort,
        'redis_proxy_upstream_dial_failures_total{reason="tls_handshake"}',
      );
      assert.ok(after > before, 'tls_handshake dial failures counted');
      // No handshake ever completed with the proxy, so no AUTH (no token) reached the server.
      assert.equal(old.secured, securedBefore);
      assert.deepEqual(old.received.slice(receivedBefore), []);
      // The server side tells why: the proxy's ClientHello offers nothing below TLS 1.2.
      assert.ok(old.handshakeErrors.length > 0);
      assert.ok(
        old.handshakeErrors.every((code) => code === 'ERR_SSL_UNSUPPORTED_PROTOCOL'),
        old.handshakeErrors.join(', '),
      );
    });
  });

  describe('tokens and secrets stay out of logs, metrics and replies', () => {
    /** Tokens live 3 s: several rotations happen in a few seconds. */
    const LIFETIME_S = 3;
    let bed: Testbed;
    let proxy: StartedProxy;
    let tokens: string[];
    /** Everything observable from outside the proxy, besides its output. */
    const seen: string[] = [];

    before(async () => {
      bed = await startTestbed({ lifetimeSeconds: LIFETIME_S });
      tokens = recordIssuedTokens(bed.sts);
      proxy = await bed.proxy({ args: ['--log-level', 'trace', '--token-timeout', '1s'] });
      await proxy.process.waitForLine((l) => l.event === 'token_refreshed', 10_000);
    });
    after(async () => {
      bed?.sts.fail(null);
      await bed?.stop();
    });

    const admin = async () => {
      for (const path of ['/metrics', '/readyz', '/upstreamz']) {
        seen.push(await httpText(proxy.adminPort, path));
      }
    };

    it('a run with rotations, a failing token service and a rejected token', async (t) => {
      // Long-lived clients across rotations: plain, in a transaction, blocked, subscribed.
      const clients: RawClient[] = [];
      for (let i = 0; i < 4; i++) clients.push(await rawClient(proxy.port));
      t.after(() => clients.forEach((c) => c.socket.destroy()));
      const [plain, multi, blocked, subscriber] = clients;
      multi.socket.write(Buffer.concat([command('MULTI'), command('SET', 'sec:m', '1')]));
      blocked.socket.write(command('BLPOP', 'sec:list', '0'));
      subscriber.socket.write(command('SUBSCRIBE', 'sec:ch'));
      const rotations = () => proxy.process.lines.filter((l) => l.event === 'rotation_started');
      const start = rotations().length;
      while (rotations().length < start + 2) {
        plain.socket.write(command('PING'));
        await bed.redis.admin.publish('sec:ch', 'hello');
        await admin();
        await new Promise((r) => setTimeout(r, 250));
      }
      multi.socket.write(command('EXEC'));
      await bed.redis.admin.rpush('sec:list', 'x');
      await pollUntil(
        () => multi.text() + blocked.text(),
        (text) => /\*1\r\n\+OK\r\n/.test(text) && /sec:list/.test(text),
        5000,
      );
      const reauths = await metricNow(
        proxy.adminPort,
        'redis_proxy_reauthentications_total{result="success"}',
      );
      assert.ok(reauths > 0, 're-authentications happened');

      // The token service fails until no valid token is left.
      for (const mode of ['invalid_client', 'http500'] as const) {
        bed.sts.fail(mode);
        await pollUntil(
          () => httpText(proxy.adminPort, '/readyz'),
          (text) => text.startsWith('503'),
          LIFETIME_S * 1000 + 5000,
        );
        const refused = await exchange(proxy.port, command('PING'), replies(1));
        assert.match(refused, /^-ERR /);
        seen.push(refused);
        await admin();
        bed.sts.fail(null);
        const served = await pollUntil(
          () => exchange(proxy.port, command('PING'), replies(1)),
          (text) => text === '+PONG\r\n',
          10_000,
          200,
        );
        assert.equal(served, '+PONG\r\n');
      }

      // The cache refuses the current token (its user is gone): -ERR names the user only.
      const newest = [...bed.sts.tokens.entries()].sort((a, b) => b[1] - a[1])[0][0];
      await bed.sts.revoke(newest);
      const rejected = await pollUntil(
        () => exchange(proxy.port, command('PING'), replies(1)),
        (text) => text.startsWith('-ERR'),
        5000,
        100,
      );
      t.diagnostic(`after revoking the token's user: ${rejected.trim()}`);
      seen.push(rejected);
      await admin();
      await pollUntil(
        () => exchange(proxy.port, command('PING'), replies(1)),
        (text) => text === '+PONG\r\n',
        10_000,
        200,
      );
      await admin();
      for (const c of clients) {
        seen.push(c.text());
        c.socket.destroy();
      }

      // A clean shutdown logs too.
      assert.equal(await proxy.process.stop('SIGTERM'), 0);
    });

    it('no token, token signature or client secret anywhere; no stack traces', () => {
      const output = proxy.process.output();
      assert.ok(output.length < 250 * 1024, 'the whole output was kept');
      assert.ok(tokens.length >= 4, `tokens were issued (${tokens.length})`);
      assert.equal(tokens.length, bed.sts.issued, 'every issued token was recorded');
      const secrets = { tokens, others: { 'client secret': bed.sts.clientSecret } };
      assert.deepEqual(findSecrets(output, secrets), [], 'proxy output');
      assert.deepEqual(findSecrets(seen.join('\n'), secrets), [], 'metrics, probes, replies');
      assert.equal(hasStackTrace(output), false);
      // The run did log what it went through.
      for (const event of ['token_refreshed', 'rotation_started', 'token_refresh_failed']) {
        assert.ok(
          proxy.process.lines.some((l) => l.event === event),
          `${event} was logged`,
        );
      }
    });
  });

  describe('--client-password', () => {
    const password = `pw-${randomBytes(12).toString('hex')}`;
    const wrong = [`${password.slice(0, -1)}`, `${password}x`, 'guess-1234567890abcdef'];
    let bed: Testbed;
    let proxy: StartedProxy;

    before(async () => {
      bed = await startTestbed();
      proxy = await bed.proxy({ args: ['--client-password', password, '--log-level', 'trace'] });
      await proxy.process.waitForLine((l) => l.event === 'token_refreshed', 10_000);
    });
    after(() => bed?.stop());

    it('every command before AUTH gets NOAUTH and is not forwarded; wrong passwords get WRONGPASS', async () => {
      await bed.redis.admin.call('ACL', 'LOG', 'RESET');
      const unauthenticated = [
        command('GET', 'sec:k'),
        command('SET', 'sec:k', 'leaked'),
        command('EVAL', "return redis.call('set', 'sec:k', 'leaked')", '0'),
        command('MULTI'),
        command('SUBSCRIBE', 'sec:ch'),
        command('CLIENT', 'ID'),
        Buffer.from('SET sec:k leaked\r\n'),
      ];
      const attempts = [
        command('AUTH', wrong[0]),
        command('AUTH', 'default', wrong[1]),
        command('AUTH', wrong[2]),
        command('HELLO', '3', 'AUTH', 'default', wrong[0]),
      ];
      const text = await exchange(
        proxy.port,
        Buffer.concat([...unauthenticated, ...attempts, command('SET', 'sec:k', 'leaked')]),
        replies(unauthenticated.length + attempts.length + 1),
      );
      const lines = text.split('\r\n').slice(0, -1);
      assert.equal(lines.length, unauthenticated.length + attempts.length + 1, text);
      for (const line of lines.slice(0, unauthenticated.length)) assert.match(line, /^-NOAUTH /);
      for (const line of lines.slice(unauthenticated.length, -1))
        assert.match(line, /^-WRONGPASS /);
      assert.match(lines[lines.length - 1], /^-NOAUTH /);
      assert.equal(await bed.redis.admin.get('sec:k'), null, 'nothing reached the cache');
      assert.deepEqual(await bed.redis.admin.call('ACL', 'LOG'), [], 'no AUTH reached it either');

      const good = await exchange(
        proxy.port,
        Buffer.concat([
          command('AUTH', password),
          command('SET', 'sec:k', 'mine'),
          command('GET', 'sec:k'),
        ]),
        replies(3),
      );
      assert.equal(good, '+OK\r\n+OK\r\n$4\r\nmine\r\n');
    });

    it('neither the password nor the wrong attempts appear in logs or metrics', async () => {
      const metrics = await scrape(proxy.adminPort);
      const failed = await pollUntil(
        () => proxy.process.lines.filter((l) => l.event === 'client_auth_failed'),
        (l) => l.length >= 3,
        3000,
      );
      assert.ok(failed.length >= 3, 'wrong passwords are logged as client_auth_failed');
      const others = Object.fromEntries([
        ['password', password],
        ...wrong.map((w, i) => [`wrong attempt ${i}`, w]),
      ]) as Record<string, string>;
      assert.deepEqual(findSecrets(proxy.process.output(), { others }), []);
      assert.deepEqual(findSecrets(metrics, { others }), []);
    });
  });
});
