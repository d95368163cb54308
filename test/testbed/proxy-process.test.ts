import assert from 'node:assert/strict';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startProxy } from '../../testbed/index.js';
import { rejectionOf } from './support.js';

// Stand-ins for dist/src/cli.js that keep the logging contract: pino-style JSON lines on
// stdout, one "listening" line per listener, an optional "admin_listening" line.
const FAKE_PROXY = `
import { createServer } from 'node:net';
const log = (fields) => console.log(JSON.stringify({ level: 30, time: Date.now(), ...fields }));
const servers = [createServer(), createServer(), createServer()];
process.on('SIGTERM', () => {
  log({ event: 'shutdown' });
  for (const server of servers) server.close();
});
process.on('SIGUSR2', () => log({ event: 'poked' }));
console.log('a line that is not JSON');
for (const server of servers) await new Promise((r) => server.listen(0, '127.0.0.1', r));
const address = (s) => '127.0.0.1:' + s.address().port;
log({ event: 'listening', address: address(servers[0]), args: process.argv.slice(2) });
log({ event: 'listening', address: address(servers[1]) });
log({ event: 'admin_listening', address: address(servers[2]), env: process.env.FAKE_ENV });
`;

const FAKE_CRASH = `
console.error('fatal: no upstream configured');
process.exit(3);
`;

describe('startProxy', () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'proxy-process-test-'));
    await writeFile(join(dir, 'fake-proxy.mjs'), FAKE_PROXY);
    await writeFile(join(dir, 'fake-crash.mjs'), FAKE_CRASH);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('resolves at the first "listening" line, with args and env passed', async (t) => {
    const proxy = await startProxy({
      cliPath: join(dir, 'fake-proxy.mjs'),
      args: ['--listen', '127.0.0.1:0'],
      env: { FAKE_ENV: 'from-test' },
    });
    t.after(() => proxy.stop('SIGKILL'));

    assert.equal(proxy.address, `127.0.0.1:${proxy.port}`);
    assert.deepEqual(proxy.lines[0]?.args, ['--listen', '127.0.0.1:0']);

    const admin = await proxy.waitForLine((line) => line.event === 'admin_listening');
    assert.equal(admin.env, 'from-test');
    assert.equal(proxy.adminAddress, admin.address);
    assert.equal(proxy.addresses.length, 2);
    assert.match(proxy.output(), /a line that is not JSON/);
    assert.equal(
      proxy.lines.some((line) => typeof line !== 'object'),
      false,
    );
  });

  test('waitForLine sees future lines; stop() returns the exit code', async () => {
    const proxy = await startProxy({ cliPath: join(dir, 'fake-proxy.mjs') });

    const poked = proxy.waitForLine((line) => line.event === 'poked');
    proxy.process.kill('SIGUSR2');
    assert.equal((await poked).event, 'poked');

    assert.equal(await proxy.stop(), 0);
    assert.ok(proxy.lines.some((line) => line.event === 'shutdown'));
    assert.equal(await proxy.stop(), 0);
  });

  test('stop() reports death by signal as 128 + signal number', async () => {
    const proxy = await startProxy({ cliPath: join(dir, 'fake-proxy.mjs') });
    assert.equal(await proxy.stop('SIGKILL'), 137);
  });

  test('waitForLine rejects on timeout and once the process has exited', async () => {
    const proxy = await startProxy({ cliPath: join(dir, 'fake-proxy.mjs') });
    const never = (line: Record<string, unknown>) => line.event === 'never';

    assert.match((await rejectionOf(proxy.waitForLine(never, 50))).message, /within 50 ms/);
    const waiting = rejectionOf(proxy.waitForLine(never, 5_000));
    await proxy.stop('SIGKILL');
    assert.match((await waiting).message, /exited/);
    assert.match((await rejectionOf(proxy.waitForLine(never))).message, /exited/);
  });

  test('a proxy that exits before listening rejects with its output', async () => {
    const err = await rejectionOf(startProxy({ cliPath: join(dir, 'fake-crash.mjs') }));

    assert.match(err.message, /exited with 3/);
    assert.match(err.message, /fatal: no upstream configured/);
  });
});
