import type { Socket } from 'node:net';

import type { Metrics } from '../admin/metrics.js';
import type { Token, TokenSource } from '../auth/token-source.js';
import type { Logger } from '../log.js';
import { Kind, blockingTimeout } from '../resp/commands.js';
import { decodeFrame, ErrorReply } from '../resp/decode.js';
import { OK, encodeCommand, encodeError } from '../resp/encode.js';
import { ProtocolError } from '../resp/errors.js';
import { ReplyScanner } from '../resp/reply-scanner.js';
import { RequestScanner } from '../resp/request-scanner.js';
import type { Upstream } from '../upstream/dial.js';
import { UpstreamError } from '../upstream/errors.js';
import { BlockedCommand, isNullReply } from './blocking.js';
import { HELLO_NOAUTH, NOAUTH, WRONGPASS, parseHello, passwordMatches } from './client-auth.js';
import {
  ARRAY, CONFIRMATION_MAX_BYTES, PUSH, Subscriptions, isErrorFrame,
  notAllowedWhileSubscribed, pingReplyForSubscriber,
} from './pubsub.js';
import { ReplyQueue, type Expectation } from './reply-queue.js';

/** What a session needs from the rest of the proxy. */
export interface SessionContext {
  tokens: TokenSource;
  /** Close clients silent this long with nothing in flight; 0 = never. */
  idleTimeoutMs: number;
  metrics: Metrics;
  log: Logger;
  clientPassword?: string;
  /** An authenticated upstream connection (from the pool or freshly dialed). */
  acquire(): Promise<Upstream>;
  /** Takes back an upstream connection the session no longer needs. */
  release(upstream: Upstream, reusable: boolean): void;
  /** Asks the server, from another connection, to time out a blocked client. */
  unblock(clientId: number): Promise<void>;
  closed(session: Session): void;
}

const SIMPLE_STRING = 0x2b;
/** A line of the MONITOR feed: `+1700000000.123456 [0 127.0.0.1:5000] "GET" "k"`. */
const MONITOR_LINE = /^\+\d+\.\d+ \[/;

/** Client input buffered while the upstream is not ready, before reading pauses. */
const INPUT_HIGH_WATER = 1024 * 1024;
/** Delay before retrying a failed re-authentication. */
const REAUTH_RETRY_MS = 1000;

/** Endings after which the client may still read what was written to it. */
const GRACEFUL = new Set([
  'client_closed', 'client_quit', 'client_protocol_error', 'shutdown', 'upstream_unavailable',
  'idle_timeout',
]);

/**
 * A Session pairs one client connection with one upstream connection, so
 * that everything redis-server keeps per connection (SELECT, MULTI/WATCH,
 * subscriptions, CLIENT SETNAME, the RESP version, blocking) behaves exactly
 * as on a direct connection.
 *
 * Commands flow client -> upstream and replies back, as raw bytes; the
 * scanners only find frame boundaries. The reply queue records, per command
 * sent upstream, what to do with its reply, so that replies to the proxy's
 * own commands (AUTH at rotation, HELLO, marker PINGs) never reach the client
 * and the proxy's own answers (to AUTH, QUIT...) come out in order.
 *
 * The states that decide when AUTH may be injected: normal (at any command
 * boundary), in MULTI (after EXEC or DISCARD), blocked (unblock, AUTH,
 * reissue; see blocking.ts), subscribed (RESP3 upstream; see pubsub.ts),
 * monitor (AUTH is answered between the feed's lines, told apart by their timestamp).
 */
export class Session {
  private upstream: Upstream | null = null;
  private readonly requests = new RequestScanner();
  private readonly replies = new ReplyScanner();
  private readonly queue = new ReplyQueue();
  private readonly subscriptions = new Subscriptions();
  private readonly log: Logger;

  private clientAuthenticated: boolean;
  private clientProtocol = 2;
  private inMulti = false;
  private monitor = false;
  /** RESP2 client subscribed through a RESP3 upstream connection. */
  private translating = false;
  private blocked: BlockedCommand | null = null;
  /** A token waiting for a command boundary to be sent as AUTH. */
  private pendingToken: Token | null = null;
  private reauthTimer: NodeJS.Timeout | null = null;

  /** Client bytes not yet scanned; the first chunk from `inputPos`. */
  private input: Buffer[] = [];
  private inputPos = 0;
  private inputBytes = 0;
  /** Bytes of a command not complete yet and not forwarded. */
  private partial: Buffer[] = [];
  /** The command being scanned is a Plain one whose bytes go out as they come. */
  private streaming = false;
  /** A scanned command held back until the state allows handling it. */
  private deferred: { kind: Kind; args: Buffer[] | null; bytes: Buffer } | null = null;

  /** Reply frame being read whole (inspect, internal, push confirmation). */
  private frameParts: Buffer[] = [];
  private frameBytes = 0;
  private frameMode: 'forward' | 'collect' | 'push' | 'monitor' | 'unsolicited' = 'forward';

  private closing = false;
  /** The client half-closed: finish its replies, then close. */
  private clientEnded = false;
  private closedFlag = false;
  private readonly openedAt = Date.now();

  constructor(
    readonly id: string,
    readonly client: Socket,
    private readonly ctx: SessionContext,
  ) {
    this.log = ctx.log.child({ session: id });
    this.clientAuthenticated = ctx.clientPassword === undefined;
    client.setNoDelay(true);
    client.setKeepAlive(true, 30_000);
    client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    client.on('end', () => this.clientEnd());
    client.on('close', () => this.close('client_closed'));
    client.on('error', (err) => this.close('client_error', err.message));
    client.on('drain', () => this.upstream?.socket.resume());
    if (ctx.idleTimeoutMs > 0) {
      client.setTimeout(ctx.idleTimeoutMs);
      client.on('timeout', () => this.onIdleTimeout());
    }
    this.connect();
  }

  /** Number of replies the client is still owed. */
  get inFlight(): number {
    return this.queue.outstanding;
  }

  get idle(): boolean {
    return this.queue.empty && this.input.length === 0 && this.partial.length === 0;
  }

  /** Expiry of the token the upstream connection authenticated with. */
  get authExpiresAt(): number {
    return this.upstream?.authExpiresAt ?? Infinity;
  }

  private async connect(): Promise<void> {
    let upstream: Upstream;
    try {
      upstream = await this.ctx.acquire();
    } catch (err) {
      const message = err instanceof UpstreamError || (err as { code?: string }).code
        ? (err as Error).message
        : String(err);
      this.log.warn({ event: 'session_failed', reason: (err as UpstreamError).reason }, message);
      if (!this.closedFlag) {
        this.client.end(encodeError(`ERR redis-entra-proxy: ${message}`));
        this.close('upstream_unavailable');
      }
      return;
    }
    if (this.closedFlag) {
      this.ctx.release(upstream, true);
      return;
    }
    this.upstream = upstream;
    const socket = upstream.socket;
    socket.on('data', (chunk: Buffer) => this.onUpstreamData(chunk));
    socket.on('drain', () => this.client.resume());
    socket.on('error', (err) => this.upstreamClosed(err.message));
    socket.on('close', () => this.upstreamClosed());
    socket.resume();
    this.log.debug({ event: 'session_ready', upstreamClientId: upstream.clientId }, 'upstream ready');
    this.processInput();
  }

  // ---- client -> upstream -------------------------------------------------

  private clientEnd(): void {
    this.clientEnded = true;
    this.finishIfEnded();
  }

  /**
   * After the client half-closed: once every command it sent has been
   * answered, close. A command left incomplete can never complete and is
   * ignored, as redis-server ignores it.
   */
  private finishIfEnded(): void {
    if (this.clientEnded && this.queue.empty && this.input.length === 0 && !this.closedFlag) {
      this.close('client_closed');
    }
  }

  private onClientData(chunk: Buffer): void {
    if (this.closing) return;
    this.ctx.metrics.bytes.inc({ direction: 'client_to_upstream' }, chunk.length);
    this.input.push(chunk);
    this.inputBytes += chunk.length;
    this.processInput();
    if (this.inputBytes > INPUT_HIGH_WATER) this.client.pause();
  }

  /** True while client commands must wait in `input`. */
  private get held(): boolean {
    return this.upstream === null || this.blocked !== null || this.deferred !== null
      || this.closing;
  }

  private processInput(): void {
    if (this.deferred !== null && this.upstream !== null) {
      const { kind, args, bytes } = this.deferred;
      this.deferred = null;
      this.handle(kind, args, bytes);
    }
    while (this.input.length > 0 && !this.held) {
      const chunk = this.input[0];
      const done = this.scanChunk(chunk, this.inputPos);
      if (done < 0) return;
      if (done < chunk.length) {
        this.inputPos = done;
        break;
      }
      this.input.shift();
      this.inputPos = 0;
      this.inputBytes -= chunk.length;
    }
    if (this.inputBytes <= INPUT_HIGH_WATER && !this.closing) this.client.resume();
    this.finishIfEnded();
  }

  /**
   * Scans commands from `pos` and acts on them. Consecutive Plain commands
   * are written upstream as one slice of the chunk. Returns where scanning
   * stopped (chunk.length when all consumed), or -1 if the session closed.
   */
  private scanChunk(chunk: Buffer, pos: number): number {
    let fast = this.fastPath;
    let run = pos;

    while (pos < chunk.length && !this.held) {
      let end: number;
      try {
        end = this.requests.scan(chunk, pos);
      } catch (err) {
        if (run < pos) this.writeUpstream(chunk.subarray(run, pos));
        this.clientProtocolError(err as ProtocolError);
        return -1;
      }
      if (end < 0) {
        if (run < pos) this.writeUpstream(chunk.subarray(run, pos));
        this.partialCommand(chunk.subarray(pos), fast);
        return chunk.length;
      }
      const kind = this.requests.kind;
      if (this.streaming) {
        this.writeUpstream(chunk.subarray(pos, end));
        this.streaming = false;
        this.forwarded();
        if (this.pendingToken !== null) this.injectPendingAuth();
        run = end;
      } else if (kind === Kind.Plain && fast && this.partial.length === 0) {
        this.queue.forward();
        this.ctx.metrics.commands.inc();
      } else {
        if (run < pos) this.writeUpstream(chunk.subarray(run, pos));
        const piece = chunk.subarray(pos, end);
        const bytes = this.partial.length === 0 ? piece : Buffer.concat([...this.partial, piece]);
        this.partial = [];
        this.handle(kind, this.requests.args, bytes);
        if (this.closedFlag) return -1;
        fast = this.fastPath;
        run = end;
      }
      pos = end;
    }
    if (run < pos) this.writeUpstream(chunk.subarray(run, pos));
    return pos;
  }

  /** Plain commands can go upstream without a look at the session state. */
  private get fastPath(): boolean {
    return this.clientAuthenticated && !this.translating && !this.monitor;
  }

  /**
   * Bytes of a command that is not complete yet. A Plain command's bytes are
   * streamed as soon as its name is known, so that a large value never sits
   * in memory; anything the proxy may answer itself waits until complete.
   */
  private partialCommand(piece: Buffer, fast: boolean): void {
    if (this.streaming) {
      this.writeUpstream(piece);
      return;
    }
    this.partial.push(piece);
    if (fast && this.requests.named && this.requests.kind === Kind.Plain) {
      for (const part of this.partial) this.writeUpstream(part);
      this.partial = [];
      this.streaming = true;
    }
  }

  private forwarded(): void {
    this.queue.forward();
    this.ctx.metrics.commands.inc();
  }

  private writeUpstream(bytes: Buffer): void {
    const socket = this.upstream!.socket;
    if (!socket.write(bytes)) this.client.pause();
  }

  /** Acts on one complete command that is not a plain forward. */
  private handle(kind: Kind, args: Buffer[] | null, bytes: Buffer): void {
    if (kind === Kind.Empty) return;

    if (!this.clientAuthenticated && kind !== Kind.Auth && kind !== Kind.Hello
      && kind !== Kind.Quit) {
      this.answer(Buffer.from(NOAUTH, 'latin1'));
      return;
    }
    if (this.translating && kind !== Kind.Subscribe && kind !== Kind.Unsubscribe) {
      if (!this.subscriberMayRun(kind, args, bytes)) return;
    }

    switch (kind) {
      case Kind.Plain:
        this.writeUpstream(bytes);
        this.forwarded();
        return;
      case Kind.Auth:
        this.clientAuth(args!);
        return;
      case Kind.Hello:
        this.clientHello(args!);
        return;
      case Kind.Quit:
        this.answer(OK, 'client_quit');
        return;
      case Kind.Multi:
        this.inMulti = true;
        this.writeUpstream(bytes);
        this.forwarded();
        return;
      case Kind.Exec:
      case Kind.Discard:
        this.inMulti = false;
        this.writeUpstream(bytes);
        this.forwarded();
        this.injectPendingAuth();
        return;
      case Kind.Reset:
        this.reset(bytes);
        return;
      case Kind.Subscribe:
      case Kind.Unsubscribe:
        this.pubsub(bytes);
        return;
      case Kind.Ping:
        this.ping(bytes);
        return;
      case Kind.Blocking:
      case Kind.StreamRead:
        this.blocking(args!, bytes);
        return;
      case Kind.Monitor:
        this.writeUpstream(bytes);
        this.ctx.metrics.commands.inc();
        this.expect({
          kind: 'inspect',
          onReply: (frame) => {
            if (!isErrorFrame(frame)) this.monitor = true;
            this.toClient(frame);
          },
        });
        return;
      case Kind.Client:
        this.clientCommand(args!, bytes);
        return;
      case Kind.Replication:
        this.answer(encodeError('ERR redis-entra-proxy does not relay replication (SYNC/PSYNC)'));
        return;
      default:
        this.writeUpstream(bytes);
        this.forwarded();
    }
  }

  private clientAuth(args: Buffer[]): void {
    if (args.length < 2 || args.length > 3) {
      this.answer(encodeError("ERR wrong number of arguments for 'auth' command"));
      return;
    }
    const password = this.ctx.clientPassword;
    if (password === undefined || passwordMatches(args[args.length - 1], password)) {
      this.clientAuthenticated = true;
      this.answer(OK);
      return;
    }
    this.log.warn({ event: 'client_auth_failed' }, 'client sent a wrong password');
    this.answer(Buffer.from(WRONGPASS, 'latin1'));
  }

  private clientHello(args: Buffer[]): void {
    const hello = parseHello(args);
    if (hello.error !== undefined) {
      this.answer(Buffer.from(hello.error, 'latin1'));
      return;
    }
    const password = this.ctx.clientPassword;
    if (hello.password !== undefined && password !== undefined) {
      if (!passwordMatches(hello.password, password)) {
        this.answer(Buffer.from(WRONGPASS, 'latin1'));
        return;
      }
      this.clientAuthenticated = true;
    }
    if (!this.clientAuthenticated) {
      this.answer(Buffer.from(HELLO_NOAUTH, 'latin1'));
      return;
    }
    const previous = this.clientProtocol;
    const version = hello.protover;
    // Set at once: commands pipelined behind HELLO are handled before its reply.
    if (version === 2 || version === 3) this.clientProtocol = version;
    this.writeUpstream(encodeCommand(hello.forward));
    this.ctx.metrics.commands.inc();
    this.expect({
      kind: 'inspect',
      onReply: (frame) => {
        if (isErrorFrame(frame)) this.clientProtocol = previous;
        this.toClient(frame);
      },
    });
  }

  private clientCommand(args: Buffer[], bytes: Buffer): void {
    const sub = args[1]?.toString('latin1').toUpperCase();
    const mode = args[2]?.toString('latin1').toUpperCase();
    if (sub === 'REPLY' && (mode === 'OFF' || mode === 'SKIP')) {
      this.answer(encodeError(
        'ERR CLIENT REPLY OFF/SKIP is not supported by redis-entra-proxy, which needs every '
          + 'reply to keep the connection authenticated',
      ));
      return;
    }
    this.writeUpstream(bytes);
    this.forwarded();
  }

  /** RESET logs the upstream connection out too: authenticate it again at once. */
  private reset(bytes: Buffer): void {
    this.writeUpstream(bytes);
    this.forwarded();
    this.inMulti = false;
    this.translating = false;
    this.monitor = false;
    this.subscriptions.clear();
    this.clientProtocol = 2;
    if (this.ctx.clientPassword !== undefined) this.clientAuthenticated = false;
    const token = this.ctx.tokens.current();
    if (token !== null) this.sendAuth(token);
  }

  private ping(bytes: Buffer): void {
    this.writeUpstream(bytes);
    this.ctx.metrics.commands.inc();
    if (this.translating) {
      this.expect({ kind: 'inspect', onReply: (frame) => this.toClient(pingReplyForSubscriber(frame)) });
    } else {
      this.queue.forward();
    }
  }

  /**
   * SUBSCRIBE and friends. A RESP2 client's upstream moves to RESP3 first.
   * Each is followed by a marker PING: a subscribe command has no reply of its
   * own (only push confirmations), except an error; an error that arrives
   * before the marker's PONG belongs to the command.
   */
  private pubsub(bytes: Buffer): void {
    if (this.clientProtocol === 2 && !this.translating) {
      this.translating = true;
      this.internal(['HELLO', '3'], (reply) => {
        if (reply instanceof ErrorReply) {
          this.log.error({ event: 'resp3_switch_failed' }, reply.message);
        }
      });
    }
    this.writeUpstream(bytes);
    this.ctx.metrics.commands.inc();
    this.writeUpstream(encodeCommand(['PING']));
    this.expect({ kind: 'internal', marker: true });
  }

  /**
   * A RESP2 client in subscribe mode sent something other than a (un)subscribe.
   * Wait until every earlier subscribe command is confirmed (no marker left),
   * then: still subscribed -> what redis allows in that state; not subscribed
   * -> back to RESP2 upstream and carry on. Returns true to go on handling.
   */
  private subscriberMayRun(kind: Kind, args: Buffer[] | null, bytes: Buffer): boolean {
    if (this.queue.some((e) => e.marker === true)) {
      this.deferred = { kind, args, bytes };
      return false;
    }
    if (!this.subscriptions.active) {
      this.translating = false;
      this.internal(['HELLO', '2'], () => undefined);
      return true;
    }
    if (kind === Kind.Ping || kind === Kind.Quit || kind === Kind.Reset) return true;
    const name = args?.[0] ?? bytes.subarray(0, 0);
    this.answer(notAllowedWhileSubscribed(name));
    return false;
  }

  private blocking(args: Buffer[], bytes: Buffer): void {
    const timeout = this.inMulti ? null : blockingTimeout(args);
    this.writeUpstream(bytes);
    if (timeout === null) {
      this.forwarded();
      return;
    }
    this.ctx.metrics.commands.inc();
    this.blocked = BlockedCommand.start(args, timeout);
    this.expect({ kind: 'inspect', onReply: (frame) => this.blockingReply(frame) });
  }

  private blockingReply(frame: Buffer): void {
    const blocked = this.blocked!;
    if (blocked.unblockRequested && isNullReply(frame)) {
      const again = blocked.reissue();
      if (again !== null) {
        this.ctx.metrics.unblocks.inc({ outcome: 'reissued' });
        this.log.debug({ event: 'blocking_reissued' }, 'blocking command resumed after re-auth');
        this.blocked = again.next;
        this.writeUpstream(again.bytes);
        this.expect({ kind: 'inspect', onReply: (f) => this.blockingReply(f) });
        return;
      }
    } else if (blocked.unblockRequested) {
      this.ctx.metrics.unblocks.inc({ outcome: 'served' });
    }
    this.blocked = null;
    this.toClient(frame);
    setImmediate(() => this.processInput());
  }

  // ---- re-authentication --------------------------------------------------

  /**
   * Called by the rotation with a new token. AUTH goes out at the next moment
   * redis-server will run it right away and answer it to us alone.
   */
  reauthenticate(token: Token): void {
    if (this.closedFlag || this.upstream === null) return;
    if (token.expiresAt <= this.upstream.authExpiresAt) return;
    this.pendingToken = token;
    this.injectPendingAuth();
  }

  private injectPendingAuth(): void {
    const token = this.pendingToken;
    if (token === null || this.upstream === null || this.closedFlag) return;
    if (this.inMulti) {
      this.deferAuth('transaction');
      return;
    }
    // Mid-command: scanChunk calls back when the command is complete.
    if (this.streaming) return;
    this.pendingToken = null;
    this.sendAuth(token);
    const blocked = this.blocked;
    if (blocked !== null && !blocked.unblockRequested
      && blocked.outlasts(this.upstream.authExpiresAt)) {
      blocked.unblockRequested = true;
      this.ctx.unblock(this.upstream.clientId).catch((err: Error) => {
        this.ctx.metrics.unblocks.inc({ outcome: 'unblock_failed' });
        this.log.error({ event: 'unblock_failed' }, err.message);
      });
    }
  }

  private deferAuth(state: string): void {
    this.ctx.metrics.reauths.inc({ result: 'deferred' });
    this.log.debug({ event: 'reauth_deferred', state }, 're-authentication waits');
  }

  private sendAuth(token: Token): void {
    this.internal(['AUTH', token.username, token.value], (reply) => {
      if (!(reply instanceof ErrorReply)) {
        if (this.upstream !== null) this.upstream.authExpiresAt = token.expiresAt;
        this.ctx.metrics.reauths.inc({ result: 'success' });
        return;
      }
      this.ctx.metrics.reauths.inc({ result: 'failure' });
      this.log.error({ event: 'reauth_failed', username: token.username }, reply.message);
      this.retryReauth();
    });
  }

  private retryReauth(): void {
    if (this.reauthTimer !== null || this.closedFlag) return;
    this.reauthTimer = setTimeout(() => {
      this.reauthTimer = null;
      const token = this.ctx.tokens.current();
      if (token === null) return;
      this.pendingToken = token;
      this.injectPendingAuth();
    }, REAUTH_RETRY_MS);
    this.reauthTimer.unref();
  }

  /** Sends one of the proxy's own commands; its reply never reaches the client. */
  private internal(args: string[], onReply: (reply: unknown) => void): void {
    this.writeUpstream(encodeCommand(args));
    this.expect({
      kind: 'internal',
      onReply: (frame) => {
        let value: unknown;
        try {
          value = decodeFrame(frame);
        } catch (err) {
          value = new ErrorReply((err as Error).message);
        }
        onReply(value);
      },
    });
  }

  // ---- upstream -> client -------------------------------------------------

  private onUpstreamData(chunk: Buffer): void {
    this.ctx.metrics.bytes.inc({ direction: 'upstream_to_client' }, chunk.length);
    this.client.cork();
    try {
      this.scanReplies(chunk);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.ctx.metrics.protocolErrors.inc({ side: 'upstream' });
      this.close('upstream_protocol_error', err.message);
    } finally {
      this.client.uncork();
    }
  }

  private scanReplies(chunk: Buffer): void {
    let pos = 0;
    // Start of bytes to pass to the client as they are, or -1.
    let run = -1;
    const flush = (to: number): void => {
      if (run >= 0 && run < to) this.toClient(chunk.subarray(run, to));
      run = -1;
    };

    while (pos < chunk.length) {
      if (this.replies.atBoundary) {
        this.frameMode = this.modeFor(chunk[pos]);
        if (this.frameMode === 'push' && this.translating) chunk[pos] = ARRAY;
      }
      const end = this.replies.scan(chunk, pos);
      const stop = end < 0 ? chunk.length : end;
      const mode = this.frameMode;
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
        this.queue.shift();
      } else if (mode === 'push') {
        if (this.frameParts.length > 0 && this.frameBytes <= CONFIRMATION_MAX_BYTES) {
          this.subscriptions.observe(Buffer.concat(this.frameParts));
        }
        this.frameParts = [];
        this.frameBytes = 0;
      } else if (mode === 'collect') {
        this.completeCollected(this.takeFrame());
        if (this.closedFlag) return;
      } else if (mode === 'monitor') {
        this.monitorFrame(this.takeFrame());
      }
      const head = this.queue.peek();
      if (head !== null && head !== 'forward' && head.kind === 'local') {
        flush(pos);
        this.emitLocalAnswers();
        if (this.closedFlag) return;
      }
    }
    flush(chunk.length);
    this.finishIfEnded();
  }

  private modeFor(firstByte: number): Session['frameMode'] {
    if (firstByte === PUSH) return 'push';
    if (this.monitor && firstByte === SIMPLE_STRING) return 'monitor';
    const head = this.queue.peek();
    if (head === 'forward') return 'forward';
    // Only MONITOR output arrives with nothing expected; anything else is
    // passed on too, since the client is the only one who could make sense of it.
    if (head === null) return 'unsolicited';
    return 'collect';
  }

  private collect(piece: Buffer): void {
    if (this.frameMode === 'push' && this.frameBytes + piece.length > CONFIRMATION_MAX_BYTES) {
      this.frameBytes = CONFIRMATION_MAX_BYTES + 1;
      this.frameParts = [];
      return;
    }
    this.frameParts.push(piece);
    this.frameBytes += piece.length;
  }

  private takeFrame(): Buffer {
    const frame = this.frameParts.length === 1 ? this.frameParts[0] : Buffer.concat(this.frameParts);
    this.frameParts = [];
    this.frameBytes = 0;
    return frame;
  }

  /**
   * In MONITOR mode redis-server still runs commands (AUTH among them) and
   * answers them between the lines of its feed. Feed lines always start with
   * a timestamp, which no reply to AUTH, PING or QUIT does.
   */
  private monitorFrame(frame: Buffer): void {
    const head = this.queue.peek();
    if (head === null || MONITOR_LINE.test(frame.toString('latin1', 0, 32))) {
      this.toClient(frame);
    } else if (head === 'forward') {
      this.toClient(frame);
      this.queue.shift();
    } else {
      this.completeCollected(frame);
    }
  }

  private completeCollected(frame: Buffer): void {
    const head = this.queue.peek() as Expectation;

    if (head.marker === true) {
      if (isErrorFrame(frame)) {
        this.toClient(frame);
        return;
      }
      this.queue.shift();
      if (this.deferred !== null) setImmediate(() => this.processInput());
      return;
    }
    this.queue.shift();
    head.onReply?.(frame);
  }

  /** Writes the proxy's own answers that have reached the head of the queue. */
  private emitLocalAnswers(): void {
    for (let head = this.queue.peek(); head !== null && head !== 'forward'; head = this.queue.peek()) {
      if (head.kind !== 'local') return;
      this.queue.shift();
      this.client.write(head.bytes!);
      if (head.closeReason !== undefined) {
        this.closing = true;
        this.client.end();
        this.close(head.closeReason);
        return;
      }
    }
  }

  /** Replies to the client from the proxy, in order with the upstream's replies. */
  private answer(bytes: Buffer, closeReason?: string): void {
    this.queue.push({ kind: 'local', bytes, closeReason });
    if (this.queue.peek() !== 'forward') this.emitLocalAnswers();
  }

  private expect(expectation: Expectation): void {
    this.queue.push(expectation);
  }

  private toClient(bytes: Buffer): void {
    if (!this.client.write(bytes)) this.upstream?.socket.pause();
  }

  // ---- endings ------------------------------------------------------------

  /**
   * Like redis-server's `timeout`: subscribers and blocked clients are waiting
   * on purpose and are never idle.
   */
  private onIdleTimeout(): void {
    if (this.idle && !this.subscriptions.active && this.blocked === null && !this.monitor) {
      this.close('idle_timeout');
    }
  }

  private clientProtocolError(err: ProtocolError): void {
    this.ctx.metrics.protocolErrors.inc({ side: 'client' });
    this.log.warn({ event: 'client_protocol_error' }, err.message);
    this.closing = true;
    this.answer(encodeError(`ERR ${err.message}`), 'client_protocol_error');
  }

  private upstreamClosed(detail?: string): void {
    if (this.closedFlag) return;
    const expired = this.upstream !== null && Date.now() >= this.upstream.authExpiresAt - 1000;
    this.close(expired ? 'upstream_token_expired' : 'upstream_closed', detail);
  }

  /** Ends the session once; idempotent. */
  close(reason: string, detail?: string): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.closing = true;
    if (this.reauthTimer !== null) clearTimeout(this.reauthTimer);
    if (!this.client.destroyed) {
      if (GRACEFUL.has(reason)) this.client.end();
      else this.client.destroy();
    }
    const upstream = this.upstream;
    if (upstream !== null) {
      upstream.socket.removeAllListeners('data');
      upstream.socket.removeAllListeners('drain');
      upstream.socket.removeAllListeners('close');
      upstream.socket.removeAllListeners('error');
      const reusable = reason === 'client_closed' || reason === 'client_quit';
      this.ctx.release(upstream, reusable && this.reusable());
    }
    const clean = reason === 'client_closed' || reason === 'client_quit' || reason === 'shutdown';
    const fields = {
      event: 'session_closed',
      reason,
      durationMs: Date.now() - this.openedAt,
      ...(detail !== undefined ? { detail } : {}),
    };
    if (clean) this.log.debug(fields, 'session closed');
    else this.log.warn(fields, 'session closed');
    this.ctx.metrics.sessionsClosed.inc({ reason });
    this.ctx.closed(this);
  }

  /** Whether the upstream connection can serve another client after RESET. */
  private reusable(): boolean {
    return this.queue.empty && this.requests.atBoundary && !this.streaming && !this.monitor
      && this.blocked === null && this.upstream !== null && !this.upstream.socket.destroyed;
  }

  /** For graceful shutdown: close now if nothing is in flight. */
  closeIfIdle(): boolean {
    if (!this.idle) return false;
    this.close('shutdown');
    return true;
  }
}
