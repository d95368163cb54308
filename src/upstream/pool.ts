import type { Reauthenticatable } from '../auth/rotation.js';
import type { Token, TokenSource } from '../auth/token-source.js';
import type { Logger } from '../log.js';
import { ErrorReply } from '../resp/decode.js';
import type { Upstream } from './dial.js';
import { IdleChannel } from './idle-channel.js';

/** Pooled connections older than this are replaced, so none goes stale unnoticed. */
const MAX_IDLE_MS = 10 * 60_000;
const REFILL_DELAY_MS = 250;
/** A pooled connection must stay authenticated at least this long to be handed out. */
const MIN_AUTH_LEFT_MS = 2_000;

/**
 * Pool keeps up to `size` authenticated upstream connections ready, so that
 * a new client is served without a TLS handshake and an AUTH round trip, and
 * takes back connections whose client left cleanly: RESET (which also logs
 * the connection out) and AUTH again, both replies consumed, before anyone
 * else may use it. Pooled connections follow token rotation like live ones.
 */
export class Pool {
  private readonly idle = new Set<PooledConnection>();
  /** Connections being dialed or reset on their way into the pool. */
  private arriving = 0;
  private closed = false;
  private refillTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly size: number,
    /** Opens a fresh authenticated connection (counted in the metrics). */
    private readonly dial: () => Promise<Upstream>,
    private readonly tokens: TokenSource,
    private readonly log: Logger,
  ) {}

  /** Idle connections, for the rotation. */
  get members(): Iterable<Reauthenticatable> {
    return this.idle;
  }

  get idleCount(): number {
    return this.idle.size;
  }

  /** An idle connection ready for a client, or null. Refills in the background. */
  take(): Upstream | null {
    const now = Date.now();
    let found: Upstream | null = null;
    for (const pooled of this.idle) {
      this.idle.delete(pooled);
      if (pooled.usable(now)) {
        found = pooled.detach();
        break;
      }
      pooled.destroy();
    }
    this.refillLater();
    return found;
  }

  /**
   * Short-lived clients give their connection back within milliseconds;
   * dialing a replacement at once would only produce connections to throw
   * away. Refill once the pool has stayed short for a moment.
   */
  private refillLater(): void {
    if (this.refillTimer !== null || this.size === 0) return;
    this.refillTimer = setTimeout(() => {
      this.refillTimer = null;
      this.refill();
    }, REFILL_DELAY_MS);
    this.refillTimer.unref();
  }

  /** Takes back a connection from a session that ended cleanly, or closes it. */
  giveBack(upstream: Upstream): void {
    const token = this.tokens.current();
    if (this.closed || token === null || this.idle.size + this.arriving >= this.size) {
      upstream.socket.destroy();
      return;
    }
    this.arriving++;
    const pooled = new PooledConnection(upstream, () => this.forget(pooled));
    pooled.resetAndAuth(token).then(
      (ok) => {
        this.arriving--;
        if (ok && !this.closed) this.idle.add(pooled);
        else pooled.destroy();
      },
      () => {
        this.arriving--;
        pooled.destroy();
      },
    );
  }

  /** Dials until `size` connections are idle or on their way. */
  refill(): void {
    while (!this.closed && this.idle.size + this.arriving < this.size) {
      if (this.tokens.current() === null) return;
      this.arriving++;
      this.dial().then(
        (upstream) => {
          this.arriving--;
          if (this.closed) {
            upstream.socket.destroy();
            return;
          }
          const pooled = new PooledConnection(upstream, () => this.forget(pooled));
          this.idle.add(pooled);
        },
        (err: Error) => {
          this.arriving--;
          this.log.debug({ event: 'pool_dial_failed' }, err.message);
        },
      );
    }
  }

  /** Replaces connections that sat idle too long. */
  sweep(now = Date.now()): void {
    for (const pooled of this.idle) {
      if (now - pooled.since > MAX_IDLE_MS || !pooled.usable(now)) {
        this.idle.delete(pooled);
        pooled.destroy();
      }
    }
    this.refill();
  }

  private forget(pooled: PooledConnection): void {
    this.idle.delete(pooled);
  }

  close(): void {
    this.closed = true;
    if (this.refillTimer !== null) clearTimeout(this.refillTimer);
    for (const pooled of this.idle) pooled.destroy();
    this.idle.clear();
  }
}

/** One idle connection in the pool, able to answer the rotation itself. */
class PooledConnection implements Reauthenticatable {
  readonly since = Date.now();
  private readonly channel: IdleChannel;

  constructor(private readonly upstream: Upstream, onClose: () => void) {
    this.channel = new IdleChannel(upstream.socket, onClose);
  }

  usable(now: number): boolean {
    return !this.upstream.socket.destroyed && this.channel.quiet
      && this.upstream.authExpiresAt - now > MIN_AUTH_LEFT_MS;
  }

  async resetAndAuth(token: Token): Promise<boolean> {
    const [reset, auth] = await Promise.all([
      this.channel.send(['RESET']),
      this.channel.send(['AUTH', token.username, token.value]),
    ]);
    if (reset instanceof ErrorReply || auth instanceof ErrorReply) return false;
    this.upstream.authExpiresAt = token.expiresAt;
    return true;
  }

  reauthenticate(token: Token): void {
    if (token.expiresAt <= this.upstream.authExpiresAt) return;
    this.channel.send(['AUTH', token.username, token.value]).then((reply) => {
      if (reply instanceof ErrorReply) this.destroy();
      else this.upstream.authExpiresAt = token.expiresAt;
    }, () => this.destroy());
  }

  detach(): Upstream {
    this.channel.detach();
    return this.upstream;
  }

  destroy(): void {
    this.upstream.socket.destroy();
  }
}
