/**
 * A real redis-server child process configured like the Azure cache endpoint: TLS only,
 * the `default` user switched off (every connection must AUTH) and one admin user that
 * the testbed itself uses to manage per-token users.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Certificates } from './certs.js';
import { freePort } from './free-port.js';

export interface RedisServerOptions {
  certs: Certificates;
  /** Serve the certificate of the unrelated CA, which clients do not trust. */
  untrusted?: boolean;
  /** Also listen on a plain TCP port (benchmarks, debugging with redis-cli). */
  plainPort?: boolean;
  /** Extra redis.conf lines, appended last so they win. */
  config?: string[];
  /** How long to wait for the server to accept connections; default 10 s. */
  startTimeoutMs?: number;
}

export interface RedisServer {
  host: '127.0.0.1';
  /** The TLS port, the only one clients of the proxy should use. Same as tlsPort. */
  port: number;
  tlsPort: number;
  plainPort?: number;
  adminUser: string;
  adminPassword: string;
  /** The CA that signed the certificate this server presents. */
  caFile: string;
  /** A client authenticated as the admin user over TLS. */
  admin: Redis;
  /** Everything redis-server has logged so far. */
  output(): string;
  /** Kills the process and removes its files; safe to call more than once. */
  stop(): Promise<void>;
}

export const ADMIN_USER = 'testbed-admin';

const ATTEMPTS = 3;
const OUTPUT_LIMIT = 64 * 1024;

export async function startRedis(opts: RedisServerOptions): Promise<RedisServer> {
  let lastError: Error | undefined;

  // The free port may be taken between probing and binding; a new port fixes that.
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      lastError = err as Error;
      if (!/Address already in use/.test(lastError.message)) throw lastError;
    }
  }
  throw lastError ?? new Error('redis-server did not start');
}

async function startOnce(opts: RedisServerOptions): Promise<RedisServer> {
  const { certs } = opts;
  const dir = await mkdtemp(join(tmpdir(), 'testbed-redis-'));
  const tlsPort = await freePort();
  const plainPort = opts.plainPort ? await freePort() : undefined;
  const adminPassword = randomBytes(24).toString('hex');
  const caFile = opts.untrusted ? certs.untrustedCaFile : certs.caFile;
  const configFile = join(dir, 'redis.conf');

  await writeFile(configFile, configText({ ...opts, dir, tlsPort, plainPort, adminPassword }));

  const child = spawn('redis-server', [configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = collectOutput(child);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const cleanup = async () => {
    process.off('exit', killOnExit);
    await terminate(child);
    await rm(dir, { recursive: true, force: true });
  };

  let admin: Redis | undefined;
  try {
    await waitForReady(child, output, opts.startTimeoutMs ?? 10_000);
    admin = await connectAdmin(tlsPort, caFile, adminPassword);
  } catch (err) {
    admin?.disconnect();
    await cleanup();
    throw new Error(`redis-server did not start: ${(err as Error).message}\n${output.text()}`);
  }

  let stopping: Promise<void> | undefined;
  const connected = admin;

  return {
    host: '127.0.0.1',
    port: tlsPort,
    tlsPort,
    plainPort,
    adminUser: ADMIN_USER,
    adminPassword,
    caFile,
    admin: connected,
    output: () => output.text(),
    stop: () => {
      stopping ??= (async () => {
        connected.disconnect();
        await cleanup();
      })();
      return stopping;
    },
  };
}

interface ConfigInput {
  certs: Certificates;
  untrusted?: boolean;
  config?: string[];
  dir: string;
  tlsPort: number;
  plainPort: number | undefined;
  adminPassword: string;
}

function configText(input: ConfigInput): string {
  const { certs } = input;
  const cert = input.untrusted ? certs.untrustedServerCertFile : certs.serverCertFile;
  const key = input.untrusted ? certs.untrustedServerKeyFile : certs.serverKeyFile;

  const lines = [
    'bind 127.0.0.1',
    `port ${input.plainPort ?? 0}`,
    `tls-port ${input.tlsPort}`,
    `tls-cert-file ${quote(cert)}`,
    `tls-key-file ${quote(key)}`,
    // Clients verify the server; the server asks nothing of clients, like Azure.
    `tls-ca-cert-file ${quote(certs.caFile)}`,
    'tls-auth-clients no',
    'save ""',
    'appendonly no',
    `dir ${quote(input.dir)}`,
    'daemonize no',
    'logfile ""',
    'user default off',
    `user ${ADMIN_USER} on >${input.adminPassword} ~* &* +@all`,
    ...(input.config ?? []),
  ];
  return lines.join('\n') + '\n';
}

function quote(value: string): string {
  return JSON.stringify(value);
}

interface Output {
  text(): string;
}

/** Keeps the tail of stdout and stderr so a failed start can say why. */
function collectOutput(child: ChildProcess): Output {
  let text = '';
  const append = (chunk: Buffer) => {
    text = (text + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
  };

  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return { text: () => text };
}

function waitForReady(child: ChildProcess, output: Output, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timeout = new Error(`timed out after ${timeoutMs} ms`);
    const timer = setTimeout(() => finish(timeout), timeoutMs);

    const onData = () => {
      if (output.text().includes('Ready to accept connections')) finish();
    };
    const onExit = (code: number | null, signal: string | null) => {
      finish(new Error(`exited with ${signal ?? code}`));
    };
    const onError = (err: Error) => finish(err);

    function finish(err?: Error) {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
      if (err) reject(err);
      else resolve();
    }

    // Our collector was attached first, so the text already includes each new chunk.
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

async function connectAdmin(port: number, caFile: string, password: string): Promise<Redis> {
  const admin = new Redis({
    host: '127.0.0.1',
    port,
    tls: { ca: await readFile(caFile, 'utf8') },
    username: ADMIN_USER,
    password,
    lazyConnect: true,
    // Fail fast instead of queueing while the server is gone (e.g. after stop()).
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => (times > 20 ? null : 50),
  });

  // Errors surface through the commands that fail; an unhandled 'error' event only adds noise.
  admin.on('error', () => {});
  await admin.connect();
  return admin;
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;

  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const force = setTimeout(() => child.kill('SIGKILL'), 5_000);

  child.kill('SIGTERM');
  await exited;
  clearTimeout(force);
}
