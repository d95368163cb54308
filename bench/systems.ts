/**
 * The systems redis-benchmark is pointed at, all in front of the same TLS
 * redis-server: direct, the proxy (without and with its pool of
 * authenticated connections) and the tunnels of tunnels.ts.
 */
import { spawnSync } from 'node:child_process';

import { startProxy } from '../testbed/index.js';
import type { Target } from './redis-benchmark.js';
import { startHaproxy, startNodePipe, startStunnel, type Middleman } from './tunnels.js';

export const SYSTEMS = [
  'direct',
  'proxy',
  'proxy-pool',
  'stunnel',
  'haproxy',
  'node-pipe',
] as const;
export type SystemName = (typeof SYSTEMS)[number];

/** What every system needs to reach the one redis-server. */
export interface Setup {
  tlsPort: number;
  caFile: string;
  adminUser: string;
  adminPassword: string;
  /** The compiled proxy to run. */
  proxyCli: string;
  /** Token service variables and NODE_EXTRA_CA_CERTS for the proxy. */
  proxyEnv: Record<string, string>;
}

/** A system ready for redis-benchmark; pid is null for direct (nothing in between). */
export interface Running {
  target: Target;
  pid: number | null;
  stop(): Promise<void>;
}

/** Pool size of proxy-pool: one warm connection per client of the -k 0 scenario. */
export const POOL_SIZE = 10;

export function installed(name: SystemName): boolean {
  if (name !== 'stunnel' && name !== 'haproxy') return true;
  const probe = spawnSync(name, [name === 'stunnel' ? '-version' : '-v'], { stdio: 'ignore' });
  return probe.error === undefined;
}

export async function startSystem(name: SystemName, setup: Setup): Promise<Running> {
  const auth = { user: setup.adminUser, password: setup.adminPassword };
  const upstream = { tlsPort: setup.tlsPort, caFile: setup.caFile };

  switch (name) {
    case 'direct':
      return {
        target: { port: setup.tlsPort, tls: { caFile: setup.caFile }, auth },
        pid: null,
        stop: () => Promise.resolve(),
      };
    case 'proxy':
      return runningProxy(setup, 0);
    case 'proxy-pool':
      return runningProxy(setup, POOL_SIZE);
    case 'stunnel':
      return tunnel(await startStunnel(upstream), auth);
    case 'haproxy':
      return tunnel(await startHaproxy(upstream), auth);
    case 'node-pipe':
      return tunnel(await startNodePipe(upstream), auth);
  }
}

function tunnel(middleman: Middleman, auth: Target['auth']): Running {
  return {
    target: { port: middleman.port, auth },
    pid: middleman.pid,
    stop: () => middleman.stop(),
  };
}

/**
 * The proxy at log level info: the lowest that still prints the "listening"
 * line with the port; it logs nothing per connection or command at info.
 * With a pool, the admin server is on so that the run can wait until the
 * pool is full; idle, it costs nothing.
 */
async function runningProxy(setup: Setup, poolSize: number): Promise<Running> {
  const admin = poolSize > 0 ? '127.0.0.1:0' : 'off';
  const proxy = await startProxy({
    cliPath: setup.proxyCli,
    args: proxyArgs(setup, poolSize, admin),
    env: setup.proxyEnv,
  });
  const running = {
    target: { port: proxy.port },
    pid: proxy.process.pid ?? null,
    stop: async () => void (await proxy.stop()),
  };

  if (poolSize > 0) {
    try {
      const line = await proxy.waitForLine((l) => l.event === 'admin_listening');
      await waitForPool(String(line.address), poolSize);
    } catch (err) {
      await running.stop();
      throw err;
    }
  }
  return running;
}

export function proxyArgs(setup: Setup, poolSize: number, admin = 'off'): string[] {
  return [
    '--listen',
    '127.0.0.1:0',
    '--admin-listen',
    admin,
    '--upstream',
    `127.0.0.1:${setup.tlsPort}`,
    '--tls-ca-file',
    setup.caFile,
    '--credential',
    'client-secret',
    '--disable-instance-discovery',
    '--log-level',
    'info',
    '--pool-size',
    String(poolSize),
  ];
}

const POOL_FILL_TIMEOUT_MS = 10_000;

/** Polls the proxy's metrics until `size` upstream connections are open. */
async function waitForPool(adminAddress: string, size: number): Promise<void> {
  const deadline = Date.now() + POOL_FILL_TIMEOUT_MS;
  let open = 0;

  while (Date.now() < deadline) {
    const text = await (await fetch(`http://${adminAddress}/metrics`)).text();
    open = Number(/^redis_proxy_upstream_connections (\d+)/m.exec(text)?.[1] ?? 0);
    if (open >= size) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the proxy's pool reached ${open} of ${size} connections`);
}
