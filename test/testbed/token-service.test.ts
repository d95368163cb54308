import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  ClientCertificateCredential,
  ClientSecretCredential,
  WorkloadIdentityCredential,
  type TokenCredential,
} from '@azure/identity';
import {
  decodeJwt,
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
} from './support.js';

describe('token service with real @azure/identity credentials', () => {
  let certs: Certificates;
  let redis: RedisServer;
  let svc: TokenService;
  let scratch: string;

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'token-service-test-'));
    certs = await makeCertificates();
    requireTrustedCa(certs);
    redis = await startRedis({ certs });
    svc = await startTokenService({ certs, redis });
  });

  after(async () => {
    await svc?.stop();
    await redis?.stop();
    await certs?.remove();
    await rm(scratch, { recursive: true, force: true });
  });

  const credentials: Record<string, () => TokenCredential> = {
    ClientSecretCredential: () =>
      new ClientSecretCredential(
        svc.tenantId,
        svc.clientId,
        svc.clientSecret,
        credentialOptions(svc),
      ),
    ClientCertificateCredential: () =>
      new ClientCertificateCredential(
        svc.tenantId,
        svc.clientId,
        certs.clientPemFile,
        credentialOptions(svc),
      ),
    WorkloadIdentityCredential: () =>
      new WorkloadIdentityCredential({
        ...credentialOptions(svc),
        tenantId: svc.tenantId,
        clientId: svc.clientId,
        tokenFilePath: svc.envFor('workload-identity').AZURE_FEDERATED_TOKEN_FILE,
      }),
  };

  for (const [name, create] of Object.entries(credentials)) {
    test(`${name} gets a token that authenticates as its oid upstream`, async (t) => {
      const token = await create().getToken(SCOPE);
      assert.ok(token);

      const claims = decodeJwt(token.token).payload;
      assert.equal(typeof claims.oid, 'string');
      assert.equal(typeof claims.exp, 'number');
      assert.equal(claims.aud, 'https://redis.azure.com');
      assert.equal(claims.tid, svc.tenantId);
      assert.equal(svc.tokens.get(String(claims.oid)), claims.exp);
      assert.ok(token.expiresOnTimestamp <= Number(claims.exp) * 1000);

      const client = await connectAs(redis, String(claims.oid), token.token);
      t.after(() => client.disconnect());
      assert.equal(await client.call('ACL', 'WHOAMI'), claims.oid);
    });
  }

  test('every token has its own oid and its own Redis user', async () => {
    const first = await credentials.ClientSecretCredential().getToken(SCOPE);
    const second = await credentials.ClientSecretCredential().getToken(SCOPE);
    const [a, b] = [oidOf(first!.token), oidOf(second!.token)];

    assert.notEqual(a, b);
    assert.ok(svc.liveUsers.includes(a) && svc.liveUsers.includes(b));
    assert.equal(svc.issued, svc.tokens.size);
  });

  test('a token does not authenticate as another oid', async () => {
    const token = await credentials.ClientSecretCredential().getToken(SCOPE);
    const err = await rejectionOf(connectAs(redis, svc.clientId, token!.token));

    assert.match(err.message, /WRONGPASS/);
  });

  test('a wrong client secret fails with AADSTS7000215', async () => {
    const credential = new ClientSecretCredential(
      svc.tenantId,
      svc.clientId,
      'not-the-secret',
      credentialOptions(svc),
    );
    const err = await rejectionOf(credential.getToken(SCOPE));

    assert.equal(err.name, 'AuthenticationRequiredError');
    assert.match(err.message, /invalid_client/);
    assert.match(err.message, /AADSTS7000215/);
  });

  test('a certificate that is not registered fails with AADSTS700027', async () => {
    const pem = join(scratch, 'other-client.pem');
    writeFileSync(
      pem,
      [certs.untrustedServerCertFile, certs.untrustedServerKeyFile]
        .map((file) => readFileSync(file, 'utf8'))
        .join(''),
    );
    const credential = new ClientCertificateCredential(
      svc.tenantId,
      svc.clientId,
      pem,
      credentialOptions(svc),
    );

    assert.match((await rejectionOf(credential.getToken(SCOPE))).message, /AADSTS700027/);
  });

  test('a federated token from another issuer fails with AADSTS700027', async () => {
    const file = join(scratch, 'forged-token');
    writeFileSync(file, `${part({ alg: 'none' })}.${part({ iss: 'me', aud: 'x' })}.`);
    const credential = new WorkloadIdentityCredential({
      ...credentialOptions(svc),
      tenantId: svc.tenantId,
      clientId: svc.clientId,
      tokenFilePath: file,
    });

    assert.match((await rejectionOf(credential.getToken(SCOPE))).message, /AADSTS700027/);
  });

  test('setLifetime() applies to the next token', async (t) => {
    t.after(() => svc.setLifetime(3600));
    svc.setLifetime(120);

    const token = await credentials.ClientSecretCredential().getToken(SCOPE);
    const { iat, exp } = decodeJwt(token!.token).payload as { iat: number; exp: number };

    assert.equal(svc.lifetimeSeconds, 120);
    assert.ok(exp - iat >= 120 && exp - iat <= 121);
    assert.throws(() => svc.setLifetime(0), RangeError);
  });

  test('the OpenID metadata names the endpoints MSAL needs; the JWKS has the key', async () => {
    const base = `${svc.authorityHost}/${svc.tenantId}`;
    const metadata = (await (
      await fetch(`${base}/v2.0/.well-known/openid-configuration`)
    ).json()) as {
      jwks_uri: string;
      token_endpoint: unknown;
      authorization_endpoint: unknown;
      issuer: unknown;
    };
    const jwks = (await (await fetch(metadata.jwks_uri)).json()) as { keys: { kty: unknown }[] };

    assert.equal(metadata.token_endpoint, svc.tokenEndpoint);
    assert.equal(typeof metadata.authorization_endpoint, 'string');
    assert.equal(typeof metadata.issuer, 'string');
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0].kty, 'RSA');
    assert.ok(svc.requests[`/${svc.tenantId}/oauth2/v2.0/token`] > 0);
  });

  test('an unknown tenant gets AADSTS90002', async () => {
    const res = await fetch(`${svc.authorityHost}/other-tenant/oauth2/v2.0/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    });
    const body = (await res.json()) as { error_codes?: unknown };

    assert.equal(res.status, 400);
    assert.deepEqual(body.error_codes, [90002]);
  });

  test('envFor() names the variables each credential reads', () => {
    assert.deepEqual(Object.keys(svc.envFor('client-secret')).sort(), [
      'AZURE_AUTHORITY_HOST',
      'AZURE_CLIENT_ID',
      'AZURE_CLIENT_SECRET',
      'AZURE_TENANT_ID',
    ]);
    assert.equal(
      svc.envFor('client-certificate').AZURE_CLIENT_CERTIFICATE_PATH,
      certs.clientPemFile,
    );
    assert.ok(svc.envFor('workload-identity').AZURE_FEDERATED_TOKEN_FILE);
    assert.deepEqual(svc.envFor('managed-identity'), {
      IDENTITY_ENDPOINT: svc.msiEndpoint,
      IDENTITY_HEADER: svc.msiHeader,
    });
  });
});

function part(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}
