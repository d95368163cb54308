import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

import {
  freePort,
  makeCertificates,
  startProxy,
  startRedis,
  startTokenService,
  type Certificates,
  type RedisServer,
  type TokenService,
} from '../../testbed/index.js';
import { parseConfig } from '../../src/config.js';
import { rawExchange } from '../support/raw.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const run = promisify(execFile);

/** Every failure an operator can cause gives one clear line, no stack, no secret. */
describe('failures explained', () => {
  let certs: Certificates;
  let redis: RedisServer;
  let sts: TokenService;

  before(async () => {
    certs = await makeCertificates();
    redis = await startRedis({ certs });
    sts = await startTokenService({ certs, redis: { admin: redis.admin } });
  });
  after(async () => {
    await sts.stop();
    await redis.stop();
  });

  const baseArgs = (port: number): string[] => [
    '--listen',
    '127.0.0.1:0',
    '--admin-listen',
    'off',
    '--upstream',
    `127.0.0.1:${port}`,
    '--tls-ca-file',
    certs.caFile,
    '--credential',
    'client-secret',
    '--disable-instance-discovery',
  ];

  it('bad configuration: exit 2, one line per problem, no stack, no secret', async () => {
    const result = await run(process.execPath, [
      CLI,
      '--listen',
      'nowhere',
      '--credential',
      'magic',
      '--log-level',
      'loud',
      '--client-password',
      'hunter2-secret',
      '--connect-timeout',
      'soon',
    ]).then(
      () => null,
      (err: { code: number; stderr: string; stdout: string }) => err,
    );
    assert.ok(result !== null, 'the proxy must refuse to start');
    assert.equal(result.code, 2);
    const lines = result.stderr.trim().split('\n');
    assert.equal(lines.length, 5, result.stderr);
    for (const line of lines) assert.match(line, /^redis-entra-proxy: --[a-z-]+: /);
    assert.doesNotMatch(result.stderr + result.stdout, /hunter2-secret|\n\s+at /);
  });

  it('unknown flag: exit 2 with a hint', async () => {
    const result = await run(process.execPath, [CLI, '--upstrem', 'x']).then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(result?.code, 2);
    assert.match(result.stderr, /^redis-entra-proxy: .*upstrem.*\(see --help\)\n$/);
  });

  it('missing credential variables are named', async () => {
    const result = await run(
      process.execPath,
      [CLI, '--upstream', 'cache', '--credential', 'client-secret'],
      {
        env: { PATH: process.env.PATH },
      },
    ).then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(result?.code, 2);
    assert.match(result.stderr, /AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET/);
  });

  it('--help lists every flag with its environment variable', async () => {
    const { stdout } = await run(process.execPath, [CLI, '--help']);
    assert.match(stdout, /--upstream VALUE/);
    assert.match(stdout, /REDIS_PROXY_LISTEN/);
    assert.match(stdout, /REDIS_HOSTNAME/);
  });

  it('a wrong client secret: the client hears the identity service reason', async (t) => {
    const proxy = await startProxy({
      args: baseArgs(redis.tlsPort),
      env: { ...sts.envFor('client-secret'), AZURE_CLIENT_SECRET: 'wrong-secret-value' },
    });
    t.after(() => proxy.stop('SIGKILL'));
    const failure = await proxy.waitForLine((l) => l.event === 'token_refresh_failed', 10_000);
    assert.match(String(failure.msg), /AADSTS7000215/);
    const reply = await rawExchange(proxy.port, 'PING\r\n', 1);
    assert.match(reply, /^-ERR redis-entra-proxy: no access token: .*AADSTS7000215.*\r\n$/);
    assert.doesNotMatch(proxy.output(), /wrong-secret-value|\n\s+at /);
  });

  it('an unreachable upstream: ERR within seconds, the proxy keeps running', async (t) => {
    const closedPort = await freePort();
    const proxy = await startProxy({
      args: baseArgs(closedPort),
      env: sts.envFor('client-secret'),
    });
    t.after(() => proxy.stop('SIGKILL'));
    await proxy.waitForLine((l) => l.event === 'token_refreshed', 10_000);
    const reply = await rawExchange(proxy.port, 'PING\r\n', 1);
    assert.match(
      reply,
      /^-ERR redis-entra-proxy: cannot connect to 127\.0\.0\.1:\d+: connection refused\r\n$/,
    );
    const line = await proxy.waitForLine((l) => l.event === 'session_failed');
    assert.equal(line.reason, 'unreachable');
    assert.equal(proxy.process.exitCode, null);
  });

  it('an untrusted certificate: ERR that names the fix', async (t) => {
    const rogue = await startRedis({ certs, untrusted: true });
    t.after(() => rogue.stop());
    const proxy = await startProxy({
      args: baseArgs(rogue.tlsPort),
      env: sts.envFor('client-secret'),
    });
    t.after(() => proxy.stop('SIGKILL'));
    await proxy.waitForLine((l) => l.event === 'token_refreshed', 10_000);
    const reply = await rawExchange(proxy.port, 'PING\r\n', 1);
    assert.match(
      reply,
      /^-ERR redis-entra-proxy: TLS certificate of .* is not trusted .*--tls-ca-file/,
    );
    const line = await proxy.waitForLine((l) => l.event === 'session_failed');
    assert.equal(line.reason, 'tls_untrusted');
  });

  it('a certificate for another host name is refused', async (t) => {
    const proxy = await startProxy({
      args: [...baseArgs(redis.tlsPort), '--tls-servername', 'not-the-cache.example'],
      env: sts.envFor('client-secret'),
    });
    t.after(() => proxy.stop('SIGKILL'));
    await proxy.waitForLine((l) => l.event === 'token_refreshed', 10_000);
    const reply = await rawExchange(proxy.port, 'PING\r\n', 1);
    assert.match(reply, /does not match the host name/);
  });

  it('tokens never appear in the logs', async (t) => {
    const proxy = await startProxy({
      args: [...baseArgs(redis.tlsPort), '--log-level', 'trace'],
      env: sts.envFor('client-secret'),
    });
    t.after(() => proxy.stop('SIGKILL'));
    await proxy.waitForLine((l) => l.event === 'token_refreshed', 10_000);
    assert.equal(await rawExchange(proxy.port, 'PING\r\n', 1), '+PONG\r\n');
    assert.doesNotMatch(proxy.output(), /eyJ[\w-]{10,}/, 'no JWT in the output');
  });
});

describe('--client-password', () => {
  let certs: Certificates;
  let redis: RedisServer;
  let sts: TokenService;

  before(async () => {
    certs = await makeCertificates();
    redis = await startRedis({ certs });
    sts = await startTokenService({ certs, redis: { admin: redis.admin } });
  });
  after(async () => {
    await sts.stop();
    await redis.stop();
  });

  it('NOAUTH until the right password; WRONGPASS otherwise; HELLO AUTH checked', async (t) => {
    const proxy = await startProxy({
      args: [
        '--listen',
        '127.0.0.1:0',
        '--admin-listen',
        'off',
        '--upstream',
        `127.0.0.1:${redis.tlsPort}`,
        '--tls-ca-file',
        certs.caFile,
        '--credential',
        'client-secret',
        '--disable-instance-discovery',
      ],
      env: { ...sts.envFor('client-secret'), REDIS_PROXY_CLIENT_PASSWORD: 'letmein' },
    });
    t.after(() => proxy.stop('SIGKILL'));
    const reply = await rawExchange(
      proxy.port,
      'PING\r\nAUTH nope\r\nPING\r\nAUTH letmein\r\nPING\r\n',
      5,
    );
    assert.equal(
      reply,
      '-NOAUTH Authentication required.\r\n' +
        '-WRONGPASS invalid username-password pair or user is disabled.\r\n' +
        '-NOAUTH Authentication required.\r\n+OK\r\n+PONG\r\n',
    );
    const hello = await rawExchange(proxy.port, 'HELLO 3\r\nHELLO 3 AUTH default bad\r\n', 2);
    assert.match(hello, /^-NOAUTH HELLO must be called .*\r\n-WRONGPASS/);
    const good = await rawExchange(
      proxy.port,
      'HELLO 2 AUTH default letmein\r\nPING\r\n',
      1,
      (text) => text.endsWith('+PONG\r\n'),
    );
    assert.match(good, /^\*\d+\r\n/);
  });

  it('a non-loopback listener without a password is refused at start', async () => {
    const result = await run(process.execPath, [
      CLI,
      '--upstream',
      'cache',
      '--listen',
      '0.0.0.0:0',
    ]).then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(result?.code, 2);
    assert.match(result.stderr, /--client-password or pass --allow-remote-clients/);
  });

  it('--allow-remote-clients without a password starts, with a warning to log', () => {
    const parsed = parseConfig(
      ['--upstream', 'cache', '--listen', '0.0.0.0:6379', '--allow-remote-clients'],
      {},
    );
    assert.equal(parsed.action, 'run');
    assert.equal(parsed.action === 'run' && parsed.config.warnings.length, 1);
    const loopback = parseConfig(['--upstream', 'cache', '--allow-remote-clients'], {});
    assert.deepEqual(loopback.action === 'run' && loopback.config.warnings, []);
  });

  it('a listener that cannot bind stops the whole proxy with status 3', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as AddressInfo).port;
    try {
      for (const args of [
        ['--listen', '127.0.0.1:0', '--listen', `127.0.0.1:${port}`, '--admin-listen', 'off'],
        ['--listen', '127.0.0.1:0', '--admin-listen', `127.0.0.1:${port}`],
      ]) {
        const result = await run(
          process.execPath,
          [CLI, '--upstream', '127.0.0.1:1', '--credential', 'azure-cli', ...args],
          { timeout: 15_000 },
        ).then(
          () => null,
          (err: { code: number; stderr: string; killed: boolean }) => err,
        );
        assert.equal(result?.killed, false, 'the process ended by itself');
        assert.equal(result?.code, 3, result?.stderr);
        assert.match(result.stderr, /EADDRINUSE/);
      }
    } finally {
      busy.close();
    }
  });
});
