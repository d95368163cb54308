import type { Reauthenticatable } from '../auth/rotation.js';
import type { Token } from '../auth/token-source.js';
import { ErrorReply, type Value } from '../resp/decode.js';
import type { Upstream } from './dial.js';
import { IdleChannel } from './idle-channel.js';

/** A pooled connection must stay authenticated at least this long to be handed out. */
const MIN_AUTH_LEFT_MS = 2_000;

/**
 * PooledConnection is an upstream connection that no session owns: idle in
 * the pool, or on its way back into it. It answers the rotation itself until
 * a session takes it over with `detach`, after which it never writes again:
 * a rotation timer that fires late must not put an AUTH reply into a
 * session's stream of replies.
 */
export class PooledConnection implements Reauthenticatable {
  readonly since = Date.now();
  private readonly channel: IdleChannel;
  private detached = false;

  constructor(
    private readonly upstream: Upstream,
    onClose: () => void,
  ) {
    this.channel = new IdleChannel(upstream.socket, onClose);
  }

  usable(now: number): boolean {
    return (
      !this.detached &&
      !this.upstream.socket.destroyed &&
      this.channel.quiet &&
      this.upstream.authExpiresAt - now > MIN_AUTH_LEFT_MS
    );
  }

  /**
   * Brings a connection a client used back to a fresh state: RESET (which
   * also logs it out) and AUTH, pipelined. False when either fails, the
   * connection closes, or the replies take longer than `timeoutMs`.
   */
  async resetAndAuth(token: Token, timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs);
      timer.unref();
    });
    const replies = this.channel.sendAll([['RESET'], ['AUTH', token.username, token.value]]);
    const result = await Promise.race([replies, deadline]);
    clearTimeout(timer);

    if (result === null || !result.every(succeeded)) return false;
    this.upstream.authExpiresAt = token.expiresAt;
    return true;
  }

  reauthenticate(token: Token): void {
    if (this.detached || token.expiresAt <= this.upstream.authExpiresAt) return;
    this.channel.send(['AUTH', token.username, token.value]).then(
      (reply) => {
        if (!succeeded(reply)) this.destroy();
        else this.upstream.authExpiresAt = token.expiresAt;
      },
      () => this.destroy(),
    );
  }

  /** Hands the connection to a session; this object is inert afterwards. */
  detach(): Upstream {
    this.detached = true;
    this.channel.detach();
    return this.upstream;
  }

  destroy(): void {
    this.upstream.socket.destroy();
  }
}

/** A reply that is neither an error nor the null of a connection that closed. */
function succeeded(reply: Value): boolean {
  return reply !== null && !(reply instanceof ErrorReply);
}
