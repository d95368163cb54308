import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';

import { OPTIONS, envName } from './config-options.js';

export type CredentialKind =
  | 'default'
  | 'client-secret'
  | 'client-certificate'
  | 'managed-identity'
  | 'workload-identity'
  | 'azure-cli';

const CREDENTIALS: CredentialKind[] = [
  'default',
  'client-secret',
  'client-certificate',
  'managed-identity',
  'workload-identity',
  'azure-cli',
];

/** A listener address: TCP host and port, or a unix socket path. */
export type ListenAddress =
  { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** The validated configuration of one proxy process. */
export interface Config {
  listen: ListenAddress[];
  upstream: { host: string; port: number };
  tls: { caFile?: string; ca?: string; servername: string };
  scope: string;
  credential: CredentialKind;
  disableInstanceDiscovery: boolean;
  username?: string;
  clientPassword?: string;
  admin: ListenAddress | null;
  logLevel: string;
  logFormat: 'json' | 'text';
  connectTimeoutMs: number;
  tokenTimeoutMs: number;
  shutdownTimeoutMs: number;
  maxConnections: number;
  idleTimeoutMs: number;
  poolSize: number;
  allowRemoteClients: boolean;
  /** Accepted settings an operator should know about; logged at start. */
  warnings: string[];
  unixSocketMode: number;
  enableQuitQuitQuit: boolean;
}

/** Raised with every problem found, one line each, so all can be fixed at once. */
export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';

  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'ConfigError';
  }
}

export type ParsedFlags =
  { action: 'help' } | { action: 'version' } | { action: 'run'; config: Config };

/** Reads flags, then REDIS_PROXY_* variables, then defaults. */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): ParsedFlags {
  const raw = readRaw(argv, env);
  if (raw.get('help') === true) return { action: 'help' };
  if (raw.get('version') === true) return { action: 'version' };

  const problems: string[] = [];
  const text = (name: string): string | undefined => raw.get(name) as string | undefined;
  const list = (name: string): string[] => (raw.get(name) as string[] | undefined) ?? [];
  const duration = (name: string): number => {
    const ms = parseDuration(text(name)!);
    if (ms === null)
      problems.push(`--${name}: "${text(name)}" is not a duration (e.g. 30s, 500ms)`);
    return ms ?? 0;
  };
  const count = (name: string): number => {
    const value = Number(text(name));
    if (!Number.isInteger(value) || value < 0) {
      problems.push(`--${name}: "${text(name)}" is not a whole number >= 0`);
      return 0;
    }
    return value;
  };

  const listen: ListenAddress[] = [];
  for (const item of list('listen')) {
    const address = parseListen(item);
    if (address === null)
      problems.push(`--listen: "${item}" is neither HOST:PORT nor a socket path`);
    else listen.push(address);
  }

  const upstream = parseUpstream(text('upstream'), problems);
  const credential = text('credential') as CredentialKind;
  if (!CREDENTIALS.includes(credential)) {
    problems.push(`--credential: "${credential}" is not one of ${CREDENTIALS.join(', ')}`);
  }

  let ca: string | undefined;
  const caFile = text('tls-ca-file');
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile, 'utf8');
      if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
        problems.push(`--tls-ca-file: ${caFile} holds no PEM certificate`);
      }
    } catch (err) {
      problems.push(
        `--tls-ca-file: cannot read ${caFile} (${(err as NodeJS.ErrnoException).code})`,
      );
    }
  }

  const adminText = text('admin-listen')!;
  let admin: ListenAddress | null = null;
  if (adminText !== 'off') {
    admin = parseListen(adminText);
    if (admin === null)
      problems.push(`--admin-listen: "${adminText}" is not HOST:PORT, a path or off`);
  }

  const logLevel = text('log-level')!;
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(logLevel)) {
    problems.push(`--log-level: "${logLevel}" is not trace, debug, info, warn or error`);
  }
  const logFormat = text('log-format')!;
  if (logFormat !== 'json' && logFormat !== 'text') {
    problems.push(`--log-format: "${logFormat}" is not json or text`);
  }

  const scope = text('scope')!;
  if (!/^(https?|api):\/\/\S+$/.test(scope)) {
    problems.push(`--scope: "${scope}" is not a scope such as https://redis.azure.com/.default`);
  }

  const modeText = text('unix-socket-mode')!;
  const unixSocketMode = /^[0-7]{3,4}$/.test(modeText) ? parseInt(modeText, 8) : -1;
  if (unixSocketMode < 0) problems.push(`--unix-socket-mode: "${modeText}" is not an octal mode`);

  const clientPassword = text('client-password');
  const allowRemoteClients = raw.get('allow-remote-clients') === true;
  const warnings: string[] = [];
  if (clientPassword === undefined) {
    for (const address of listen) {
      if (address.kind !== 'tcp' || isLoopback(address.host)) continue;
      if (allowRemoteClients) {
        warnings.push(
          `--listen: ${address.host} is reachable from other hosts and clients give no ` +
            'password: anyone who can connect uses the cache with this identity',
        );
      } else {
        problems.push(
          `--listen: ${address.host} is reachable from other hosts; set --client-password ` +
            'or pass --allow-remote-clients',
        );
      }
    }
  }
  if (listen.length === 0 && problems.length === 0)
    problems.push('--listen: at least one is needed');

  const config: Config = {
    listen,
    upstream: upstream ?? { host: '', port: 0 },
    tls: { caFile, ca, servername: text('tls-servername') ?? upstream?.host ?? '' },
    scope,
    credential,
    disableInstanceDiscovery: raw.get('disable-instance-discovery') === true,
    username: text('username'),
    clientPassword,
    admin,
    logLevel,
    logFormat: logFormat as 'json' | 'text',
    connectTimeoutMs: duration('connect-timeout'),
    tokenTimeoutMs: duration('token-timeout'),
    shutdownTimeoutMs: duration('shutdown-timeout'),
    maxConnections: count('max-connections'),
    idleTimeoutMs: duration('idle-timeout'),
    poolSize: count('pool-size'),
    allowRemoteClients,
    warnings,
    unixSocketMode,
    enableQuitQuitQuit: raw.get('enable-quitquitquit') === true,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return { action: 'run', config };
}

/** Merges command line, environment and defaults into one map by flag name. */
function readRaw(argv: string[], env: NodeJS.ProcessEnv): Map<string, string | string[] | boolean> {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const spec of OPTIONS) {
    options[spec.name] = {
      type: spec.boolean ? 'boolean' : 'string',
      multiple: spec.multiple === true,
    };
  }
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new ConfigError([`${(err as Error).message.split('\n')[0]} (see --help)`]);
  }

  const raw = new Map<string, string | string[] | boolean>();
  for (const spec of OPTIONS) {
    let value = values[spec.name] as string | string[] | boolean | undefined;
    if (value === undefined) {
      const fromEnv = [envName(spec.name), ...(spec.aliases ?? [])]
        .map((name) => env[name])
        .find((v) => v !== undefined && v !== '');
      if (fromEnv !== undefined) {
        if (spec.boolean) value = /^(1|true|yes|on)$/i.test(fromEnv);
        else if (spec.multiple)
          value = fromEnv
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean);
        else value = fromEnv;
      }
    }
    if (value === undefined && spec.default !== undefined) {
      value = spec.multiple ? [spec.default] : spec.default;
    }
    if (value !== undefined) raw.set(spec.name, value);
  }
  return raw;
}

/** "30s", "500ms", "5m", "1h" or a bare number of seconds, in milliseconds. */
export function parseDuration(text: string): number | null {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (match === null) return null;
  const scale = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 's']!;
  return Math.round(Number(match[1]) * scale);
}

/** HOST:PORT (IPv6 as [::1]:PORT), :PORT, or a path (contains a slash). */
export function parseListen(text: string): ListenAddress | null {
  if (text.includes('/')) return { kind: 'unix', path: text };
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  if (match === null) return null;
  const port = Number(match[3]);
  if (port > 65535) return null;
  const host = match[1] ?? (match[2] === '' ? '127.0.0.1' : match[2]);
  return { kind: 'tcp', host, port };
}

function parseUpstream(
  text: string | undefined,
  problems: string[],
): { host: string; port: number } | null {
  if (text === undefined) {
    problems.push('--upstream: not set; name the cache, e.g. mycache.redis.cache.windows.net');
    return null;
  }
  const match = /^(?:\[([^\]]+)\]|([^:/\s]+))(?::(\d{1,5}))?$/.exec(text);
  const port = Number(match?.[3] ?? 6380);
  if (match === null || port < 1 || port > 65535) {
    problems.push(`--upstream: "${text}" is not HOST or HOST:PORT`);
    return null;
  }
  return { host: match[1] ?? match[2], port };
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}
