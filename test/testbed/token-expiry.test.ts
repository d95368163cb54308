import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ClientSecretCredential } from '@azure/identity';
import {
  makeCertificates,
  startRedis,
  startTokenService,
  type Certificates,
  type RedisServer,
  type TokenService,
} from '../../testbed/index.js';
import {
  SCOPE,
  connectAs,
  credentialOptions,
  oidOf,
  rejectionOf,
  requireTrustedCa,
  whenClosed,
} from './support.js';

describe('Azure-like enforcement of token expiry upstream', () => {
  let certs: Certificates;
  let redis: RedisServer;
  let svc: TokenService;

  before(async () => {
    certs = await makeCertificates();
    requireTrustedCa(certs);
    redis = await startRedis({ certs });
    svc = await startTokenService({ certs, redis, lifetimeSeconds: 2 });
  });

  after(async () => {
    await svc?.stop();
    await redis?.stop();
    await certs?.remove();
  });

  const getToken = async () => {
    const credential = new ClientSecretCredential(
      svc.tenantId,
      svc.clientId,
      svc.clientSecret,
      credentialOptions(svc),
    );
    const token = await credential.getToken(SCOPE);
    assert.ok(token);
    return { token: token.token, oid: oidOf(token.token) };
  };

  test('at expiry the server closes connections still authenticated with the token', async (t) => {
    const first = await getToken();
    const idle = await connectAs(redis, first.oid, first.token);
    const subscriber = await connectAs(redis, first.oid, first.token);
    const renewed = await connectAs(redis, first.oid, first.token);
    t.after(() => [idle, subscriber, renewed].forEach((client) => client.disconnect()));
    await subscriber.subscribe('events');

    svc.setLifetime(60);
    t.after(() => svc.setLifetime(2));
    const second = await getToken();
    assert.equal(await renewed.call('AUTH', second.oid, second.token), 'OK');

    await Promise.all([whenClosed(idle), whenClosed(subscriber)]);

    assert.ok(Date.now() >= svc.tokens.get(first.oid)! * 1000);
    assert.equal(svc.liveUsers.includes(first.oid), false);
    // Re-authenticated in time with a newer token: Azure keeps such connections open.
    assert.equal(await renewed.call('ACL', 'WHOAMI'), second.oid);
    const err = await rejectionOf(connectAs(redis, first.oid, first.token));
    assert.match(err.message, /WRONGPASS/);
  });

  test('revoke() ends a token early', async (t) => {
    svc.setLifetime(60);
    t.after(() => svc.setLifetime(2));
    const { token, oid } = await getToken();
    const client = await connectAs(redis, oid, token);
    t.after(() => client.disconnect());

    await svc.revoke(oid);
    await whenClosed(client);

    assert.equal(svc.liveUsers.includes(oid), false);
  });

  test('stop() deletes the users of tokens still valid', async () => {
    const other = await startTokenService({ certs, redis, lifetimeSeconds: 60 });
    const credential = new ClientSecretCredential(
      other.tenantId,
      other.clientId,
      other.clientSecret,
      credentialOptions(other),
    );
    const oid = oidOf((await credential.getToken(SCOPE)).token);
    const users = () => redis.admin.call('ACL', 'USERS') as Promise<string[]>;

    assert.ok((await users()).includes(oid));
    await other.stop();
    assert.equal((await users()).includes(oid), false);
  });
});
