import { withTimeout, type BlockingTimeout } from '../resp/commands.js';
import { decodeFrame } from '../resp/decode.js';
import { encodeCommand } from '../resp/encode.js';

/** A slice never asks redis-server to wait less than this. */
const MIN_SLICE_MS = 50;

/**
 * A blocking command (BLPOP k 0, XREAD BLOCK ..., WAIT) waiting upstream. AUTH sent
 * behind it would wait as long as it does, possibly past the expiry of the
 * token the connection authenticated with, and the cache would close the
 * connection. So a wait that could outlast the token is sent in slices: the
 * command goes upstream with its timeout cut to end before the token
 * expires; when redis-server answers that the slice ran out (`ranOut`), the
 * AUTH the rotation queued behind it runs, and the command is sent again
 * with the time that remains. The client sees one command and one reply.
 *
 * Nothing is lost or delivered twice: redis-server either serves the
 * element before the slice ends (the reply goes to the client) or times the
 * command out with nothing taken (the element, if one arrives in between,
 * waits in the list for the next slice). WAIT has nothing to take: a slice
 * sent again waits for the same writes of the connection, the proxy's AUTH
 * being none. No other connection and no permission beyond the command
 * itself is needed.
 *
 * XREAD's `$` means the stream's end when the command runs, which for a
 * slice sent again would be later than when the client's wait began: an
 * entry appended in the round trip between two slices would be skipped. So
 * the proxy asks for each such stream's last id in the same write as the
 * first slice, and later slices read from there (`pin`).
 */
export class BlockedCommand {
  constructor(
    readonly args: Buffer[],
    readonly timeout: BlockingTimeout,
    /** The client's deadline in ms since the epoch; Infinity for timeout 0. */
    readonly deadline: number,
    /** This wait was cut short: running out means the slice ended, not the wait. */
    readonly sliced: boolean,
  ) {}

  /**
   * The first wait of a command the client sent as `bytes`: forwarded as it
   * is when it ends by `sliceEnd` anyway, cut to end there otherwise.
   */
  static start(
    args: Buffer[],
    bytes: Buffer,
    timeout: BlockingTimeout,
    sliceEnd: number,
    now = Date.now(),
  ): { bytes: Buffer; blocked: BlockedCommand } {
    const deadline = timeout.ms === 0 ? Infinity : now + timeout.ms;
    if (deadline <= sliceEnd) {
      return { bytes, blocked: new BlockedCommand(args, timeout, deadline, false) };
    }
    return slice(args, timeout, deadline, sliceEnd, now);
  }

  /**
   * Whether `frame` is what this command answers when its wait ran out with
   * nothing to show: null for the list, sorted set and stream commands; for
   * WAIT and WAITAOF, fewer acknowledgements than asked for (they answer how
   * many they got). Errors are genuine answers.
   */
  ranOut(frame: Buffer): boolean {
    const name = this.args[0].toString('latin1').toUpperCase();
    if (name !== 'WAIT' && name !== 'WAITAOF') return isNullReply(frame);
    let reply;
    try {
      reply = decodeFrame(frame);
    } catch {
      return false;
    }
    const wanted = (i: number): number => Number(this.args[i].toString('latin1'));
    if (name === 'WAIT') return typeof reply === 'number' && reply < wanted(1);
    return (
      Array.isArray(reply) &&
      typeof reply[0] === 'number' &&
      typeof reply[1] === 'number' &&
      (reply[0] < wanted(1) || reply[1] < wanted(2))
    );
  }

  /**
   * Replaces the argument at `index` (a `$` id) with `id` for every later
   * slice of this wait.
   */
  pin(index: number, id: Buffer): void {
    this.args[index] = id;
  }

  /**
   * The next wait after a slice ended, or null when the client's own timeout
   * has passed (then the null reply is the genuine answer).
   */
  next(sliceEnd: number, now = Date.now()): { bytes: Buffer; blocked: BlockedCommand } | null {
    if (this.deadline - now <= 0) return null;
    return slice(this.args, this.timeout, this.deadline, sliceEnd, now);
  }
}

function slice(
  args: Buffer[],
  timeout: BlockingTimeout,
  deadline: number,
  sliceEnd: number,
  now: number,
): { bytes: Buffer; blocked: BlockedCommand } {
  const cut = deadline > sliceEnd;
  const waitMs = cut ? Math.max(sliceEnd - now, MIN_SLICE_MS) : deadline - now;
  return {
    bytes: encodeCommand(withTimeout(args, timeout, waitMs)),
    blocked: new BlockedCommand(args, timeout, deadline, cut),
  };
}

/** A null reply: what a blocking command answers when it times out. */
function isNullReply(frame: Buffer): boolean {
  if (frame.length === 3) return frame[0] === 0x5f; // _\r\n
  return (
    frame.length === 5 &&
    frame[1] === 0x2d &&
    frame[2] === 0x31 &&
    (frame[0] === 0x2a || frame[0] === 0x24)
  ); // *-1 or $-1
}
