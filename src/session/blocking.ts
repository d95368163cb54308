import { withTimeout, type BlockingTimeout } from '../resp/commands.js';
import { encodeCommand } from '../resp/encode.js';

/**
 * A blocking command (BLPOP k 0, XREAD BLOCK ...) waiting upstream. AUTH sent
 * behind it would wait as long as it does, possibly past the token's expiry.
 * To re-authenticate in time the proxy unblocks it (CLIENT UNBLOCK ... TIMEOUT
 * from another connection), lets the queued AUTH run, and reissues the command
 * with the time that remains. redis-server is single-threaded, so the unblock
 * either finds the command still waiting (it answers null, the proxy hides
 * that and reissues) or finds it served (the reply carries the element and
 * goes to the client): nothing is lost or delivered twice.
 *
 * Known limit: XREAD with the `$` id reissued after an unblock reads from the
 * stream's end at that moment, so an entry appended in the few milliseconds
 * between unblock and reissue is not seen. Use explicit ids for exactness.
 */
export class BlockedCommand {
  /** Set once CLIENT UNBLOCK was requested for this wait. */
  unblockRequested = false;

  constructor(
    readonly args: Buffer[],
    readonly timeout: BlockingTimeout,
    /** Absolute deadline in ms since the epoch; Infinity for timeout 0. */
    readonly deadline: number,
  ) {}

  static start(args: Buffer[], timeout: BlockingTimeout, now = Date.now()): BlockedCommand {
    const deadline = timeout.ms === 0 ? Infinity : now + timeout.ms;
    return new BlockedCommand(args, timeout, deadline);
  }

  /** Whether the wait may outlast `expiresAt` (plus a safety margin). */
  outlasts(expiresAt: number, marginMs = 1000): boolean {
    return this.deadline > expiresAt - marginMs;
  }

  /**
   * The command to send again after an unblock, or null when its own timeout
   * has passed (then the null reply is the genuine answer).
   */
  reissue(now = Date.now()): { bytes: Buffer; next: BlockedCommand } | null {
    if (this.timeout.ms === 0) {
      return {
        bytes: encodeCommand(this.args),
        next: new BlockedCommand(this.args, this.timeout, Infinity),
      };
    }
    const remaining = this.deadline - now;
    if (remaining <= 0) return null;
    const args = withTimeout(this.args, this.timeout, remaining);
    return {
      bytes: encodeCommand(args),
      next: new BlockedCommand(this.args, this.timeout, this.deadline),
    };
  }
}

/** A null reply: what a blocking command answers when it times out. */
export function isNullReply(frame: Buffer): boolean {
  if (frame.length === 3) return frame[0] === 0x5f; // _\r\n
  return (
    frame.length === 5 &&
    frame[1] === 0x2d &&
    frame[2] === 0x31 &&
    (frame[0] === 0x2a || frame[0] === 0x24)
  ); // *-1 or $-1
}
