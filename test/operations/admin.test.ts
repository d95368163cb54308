import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Redis } from 'ioredis';

import { freePort, startProxy } from '../../testbed/index.js';
import { rawExchange } from '../support/raw.js';
import { sleep, startStack, waitForToken, type Stack } from '../support/stack.js';

async function get(
  port: number,
  path: string,
  method = 'GET',
): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  return { status: res.status, body: await res.text() };
}

/** The value of one sample in Prometheus text, e.g. metric('x{reason="y"}'). */
function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line !== undefined, `${name} is exported`);
  return Number(line.slice(name.length + 1));
}

describe('admin endpoints and metrics', () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack({ args: ['--max-connections', '20'] });
    await waitForToken(stack);
  });
  after(() => stack.stop());

  it('/livez, /readyz and /upstreamz answer 200 when all is well', async () => {
    assert.equal((await get(stack.adminPort, '/livez')).status, 200);
    assert.equal((await get(stack.adminPort, '/readyz')).status, 200);
    assert.equal((await get(stack.adminPort, '/upstreamz')).status, 200);
    assert.equal((await get(stack.adminPort, '/nothing')).status, 404);
    assert.equal(
      (await get(stack.adminPort, '/quitquitquit', 'POST')).status,
      404,
      'off by default',
    );
  });

  it('/metrics counts connections, commands, bytes and the token expiry', async () => {
    const client = new Redis({ port: stack.port, host: '127.0.0.1' });
    const pipeline = client.pipeline();
    for (let i = 0; i < 100; i++) pipeline.set(`m:${i}`, 'v');
    await pipeline.exec();
    const { status, body } = await get(stack.adminPort, '/metrics');
    assert.equal(status, 200);
    assert.ok(metric(body, 'redis_proxy_commands_total') >= 100);
    assert.ok(metric(body, 'redis_proxy_client_connections') >= 1);
    assert.ok(metric(body, 'redis_proxy_client_connections_accepted_total') >= 1);
    assert.ok(metric(body, 'redis_proxy_upstream_connections') >= 1);
    assert.ok(metric(body, 'redis_proxy_bytes_total{direction="client_to_upstream"}') > 100 * 20);
    assert.ok(metric(body, 'redis_proxy_bytes_total{direction="upstream_to_client"}') >= 500);
    assert.ok(metric(body, 'redis_proxy_token_refreshes_total{result="success"}') >= 1);
    const expiry = metric(body, 'redis_proxy_token_expiry_seconds');
    assert.ok(expiry > 3000 && expiry <= 3601, `token expires in ${expiry} s`);
    assert.ok(metric(body, 'redis_proxy_upstream_handshake_seconds_count') >= 1);
    assert.match(body, /^process_cpu_seconds_total /m, 'default process metrics');
    client.disconnect();
    await sleep(100);
    const after = await get(stack.adminPort, '/metrics');
    assert.ok(metric(after.body, 'redis_proxy_sessions_closed_total{reason="client_closed"}') >= 1);
  });

  it('protocol errors are counted by side', async () => {
    await rawExchange(stack.port, '*1\r\n:5\r\n', 1);
    const { body } = await get(stack.adminPort, '/metrics');
    assert.ok(metric(body, 'redis_proxy_protocol_errors_total{side="client"}') >= 1);
  });

  it('--max-connections refuses the client beyond the limit, with the redis error', async () => {
    const sockets = Array.from({ length: 25 }, () => connect(stack.port, '127.0.0.1'));
    try {
      const replies = await Promise.all(
        sockets.map(
          (socket) =>
            new Promise<string>((resolve) => {
              let text = '';
              socket.on('data', (chunk) => {
                text += chunk.toString('latin1');
                if (text.endsWith('\r\n')) resolve(text);
              });
              socket.on('error', () => resolve(text));
              socket.write('PING\r\n');
            }),
        ),
      );
      const refused = replies.filter((r) => r !== '+PONG\r\n');
      assert.ok(refused.length >= 5, `${refused.length} refused`);
      for (const reply of refused) assert.equal(reply, '-ERR max number of clients reached\r\n');
      const { body } = await get(stack.adminPort, '/metrics');
      assert.ok(
        metric(body, 'redis_proxy_client_connections_refused_total{reason="max_connections"}') >= 5,
      );
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });

  it('log lines are JSON and every session line names its session', () => {
    const sessionLines = stack.proxy.lines.filter((l) => String(l.event).startsWith('session_'));
    for (const line of sessionLines) assert.match(String(line.session), /^s\d+$/);
    for (const raw of stack.proxy.output().split('\n').filter(Boolean)) JSON.parse(raw);
  });
});

describe('readiness does not depend on the cache', () => {
  it('/upstreamz fails when the cache is down; /readyz stays 200', async (t) => {
    const stack = await startStack();
    t.after(() => stack.stop());
    const closedPort = await freePort();
    const args = stack.proxyArgs.map((a) =>
      a === `127.0.0.1:${stack.redis.tlsPort}` ? `127.0.0.1:${closedPort}` : a,
    );
    const proxy = await startProxy({ args, env: stack.proxyEnv });
    t.after(() => proxy.stop('SIGKILL'));
    await proxy.waitForLine((l) => l.event === 'token_refreshed', 10_000);
    const admin = await proxy.waitForLine((l) => l.event === 'admin_listening');
    const adminPort = Number(String(admin.address).split(':').pop());
    assert.equal((await get(adminPort, '/readyz')).status, 200);
    const upstream = await get(adminPort, '/upstreamz');
    assert.equal(upstream.status, 503);
    assert.match(upstream.body, /cannot connect to 127\.0\.0\.1:\d+: connection refused/);
  });
});

describe('/upstreamz asks the cache itself', () => {
  it('answers 503 when the cache stops answering, though pooled connections are open', async (t) => {
    const stack = await startStack({ args: ['--connect-timeout', '1s', '--pool-size', '2'] });
    t.after(() => stack.stop());
    await waitForToken(stack);
    assert.equal((await get(stack.adminPort, '/upstreamz')).status, 200);

    // Connections stay open and the port accepts; nothing is answered.
    await stack.redis.admin.call('CLIENT', 'PAUSE', '3000', 'ALL');
    const paused = await get(stack.adminPort, '/upstreamz');
    assert.equal(paused.status, 503);
    assert.match(paused.body, /no answer to PING within 1000 ms/);

    await sleep(3200);
    assert.equal((await get(stack.adminPort, '/upstreamz')).status, 200, 'answers again');
  });
});

describe('limits', () => {
  it('--idle-timeout closes silent clients but not subscribers', async (t) => {
    const stack = await startStack({ args: ['--idle-timeout', '1s'] });
    t.after(() => stack.stop());
    await waitForToken(stack);
    const idle = connect(stack.port, '127.0.0.1');
    const idleClosed = new Promise((resolve) => idle.on('close', resolve));
    const subscriber = new Redis({ port: stack.port, host: '127.0.0.1' });
    t.after(() => subscriber.disconnect());
    await subscriber.subscribe('quiet');
    await idleClosed;
    await sleep(1500);
    assert.equal(subscriber.status, 'ready');
    const line = stack.proxy.lines.find((l) => l.reason === 'idle_timeout');
    assert.ok(line !== undefined);
  });

  it('a unix socket listener gets the configured file mode', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'proxy-sock-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const stack = await startStack();
    t.after(() => stack.stop());
    const path = join(dir, 'redis.sock');
    const proxy = await startProxy({
      args: [
        '--listen',
        path,
        '--admin-listen',
        'off',
        '--unix-socket-mode',
        '0600',
        ...stack.proxyArgs.slice(4),
      ],
      env: stack.proxyEnv,
    });
    t.after(() => proxy.stop('SIGKILL'));
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const client = new Redis({ path });
    t.after(() => client.disconnect());
    assert.equal(await client.ping(), 'PONG');
  });
});
