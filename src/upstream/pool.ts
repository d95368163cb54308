import type { Reauthenticatable } from '../auth/rotation.js';
import type { TokenSource } from '../auth/token-source.js';
import type { Logger } from '../log.js';
import type { Upstream } from './dial.js';
import { UpstreamError } from './errors.js';
import { PooledConnection } from './pooled-connection.js';

/** Pooled connections older than this are replaced, so none goes stale unnoticed. */
const MAX_IDLE_MS = 10 * 60_000;
/** Idle connections beyond the pool's size are closed once unused this long. */
const SURPLUS_IDLE_MS = 30_000;
const REFILL_DELAY_MS = 250;

export interface PoolOptions {
  /** Idle connections kept ready; 0 turns pooling off (one dial per client). */
  size: number;
  /** Deadline of the RESET and AUTH that bring a returned connection back. */
  resetTimeoutMs: number;
  /** Called for each connection handed to a session, with where it came from. */
  onHandOut?: (source: HandOutSource) => void;
}

/**
 * Where a session's connection came from: idle in the pool, given back by a
 * departing client (reset on the way), or newly dialed.
 */
export type HandOutSource = 'idle' | 'returned' | 'dialed';

/**
 * How a session gives its connection back: 'close' it; keep it 'clean',
 * when the client changed nothing the server keeps per connection (it is
 * handed on as it is); 'reset' it at once (RESET and AUTH before it goes
 * idle); or keep it 'quiet', as the client left it, for the next session to
 * reset ahead of its first command. Only a connection on which the server
 * sends nothing unasked and runs every command at once (no subscription,
 * transaction, MONITOR or RESP3) may be kept quiet: anything it received
 * while idle would close it, and a rotation's AUTH must not be queued in a
 * transaction.
 */
export type Reuse = 'close' | 'clean' | 'reset' | 'quiet';

interface Waiter {
  resolve(upstream: Upstream): void;
  reject(err: Error): void;
}

/**
 * Pool hands authenticated upstream connections to sessions. A session that
 * asks gets an idle connection at once, or waits for the first connection
 * to become ready: one a departing client gave back (see Reuse for how it
 * is reset before anyone else uses it) or a new one. A new one is dialed only when waiting
 * sessions outnumber the connections already on their way, so clients that
 * connect for one command each, as many legacy applications do, keep
 * reusing the same few connections instead of paying a TLS handshake and an
 * AUTH each time.
 *
 * `size` connections are kept ready. Connections that clients give back
 * are kept too, however many: each was in use a moment ago, so their number
 * never exceeds the peak of concurrent sessions; those beyond `size` are
 * closed once unused for SURPLUS_IDLE_MS. Idle connections follow token
 * rotation like live ones and are replaced after MAX_IDLE_MS.
 */
export class Pool {
  private readonly idle = new Set<PooledConnection>();
  /** Connections being dialed, or reset on their way back. */
  private arriving = 0;
  private readonly waiters: Waiter[] = [];
  private closed = false;
  private refillTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly options: PoolOptions,
    /** Opens a fresh authenticated connection (counted in the metrics). */
    private readonly dial: () => Promise<Upstream>,
    private readonly tokens: TokenSource,
    private readonly log: Logger,
  ) {}

  /** Idle connections, for the rotation. */
  get members(): Iterable<Reauthenticatable> {
    return this.idle;
  }

  /**
   * An authenticated connection for a session. Rejects with the dial's
   * UpstreamError when no connection can be had.
   */
  acquire(): Promise<Upstream> {
    if (this.closed) return Promise.reject(closedError());
    const ready = this.takeIdle();
    if (ready !== null) {
      this.refillLater();
      this.options.onHandOut?.('idle');
      return Promise.resolve(ready);
    }
    return new Promise<Upstream>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      if (this.waiters.length > this.arriving) this.dialOne();
    });
  }

  private takeIdle(): Upstream | null {
    const now = Date.now();
    for (const pooled of this.idle) {
      this.idle.delete(pooled);
      if (pooled.usable(now)) return pooled.detach();
      pooled.destroy();
    }
    return null;
  }

  /**
   * Short-lived clients give their connection back within milliseconds;
   * dialing a replacement at once would only produce connections to throw
   * away. Refill once the pool has stayed short for a moment.
   */
  private refillLater(): void {
    if (this.refillTimer !== null || this.options.size === 0) return;
    this.refillTimer = setTimeout(() => {
      this.refillTimer = null;
      this.refill();
    }, REFILL_DELAY_MS);
    this.refillTimer.unref();
  }

  /** Takes back a connection from a session that ended cleanly, or closes it. */
  giveBack(upstream: Upstream, reuse: Exclude<Reuse, 'close'>): void {
    const token = this.tokens.current();
    if (this.closed || token === null || this.options.size === 0) {
      upstream.socket.destroy();
      return;
    }
    if (reuse !== 'reset') {
      // Quiet: whoever takes it next pipelines RESET and AUTH ahead of its
      // first command; no round trip, and no write of its own here. Clean:
      // it stays as it is (still to be reset if it came that way).
      if (reuse === 'quiet') upstream.mustReset = true;
      const waiter = this.waiters.shift();
      if (waiter !== undefined) {
        this.options.onHandOut?.('returned');
        waiter.resolve(upstream);
      } else {
        this.idle.add(this.wrap(upstream));
      }
      return;
    }
    // Subscribed, in a transaction or RESP3: reset here first, so that no
    // push meant for the last client can reach the next one.
    this.arriving++;
    const pooled = this.wrap(upstream);
    pooled.resetAndAuth(token, this.options.resetTimeoutMs).then(
      (ok) => this.arrived(ok ? pooled : null, 'returned'),
      () => this.arrived(null, 'returned'),
    );
  }

  /** Dials until `size` connections are idle or on their way. */
  refill(): void {
    while (!this.closed && this.idle.size + this.arriving < this.options.size) {
      if (this.tokens.current() === null) return;
      this.dialOne();
    }
  }

  private dialOne(): void {
    this.arriving++;
    this.dial().then(
      (upstream) => this.arrived(this.wrap(upstream), 'dialed'),
      (err: Error) => this.dialFailed(err),
    );
  }

  private wrap(upstream: Upstream): PooledConnection {
    const pooled: PooledConnection = new PooledConnection(upstream, () => this.idle.delete(pooled));
    return pooled;
  }

  /** A connection is ready (or, as null, failed to get ready): first to a waiter. */
  private arrived(pooled: PooledConnection | null, source: HandOutSource): void {
    this.arriving--;
    if (pooled === null) {
      // The returned connection could not be reset: someone waiting for it
      // needs another.
      if (this.waiters.length > this.arriving && !this.closed) this.dialOne();
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      this.options.onHandOut?.(source);
      waiter.resolve(pooled.detach());
    } else if (!this.closed) {
      this.idle.add(pooled);
    } else {
      pooled.destroy();
    }
  }

  /** One dial failed: one waiter learns why, unless another connection is still coming. */
  private dialFailed(err: Error): void {
    this.arriving--;
    this.log.debug({ event: 'pool_dial_failed' }, err.message);
    if (this.waiters.length > this.arriving) this.waiters.shift()!.reject(err);
  }

  /**
   * Replaces connections that sat idle too long, and closes the surplus a
   * burst of clients left behind once it has gone unused for a while.
   */
  sweep(now = Date.now()): void {
    let surplus = this.idle.size - this.options.size;
    // Oldest first: a Set iterates in insertion order.
    for (const pooled of this.idle) {
      const idleMs = now - pooled.since;
      const spare = surplus > 0 && idleMs > SURPLUS_IDLE_MS;
      if (spare || idleMs > MAX_IDLE_MS || !pooled.usable(now)) {
        this.idle.delete(pooled);
        pooled.destroy();
        surplus--;
      }
    }
    this.refill();
  }

  close(): void {
    this.closed = true;
    if (this.refillTimer !== null) clearTimeout(this.refillTimer);
    for (const pooled of this.idle) pooled.destroy();
    this.idle.clear();
    for (const waiter of this.waiters.splice(0)) waiter.reject(closedError());
  }
}

function closedError(): UpstreamError {
  return new UpstreamError('ERR_PROXY_CLOSING', 'closing', 'the proxy is shutting down');
}
