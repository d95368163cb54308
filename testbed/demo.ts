/**
 * `npm run demo`: the proxy in front of an Azure-like local cache, with nothing from
 * Azure needed. Starts the TLS redis-server and the local token service, then runs the
 * proxy in the foreground until Ctrl-C.
 *
 *   node dist/testbed/demo.js [--token-lifetime SECONDS] [proxy flags...]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { makeCertificates, type Certificates } from './certs.js';
import { startRedis } from './redis-server.js';
import { startTokenService, type TokenService } from './token-service.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const DEFAULT_LISTEN = '127.0.0.1:6379';

interface DemoArgs {
  lifetimeSeconds: number;
  proxyArgs: string[];
}

/** Where a Ctrl-C or SIGTERM goes: nowhere yet during setup, then to the proxy. */
interface Signals {
  received: NodeJS.Signals | undefined;
  proxy: ChildProcess | undefined;
}

async function main(): Promise<number> {
  const { lifetimeSeconds, proxyArgs } = parseArgs(process.argv.slice(2));

  if (!existsSync(CLI)) {
    process.stderr.write(`demo: ${CLI} does not exist; build the proxy first (npm run build)\n`);
    return 1;
  }

  // Handled from the start, so that a Ctrl-C during setup still cleans up what has started.
  const signals: Signals = { received: undefined, proxy: undefined };
  const onSignal = (signal: NodeJS.Signals) => {
    // A second signal means "now": no more waiting for the proxy to drain.
    signals.proxy?.kill(signals.received ? 'SIGKILL' : signal);
    signals.received ??= signal;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const certs = await makeCertificates();
  const cleanups: (() => Promise<void>)[] = [() => certs.remove()];

  try {
    const redis = await startRedis({ certs });
    cleanups.unshift(() => redis.stop());
    const tokens = await startTokenService({ certs, redis, lifetimeSeconds });
    cleanups.unshift(() => tokens.stop());

    if (signals.received) return 128 + constants.signals[signals.received];
    return await runProxy(certs, redis.tlsPort, tokens, proxyArgs, signals);
  } finally {
    for (const cleanup of cleanups) await cleanup();
  }
}

/** Runs the proxy in the foreground and resolves with its exit code. */
async function runProxy(
  certs: Certificates,
  tlsPort: number,
  tokens: TokenService,
  proxyArgs: string[],
  signals: Signals,
): Promise<number> {
  const listen = hasFlag(proxyArgs, '--listen') ? [] : ['--listen', DEFAULT_LISTEN];
  const args = [
    '--upstream',
    `127.0.0.1:${tlsPort}`,
    '--tls-ca-file',
    certs.caFile,
    '--credential',
    'client-secret',
    '--disable-instance-discovery',
    ...listen,
    ...proxyArgs,
  ];
  const listenAddress = flagValue(args, '--listen') ?? DEFAULT_LISTEN;

  process.stderr.write(
    `demo: redis-server (TLS only, Azure-like ACL: no default user, one user per token, ` +
      `deleted when the token expires) runs on 127.0.0.1:${tlsPort}; a local Entra ID ` +
      `stand-in issues ${tokens.lifetimeSeconds}-second tokens at ${tokens.authorityHost}; ` +
      `the proxy listens on ${listenAddress}. Ctrl-C stops everything. ` +
      `try: redis-cli -p ${portOf(listenAddress)} ping\n\n`,
  );

  // Its own process group, so a Ctrl-C reaches the proxy once, forwarded from here,
  // rather than twice (from the terminal and again from us).
  const proxy = spawn(process.execPath, [CLI, ...args], {
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: true,
    env: { ...process.env, NODE_EXTRA_CA_CERTS: certs.caFile, ...tokens.envFor('client-secret') },
  });
  signals.proxy = proxy;

  return new Promise<number>((resolve) => {
    proxy.once('error', (err) => {
      process.stderr.write(`demo: could not start the proxy: ${err.message}\n`);
      resolve(1);
    });
    proxy.once('exit', (exitCode, signal) => {
      resolve(exitCode ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });
}

function parseArgs(argv: string[]): DemoArgs {
  const proxyArgs: string[] = [];
  let lifetimeSeconds = 3600;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    let value: string | undefined;

    if (arg === '--token-lifetime') value = argv[++i];
    else if (arg.startsWith('--token-lifetime=')) value = arg.slice('--token-lifetime='.length);
    else {
      proxyArgs.push(arg);
      continue;
    }

    lifetimeSeconds = Number(value);
    if (!(lifetimeSeconds > 0)) {
      process.stderr.write('demo: --token-lifetime needs a positive number of seconds\n');
      process.exit(2);
    }
  }
  return { lifetimeSeconds, proxyArgs };
}

function hasFlag(args: string[], flag: string): boolean {
  return args.some((arg) => arg === flag || arg.startsWith(`${flag}=`));
}

/** The last value given for a flag, in `--flag value` or `--flag=value` form. */
function flagValue(args: string[], flag: string): string | undefined {
  let value: string | undefined;

  args.forEach((arg, i) => {
    if (arg === flag) value = args[i + 1];
    else if (arg.startsWith(`${flag}=`)) value = arg.slice(flag.length + 1);
  });
  return value;
}

function portOf(address: string): string {
  return address.slice(address.lastIndexOf(':') + 1);
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`demo: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
