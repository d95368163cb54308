import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { ClientSecretCredential } from '@azure/identity';

import { Metrics } from '../../src/admin/metrics.js';
import { TokenSource, type Token } from '../../src/auth/token-source.js';
import { createLogger } from '../../src/log.js';
import {
  makeCertificates,
  startTokenService,
  type Certificates,
  type TokenService,
} from '../../testbed/index.js';
import { sleep, startStack, waitForToken } from '../support/stack.js';
import { SCOPE, credentialOptions, requireTrustedCa } from '../testbed/support.js';

/**
 * The token source against the local identity service, with the real
 * credential classes. Tokens here live an hour: long enough for a
 * credential to serve them from its cache, as it would in production.
 */
describe('token source', () => {
  let certs: Certificates;
  let sts: TokenService;
  const sources: TokenSource[] = [];

  before(async () => {
    certs = await makeCertificates();
    requireTrustedCa(certs);
    sts = await startTokenService({ certs, lifetimeSeconds: 3600 });
  });
  after(async () => {
    for (const source of sources) source.stop();
    await sts?.stop();
    await certs?.remove();
  });

  function tokenSource(forcedRefreshIntervalMs?: number): TokenSource {
    const source = new TokenSource(
      () =>
        new ClientSecretCredential(
          sts.tenantId,
          sts.clientId,
          sts.clientSecret,
          credentialOptions(sts),
        ),
      {
        scope: SCOPE,
        timeoutMs: 5000,
        log: createLogger('silent', 'json'),
        metrics: new Metrics(false),
        forcedRefreshIntervalMs,
      },
    );
    sources.push(source);
    return source;
  }

  it('every refresh asks the identity service, never a credential cache', async () => {
    const source = tokenSource(0);
    const issued = sts.issued;
    source.start();
    const first = await nextToken(source);
    await settled();
    source.refreshSoon();
    const second = await nextToken(source);

    assert.notEqual(second.value, first.value, 'a new token, not the cached one');
    assert.equal(sts.issued - issued, 2, 'both requests reached the service');
    assert.equal(source.current()?.value, second.value);
  });

  it('refreshes forced by rejected tokens are paced', async () => {
    const source = tokenSource();
    const issued = sts.issued;
    source.start();
    await nextToken(source);
    await settled();
    for (let i = 0; i < 5; i++) source.refreshSoon();
    await sleep(500);
    assert.equal(sts.issued - issued, 1, 'only the first request within the interval');
  });
});

describe('a token the cache rejects', () => {
  it('does not set the proxy spinning between the identity service and the cache', async () => {
    // Users upstream are named by each token's oid: any other name is refused.
    const stack = await startStack({ args: ['--username', 'not-the-object-id'] });
    try {
      await waitForToken(stack);
      const issued = stack.sts.issued;
      await sleep(3000);
      const metrics = await (await fetch(`http://127.0.0.1:${stack.adminPort}/metrics`)).text();
      const rejected = Number(
        /^redis_proxy_upstream_dial_failures_total\{reason="auth_rejected"\} (\d+)/m.exec(
          metrics,
        )?.[1] ?? 0,
      );
      assert.ok(rejected > 0, 'the pool tried and was refused');
      assert.ok(rejected <= 20, `${rejected} refused dials in 3 s`);
      assert.ok(stack.sts.issued - issued <= 1, `${stack.sts.issued - issued} new tokens in 3 s`);
    } finally {
      await stack.stop();
    }
  });
});

function nextToken(source: TokenSource): Promise<Token> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no new token within 5 s')), 5000);
    source.once('token', (token: Token) => {
      clearTimeout(timer);
      resolve(token);
    });
  });
}

/** 'token' is emitted while its request is still finishing; let it finish. */
function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
