import type { Metrics } from '../admin/metrics.js';
import type { Token, TokenSource } from '../auth/token-source.js';
import type { Logger } from '../log.js';
import { ErrorReply } from '../resp/decode.js';
import type { Upstream } from '../upstream/dial.js';

/** Delay before retrying a failed re-authentication. */
const RETRY_MS = 1000;
/** Most a blocking wait is cut short of the token's expiry (see sliceEnd). */
const BLOCKING_LEAD_MS = 30_000;

/** What the re-authentication of a session needs from the session. */
export interface ReauthHost {
  /** The session's upstream connection; null before it has one. */
  upstream(): Upstream | null;
  closed(): boolean;
  /** A transaction is open: AUTH would be queued, not run. */
  inTransaction(): boolean;
  /** A command is being streamed upstream: AUTH cannot cut into it. */
  midCommand(): boolean;
  /** Sends one of the proxy's own commands; its reply never reaches the client. */
  internal(args: string[], onReply: (reply: unknown) => void): void;
  /** The connection could not be made ready: tell the client why and end. */
  failBeforeReady(message: string): void;
}

/**
 * Reauthentication keeps one session's upstream connection authenticated
 * with the newest token. A new token waits for the next moment at which
 * redis-server will run AUTH at once and answer it to the proxy alone: not
 * inside a transaction (it would be queued until EXEC), not in the middle of
 * a command being streamed. Behind a blocking command AUTH waits for the
 * current slice of the wait to end, which sliceEnd places before expiry
 * (blocking.ts). A failed AUTH is logged, counted and retried.
 */
export class Reauthentication {
  /** A token waiting for a command boundary to be sent as AUTH. */
  private pending: Token | null = null;
  /** Expiry of the newest token sent in an AUTH, answered or not. */
  private writtenUntil = 0;
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly host: ReauthHost,
    private readonly tokens: TokenSource,
    private readonly metrics: Metrics,
    private readonly log: () => Logger,
  ) {}

  /** A newer token: AUTH goes out as soon as the connection's state allows. */
  offer(token: Token): void {
    const upstream = this.host.upstream();
    if (this.host.closed() || upstream === null) return;
    if (token.expiresAt <= upstream.authExpiresAt) return;
    this.pending = token;
    this.flush();
  }

  /** Sends the waiting token now, if the state allows; called at boundaries. */
  flush(): void {
    const token = this.pending;
    if (token === null || this.host.upstream() === null || this.host.closed()) return;
    if (this.host.inTransaction()) {
      this.metrics.reauths.inc({ result: 'deferred' });
      this.log().debug({ event: 'reauth_deferred', state: 'transaction' }, 'AUTH waits for EXEC');
      return;
    }
    // The session calls flush again once the command is complete.
    if (this.host.midCommand()) return;
    this.pending = null;
    this.authenticate(token);
  }

  /** The client's RESET logged the connection out: AUTH with the current token at once. */
  afterReset(): void {
    const token = this.tokens.current();
    if (token !== null) this.authenticate(token);
  }

  private authenticate(token: Token): void {
    this.writtenUntil = Math.max(this.writtenUntil, token.expiresAt);
    this.host.internal(['AUTH', token.username, token.value], (reply) => {
      const upstream = this.host.upstream();
      if (!(reply instanceof ErrorReply)) {
        if (upstream !== null) upstream.authExpiresAt = token.expiresAt;
        this.metrics.reauths.inc({ result: 'success' });
        return;
      }
      this.writtenUntil = upstream?.authExpiresAt ?? 0;
      this.metrics.reauths.inc({ result: 'failure' });
      this.log().error({ event: 'reauth_failed', username: token.username }, reply.message);
      this.retryLater();
    });
  }

  /**
   * The connection comes straight from another client: RESET and AUTH go
   * out ahead of this client's first command, and both replies are
   * consumed. If either fails the client learns why before any reply of its
   * own could be forwarded, and the session ends.
   */
  resetReused(): void {
    const token = this.tokens.current();
    if (token === null) {
      this.host.failBeforeReady('no valid access token to authenticate the upstream connection');
      return;
    }
    const fail = (what: string) => (reply: unknown) => {
      if (reply instanceof ErrorReply)
        this.host.failBeforeReady(`${what} failed: ${reply.message}`);
    };
    this.host.internal(['RESET'], fail('RESET of a reused upstream connection'));
    this.writtenUntil = token.expiresAt;
    this.host.internal(['AUTH', token.username, token.value], (reply) => {
      const upstream = this.host.upstream();
      if (reply instanceof ErrorReply) fail(`AUTH as ${token.username}`)(reply);
      else if (upstream !== null) upstream.authExpiresAt = token.expiresAt;
    });
  }

  /**
   * When a blocking wait sent now must end: before the expiry of the token
   * the connection will hold by then (an AUTH already written counts), by a
   * quarter of the time left and at most BLOCKING_LEAD_MS, so that the AUTH
   * queued behind the wait runs in time.
   */
  sliceEnd(): number {
    const expiresAt = Math.max(this.host.upstream()?.authExpiresAt ?? 0, this.writtenUntil);
    const left = Math.max(expiresAt - Date.now(), 0);
    return expiresAt - Math.min(BLOCKING_LEAD_MS, left / 4);
  }

  stop(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private retryLater(): void {
    if (this.retryTimer !== null || this.host.closed()) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      const token = this.tokens.current();
      if (token === null) return;
      this.pending = token;
      this.flush();
    }, RETRY_MS);
    this.retryTimer.unref();
  }
}
