import assert from 'node:assert/strict';
import { constants, sign } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  createSigningKey,
  decodeJwt,
  signAccessToken,
  signJwt,
  verifyJwt,
} from '../../testbed/index.js';

const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('jwt', () => {
  const key = createSigningKey();

  test('signs RS256 with alg, typ and kid, and verifies with the public key', () => {
    const token = signJwt({ hello: 'world' }, key);

    assert.deepEqual(decodeJwt(token).header, { alg: 'RS256', typ: 'JWT', kid: key.kid });
    assert.deepEqual(verifyJwt(token, key.publicKey), { hello: 'world' });
  });

  test('rejects another key, a changed payload and alg none', () => {
    const token = signJwt({ admin: false }, key);
    const [head, , signature] = token.split('.');
    const forged = `${head}.${part({ admin: true })}.${signature}`;
    const unsigned = `${part({ alg: 'none' })}.${part({ admin: true })}.`;

    assert.equal(verifyJwt(token, createSigningKey().publicKey), undefined);
    assert.equal(verifyJwt(forged, key.publicKey), undefined);
    assert.equal(verifyJwt(unsigned, key.publicKey), undefined);
    assert.equal(verifyJwt('not a jwt', key.publicKey), undefined);
  });

  test('verifies PS256, which MSAL uses for certificate assertions', () => {
    const signed = `${part({ alg: 'PS256', typ: 'JWT' })}.${part({ sub: 'app' })}`;
    const signature = sign('sha256', Buffer.from(signed), {
      key: key.privateKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
    });

    const token = `${signed}.${signature.toString('base64url')}`;
    assert.deepEqual(verifyJwt(token, key.publicKey), { sub: 'app' });
  });

  test('access tokens carry the claims Azure Cache and the proxy rely on', () => {
    const startedMs = Date.now();
    const before = Math.floor(startedMs / 1000);
    const { token, claims } = signAccessToken(
      {
        issuer: 'https://127.0.0.1:1/tenant/',
        audience: 'https://redis.azure.com',
        tenantId: 'tenant',
        clientId: 'app',
        lifetimeSeconds: 2,
      },
      key,
    );

    assert.deepEqual(verifyJwt(token, key.publicKey), claims);
    assert.equal(claims.aud, 'https://redis.azure.com');
    assert.equal(claims.tid, 'tenant');
    assert.equal(claims.appid, 'app');
    assert.match(claims.oid, /^[0-9a-f-]{36}$/);
    assert.ok(claims.iat >= before && claims.nbf === claims.iat);
    // Rounded up: never shorter than asked.
    assert.ok(claims.exp * 1000 >= startedMs + 2000);
  });

  test('every access token gets a fresh oid unless one is given', () => {
    const input = {
      issuer: 'i',
      audience: 'a',
      tenantId: 't',
      clientId: 'c',
      lifetimeSeconds: 60,
    };

    const first = signAccessToken(input, key).claims.oid;
    const second = signAccessToken(input, key).claims.oid;
    const fixed = signAccessToken({ ...input, oid: 'me' }, key).claims.oid;

    assert.notEqual(first, second);
    assert.equal(fixed, 'me');
  });
});
