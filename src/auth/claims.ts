/** The claims of an access token the proxy relies on. */
export interface TokenClaims {
  /** Object id of the identity: the username Azure Cache expects. */
  oid?: string;
  /** Expiry, seconds since the epoch. */
  exp?: number;
}

/**
 * Reads the payload of a JWT without verifying it: the cache verifies the
 * token; the proxy only needs to know whom it names and when it expires.
 * Returns an empty object for anything that is not a JWT.
 */
export function readClaims(token: string): TokenClaims {
  const parts = token.split('.');
  if (parts.length !== 3) return {};
  try {
    const payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as unknown;
    if (typeof payload !== 'object' || payload === null) return {};
    const { oid, exp } = payload as Record<string, unknown>;
    return {
      oid: typeof oid === 'string' ? oid : undefined,
      exp: typeof exp === 'number' ? exp : undefined,
    };
  } catch {
    return {};
  }
}
