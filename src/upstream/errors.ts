/**
 * UpstreamError explains why an upstream connection could not be had, in one
 * line a client can read in its error reply and an operator in the log.
 * `reason` is a stable label for metrics and tests.
 */
export class UpstreamError extends Error {
  constructor(
    readonly code: UpstreamErrorCode,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}

export type UpstreamErrorCode =
  | 'ERR_UPSTREAM_UNREACHABLE'
  | 'ERR_UPSTREAM_TLS'
  | 'ERR_UPSTREAM_AUTH'
  | 'ERR_UPSTREAM_TIMEOUT'
  | 'ERR_UPSTREAM_CLOSED'
  | 'ERR_UPSTREAM_PROTOCOL'
  | 'ERR_TOKEN_UNAVAILABLE'
  | 'ERR_PROXY_CLOSING';

const TLS_TRUST_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Maps a socket or TLS error raised while dialing to an UpstreamError. */
export function describeDialError(err: NodeJS.ErrnoException, target: string): UpstreamError {
  const code = err.code ?? '';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return new UpstreamError(
      'ERR_UPSTREAM_TLS',
      'tls_untrusted',
      `TLS certificate of ${target} does not match the host name (${code}); ` +
        'use the cache host name or --tls-servername',
    );
  }
  if (TLS_TRUST_CODES.has(code)) {
    return new UpstreamError(
      'ERR_UPSTREAM_TLS',
      'tls_untrusted',
      `TLS certificate of ${target} is not trusted (${code}); ` +
        'pass --tls-ca-file with the CA that signed it',
    );
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new UpstreamError(
      'ERR_UPSTREAM_UNREACHABLE',
      'dns',
      `cannot resolve ${target} (${code}); check --upstream and DNS`,
    );
  }
  if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || /ssl|tls/i.test(err.message)) {
    return new UpstreamError(
      'ERR_UPSTREAM_TLS',
      'tls_handshake',
      `TLS handshake with ${target} failed (${code || firstLine(err.message)}); ` +
        'is this the TLS port (6380, or 10000 on Managed Redis)?',
    );
  }
  const what = code === 'ECONNREFUSED' ? 'connection refused' : code || firstLine(err.message);
  return new UpstreamError(
    'ERR_UPSTREAM_UNREACHABLE',
    'unreachable',
    `cannot connect to ${target}: ${what}`,
  );
}

function firstLine(text: string): string {
  return text.split('\n')[0];
}
