import type { Kind } from '../resp/commands.js';
import type { BlockedCommand } from './blocking.js';
import { Subscriptions } from './pubsub.js';
import { ReplyQueue, type Expectation } from './reply-queue.js';

/** A scanned command held back until the session state allows handling it. */
export interface DeferredCommand {
  kind: Kind;
  args: Buffer[] | null;
  bytes: Buffer;
}

/**
 * The protocol state of one session, as the server sees its connection.
 * Shared by the parts of a session (command-router.ts, reply-router.ts,
 * session.ts), each of which changes only what its direction of traffic
 * tells it.
 */
export class SessionState {
  /** Replies expected from upstream, in order, and what to do with each. */
  readonly queue = new ReplyQueue();
  readonly subscriptions = new Subscriptions();

  clientAuthenticated: boolean;
  /** RESP version the client negotiated with HELLO. */
  clientProtocol = 2;
  inMulti = false;
  monitor = false;
  /** A RESP2 client subscribed through an upstream connection moved to RESP3. */
  translating = false;
  blocked: BlockedCommand | null = null;
  deferred: DeferredCommand | null = null;
  /**
   * A command went upstream that may have left state on the connection
   * (changesConnection in commands.ts): it is RESET before another client
   * uses it.
   */
  connectionChanged = false;

  constructor(clientAuthenticated: boolean) {
    this.clientAuthenticated = clientAuthenticated;
  }

  /** Plain commands can go upstream without a look at anything else. */
  get fastPath(): boolean {
    return this.clientAuthenticated && !this.translating && !this.monitor;
  }

  /**
   * The server will send nothing on this connection unasked and runs each
   * command at once: RESP2, no subscription, no transaction, no MONITOR,
   * nothing blocked. Such a connection may sit in the pool as the client
   * left it and be reset by whoever takes it next.
   */
  get quiet(): boolean {
    return (
      this.clientProtocol === 2 &&
      !this.inMulti &&
      !this.monitor &&
      !this.translating &&
      !this.subscriptions.active &&
      this.blocked === null
    );
  }

  /** A marker PING after a pub/sub command still waits for its PONG. */
  get awaitingMarker(): boolean {
    return this.queue.some((e: Expectation) => e.marker === true);
  }
}
