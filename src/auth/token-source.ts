import { EventEmitter } from 'node:events';

import type { AccessToken, TokenCredential } from '@azure/identity';

import type { Metrics } from '../admin/metrics.js';
import type { Logger } from '../log.js';
import { readClaims } from './claims.js';
import { describeTokenError } from './token-errors.js';
import { refreshAt, retryDelay } from './schedule.js';

/** A token ready to be sent upstream. */
export interface Token {
  readonly value: string;
  /** AUTH username: configured, or the token's oid claim. */
  readonly username: string;
  /** Milliseconds since the epoch. */
  readonly expiresAt: number;
  readonly obtainedAt: number;
}

export interface TokenSourceOptions {
  scope: string;
  /** Fixed AUTH username; when absent each token's oid claim is used. */
  username?: string;
  timeoutMs: number;
  log: Logger;
  metrics: Metrics;
  /**
   * Least time between two refreshes forced by refreshSoon (after the cache
   * rejected a token); default FORCED_REFRESH_INTERVAL_MS.
   */
  forcedRefreshIntervalMs?: number;
}

/**
 * A token the cache rejects is usually a configuration problem (no access
 * policy, a wrong --username) that a new token does not cure: asking again
 * at most this often keeps the proxy from spinning between the identity
 * service and the cache.
 */
export const FORCED_REFRESH_INTERVAL_MS = 30_000;

/**
 * TokenSource keeps one current token for the whole process. It refreshes
 * ahead of expiry (see schedule.ts), retries failures for as long as the
 * process runs, and emits 'token' with (token, previous) whenever a new one
 * arrives. The current token stays in use until it expires, whatever happens
 * to later requests. It knows nothing of connections: rotation.ts listens.
 */
export class TokenSource extends EventEmitter {
  private token: Token | null = null;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private failures = 0;
  private stopped = false;
  /** One-line reason of the last failed request, null after a success. */
  lastError: string | null = null;

  /** When the last request started; paces refreshSoon. */
  private lastRequestAt = 0;

  /**
   * `newCredential` is called for every request. A credential answers from
   * its own cache until five minutes before expiry, so a refresh scheduled
   * at three quarters of the lifetime would get the same token back and
   * the real rotation would happen minutes before expiry, less than
   * Microsoft advises; and MSAL makes a credential that saw a 5xx replay
   * that error for 60 seconds without asking the service, stretching a short
   * outage into a minute of refused clients. The schedule and the backoff
   * here pace the requests instead.
   */
  constructor(
    private readonly newCredential: () => TokenCredential,
    private readonly options: TokenSourceOptions,
  ) {
    super();
  }

  /** Starts fetching; the first token arrives as a 'token' event. */
  start(): void {
    void this.refresh();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The current token if it has not expired yet. */
  current(now = Date.now()): Token | null {
    return this.token !== null && this.token.expiresAt > now ? this.token : null;
  }

  /** Seconds until the current token expires, or null before the first one. */
  secondsToExpiry(now = Date.now()): number | null {
    return this.token === null ? null : (this.token.expiresAt - now) / 1000;
  }

  /**
   * A valid token, waiting up to `timeoutMs` for the first one. Rejects with
   * TokenUnavailableError carrying the last failure's reason.
   */
  async get(timeoutMs: number): Promise<Token> {
    const now = this.current();
    if (now !== null) return now;
    // Once a request has failed and no valid token is left, say so at once
    // rather than keep every new client waiting; retries run meanwhile.
    if (this.lastError !== null) throw new TokenUnavailableError(this.lastError);
    if (this.inFlight === null && !this.stopped) this.refreshSoon();

    return new Promise<Token>((resolve, reject) => {
      const onToken = (token: Token): void => {
        clearTimeout(timer);
        resolve(token);
      };
      const timer = setTimeout(() => {
        this.off('token', onToken);
        reject(new TokenUnavailableError(this.lastError ?? 'token request still running'));
      }, timeoutMs);
      this.once('token', onToken);
    });
  }

  /**
   * Fetches now (used after the cache rejected a token) unless a request is
   * running or one started less than the forced-refresh interval ago.
   */
  refreshSoon(): void {
    if (this.inFlight !== null || this.stopped) return;
    const interval = this.options.forcedRefreshIntervalMs ?? FORCED_REFRESH_INTERVAL_MS;
    if (this.lastRequestAt > 0 && Date.now() - this.lastRequestAt < interval) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    void this.refresh();
  }

  private refresh(): Promise<void> {
    if (this.inFlight === null) {
      this.inFlight = this.fetch().finally(() => {
        this.inFlight = null;
      });
    }
    return this.inFlight;
  }

  private async fetch(): Promise<void> {
    const { log, metrics, timeoutMs, scope } = this.options;
    const started = Date.now();
    this.lastRequestAt = started;
    let access: AccessToken;
    try {
      const credential = this.newCredential();
      const result = await withTimeout(
        credential.getToken(scope, { abortSignal: AbortSignal.timeout(timeoutMs) }),
        timeoutMs,
      );
      if (result === null) throw new Error('the credential returned no token');
      access = result;
    } catch (err) {
      this.failed(describeTokenError(err), started);
      return;
    }
    if (this.stopped) return;

    const token = this.accept(access);
    if (token === null) return;
    metrics.tokenRefreshes.inc({ result: 'success' });
    this.failures = 0;
    this.lastError = null;
    const previous = this.token;
    const next = refreshAt(token.obtainedAt, token.expiresAt, access.refreshAfterTimestamp);
    this.schedule(next - Date.now());
    // The same token again (a credential that still served it from a cache)
    // is no news: announcing it would set every connection re-authenticating
    // and the pool dialing for nothing.
    if (previous !== null && previous.value === token.value) return;
    this.token = token;
    log.info(
      {
        event: 'token_refreshed',
        username: token.username,
        expiresInSeconds: Math.round((token.expiresAt - Date.now()) / 1000),
        nextRefreshInSeconds: Math.round((next - Date.now()) / 1000),
        tookMs: Date.now() - started,
      },
      'new access token',
    );
    this.emit('token', token, previous);
  }

  /** Turns an AccessToken into a Token, or records why it cannot be used. */
  private accept(access: AccessToken): Token | null {
    const claims = readClaims(access.token);
    const username = this.options.username ?? claims.oid;
    if (username === undefined) {
      this.failed('the token has no oid claim; set --username to the object id', Date.now());
      return null;
    }
    return {
      value: access.token,
      username,
      expiresAt: access.expiresOnTimestamp,
      obtainedAt: Date.now(),
    };
  }

  private failed(reason: string, started: number): void {
    const { log, metrics } = this.options;
    metrics.tokenRefreshes.inc({ result: 'failure' });
    this.failures += 1;
    this.lastError = reason;
    const valid = this.current() !== null;
    const delay = retryDelay(this.failures, valid);
    log.error(
      {
        event: 'token_refresh_failed',
        attempt: this.failures,
        retryInMs: Math.round(delay),
        currentTokenValid: valid,
        tookMs: Date.now() - started,
      },
      reason,
    );
    this.emit('failure', reason);
    this.schedule(delay);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(
      () => {
        this.timer = null;
        void this.refresh();
      },
      Math.max(delayMs, 0),
    );
    this.timer.unref();
  }
}

/** No valid token could be had in time; the message is the reason. */
export class TokenUnavailableError extends Error {
  readonly code = 'ERR_TOKEN_UNAVAILABLE';
}

/**
 * Credentials honour abortSignal in most, not all, of their code paths (the
 * Azure CLI runs a process; managed identity probes). The race makes the
 * deadline hold regardless; the losing promise is left to settle unobserved.
 */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`token request timed out after ${ms} ms`)), ms);
  });
  promise.catch(() => undefined);
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
