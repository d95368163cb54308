/**
 * When to refresh a token and how long to wait after a failure. Pure
 * functions of time, so the rules can be tested without clocks.
 */

/** Fraction of a token's lifetime after which it is refreshed. */
export const REFRESH_FRACTION = 0.75;
/** Preferred lead before expiry; shortened for short-lived tokens. */
export const REFRESH_LEAD_MS = 5 * 60_000;

/**
 * The moment to fetch the next token: the earliest of 75% of the lifetime,
 * the identity library's own refresh hint, and expiry minus a lead. The lead
 * is at most a third of the lifetime so that tokens living seconds still get
 * a schedule that leaves time to re-authenticate. Jitter (up to 5% of the
 * lifetime, earlier only) keeps many proxies from asking at the same instant.
 */
export function refreshAt(
  issuedAt: number,
  expiresAt: number,
  refreshAfter: number | undefined,
  random: () => number = Math.random,
): number {
  const lifetime = Math.max(expiresAt - issuedAt, 0);
  const lead = Math.min(REFRESH_LEAD_MS, lifetime / 3);
  let at = Math.min(issuedAt + lifetime * REFRESH_FRACTION, expiresAt - lead);
  if (refreshAfter !== undefined && refreshAfter > issuedAt) at = Math.min(at, refreshAfter);
  return at - random() * lifetime * 0.05;
}

/**
 * Delay before retry number `attempt` (1-based): exponential from 500 ms,
 * capped, with full jitter in the upper half so retries of many proxies
 * spread out. The cap is shorter when no valid token is left, because then
 * clients are being turned away.
 */
export function retryDelay(
  attempt: number,
  haveValidToken: boolean,
  random: () => number = Math.random,
): number {
  const cap = haveValidToken ? 30_000 : 5_000;
  const base = Math.min(cap, 500 * 2 ** Math.min(attempt - 1, 16));
  return base / 2 + random() * (base / 2);
}

/**
 * The window over which open connections re-authenticate after a new token
 * arrives: a quarter of the time the previous token has left, at most a
 * minute, so that every connection sends AUTH well before the old expiry and
 * the cache does not see them all in one instant.
 */
export function reauthWindow(now: number, previousExpiresAt: number): number {
  const left = previousExpiresAt - now;
  if (left <= 0) return 0;
  return Math.min(60_000, left / 4);
}
