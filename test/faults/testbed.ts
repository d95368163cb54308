/**
 * A testbed for fault tests that need more than startStack gives: extra
 * redis.conf lines (DEBUG enabled, a plain port) and any number of proxies
 * against the same redis-server and token service, each with its own flags.
 */
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

export interface Testbed {
  certs: Certificates;
  redis: RedisServer;
  sts: TokenService;
  /** Starts a proxy (stopped by stop()); `upstream` defaults to the redis TLS port. */
  proxy(options?: {
    upstream?: string;
    args?: string[];
    env?: Record<string, string>;
  }): Promise<StartedProxy>;
  stop(): Promise<void>;
}

export interface StartedProxy {
  process: ProxyProcess;
  port: number;
  adminPort: number;
  pid: number;
  stop(): Promise<number>;
}

export async function startTestbed(
  options: {
    redisConfig?: string[];
    plainPort?: boolean;
    lifetimeSeconds?: number;
  } = {},
): Promise<Testbed> {
  const certs = await makeCertificates();
  const redis = await startRedis({
    certs,
    config: options.redisConfig,
    plainPort: options.plainPort,
  });
  const sts = await startTokenService({
    certs,
    redis: { admin: redis.admin },
    lifetimeSeconds: options.lifetimeSeconds,
  });
  const proxies: ProxyProcess[] = [];

  return {
    certs,
    redis,
    sts,
    async proxy({ upstream, args = [], env = {} } = {}) {
      const child = await startProxy({
        args: [
          '--listen',
          '127.0.0.1:0',
          '--admin-listen',
          '127.0.0.1:0',
          '--upstream',
          upstream ?? `127.0.0.1:${redis.tlsPort}`,
          '--tls-ca-file',
          certs.caFile,
          '--credential',
          'client-secret',
          '--disable-instance-discovery',
          ...args,
        ],
        env: { NODE_EXTRA_CA_CERTS: certs.caFile, ...sts.envFor('client-secret'), ...env },
      });
      proxies.push(child);
      const admin = await child.waitForLine((l) => l.event === 'admin_listening');
      return {
        process: child,
        port: child.port,
        adminPort: Number(String(admin.address).split(':').pop()),
        pid: child.process.pid!,
        stop: () => child.stop('SIGKILL'),
      };
    },
    async stop() {
      await Promise.all(proxies.map((p) => p.stop('SIGKILL').catch(() => undefined)));
      await sts.stop();
      await redis.stop();
      await certs.remove();
    },
  };
}
