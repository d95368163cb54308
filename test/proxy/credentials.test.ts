import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type Server } from 'node:tls';
import { after, before, describe, it, type TestContext } from 'node:test';

import {
  decodeJwt,
  makeCertificates,
  startProxy,
  startRedis,
  startTokenService,
  type Certificates,
  type JwtClaims,
  type ProxyProcess,
  type RedisServer,
  type TokenService,
} from '../../testbed/index.js';
import { rawExchange } from '../support/raw.js';

type Credential =
  'default' | 'client-secret' | 'client-certificate' | 'workload-identity' | 'managed-identity';

/** Every variable that steers a credential or the upstream, cleared for each proxy. */
const AMBIENT = [
  'AZURE_TENANT_ID',
  'AZURE_CLIENT_ID',
  'AZURE_CLIENT_SECRET',
  'AZURE_CLIENT_CERTIFICATE_PATH',
  'AZURE_CLIENT_CERTIFICATE_PASSWORD',
  'AZURE_FEDERATED_TOKEN_FILE',
  'AZURE_AUTHORITY_HOST',
  'AZURE_USERNAME',
  'AZURE_PASSWORD',
  'AZURE_TOKEN_CREDENTIALS',
  'IDENTITY_ENDPOINT',
  'IDENTITY_HEADER',
  'IDENTITY_SERVER_THUMBPRINT',
  'IMDS_ENDPOINT',
  'MSI_ENDPOINT',
  'MSI_SECRET',
  'REDIS_HOSTNAME',
  'REDIS_SERVICE_PRINCIPAL_NAME',
  'REDIS_PROXY_UPSTREAM',
  'REDIS_PROXY_USERNAME',
  'REDIS_PROXY_SCOPE',
  'REDIS_PROXY_CREDENTIAL',
];

const MSI_PATH = '/msi/token';
const REDIS_AUDIENCE = 'https://redis.azure.com';

/**
 * A TLS relay in front of the testbed redis-server that keeps the access tokens it sees
 * in `AUTH` commands: the token service does not record the scope it was asked for, and
 * the proxy never logs tokens, so this is where the audience of the token actually used
 * upstream can be read. Bytes pass through unchanged in both directions; the cache is
 * still the real redis-server, which checks every token.
 */
interface Relay {
  port: number;
  /** Claims of every token seen in an AUTH, by oid. */
  tokens: Map<string, JwtClaims>;
  stop(): Promise<void>;
}

const JWT = /eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/g;
const CAPTURE_BYTES = 64 * 1024;

async function startRelay(certs: Certificates, redis: RedisServer): Promise<Relay> {
  const tokens = new Map<string, JwtClaims>();
  const server: Server = createTlsServer(
    { cert: readFileSync(certs.serverCertFile), key: readFileSync(certs.serverKeyFile) },
    (downstream) => {
      const upstream = tlsConnect({ host: '127.0.0.1', port: redis.tlsPort, ca: certs.ca });
      let seen = '';
      downstream.on('data', (chunk: Buffer) => {
        if (seen.length >= CAPTURE_BYTES) return;
        seen += chunk.toString('latin1');
        for (const token of seen.match(JWT) ?? []) {
          const claims = decodeJwt(token).payload;
          tokens.set(String(claims.oid), claims);
        }
      });
      downstream.pipe(upstream).pipe(downstream);
      const close = () => {
        downstream.destroy();
        upstream.destroy();
      };
      downstream.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
    },
  );
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return {
    port: address.port,
    tokens,
    stop: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('credentials and identity settings', () => {
  let certs: Certificates;
  let redis: RedisServer;
  let sts: TokenService;
  let relay: Relay;

  before(async () => {
    certs = await makeCertificates();
    redis = await startRedis({ certs });
    sts = await startTokenService({ certs, redis: { admin: redis.admin } });
    relay = await startRelay(certs, redis);
  });
  after(async () => {
    await relay?.stop();
    await sts?.stop();
    await redis?.stop();
    await certs?.remove();
  });

  interface Launch {
    credential: Credential;
    env?: Record<string, string>;
    args?: string[];
    /** `--upstream`; null leaves it out. Default: redis-server directly. */
    upstream?: string | null;
  }

  /** Starts the proxy with exactly the environment given; stopped when the test ends. */
  async function launch(t: TestContext, options: Launch): Promise<ProxyProcess> {
    const upstream =
      options.upstream === undefined ? `127.0.0.1:${redis.tlsPort}` : options.upstream;
    const cleared = Object.fromEntries(AMBIENT.map((name) => [name, undefined]));
    const proxy = await startProxy({
      args: [
        '--listen',
        '127.0.0.1:0',
        '--admin-listen',
        'off',
        ...(upstream === null ? [] : ['--upstream', upstream]),
        '--tls-ca-file',
        certs.caFile,
        '--credential',
        options.credential,
        '--disable-instance-discovery',
        ...(options.args ?? []),
      ],
      env: { ...cleared, NODE_EXTRA_CA_CERTS: certs.caFile, ...options.env },
    });
    t.after(() => proxy.stop('SIGKILL'));
    return proxy;
  }

  const tokenPath = (): string => new URL(sts.tokenEndpoint).pathname;
  const requestsTo = (path: string): number => sts.requests[path] ?? 0;

  /** ACL WHOAMI through the proxy, on a plain socket; fails with the reply otherwise. */
  async function whoami(port: number): Promise<string> {
    const reply = await rawExchange(port, 'ACL WHOAMI\r\n', 1);
    const match = /^\$\d+\r\n(.*)\r\n$/.exec(reply);
    assert.ok(match, `ACL WHOAMI answered ${JSON.stringify(reply)}`);
    return match[1];
  }

  /** Oids the token service issued that are not in `seen`. */
  const issuedSince = (seen: Set<string>): string[] =>
    [...sts.tokens.keys()].filter((oid) => !seen.has(oid));

  interface Kind {
    title: string;
    credential: Credential;
    env: () => Record<string, string>;
    /** Where the token comes from: the authority's token endpoint or the MSI endpoint. */
    endpoint: 'token' | 'msi';
    appId: () => string;
  }

  const app = () => sts.clientId;
  const managed = () => sts.managedIdentityClientId;
  const KINDS: Kind[] = [
    {
      title: 'client-secret',
      credential: 'client-secret',
      env: () => sts.envFor('client-secret'),
      endpoint: 'token',
      appId: app,
    },
    {
      title: 'client-certificate',
      credential: 'client-certificate',
      env: () => sts.envFor('client-certificate'),
      endpoint: 'token',
      appId: app,
    },
    {
      title: 'workload-identity (federated token file)',
      credential: 'workload-identity',
      env: () => sts.envFor('workload-identity'),
      endpoint: 'token',
      appId: app,
    },
    {
      title: 'managed-identity (App Service IDENTITY_ENDPOINT/IDENTITY_HEADER)',
      credential: 'managed-identity',
      env: () => sts.envFor('managed-identity'),
      endpoint: 'msi',
      appId: managed,
    },
    {
      title: 'default, with the client secret variables',
      credential: 'default',
      env: () => sts.envFor('client-secret'),
      endpoint: 'token',
      appId: app,
    },
    {
      title: 'default, with the client certificate variables',
      credential: 'default',
      env: () => sts.envFor('client-certificate'),
      endpoint: 'token',
      appId: app,
    },
    {
      title: 'default, with the workload identity variables',
      credential: 'default',
      env: () => sts.envFor('workload-identity'),
      endpoint: 'token',
      appId: app,
    },
    {
      title: 'default, with the App Service managed identity variables',
      credential: 'default',
      env: () => sts.envFor('managed-identity'),
      endpoint: 'msi',
      appId: managed,
    },
  ];

  describe('--credential kinds: ACL WHOAMI is the oid of a token the service issued', () => {
    for (const kind of KINDS) {
      it(kind.title, async (t) => {
        const seen = new Set(sts.tokens.keys());
        const fromToken = requestsTo(tokenPath());
        const fromMsi = requestsTo(MSI_PATH);

        const proxy = await launch(t, {
          credential: kind.credential,
          env: kind.env(),
          upstream: `127.0.0.1:${relay.port}`,
        });
        const started = await proxy.waitForLine((l) => l.event === 'started');
        assert.equal(started.credential, kind.credential);
        await proxy.waitForLine((l) => l.event === 'token_refreshed', 15_000);

        const oid = await whoami(proxy.port);
        assert.ok(issuedSince(seen).includes(oid), `${oid} was issued for this proxy`);

        // The token came from the endpoint this kind uses, and only from there.
        if (kind.endpoint === 'msi') {
          assert.ok(requestsTo(MSI_PATH) > fromMsi, 'asked the managed identity endpoint');
          assert.equal(requestsTo(tokenPath()), fromToken, 'never asked the authority');
        } else {
          assert.ok(requestsTo(tokenPath()) > fromToken, 'asked the token endpoint');
          assert.equal(requestsTo(MSI_PATH), fromMsi, 'never asked the MSI endpoint');
        }

        // The token sent upstream names this identity and the default scope's resource.
        const claims = relay.tokens.get(oid);
        assert.ok(claims, 'the relay saw the AUTH with this token');
        assert.equal(claims.appid, kind.appId());
        assert.equal(claims.aud, REDIS_AUDIENCE);
      });
    }
  });

  describe('fixed upstream username', () => {
    /**
     * The token service names each Redis user by the token's random oid, so a fixed
     * username is at first unknown to the cache: the client hears the documented
     * auth_rejected line naming that username. Then the test gives the cache a user of
     * that name whose password is the proxy's own token (the SHA-256 copied from the
     * oid's user), as an access policy for that name would, and the next client is
     * authenticated upstream as exactly that name.
     */
    async function fixedUsername(
      t: TestContext,
      name: string,
      config: { args?: string[]; env?: Record<string, string> },
    ): Promise<void> {
      const seen = new Set(sts.tokens.keys());
      const proxy = await launch(t, {
        credential: 'client-secret',
        args: config.args,
        env: { ...sts.envFor('client-secret'), ...config.env },
      });
      const refreshed = await proxy.waitForLine((l) => l.event === 'token_refreshed', 15_000);
      assert.equal(refreshed.username, name);

      const reply = await rawExchange(proxy.port, 'PING\r\n', 1);
      assert.match(
        reply,
        new RegExp(
          `^-ERR redis-entra-proxy: 127\\.0\\.0\\.1:${redis.tlsPort} rejected the token of ` +
            `${name}: WRONGPASS [^\\r\\n]*; check that this identity has a Redis data access ` +
            'policy on the cache\\r\\n$',
        ),
      );
      const failed = await proxy.waitForLine((l) => l.event === 'session_failed');
      assert.equal(failed.reason, 'auth_rejected');

      // The proxy asks for a new token after a rejection (at most every 30 s), so the
      // user gets the password of every token issued since the proxy started, afresh on
      // each attempt.
      t.after(() => redis.admin.call('ACL', 'DELUSER', name));
      let who = '';
      for (let attempt = 0; attempt < 5 && who !== name; attempt++) {
        const hashes: string[] = [];
        for (const oid of issuedSince(seen)) hashes.push(...(await passwordHashes(oid)));
        assert.ok(hashes.length > 0, 'the proxy got a token');
        const passwords = hashes.map((h) => `#${h}`);
        await redis.admin.call('ACL', 'SETUSER', name, 'on', ...passwords, '~*', '&*', '+@all');
        who = await whoami(proxy.port).catch(() => '');
      }
      assert.equal(who, name);
    }

    async function passwordHashes(user: string): Promise<string[]> {
      const reply = (await redis.admin.call('ACL', 'GETUSER', user)) as unknown[] | null;
      if (reply === null) return [];
      const at = reply.indexOf('passwords');
      return at < 0 ? [] : (reply[at + 1] as string[]);
    }

    it('--username: AUTH upstream uses it instead of the oid', (t) =>
      fixedUsername(t, 'fixed-by-flag', { args: ['--username', 'fixed-by-flag'] }));

    it('REDIS_SERVICE_PRINCIPAL_NAME: AUTH upstream uses it', (t) =>
      fixedUsername(t, 'fixed-by-env', { env: { REDIS_SERVICE_PRINCIPAL_NAME: 'fixed-by-env' } }));

    it('--username wins over REDIS_SERVICE_PRINCIPAL_NAME', async (t) => {
      const proxy = await launch(t, {
        credential: 'client-secret',
        args: ['--username', 'from-flag'],
        env: { ...sts.envFor('client-secret'), REDIS_SERVICE_PRINCIPAL_NAME: 'from-env' },
      });
      const refreshed = await proxy.waitForLine((l) => l.event === 'token_refreshed', 15_000);
      assert.equal(refreshed.username, 'from-flag');
      const reply = await rawExchange(proxy.port, 'PING\r\n', 1);
      assert.match(reply, /^-ERR redis-entra-proxy: .* rejected the token of from-flag: WRONGPASS/);
    });

    it('without either, the username is each token’s oid', async (t) => {
      const proxy = await launch(t, {
        credential: 'client-secret',
        env: sts.envFor('client-secret'),
      });
      const refreshed = await proxy.waitForLine((l) => l.event === 'token_refreshed', 15_000);
      assert.ok(sts.tokens.has(String(refreshed.username)));
      assert.equal(await whoami(proxy.port), refreshed.username);
    });
  });

  describe('REDIS_HOSTNAME', () => {
    it('names the upstream HOST:PORT when --upstream is absent', async (t) => {
      const proxy = await launch(t, {
        credential: 'client-secret',
        upstream: null,
        env: { ...sts.envFor('client-secret'), REDIS_HOSTNAME: `127.0.0.1:${redis.tlsPort}` },
      });
      const started = await proxy.waitForLine((l) => l.event === 'started');
      assert.equal(started.upstream, `127.0.0.1:${redis.tlsPort}`);
      assert.ok(sts.tokens.has(await whoami(proxy.port)));
    });

    it('a bare host gets port 6380', async (t) => {
      // 127.0.0.77 is loopback where nothing listens: the dial error names the address.
      const proxy = await launch(t, {
        credential: 'client-secret',
        upstream: null,
        env: { ...sts.envFor('client-secret'), REDIS_HOSTNAME: '127.0.0.77' },
      });
      const started = await proxy.waitForLine((l) => l.event === 'started');
      assert.equal(started.upstream, '127.0.0.77:6380');
      await proxy.waitForLine((l) => l.event === 'token_refreshed', 15_000);
      const reply = await rawExchange(proxy.port, 'PING\r\n', 1);
      assert.match(reply, /^-ERR redis-entra-proxy: .*127\.0\.0\.77:6380/);
    });

    it('--upstream wins over REDIS_HOSTNAME', async (t) => {
      const proxy = await launch(t, {
        credential: 'client-secret',
        env: { ...sts.envFor('client-secret'), REDIS_HOSTNAME: '127.0.0.77' },
      });
      const started = await proxy.waitForLine((l) => l.event === 'started');
      assert.equal(started.upstream, `127.0.0.1:${redis.tlsPort}`);
      assert.ok(sts.tokens.has(await whoami(proxy.port)));
    });
  });

  describe('--scope', () => {
    for (const credential of ['client-secret', 'managed-identity'] as const) {
      it(`${credential}: the token used upstream is for the scope's resource`, async (t) => {
        const resource = `api://${randomUUID()}`;
        const proxy = await launch(t, {
          credential,
          args: ['--scope', `${resource}/.default`],
          env: sts.envFor(credential),
          upstream: `127.0.0.1:${relay.port}`,
        });
        await proxy.waitForLine((l) => l.event === 'token_refreshed', 15_000);
        const oid = await whoami(proxy.port);
        assert.ok(sts.tokens.has(oid));
        assert.equal(relay.tokens.get(oid)?.aud, resource);
      });
    }

    it('reaches the token service as given: one it refuses gives its AADSTS reason', async (t) => {
      // Client credential flows need a `/.default` scope; the service answers AADSTS1002012.
      const proxy = await launch(t, {
        credential: 'client-secret',
        args: ['--scope', `${REDIS_AUDIENCE}/user_impersonation`],
        env: sts.envFor('client-secret'),
      });
      const failure = await proxy.waitForLine((l) => l.event === 'token_refresh_failed', 15_000);
      assert.match(String(failure.msg), /AADSTS1002012/);
      const reply = await rawExchange(proxy.port, 'PING\r\n', 1);
      assert.match(reply, /^-ERR redis-entra-proxy: no access token: .*AADSTS1002012/);
    });
  });
});
