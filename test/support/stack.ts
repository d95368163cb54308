import {
  makeCertificates,
  startProxy,
  startRedis,
  startTokenService,
  type Certificates,
  type ProxyProcess,
  type RedisServer,
  type TokenService,
} from '../../testbed/index.js';

type CredentialKind = Parameters<TokenService['envFor']>[0];

export interface StackOptions {
  /** Lifetime of issued tokens; default one hour. */
  lifetimeSeconds?: number;
  credential?: CredentialKind;
  /** Extra proxy flags. */
  args?: string[];
  env?: Record<string, string | undefined>;
  /** Serve a certificate from a CA the proxy does not trust. */
  untrusted?: boolean;
}

/**
 * Everything a proxy test needs: a TLS redis-server that behaves like Azure
 * Cache (per-token users that vanish at expiry), the local token service, and
 * the proxy itself as a child process, run exactly as an operator would.
 */
export interface Stack {
  certs: Certificates;
  redis: RedisServer;
  sts: TokenService;
  proxy: ProxyProcess;
  /** Port of the proxy's first listener. */
  port: number;
  /** Port of the admin listener. */
  adminPort: number;
  proxyArgs: string[];
  proxyEnv: Record<string, string | undefined>;
  stop(): Promise<void>;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const certs = await makeCertificates();
  const redis = await startRedis({ certs, untrusted: options.untrusted });
  const sts = await startTokenService({
    certs,
    redis: { admin: redis.admin },
    lifetimeSeconds: options.lifetimeSeconds,
  });
  const credential = options.credential ?? 'client-secret';
  const proxyArgs = [
    '--listen',
    '127.0.0.1:0',
    '--admin-listen',
    '127.0.0.1:0',
    '--upstream',
    `127.0.0.1:${redis.tlsPort}`,
    '--tls-ca-file',
    certs.caFile,
    '--credential',
    credential,
    '--disable-instance-discovery',
    ...(options.args ?? []),
  ];
  const proxyEnv = {
    NODE_EXTRA_CA_CERTS: certs.caFile,
    ...sts.envFor(credential),
    ...options.env,
  };
  let proxy: ProxyProcess;
  try {
    proxy = await startProxy({ args: proxyArgs, env: proxyEnv });
    await proxy.waitForLine((line) => line.event === 'admin_listening', 5000);
  } catch (err) {
    await sts.stop();
    await redis.stop();
    throw err;
  }
  const admin = proxy.adminAddress ?? '';
  return {
    certs,
    redis,
    sts,
    proxy,
    port: proxy.port,
    adminPort: Number(admin.slice(admin.lastIndexOf(':') + 1)),
    proxyArgs,
    proxyEnv,
    async stop() {
      await proxy.stop('SIGKILL').catch(() => undefined);
      await sts.stop();
      await redis.stop();
      await certs.remove();
    },
  };
}

/** Waits for the proxy to hold a token (first request done). */
export async function waitForToken(stack: Stack, timeoutMs = 10_000): Promise<void> {
  await stack.proxy.waitForLine((line) => line.event === 'token_refreshed', timeoutMs);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
