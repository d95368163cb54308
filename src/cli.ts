#!/usr/bin/env node
import { readFileSync } from 'node:fs';

import type { TokenCredential } from '@azure/identity';

import { Metrics } from './admin/metrics.js';
import { startAdmin } from './admin/server.js';
import { CredentialConfigError, createCredential } from './auth/credential.js';
import { TokenSource } from './auth/token-source.js';
import { ConfigError, parseConfig, type Config } from './config.js';
import { helpText } from './help.js';
import { createLogger, type Logger } from './log.js';
import { Proxy } from './proxy.js';
import { Shutdown } from './shutdown.js';

/** Exit statuses, documented in docs/operations.md. */
export const EXIT = { ok: 0, cut: 1, config: 2, start: 3 } as const;

async function main(): Promise<number | undefined> {
  let parsed;
  try {
    parsed = parseConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) process.stderr.write(`redis-entra-proxy: ${problem}\n`);
    return EXIT.config;
  }
  if (parsed.action === 'help') {
    process.stdout.write(helpText());
    return EXIT.ok;
  }
  if (parsed.action === 'version') {
    process.stdout.write(`${version()}\n`);
    return EXIT.ok;
  }
  return run(parsed.config);
}

async function run(config: Config): Promise<number | undefined> {
  const log = createLogger(config.logLevel, config.logFormat);
  const metrics = new Metrics();

  const newCredential = (): TokenCredential =>
    createCredential(
      config.credential,
      process.env,
      config.disableInstanceDiscovery,
      config.tokenTimeoutMs,
    );
  try {
    newCredential();
  } catch (err) {
    if (!(err instanceof CredentialConfigError)) throw err;
    process.stderr.write(`redis-entra-proxy: ${err.message}\n`);
    return EXIT.config;
  }

  const tokens = new TokenSource(newCredential, {
    scope: config.scope,
    username: config.username,
    timeoutMs: config.tokenTimeoutMs,
    log,
    metrics,
  });
  const proxy = new Proxy(config, tokens, log, metrics);
  const shutdown = new Shutdown(proxy, tokens, log, config.shutdownTimeoutMs);

  try {
    await proxy.start();
    if (config.admin !== null) {
      const admin = await startAdmin(config.admin, {
        metrics,
        ready: () => shutdown.readiness(),
        checkUpstream: () => proxy.checkUpstream(),
        quit: config.enableQuitQuitQuit ? () => shutdown.begin('quitquitquit') : undefined,
      });
      shutdown.track(admin.server);
      log.info({ event: 'admin_listening', address: admin.address }, 'admin endpoints ready');
    }
  } catch (err) {
    process.stderr.write(`redis-entra-proxy: ${(err as Error).message}\n`);
    // Listeners bound before the failure would keep a half-started proxy
    // running: close them, so that the process exits and can be restarted.
    await proxy.stopListening();
    proxy.closeAll('shutdown');
    return EXIT.start;
  }

  metrics.trackTokenExpiry(() => tokens.secondsToExpiry());
  log.info(
    {
      event: 'started',
      version: version(),
      upstream: `${config.upstream.host}:${config.upstream.port}`,
      credential: config.credential,
    },
    'redis-entra-proxy started',
  );
  for (const warning of config.warnings) log.warn({ event: 'config_warning' }, warning);
  tokens.start();
  handleSignals(shutdown, log);
  return undefined;
}

function handleSignals(shutdown: Shutdown, log: Logger): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (shutdown.started) {
        log.warn({ event: 'shutdown_forced', signal }, 'second signal: closing all sessions now');
        shutdown.force();
      } else {
        shutdown.begin(signal);
      }
    });
  }
}

function version(): string {
  const url = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}

main().then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`redis-entra-proxy: unexpected error: ${err.message}\n`);
    process.exitCode = EXIT.start;
  },
);
