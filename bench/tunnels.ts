/**
 * The tunnels the proxy is compared with: stunnel and haproxy (what Microsoft
 * suggests to clients without TLS) and the bare Node pipe. Each takes plain
 * TCP on a loopback port and speaks verified TLS to redis-server; none can
 * inject AUTH, so redis-benchmark authenticates through them itself.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort } from '../testbed/index.js';
import { listeningPort, start, waitForPort, type Child } from './children.js';

/** A process between redis-benchmark and redis-server. */
export interface Middleman {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

export interface Upstream {
  tlsPort: number;
  caFile: string;
}

/** Attempts at a port that another process may take between probe and bind. */
const ATTEMPTS = 3;

/**
 * stunnel 5 in client mode with its defaults (TCP_NODELAY both sides,
 * session cache on), logging only warnings: its default level writes three
 * lines per connection, which no one benchmarking a tunnel would keep.
 */
export function startStunnel(upstream: Upstream): Promise<Middleman> {
  return withConfigFile(
    'stunnel.conf',
    (port) => [
      'foreground = yes',
      'pid =',
      'debug = warning',
      '[redis]',
      'client = yes',
      `accept = 127.0.0.1:${port}`,
      `connect = 127.0.0.1:${upstream.tlsPort}`,
      'verifyChain = yes',
      `CAfile = ${upstream.caFile}`,
      'checkIP = 127.0.0.1',
    ],
    (file) => start('stunnel', [file]),
  );
}

/** haproxy in TCP mode, TLS to the server, its default thread count (one per CPU). */
export function startHaproxy(upstream: Upstream): Promise<Middleman> {
  return withConfigFile(
    'haproxy.cfg',
    (port) => [
      'global',
      '  maxconn 4096',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 60s',
      '  timeout server 60s',
      'listen redis',
      `  bind 127.0.0.1:${port}`,
      `  server s 127.0.0.1:${upstream.tlsPort} ssl verify required ca-file ${upstream.caFile}`,
    ],
    (file) => start('haproxy', ['-db', '-f', file]),
  );
}

/** bench/node-pipe.ts, which binds port 0 itself and says where. */
export async function startNodePipe(upstream: Upstream): Promise<Middleman> {
  const script = fileURLToPath(new URL('./node-pipe.js', import.meta.url));
  const child = start(process.execPath, [script, String(upstream.tlsPort), upstream.caFile]);
  const port = await listeningPort(child, 'node pipe');

  return { port, pid: child.pid, stop: async () => void (await child.stop()) };
}

/**
 * Writes a config for a daemon that cannot bind port 0 and report it: probe
 * a free port, start, wait until it accepts. A port taken in between is
 * retried with another.
 */
async function withConfigFile(
  name: string,
  config: (port: number) => string[],
  run: (file: string) => Child,
): Promise<Middleman> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-tunnel-'));
  const file = join(dir, name);
  let lastError: Error | undefined;

  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const port = await freePort();
    await writeFile(file, config(port).join('\n') + '\n');
    const child = run(file);
    try {
      await waitForPort(port, child);
    } catch (err) {
      lastError = err as Error;
      await child.stop('SIGKILL');
      continue;
    }
    const stop = async (): Promise<void> => {
      await child.stop();
      await rm(dir, { recursive: true, force: true });
    };
    return { port, pid: child.pid, stop };
  }
  await rm(dir, { recursive: true, force: true });
  throw lastError ?? new Error(`${name}: no attempt made`);
}
