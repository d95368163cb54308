import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManagedIdentityCredential } from '@azure/identity';
import {
  decodeJwt,
  makeCertificates,
  startRedis,
  startTokenService,
  type Certificates,
  type RedisServer,
  type TokenService,
} from '../../testbed/index.js';
import { SCOPE, connectAs, rejectionOf } from './support.js';

// MSAL picks the managed identity source, and with it IDENTITY_ENDPOINT, once per process
// on first use, so this file keeps one service for all its tests and no other file uses
// ManagedIdentityCredential.
describe('token service as an App Service managed identity endpoint', () => {
  let certs: Certificates;
  let redis: RedisServer;
  let svc: TokenService;
  let credential: ManagedIdentityCredential;

  before(async () => {
    certs = await makeCertificates();
    redis = await startRedis({ certs });
    // Under MSAL's 5-minute renewal margin, so every getToken reaches the service.
    svc = await startTokenService({ certs, redis, lifetimeSeconds: 60 });
    Object.assign(process.env, svc.envFor('managed-identity'));
    credential = new ManagedIdentityCredential({ retryOptions: { maxRetries: 0 } });
  });

  after(async () => {
    await svc?.stop();
    await redis?.stop();
    await certs?.remove();
  });

  test('ManagedIdentityCredential gets a token that authenticates upstream', async (t) => {
    const token = await credential.getToken(SCOPE);
    assert.ok(token);

    const claims = decodeJwt(token.token).payload;
    assert.equal(claims.aud, 'https://redis.azure.com');
    assert.equal(claims.appid, svc.managedIdentityClientId);
    assert.equal(svc.tokens.get(String(claims.oid)), claims.exp);
    assert.ok(token.expiresOnTimestamp > Date.now());

    const client = await connectAs(redis, String(claims.oid), token.token);
    t.after(() => client.disconnect());
    assert.equal(await client.call('ACL', 'WHOAMI'), claims.oid);
  });

  test('the endpoint answers in the App Service shape, with X-IDENTITY-HEADER only', async () => {
    const url = `${svc.msiEndpoint}?api-version=2019-08-01&resource=https://redis.azure.com`;
    const denied = await fetch(url);
    const granted = await fetch(url, { headers: { 'X-IDENTITY-HEADER': svc.msiHeader } });
    const body = (await granted.json()) as Record<string, string>;

    assert.equal(denied.status, 401);
    assert.equal(granted.status, 200);
    assert.deepEqual(Object.keys(body).sort(), [
      'access_token',
      'client_id',
      'expires_on',
      'resource',
      'token_type',
    ]);
    assert.equal(body.expires_on, String(decodeJwt(body.access_token).payload.exp));
  });

  test('a request without api-version or resource gets 400', async () => {
    const res = await fetch(svc.msiEndpoint, { headers: { 'X-IDENTITY-HEADER': svc.msiHeader } });
    assert.equal(res.status, 400);
  });

  for (const mode of ['http500', 'garbage', 'invalid_client'] as const) {
    test(`fail('${mode}') makes getToken fail, fail(null) heals`, async (t) => {
      t.after(() => svc.fail(null));
      svc.fail(mode);

      const err = await rejectionOf(credential.getToken(SCOPE));
      assert.equal(err.name, 'CredentialUnavailableError');

      svc.fail(null);
      assert.ok(await credential.getToken(SCOPE));
    });
  }
});
