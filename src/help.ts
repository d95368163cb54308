import { OPTIONS, envName } from './config-options.js';

/** The text of --help: every flag, its environment variable and default. */
export function helpText(): string {
  const lines = [
    'redis-entra-proxy: lets applications that speak plain Redis use Azure Cache for Redis',
    'with Microsoft Entra ID. Clients connect without TLS or a token; the proxy opens TLS',
    'connections to the cache, authenticates them with access tokens and keeps them',
    'authenticated across token rotations.',
    '',
    'Usage: redis-entra-proxy --upstream HOST[:PORT] [options]',
    '',
    'Options (each also read from the environment variable shown):',
  ];
  for (const option of OPTIONS) {
    const flag = option.boolean ? `--${option.name}` : `--${option.name} VALUE`;
    const env = [envName(option.name), ...(option.aliases ?? [])].join(', ');
    const fallback = option.default === undefined ? '' : ` (default: ${option.default})`;
    lines.push(`  ${flag}`, `      ${option.help}${fallback}`, `      env: ${env}`);
  }
  lines.push(
    '',
    'Credentials read the standard variables: AZURE_TENANT_ID, AZURE_CLIENT_ID,',
    'AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE,',
    'AZURE_AUTHORITY_HOST. Documentation: docs/configuration.md',
    '',
  );
  return lines.join('\n');
}
