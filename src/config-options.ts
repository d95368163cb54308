/**
 * Every command-line flag of the proxy. Each flag can also be set with the
 * environment variable REDIS_PROXY_<FLAG> (upper case, dashes as
 * underscores); a flag on the command line wins over the environment.
 */
export interface OptionSpec {
  name: string;
  help: string;
  /** Shown in --help; undefined means "not set". */
  default?: string;
  boolean?: boolean;
  /** May be given more than once (comma-separated in the environment). */
  multiple?: boolean;
  /** Further environment variables read, in order, when neither is set. */
  aliases?: string[];
  /** Holds a secret: never echoed in errors or logs. */
  secret?: boolean;
}

export const OPTIONS: OptionSpec[] = [
  {
    name: 'listen',
    help: 'client listener: HOST:PORT or a unix socket path; repeatable',
    default: '127.0.0.1:6379',
    multiple: true,
  },
  {
    name: 'upstream',
    help: 'the cache, HOST[:PORT] (port 6380; 10000 on Azure Managed Redis)',
    aliases: ['REDIS_HOSTNAME'],
  },
  {
    name: 'tls-ca-file',
    help: "PEM file of CAs trusted in addition to Node's built-in public CAs",
  },
  { name: 'tls-servername', help: 'name for SNI and certificate check (default: upstream host)' },
  { name: 'scope', help: 'token scope', default: 'https://redis.azure.com/.default' },
  {
    name: 'credential',
    help:
      'default | client-secret | client-certificate | managed-identity | ' +
      'workload-identity | azure-cli',
    default: 'default',
  },
  {
    name: 'disable-instance-discovery',
    help: 'for authority hosts that are not public Microsoft clouds',
    boolean: true,
  },
  {
    name: 'username',
    help: 'AUTH username upstream (default: the oid claim of each token)',
    aliases: ['REDIS_SERVICE_PRINCIPAL_NAME'],
  },
  {
    name: 'client-password',
    help: 'password local clients must AUTH with (default: any AUTH is accepted)',
    secret: true,
  },
  {
    name: 'admin-listen',
    help: 'admin HTTP listener (/livez, /readyz, /metrics) or "off"',
    default: '127.0.0.1:9090',
  },
  { name: 'log-level', help: 'trace | debug | info | warn | error', default: 'info' },
  { name: 'log-format', help: 'json | text', default: 'json' },
  { name: 'connect-timeout', help: 'upstream dial + TLS + AUTH deadline', default: '5s' },
  { name: 'token-timeout', help: 'deadline of one token request', default: '30s' },
  { name: 'shutdown-timeout', help: 'grace period for sessions on SIGTERM', default: '30s' },
  { name: 'max-connections', help: 'client connection limit, 0 = none', default: '0' },
  { name: 'idle-timeout', help: 'close idle clients after this long, 0 = never', default: '0' },
  {
    name: 'pool-size',
    help: 'authenticated upstream connections kept ready for new clients',
    default: '4',
  },
  {
    name: 'allow-remote-clients',
    help: 'allow a non-loopback --listen without --client-password',
    boolean: true,
  },
  { name: 'unix-socket-mode', help: 'file mode of unix socket listeners', default: '0660' },
  {
    name: 'enable-quitquitquit',
    help: 'POST /quitquitquit on the admin listener stops the proxy',
    boolean: true,
  },
  { name: 'help', help: 'print this help', boolean: true },
  { name: 'version', help: 'print the version', boolean: true },
];

/** REDIS_PROXY_<FLAG> for a flag name. */
export function envName(flag: string): string {
  return `REDIS_PROXY_${flag.toUpperCase().replace(/-/g, '_')}`;
}
