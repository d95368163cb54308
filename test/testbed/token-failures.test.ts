import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ClientSecretCredential } from '@azure/identity';
import {
  makeCertificates,
  startTokenService,
  type Certificates,
  type TokenService,
} from '../../testbed/index.js';
import { SCOPE, credentialOptions, rejectionOf, requireTrustedCa } from './support.js';

function connectError(port: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy();
      reject(new Error('connected'));
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code));
  });
}

describe('token service failure modes', () => {
  let certs: Certificates;
  let svc: TokenService;

  before(async () => {
    certs = await makeCertificates();
    requireTrustedCa(certs);
    svc = await startTokenService({ certs });
  });

  after(async () => {
    await svc?.stop();
    await certs?.remove();
  });

  // A fresh credential per test: after a 5xx, MSAL refuses to ask the same client's
  // authority again for 60 seconds and replays the error instead.
  const credential = () =>
    new ClientSecretCredential(
      svc.tenantId,
      svc.clientId,
      svc.clientSecret,
      credentialOptions(svc),
    );
  const tokenPath = () => `/${svc.tenantId}/oauth2/v2.0/token`;

  const cases = [
    { mode: 'http500', error: /temporarily_unavailable.*AADSTS50000/ },
    { mode: 'garbage', error: /network_error/ },
    { mode: 'invalid_client', error: /invalid_client.*AADSTS7000215/ },
  ] as const;

  for (const { mode, error } of cases) {
    test(`fail('${mode}') makes getToken fail, fail(null) heals`, async (t) => {
      t.after(() => svc.fail(null));
      svc.fail(mode);
      assert.equal(svc.failMode, mode);

      const err = await rejectionOf(credential().getToken(SCOPE));
      assert.equal(err.name, 'AuthenticationRequiredError');
      assert.match(err.message, error);

      svc.fail(null);
      assert.ok(await credential().getToken(SCOPE));
    });
  }

  test("fail('http500') is remembered by MSAL for the same credential", async (t) => {
    t.after(() => svc.fail(null));
    const same = credential();
    svc.fail('http500');
    await rejectionOf(same.getToken(SCOPE));
    svc.fail(null);

    const before = svc.requests[tokenPath()];
    const err = await rejectionOf(same.getToken(SCOPE));

    assert.match(err.message, /AADSTS50000/);
    assert.equal(svc.requests[tokenPath()], before);
  });

  test("fail('hang') holds the request open until pause() drops it", async (t) => {
    t.after(async () => {
      svc.fail(null);
      await svc.resume();
    });
    const before = svc.requests[tokenPath()] ?? 0;
    svc.fail('hang');

    const pending = credential()
      .getToken(SCOPE)
      .then(
        () => 'resolved',
        (err: Error) => err,
      );
    while ((svc.requests[tokenPath()] ?? 0) === before) await delay(10);
    const early = await Promise.race([pending, delay(200).then(() => 'pending')]);
    await svc.pause();

    assert.equal(early, 'pending');
    assert.match(String(await pending), /network_error/);
  });

  test('pause() refuses connections on the same port; resume() serves again', async (t) => {
    // MSAL serves cached tokens until 5 minutes before expiry; shorter ones it never caches.
    svc.setLifetime(60);
    t.after(() => svc.setLifetime(3600));
    const port = Number(new URL(svc.authorityHost).port);
    const msiPort = Number(new URL(svc.msiEndpoint).port);
    const warm = credential();
    const cold = credential();
    await warm.getToken(SCOPE);
    const issued = svc.issued;

    await svc.pause();
    assert.equal(await connectError(port), 'ECONNREFUSED');
    assert.equal(await connectError(msiPort), 'ECONNREFUSED');

    // MSAL has the metadata of a credential that was used before; a new one has not and
    // reports the authority as unavailable.
    const warmError = await rejectionOf(warm.getToken(SCOPE));
    const coldError = await rejectionOf(cold.getToken(SCOPE));
    assert.match(warmError.message, /network_error/);
    assert.equal(coldError.name, 'CredentialUnavailableError');
    assert.match(coldError.message, /endpoints_resolution_error/);

    await svc.resume();
    assert.equal(svc.authorityHost, `https://127.0.0.1:${port}`);
    assert.ok(await cold.getToken(SCOPE));
    assert.equal(svc.issued, issued + 1);
  });
});

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
