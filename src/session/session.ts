import type { Socket } from 'node:net';

import type { Metrics } from '../admin/metrics.js';
import type { Token, TokenSource } from '../auth/token-source.js';
import type { Logger } from '../log.js';
import { Kind } from '../resp/commands.js';
import { decodeFrame, ErrorReply } from '../resp/decode.js';
import { encodeCommand, encodeError } from '../resp/encode.js';
import { ProtocolError } from '../resp/errors.js';
import { RequestScanner } from '../resp/request-scanner.js';
import type { Upstream } from '../upstream/dial.js';
import type { Reuse } from '../upstream/pool.js';
import { UpstreamError } from '../upstream/errors.js';
import { CommandRouter } from './command-router.js';
import type { Expectation } from './reply-queue.js';
import { Reauthentication } from './reauth.js';
import { ReplyRouter } from './reply-router.js';
import { SessionState } from './state.js';

/** What a session needs from the rest of the proxy. */
export interface SessionContext {
  tokens: TokenSource;
  metrics: Metrics;
  log: Logger;
  clientPassword?: string;
  /** Close clients silent this long with nothing in flight; 0 = never. */
  idleTimeoutMs: number;
  /** An authenticated upstream connection (from the pool or freshly dialed). */
  acquire(): Promise<Upstream>;
  /** Takes back an upstream connection the session no longer needs. */
  release(upstream: Upstream, reuse: Reuse): void;
  closed(session: Session): void;
}

/** Client input buffered while the upstream is not ready, before reading pauses. */
const INPUT_HIGH_WATER = 1024 * 1024;
/**
 * Largest command held whole: those the proxy inspects or answers itself
 * (AUTH, HELLO, PING, SUBSCRIBE, blocking commands...) and, before a client
 * password was given, all of them. Plain commands stream at any size.
 */
const MAX_HELD_COMMAND = 1024 * 1024;
/**
 * The proxy's own answers waiting in the client socket, beyond which reading
 * from the client pauses until it drains. Forwarded replies are held back
 * upstream instead (the upstream socket pauses), as redis-server would hold
 * them; answers the proxy makes itself would otherwise grow without bound
 * for a client that sends and never reads.
 */
const OUTPUT_HIGH_WATER = 1024 * 1024;

/** Endings after which the client may still read what was written to it. */
const GRACEFUL = new Set([
  'client_closed',
  'client_quit',
  'client_protocol_error',
  'shutdown',
  'upstream_unavailable',
  'idle_timeout',
]);

/**
 * A Session pairs one client connection with one upstream connection, so
 * that everything redis-server keeps per connection (SELECT, MULTI/WATCH,
 * subscriptions, CLIENT SETNAME, the RESP version, blocking) behaves exactly
 * as on a direct connection.
 *
 * Commands flow client -> upstream (here and in command-router.ts) and
 * replies back (reply-router.ts), as raw bytes; the scanners only find frame
 * boundaries. The reply queue records, per command sent upstream, what to do
 * with its reply, so that replies to the proxy's own commands (AUTH at
 * rotation, HELLO, marker PINGs) never reach the client and the proxy's own
 * answers (to AUTH, QUIT...) come out in order.
 *
 * When AUTH may be injected depends on the state (docs/rotation.md): normal
 * (at any command boundary), in MULTI (after EXEC or DISCARD), blocked
 * (behind the current slice of the wait; see blocking.ts), subscribed (the
 * upstream speaks RESP3; see pubsub.ts), monitor (AUTH is answered between
 * the feed's lines).
 */
export class Session {
  private upstream: Upstream | null = null;
  private readonly state: SessionState;
  private readonly requests = new RequestScanner();
  private readonly commands: CommandRouter;
  private readonly replies: ReplyRouter;
  private logger: Logger | null = null;

  private readonly auth: Reauthentication;

  /** Client bytes not yet scanned; the first chunk from `inputPos`. */
  private input: Buffer[] = [];
  private inputPos = 0;
  private inputBytes = 0;
  /** Bytes of a command not complete yet and not forwarded. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** The command being scanned is a Plain one whose bytes go out as they come. */
  private streaming = false;

  private closing = false;
  /** The upstream socket's write buffer is full: client reading stays paused until it drains. */
  private upstreamFull = false;
  /** The proxy's own answers fill the client socket: reading pauses until it drains. */
  private clientFull = false;
  /** The client half-closed: finish its replies, then close. */
  private clientEnded = false;
  private closedFlag = false;
  // The session's listeners on its upstream socket, removed one by one at
  // close (see close()).
  private readonly onUpstreamChunk = (chunk: Buffer): void => this.onUpstreamData(chunk);
  private readonly onUpstreamDrain = (): void => {
    this.upstreamFull = false;
    this.resumeClient();
  };
  private readonly onUpstreamError = (err: Error): void => this.upstreamClosed(err.message);
  private readonly onUpstreamClose = (): void => this.upstreamClosed();
  private readonly openedAt = Date.now();

  constructor(
    readonly id: string,
    readonly client: Socket,
    private readonly ctx: SessionContext,
  ) {
    this.state = new SessionState(ctx.clientPassword === undefined);
    this.auth = new Reauthentication(
      {
        upstream: () => this.upstream,
        closed: () => this.closedFlag,
        inTransaction: () => this.state.inMulti,
        midCommand: () => this.streaming,
        internal: (args, onReply) => this.internal(args, onReply),
        failBeforeReady: (message) => this.failBeforeReady(message),
      },
      ctx.tokens,
      ctx.metrics,
      () => this.log,
    );
    this.commands = new CommandRouter(
      this.state,
      {
        writeUpstream: (bytes) => this.writeUpstream(bytes),
        forwarded: () => this.forwarded(),
        inspected: (expectation) => this.inspected(expectation),
        answer: (bytes, closeReason) => this.answer(bytes, closeReason),
        toClient: (bytes) => this.toClient(bytes),
        internal: (args, onReply) => this.internal(args, onReply),
        authenticateAgain: () => this.auth.afterReset(),
        transactionEnded: () => this.auth.flush(),
        sliceEnd: () => this.auth.sliceEnd(),
        resume: () => setImmediate(() => this.processInput()),
      },
      {
        clientPassword: ctx.clientPassword,
        metrics: ctx.metrics,
        log: () => this.log,
      },
    );
    this.replies = new ReplyRouter(this.state, {
      toClient: (bytes) => this.toClient(bytes),
      emitLocalAnswers: () => this.emitLocalAnswers(),
      markerAnswered: () => {
        if (this.state.deferred !== null) setImmediate(() => this.processInput());
      },
      isClosed: () => this.closedFlag,
    });

    client.setNoDelay(true);
    client.setKeepAlive(true, 30_000);
    client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    client.on('end', () => this.clientEnd());
    client.on('close', () => this.close('client_closed'));
    client.on('error', (err) => this.close('client_error', err.message));
    client.on('drain', () => {
      this.upstream?.socket.resume();
      if (this.clientFull) {
        this.clientFull = false;
        this.resumeClient();
      }
    });
    if (ctx.idleTimeoutMs > 0) {
      client.setTimeout(ctx.idleTimeoutMs);
      client.on('timeout', () => this.onIdleTimeout());
    }
    void this.connect();
  }

  /**
   * The session's logger, made on first use: most sessions of short-lived
   * clients log nothing at the default level, and a child logger per
   * connection is a measurable share of accepting one.
   */
  private get log(): Logger {
    return (this.logger ??= this.ctx.log.child({ session: this.id }));
  }

  /** Nothing in flight: no reply owed, no client byte waiting. */
  get idle(): boolean {
    return this.state.queue.empty && this.input.length === 0 && this.partial.length === 0;
  }

  private async connect(): Promise<void> {
    let upstream: Upstream;
    try {
      upstream = await this.ctx.acquire();
    } catch (err) {
      const message = (err as Error).message ?? String(err);
      const reason = err instanceof UpstreamError ? err.reason : 'unknown';
      this.log.warn({ event: 'session_failed', reason }, message);
      if (!this.closedFlag) {
        this.client.end(encodeError(`ERR redis-entra-proxy: ${message}`));
        this.close('upstream_unavailable');
      }
      return;
    }
    if (this.closedFlag) {
      // Unused: it goes back as it came, reset or still to be reset.
      this.ctx.release(upstream, 'clean');
      return;
    }
    this.upstream = upstream;
    const socket = upstream.socket;
    socket.on('data', this.onUpstreamChunk);
    socket.on('drain', this.onUpstreamDrain);
    socket.on('error', this.onUpstreamError);
    socket.on('close', this.onUpstreamClose);
    socket.resume();
    if (this.ctx.log.isLevelEnabled('debug')) {
      this.log.debug(
        { event: 'session_ready', upstreamClientId: upstream.clientId },
        'upstream ready',
      );
    }
    // The client's first commands are usually waiting already: they go out
    // in the same write as a RESET and AUTH the connection may need.
    socket.cork();
    if (upstream.mustReset === true) {
      upstream.mustReset = false;
      this.auth.resetReused();
    }
    // A rotation that ran while this connection was being dialed or sat in
    // the pool on its way here did not reach it.
    const token = this.ctx.tokens.current();
    if (token !== null && !this.closedFlag) this.auth.offer(token);
    if (!this.closedFlag) this.processInput();
    socket.uncork();
  }

  private failBeforeReady(message: string): void {
    this.log.warn({ event: 'session_failed', reason: 'reset_failed' }, message);
    if (this.closedFlag) return;
    this.client.write(encodeError(`ERR redis-entra-proxy: ${message}`));
    this.close('upstream_unavailable');
  }

  // ---- client -> upstream -------------------------------------------------

  private onClientData(chunk: Buffer): void {
    if (this.closing) return;
    this.ctx.metrics.traffic.clientBytes += chunk.length;
    this.input.push(chunk);
    this.inputBytes += chunk.length;
    this.processInput();
    if (this.inputBytes > INPUT_HIGH_WATER) this.client.pause();
  }

  /** True while client commands must wait in `input`. */
  private get held(): boolean {
    return (
      this.upstream === null ||
      this.state.blocked !== null ||
      this.state.deferred !== null ||
      this.closing
    );
  }

  private processInput(): void {
    const deferred = this.state.deferred;
    if (deferred !== null && this.upstream !== null && !this.closing) {
      this.state.deferred = null;
      this.commands.handle(deferred.kind, deferred.args, deferred.bytes);
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
    this.resumeClient();
    this.finishIfEnded();
  }

  /** Reads from the client again unless something still holds it back. */
  private resumeClient(): void {
    const full = this.upstreamFull || this.clientFull;
    if (this.inputBytes <= INPUT_HIGH_WATER && !full && !this.closing) this.client.resume();
  }

  /**
   * Scans commands from `pos` and acts on them. Consecutive Plain commands
   * are written upstream as one slice of the chunk, without copying. Returns
   * where scanning stopped (chunk.length when all consumed), or -1 if the
   * session closed.
   */
  private scanChunk(chunk: Buffer, pos: number): number {
    let fast = this.state.fastPath;
    let run = pos;
    this.requests.unauthenticated = !this.state.clientAuthenticated;

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
        return this.partialCommand(chunk.subarray(pos), fast) ? chunk.length : -1;
      }
      const kind = this.requests.kind;
      if (this.streaming) {
        this.writeUpstream(chunk.subarray(pos, end));
        this.streaming = false;
        this.forwarded();
        this.auth.flush();
        run = end;
      } else if (kind === Kind.Plain && fast && this.partial.length === 0) {
        this.forwarded();
      } else {
        if (run < pos) this.writeUpstream(chunk.subarray(run, pos));
        const piece = chunk.subarray(pos, end);
        const bytes = this.partial.length === 0 ? piece : Buffer.concat([...this.partial, piece]);
        this.clearPartial();
        this.commands.handle(kind, this.requests.args, bytes);
        if (this.closedFlag) return -1;
        fast = this.state.fastPath;
        // AUTH, HELLO or RESET may have changed which limits apply.
        this.requests.unauthenticated = !this.state.clientAuthenticated;
        run = end;
      }
      pos = end;
    }
    if (run < pos) this.writeUpstream(chunk.subarray(run, pos));
    return pos;
  }

  /**
   * Bytes of a command that is not complete yet. A Plain command's bytes are
   * streamed as soon as its name is known, so that a large value never sits
   * in memory; anything the proxy may answer itself waits until complete.
   */
  private partialCommand(piece: Buffer, fast: boolean): boolean {
    if (this.streaming) {
      this.writeUpstream(piece);
      return true;
    }
    this.partial.push(piece);
    this.partialBytes += piece.length;
    if (fast && this.requests.named && this.requests.kind === Kind.Plain) {
      for (const part of this.partial) this.writeUpstream(part);
      this.clearPartial();
      this.streaming = true;
    } else if (this.partialBytes > MAX_HELD_COMMAND) {
      this.clientProtocolError(
        new ProtocolError('command too long for redis-entra-proxy to inspect (over 1 MiB)'),
      );
      return false;
    }
    return true;
  }

  private clearPartial(): void {
    this.partial = [];
    this.partialBytes = 0;
  }

  private forwarded(): void {
    this.state.queue.forward();
    this.ctx.metrics.traffic.commands++;
  }

  private inspected(expectation: Expectation): void {
    this.state.queue.push(expectation);
    this.ctx.metrics.traffic.commands++;
  }

  private writeUpstream(bytes: Buffer): void {
    if (!this.upstream!.socket.write(bytes)) {
      this.upstreamFull = true;
      this.client.pause();
    }
  }

  // ---- re-authentication --------------------------------------------------

  /** Called by the rotation with a new token (see reauth.ts). */
  reauthenticate(token: Token): void {
    this.auth.offer(token);
  }

  /** Sends one of the proxy's own commands; its reply never reaches the client. */
  private internal(args: ReadonlyArray<string | Buffer>, onReply: (reply: unknown) => void): void {
    this.writeUpstream(encodeCommand(args));
    this.state.queue.push({
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
    this.ctx.metrics.traffic.upstreamBytes += chunk.length;
    try {
      this.replies.route(chunk);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.ctx.metrics.protocolErrors.inc({ side: 'upstream' });
      this.close('upstream_protocol_error', err.message);
    }
    this.finishIfEnded();
  }

  /** Writes the proxy's own answers that have reached the head of the queue. */
  private emitLocalAnswers(): void {
    const { queue } = this.state;
    for (let head = queue.peek(); head !== null && head !== 'forward'; head = queue.peek()) {
      if (head.kind !== 'local') return;
      queue.shift();
      this.client.write(head.bytes!);
      if (this.client.writableLength > OUTPUT_HIGH_WATER && !this.clientFull) {
        this.clientFull = true;
        this.client.pause();
      }
      if (head.closeReason !== undefined) {
        this.closing = true;
        this.close(head.closeReason);
        return;
      }
    }
  }

  /** Replies to the client from the proxy, in order with the upstream's replies. */
  private answer(bytes: Buffer, closeReason?: string): void {
    this.state.queue.push({ kind: 'local', bytes, closeReason });
    if (this.state.queue.peek() !== 'forward') this.emitLocalAnswers();
  }

  private toClient(bytes: Buffer): void {
    if (!this.client.write(bytes)) this.upstream?.socket.pause();
  }

  // ---- endings ------------------------------------------------------------

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
    if (this.clientEnded && this.state.queue.empty && this.input.length === 0) {
      this.close('client_closed');
    }
  }

  /**
   * Like redis-server's `timeout`: subscribers and blocked clients are waiting
   * on purpose and are never idle.
   */
  private onIdleTimeout(): void {
    const { subscriptions, blocked, monitor } = this.state;
    if (this.idle && !subscriptions.active && blocked === null && !monitor) {
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
    this.auth.stop();
    if (!this.client.destroyed) {
      if (GRACEFUL.has(reason)) this.client.end();
      else this.client.destroy();
    }
    const upstream = this.upstream;
    if (upstream !== null) {
      // Only our own: the proxy counts open connections with a listener of
      // its own, and a pooled socket must not keep this session alive.
      const socket = upstream.socket;
      socket.off('data', this.onUpstreamChunk);
      socket.off('drain', this.onUpstreamDrain);
      socket.off('error', this.onUpstreamError);
      socket.off('close', this.onUpstreamClose);
      const reusable = reason === 'client_closed' || reason === 'client_quit';
      this.ctx.release(upstream, reusable ? this.reuse() : 'close');
    }
    const clean = reason === 'client_closed' || reason === 'client_quit' || reason === 'shutdown';
    const fields = {
      event: 'session_closed',
      reason,
      durationMs: Date.now() - this.openedAt,
      ...(detail !== undefined ? { detail } : {}),
    };
    // Clean endings are routine (legacy clients often connect per request):
    // debug, so that info stays readable; aborts are warnings.
    if (!clean) this.log.warn(fields, 'session closed');
    else if (this.ctx.log.isLevelEnabled('debug')) this.log.debug(fields, 'session closed');
    this.ctx.metrics.sessionsClosed.inc({ reason });
    this.ctx.closed(this);
  }

  /**
   * Whether the upstream connection can serve another client, and how: not
   * with a reply or a command half-way, nor while MONITOR or a blocking
   * command holds it; as it is if the client changed nothing on it; else
   * reset by the pool at once unless the state is quiet.
   */
  private reuse(): Reuse {
    const { queue, monitor, blocked } = this.state;
    const usable =
      queue.empty &&
      this.requests.atBoundary &&
      this.replies.atBoundary &&
      !this.streaming &&
      !monitor &&
      blocked === null &&
      this.upstream !== null &&
      !this.upstream.socket.destroyed;
    if (!usable) return 'close';
    if (!this.state.quiet) return 'reset';
    return this.state.connectionChanged ? 'quiet' : 'clean';
  }

  /** For graceful shutdown: close now if nothing is in flight. */
  closeIfIdle(): boolean {
    if (!this.idle) return false;
    this.close('shutdown');
    return true;
  }
}
