import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as connectTcp } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import {
  ADMIN_USER,
  makeCertificates,
  startRedis,
  type Certificates,
  type RedisServer,
} from '../../testbed/index.js';
import { connectAs, rejectionOf, whenClosed } from './support.js';

/** Resolves with the error code of a TLS handshake that must fail. */
function handshakeError(port: number, ca: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: '127.0.0.1', port, ca }, () => {
      socket.destroy();
      reject(new Error('handshake succeeded'));
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code));
  });
}

function connectError(port: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(port, '127.0.0.1', () => {
      socket.destroy();
      reject(new Error('connected'));
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code));
  });
}

describe('startRedis', () => {
  let certs: Certificates;
  let redis: RedisServer;

  before(async () => {
    certs = await makeCertificates();
    redis = await startRedis({ certs, plainPort: true });
  });

  after(async () => {
    await redis?.stop();
    await certs?.remove();
  });

  test('the admin connection is authenticated as the testbed admin', async () => {
    assert.equal(redis.host, '127.0.0.1');
    assert.equal(redis.port, redis.tlsPort);
    assert.equal(await redis.admin.call('ACL', 'WHOAMI'), ADMIN_USER);
  });

  test('like Azure, the default user is off: NOAUTH before AUTH, WRONGPASS for it', async (t) => {
    const client = new Redis({
      host: redis.host,
      port: redis.tlsPort,
      tls: { ca: certs.ca },
      lazyConnect: true,
      enableReadyCheck: false,
      retryStrategy: () => null,
    });
    client.on('error', () => {});
    t.after(() => client.disconnect());
    await client.connect();

    assert.match((await rejectionOf(client.ping())).message, /^NOAUTH/);
    assert.match((await rejectionOf(client.auth('default', 'x'))).message, /WRONGPASS/);
  });

  test('the plain port answers when asked for', async (t) => {
    assert.ok(redis.plainPort);
    const client = new Redis({
      host: redis.host,
      port: redis.plainPort,
      username: redis.adminUser,
      password: redis.adminPassword,
      lazyConnect: true,
    });
    t.after(() => client.disconnect());
    await client.connect();

    assert.equal(await client.ping(), 'PONG');
  });

  test('ACL DELUSER closes every connection of that user, subscribed or blocked', async (t) => {
    await redis.admin.call('ACL', 'SETUSER', 'alice', 'on', '>pw-a', '~*', '&*', '+@all');
    await redis.admin.call('ACL', 'SETUSER', 'bob', 'on', '>pw-b', '~*', '&*', '+@all');
    t.after(() => redis.admin.call('ACL', 'DELUSER', 'alice', 'bob'));

    const subscriber = await connectAs(redis, 'alice', 'pw-a');
    const blocked = await connectAs(redis, 'alice', 'pw-a');
    const other = await connectAs(redis, 'bob', 'pw-b');
    t.after(() => [subscriber, blocked, other].forEach((c) => c.disconnect()));

    await subscriber.subscribe('news');
    const pop = blocked.blpop('list-that-stays-empty', 0).catch((err: Error) => err);

    await redis.admin.call('ACL', 'DELUSER', 'alice');
    await Promise.all([whenClosed(subscriber), whenClosed(blocked)]);

    assert.ok((await pop) instanceof Error);
    assert.equal(await other.ping(), 'PONG');
  });

  test('disabling a user or changing its password leaves its connections open', async (t) => {
    await redis.admin.call('ACL', 'SETUSER', 'carol', 'on', '>pw-c', '~*', '&*', '+@all');
    t.after(() => redis.admin.call('ACL', 'DELUSER', 'carol'));
    const client = await connectAs(redis, 'carol', 'pw-c');
    t.after(() => client.disconnect());

    await redis.admin.call('ACL', 'SETUSER', 'carol', 'off', 'resetpass', '>other');

    // Why the token service deletes users at expiry instead of switching them off.
    assert.equal(await client.ping(), 'PONG');
    assert.equal(await client.call('ACL', 'WHOAMI'), 'carol');
  });

  test('stop() ends the server: its port refuses connections', async () => {
    const extra = await startRedis({ certs });
    await extra.stop();
    await extra.stop();

    assert.equal(await connectError(extra.tlsPort), 'ECONNREFUSED');
  });

  test('with untrusted: true the server presents a certificate clients reject', async (t) => {
    const untrusted = await startRedis({ certs, untrusted: true });
    t.after(() => untrusted.stop());

    assert.equal(untrusted.caFile, certs.untrustedCaFile);
    assert.equal(await untrusted.admin.call('ACL', 'WHOAMI'), ADMIN_USER);
    assert.equal(
      await handshakeError(untrusted.tlsPort, certs.ca),
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    );
    assert.equal(readFileSync(untrusted.caFile, 'utf8') === certs.ca, false);
  });

  test('a server that cannot start reports what redis-server said', async () => {
    const err = await rejectionOf(startRedis({ certs, config: ['no-such-directive yes'] }));

    assert.match(err.message, /redis-server did not start/);
    assert.match(err.message, /Bad directive or wrong number of arguments/);
  });
});
