import type { Metrics } from '../admin/metrics.js';
import type { Logger } from '../log.js';
import { Kind, blockingTimeout, changesConnection, streamEnds } from '../resp/commands.js';
import { ErrorReply } from '../resp/decode.js';
import { OK, encodeCommand, encodeError } from '../resp/encode.js';
import { BlockedCommand } from './blocking.js';
import { HELLO_NOAUTH, NOAUTH, WRONGPASS, parseHello, passwordMatches } from './client-auth.js';
import { isErrorFrame, notAllowedWhileSubscribed, pingReplyForSubscriber } from './pubsub.js';
import type { Expectation } from './reply-queue.js';
import type { SessionState } from './state.js';

/** What the command router needs from its session. */
export interface CommandIO {
  writeUpstream(bytes: Buffer): void;
  /** A command went upstream; its reply is forwarded as it is. */
  forwarded(): void;
  /** A command went upstream; its reply is handled by `expectation`. */
  inspected(expectation: Expectation): void;
  /** The proxy's own answer, in order with the upstream's replies. */
  answer(bytes: Buffer, closeReason?: string): void;
  toClient(bytes: Buffer): void;
  /** Sends one of the proxy's own commands; the reply is consumed. */
  internal(args: ReadonlyArray<string | Buffer>, onReply: (reply: unknown) => void): void;
  /** RESET logged the upstream connection out: AUTH again now. */
  authenticateAgain(): void;
  /** EXEC or DISCARD went out: a deferred re-AUTH may follow it. */
  transactionEnded(): void;
  /** Client commands held behind a blocking command may go on. */
  resume(): void;
  /** When a blocking wait sent now must end so that AUTH can run in time (blocking.ts). */
  sliceEnd(): number;
}

export interface CommandContext {
  clientPassword?: string;
  metrics: Metrics;
  /** The session's logger (made on first use). */
  log: () => Logger;
}

const UNSUPPORTED_CLIENT_REPLY = encodeError(
  'ERR CLIENT REPLY OFF/SKIP is not supported by redis-entra-proxy, which needs every ' +
    'reply to keep the connection authenticated',
);
const UNSUPPORTED_REPLICATION = encodeError(
  'ERR redis-entra-proxy does not relay replication (SYNC/PSYNC)',
);

/**
 * CommandRouter decides what happens to each client command that is not a
 * plain forward: answered by the proxy (AUTH, QUIT), rewritten (HELLO without
 * its AUTH part), or forwarded while the session state follows it (MULTI,
 * SUBSCRIBE, blocking commands, RESET, MONITOR).
 */
export class CommandRouter {
  constructor(
    private readonly state: SessionState,
    private readonly io: CommandIO,
    private readonly ctx: CommandContext,
  ) {}

  handle(kind: Kind, args: Buffer[] | null, bytes: Buffer): void {
    const { state, io } = this;
    if (kind === Kind.Empty) return;

    if (
      !state.clientAuthenticated &&
      kind !== Kind.Auth &&
      kind !== Kind.Hello &&
      kind !== Kind.Quit
    ) {
      io.answer(Buffer.from(NOAUTH, 'latin1'));
      return;
    }
    if (state.translating && kind !== Kind.Subscribe && kind !== Kind.Unsubscribe) {
      if (!this.subscriberMayRun(kind, args, bytes)) return;
    }
    if (changesConnection(kind)) state.connectionChanged = true;

    switch (kind) {
      case Kind.Auth:
        this.auth(args!);
        return;
      case Kind.Hello:
        this.hello(args!);
        return;
      case Kind.Quit:
        io.answer(OK, 'client_quit');
        return;
      case Kind.Multi:
        state.inMulti = true;
        this.forward(bytes);
        return;
      case Kind.Exec:
      case Kind.Discard:
        state.inMulti = false;
        this.forward(bytes);
        io.transactionEnded();
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
        io.writeUpstream(bytes);
        io.inspected({
          kind: 'inspect',
          onReply: (frame) => {
            if (!isErrorFrame(frame)) state.monitor = true;
            io.toClient(frame);
          },
        });
        return;
      case Kind.Client:
        this.client(args!, bytes);
        return;
      case Kind.Replication:
        io.answer(UNSUPPORTED_REPLICATION);
        return;
      default:
        this.forward(bytes);
    }
  }

  private forward(bytes: Buffer): void {
    this.io.writeUpstream(bytes);
    this.io.forwarded();
  }

  /** The application's AUTH is checked here and never forwarded. */
  private auth(args: Buffer[]): void {
    if (args.length < 2 || args.length > 3) {
      this.io.answer(encodeError("ERR wrong number of arguments for 'auth' command"));
      return;
    }
    const password = this.ctx.clientPassword;
    if (password === undefined || passwordMatches(args[args.length - 1], password)) {
      this.state.clientAuthenticated = true;
      this.io.answer(OK);
      return;
    }
    this.ctx.log().warn({ event: 'client_auth_failed' }, 'client sent a wrong password');
    this.io.answer(Buffer.from(WRONGPASS, 'latin1'));
  }

  /** HELLO is forwarded without its AUTH part, which is checked here. */
  private hello(args: Buffer[]): void {
    const { state, io } = this;
    const hello = parseHello(args);
    if (hello.error !== undefined) {
      io.answer(Buffer.from(hello.error, 'latin1'));
      return;
    }
    const password = this.ctx.clientPassword;
    if (hello.password !== undefined && password !== undefined) {
      if (!passwordMatches(hello.password, password)) {
        io.answer(Buffer.from(WRONGPASS, 'latin1'));
        return;
      }
      state.clientAuthenticated = true;
    }
    if (!state.clientAuthenticated) {
      io.answer(Buffer.from(HELLO_NOAUTH, 'latin1'));
      return;
    }
    const previous = state.clientProtocol;
    const version = hello.protover;
    // Set at once: commands pipelined behind HELLO are handled before its reply.
    if (version === 2 || version === 3) state.clientProtocol = version;
    io.writeUpstream(encodeCommand(hello.forward));
    io.inspected({
      kind: 'inspect',
      onReply: (frame) => {
        if (isErrorFrame(frame)) state.clientProtocol = previous;
        io.toClient(frame);
      },
    });
  }

  private client(args: Buffer[], bytes: Buffer): void {
    const sub = args[1]?.toString('latin1').toUpperCase();
    const mode = args[2]?.toString('latin1').toUpperCase();
    if (sub === 'REPLY' && (mode === 'OFF' || mode === 'SKIP')) {
      this.io.answer(UNSUPPORTED_CLIENT_REPLY);
      return;
    }
    this.forward(bytes);
  }

  /** RESET logs the upstream connection out too: authenticate it again at once. */
  private reset(bytes: Buffer): void {
    const { state } = this;
    this.forward(bytes);
    state.inMulti = false;
    state.translating = false;
    state.monitor = false;
    state.subscriptions.clear();
    state.clientProtocol = 2;
    if (this.ctx.clientPassword !== undefined) state.clientAuthenticated = false;
    this.io.authenticateAgain();
  }

  private ping(bytes: Buffer): void {
    if (!this.state.translating) {
      this.forward(bytes);
      return;
    }
    this.io.writeUpstream(bytes);
    this.io.inspected({
      kind: 'inspect',
      onReply: (frame) => this.io.toClient(pingReplyForSubscriber(frame)),
    });
  }

  /**
   * SUBSCRIBE and friends. A RESP2 client's upstream moves to RESP3 first
   * (see pubsub.ts). Each is followed by a marker PING: a subscribe command
   * has no reply of its own (only push confirmations), except an error; an
   * error that arrives before the marker's PONG belongs to the command.
   */
  private pubsub(bytes: Buffer): void {
    const { state, io } = this;
    if (state.clientProtocol === 2 && !state.translating) {
      state.translating = true;
      io.internal(['HELLO', '3'], (reply) => {
        if (reply instanceof ErrorReply) {
          this.ctx.log().error({ event: 'resp3_switch_failed' }, reply.message);
        }
      });
    }
    io.writeUpstream(bytes);
    io.writeUpstream(encodeCommand(['PING']));
    io.inspected({ kind: 'internal', marker: true });
  }

  /**
   * A RESP2 client in subscribe mode sent something other than a (un)subscribe.
   * Wait until every earlier subscribe command is confirmed (no marker left),
   * then: still subscribed -> what redis allows in that state; not subscribed
   * -> back to RESP2 upstream and carry on. Returns true to go on handling.
   */
  private subscriberMayRun(kind: Kind, args: Buffer[] | null, bytes: Buffer): boolean {
    const { state, io } = this;
    if (state.awaitingMarker) {
      state.deferred = { kind, args, bytes };
      return false;
    }
    if (!state.subscriptions.active) {
      state.translating = false;
      io.internal(['HELLO', '2'], () => undefined);
      return true;
    }
    if (kind === Kind.Ping || kind === Kind.Quit || kind === Kind.Reset) return true;
    io.answer(notAllowedWhileSubscribed(args?.[0] ?? Buffer.alloc(0)));
    return false;
  }

  /**
   * A blocking command outside MULTI holds the client's next commands back
   * until it is answered, so that the next slice of its wait (blocking.ts)
   * cannot overtake them.
   */
  private blocking(args: Buffer[], bytes: Buffer): void {
    const timeout = this.state.inMulti ? null : blockingTimeout(args);
    if (timeout === null) {
      this.forward(bytes);
      return;
    }
    const first = BlockedCommand.start(args, bytes, timeout, this.io.sliceEnd());
    if (first.blocked.sliced) this.pinStreamEnds(first.blocked);
    this.io.writeUpstream(first.bytes);
    this.state.blocked = first.blocked;
    this.io.inspected({ kind: 'inspect', onReply: (frame) => this.blockingReply(frame) });
  }

  /**
   * For an XREAD from `$` that will be sent in slices: the last id of each
   * such stream, read just before the first slice, for the later ones. A
   * stream that does not exist yet reads from 0-0, as `$` does; if the read
   * fails (not a stream, not permitted), `$` stays.
   */
  private pinStreamEnds(wait: BlockedCommand): void {
    for (const end of streamEnds(wait.args)) {
      this.io.internal(['XREVRANGE', end.key, '+', '-', 'COUNT', '1'], (reply) => {
        if (!Array.isArray(reply)) return;
        const entry: unknown = reply[0];
        const last: unknown = Array.isArray(entry) ? entry[0] : Buffer.from('0-0');
        if (Buffer.isBuffer(last)) wait.pin(end.index, last);
      });
    }
  }

  private blockingReply(frame: Buffer): void {
    const { state, io, ctx } = this;
    const blocked = state.blocked!;
    if (blocked.sliced && blocked.ranOut(frame)) {
      const next = blocked.next(io.sliceEnd());
      if (next !== null) {
        ctx.metrics.blockingSlices.inc();
        ctx.log().debug({ event: 'blocking_reissued' }, 'blocking command sent again');
        state.blocked = next.blocked;
        io.writeUpstream(next.bytes);
        state.queue.push({ kind: 'inspect', onReply: (f) => this.blockingReply(f) });
        return;
      }
    }
    state.blocked = null;
    io.toClient(frame);
    io.resume();
  }
}
