import { ReplyScanner } from '../resp/reply-scanner.js';
import { ARRAY, CONFIRMATION_MAX_BYTES, PUSH, isErrorFrame } from './pubsub.js';
import type { Expectation } from './reply-queue.js';
import type { SessionState } from './state.js';

const SIMPLE_STRING = 0x2b;
/** A line of the MONITOR feed: `+1700000000.123456 [0 127.0.0.1:5000] "GET" "k"`. */
const MONITOR_LINE = /^\+\d+\.\d+ \[/;

/** What the reply router needs from its session. */
export interface ReplyOutput {
  toClient(bytes: Buffer): void;
  /** Writes the proxy's own answers now at the head of the queue. */
  emitLocalAnswers(): void;
  /** A marker PING was answered: commands held behind it may go on. */
  markerAnswered(): void;
  isClosed(): boolean;
}

type FrameMode = 'forward' | 'collect' | 'push' | 'monitor' | 'unsolicited';

/**
 * ReplyRouter carries the upstream -> client direction. Each reply frame is
 * matched with the head of the reply queue: forwarded as it arrives (the
 * common case, without copying), or read whole and handed to the
 * expectation (the proxy's own commands, replies it must inspect). Push
 * frames answer no command: they go to the client, as RESP2 arrays for a
 * translated RESP2 subscriber, and update the subscription counts.
 */
export class ReplyRouter {
  private readonly scanner = new ReplyScanner();
  private parts: Buffer[] = [];
  private partBytes = 0;
  private mode: FrameMode = 'forward';

  constructor(
    private readonly state: SessionState,
    private readonly out: ReplyOutput,
  ) {}

  /** Throws ProtocolError when the upstream sends something that is not RESP. */
  route(chunk: Buffer): void {
    const { queue } = this.state;
    let pos = 0;
    // Start of bytes to pass to the client as they are, or -1.
    let run = -1;
    const flush = (to: number): void => {
      if (run >= 0 && run < to) this.out.toClient(chunk.subarray(run, to));
      run = -1;
    };

    while (pos < chunk.length) {
      if (this.scanner.atBoundary) {
        this.mode = this.modeFor(chunk[pos]);
        // `>3` and `*3` have the same length: only the type byte changes.
        if (this.mode === 'push' && this.state.translating) chunk[pos] = ARRAY;
      }
      const end = this.scanner.scan(chunk, pos);
      const stop = end < 0 ? chunk.length : end;
      const mode = this.mode;
      if (mode === 'collect' || mode === 'monitor') {
        flush(pos);
        this.collect(chunk.subarray(pos, stop));
      } else {
        if (run < 0) run = pos;
        if (mode === 'push') this.collect(chunk.subarray(pos, stop));
      }
      if (end < 0) break;
      pos = end;

      if (mode === 'forward') {
        queue.shift();
      } else if (mode === 'push') {
        if (this.partBytes <= CONFIRMATION_MAX_BYTES && this.parts.length > 0) {
          this.state.subscriptions.observe(this.takeFrame());
        }
        this.parts = [];
        this.partBytes = 0;
      } else if (mode === 'collect') {
        this.complete(this.takeFrame());
        if (this.out.isClosed()) return;
      } else if (mode === 'monitor') {
        this.monitorFrame(this.takeFrame());
      }
      const head = queue.peek();
      if (head !== null && head !== 'forward' && head.kind === 'local') {
        flush(pos);
        this.out.emitLocalAnswers();
        if (this.out.isClosed()) return;
      }
    }
    flush(chunk.length);
  }

  /** Whether the upstream stopped between frames (nothing half-sent). */
  get atBoundary(): boolean {
    return this.scanner.atBoundary;
  }

  private modeFor(firstByte: number): FrameMode {
    if (firstByte === PUSH) return 'push';
    if (this.state.monitor && firstByte === SIMPLE_STRING) return 'monitor';
    const head = this.state.queue.peek();
    if (head === 'forward') return 'forward';
    // Only MONITOR output arrives with nothing expected; anything else is
    // passed on too, since the client is the only one who could make sense of it.
    if (head === null) return 'unsolicited';
    return 'collect';
  }

  /** Push frames are kept only while small enough to be confirmations. */
  private collect(piece: Buffer): void {
    if (this.mode === 'push' && this.partBytes + piece.length > CONFIRMATION_MAX_BYTES) {
      this.partBytes = CONFIRMATION_MAX_BYTES + 1;
      this.parts = [];
      return;
    }
    this.parts.push(piece);
    this.partBytes += piece.length;
  }

  private takeFrame(): Buffer {
    const frame = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
    this.parts = [];
    this.partBytes = 0;
    return frame;
  }

  /**
   * In MONITOR mode redis-server still runs commands (AUTH among them) and
   * answers them between the lines of its feed. Feed lines always start with
   * a timestamp, which no reply to AUTH, PING or QUIT does.
   */
  private monitorFrame(frame: Buffer): void {
    const head = this.state.queue.peek();
    if (head === null || MONITOR_LINE.test(frame.toString('latin1', 0, 32))) {
      this.out.toClient(frame);
    } else if (head === 'forward') {
      this.out.toClient(frame);
      this.state.queue.shift();
    } else {
      this.complete(frame);
    }
  }

  /** A whole frame for the expectation at the head of the queue. */
  private complete(frame: Buffer): void {
    const { queue } = this.state;
    const head = queue.peek() as Expectation;
    if (head.marker === true) {
      // Errors before the marker's PONG belong to the pub/sub command.
      if (isErrorFrame(frame)) {
        this.out.toClient(frame);
        return;
      }
      queue.shift();
      this.out.markerAnswered();
      return;
    }
    queue.shift();
    head.onReply?.(frame);
  }
}
