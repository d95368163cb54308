import type { Server, Socket } from 'node:net';

import type { Metrics } from './admin/metrics.js';
import { Rotation } from './auth/rotation.js';
import { TokenUnavailableError, type TokenSource } from './auth/token-source.js';
import type { Config } from './config.js';
import { listen } from './listener.js';
import type { Logger } from './log.js';
import { encodeError } from './resp/encode.js';
import { Session } from './session/session.js';
import { Dialer, type Upstream } from './upstream/dial.js';
import { Pool, type Reuse } from './upstream/pool.js';
import { UpstreamError } from './upstream/errors.js';
import { IdleChannel } from './upstream/idle-channel.js';
import { ErrorReply } from './resp/decode.js';

/**
 * Proxy owns the listeners and the sessions they accept, and connects them to
 * the token source: each session gets an authenticated upstream connection,
 * and every new token reaches every open session through the rotation.
 */
export class Proxy {
  readonly sessions = new Set<Session>();
  readonly dialer: Dialer;
  readonly pool: Pool;
  private readonly sweeper: NodeJS.Timeout;
  private readonly servers: Server[] = [];
  private readonly rotation: Rotation;
  private nextId = 1;
  private draining = false;
  /** Addresses actually bound, in --listen order. */
  readonly addresses: string[] = [];

  constructor(
    private readonly config: Config,
    private readonly tokens: TokenSource,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.dialer = new Dialer({
      host: config.upstream.host,
      port: config.upstream.port,
      servername: config.tls.servername,
      ca: config.tls.ca,
      connectTimeoutMs: config.connectTimeoutMs,
    });
    this.pool = new Pool(
      {
        size: config.poolSize,
        resetTimeoutMs: config.connectTimeoutMs,
        onHandOut: (source) => metrics.upstreamAcquisitions.inc({ source }),
      },
      () => this.dial(),
      tokens,
      log,
    );
    this.rotation = new Rotation(
      tokens,
      () => [...this.sessions, ...this.pool.members],
      log,
      metrics,
    );
    // After the first token, and again after an outage, warm the pool.
    tokens.on('token', () => this.pool.refill());
    this.sweeper = setInterval(() => this.pool.sweep(), 30_000);
    this.sweeper.unref();
  }

  get listening(): boolean {
    return this.servers.length > 0 && !this.draining;
  }

  async start(): Promise<void> {
    for (const address of this.config.listen) {
      const listener = await listen(
        address,
        (socket) => this.accept(socket),
        this.config.unixSocketMode,
      );
      this.servers.push(listener.server);
      this.addresses.push(listener.address);
      this.log.info({ event: 'listening', address: listener.address }, 'accepting clients');
    }
  }

  private accept(socket: Socket): void {
    const max = this.config.maxConnections;
    if (this.draining || (max > 0 && this.sessions.size >= max)) {
      const reason = this.draining ? 'draining' : 'max_connections';
      this.metrics.clientsRefused.inc({ reason });
      socket.on('error', () => undefined);
      socket.end(
        encodeError(
          this.draining
            ? 'ERR redis-entra-proxy is shutting down'
            : 'ERR max number of clients reached',
        ),
      );
      return;
    }
    this.metrics.clientsAccepted.inc();
    this.metrics.clientsOpen.inc();
    const id = `s${this.nextId++}`;
    const session = new Session(id, socket, {
      tokens: this.tokens,
      metrics: this.metrics,
      log: this.log,
      clientPassword: this.config.clientPassword,
      idleTimeoutMs: this.config.idleTimeoutMs,
      acquire: () => this.acquire(),
      release: (upstream, reusable) => this.release(upstream, reusable),
      closed: (s) => {
        this.sessions.delete(s);
        this.metrics.clientsOpen.dec();
      },
    });
    this.sessions.add(session);
  }

  /** An authenticated upstream connection, or an UpstreamError saying why not. */
  acquire(): Promise<Upstream> {
    return this.pool.acquire();
  }

  /**
   * Whether the cache answers: a PING on a connection from the pool (or a
   * new one), within --connect-timeout. The connection goes back to the
   * pool afterwards. Rejects with a message that says what is wrong.
   */
  async checkUpstream(): Promise<void> {
    const upstream = await this.acquire();
    const channel = new IdleChannel(upstream.socket, () => undefined);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.config.connectTimeoutMs);
    });
    const reply = await Promise.race([channel.send(['PING']), deadline]);
    clearTimeout(timer);
    channel.detach();

    if (reply === 'PONG') {
      this.release(upstream, 'clean');
      return;
    }
    upstream.socket.destroy();
    const what =
      reply === 'timeout'
        ? `no answer to PING within ${this.config.connectTimeoutMs} ms`
        : reply instanceof ErrorReply
          ? `PING refused: ${reply.message}`
          : 'the connection closed';
    throw new UpstreamError('ERR_UPSTREAM_CLOSED', 'closed', `${this.dialer.address}: ${what}`);
  }

  /** Opens a new authenticated upstream connection. */
  async dial(): Promise<Upstream> {
    const started = process.hrtime.bigint();
    let token;
    try {
      token = await this.tokens.get(this.config.connectTimeoutMs);
    } catch (err) {
      this.metrics.upstreamDialFailures.inc({ reason: 'no_token' });
      const why = err instanceof TokenUnavailableError ? err.message : String(err);
      throw new UpstreamError('ERR_TOKEN_UNAVAILABLE', 'no_token', `no access token: ${why}`);
    }
    try {
      const upstream = await this.dialer.dial(token);
      this.metrics.upstreamOpen.inc();
      upstream.socket.once('close', () => this.metrics.upstreamOpen.dec());
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.metrics.upstreamHandshake.observe(seconds);
      return upstream;
    } catch (err) {
      const reason = err instanceof UpstreamError ? err.reason : 'unknown';
      this.metrics.upstreamDialFailures.inc({ reason });
      if (reason === 'auth_rejected') this.tokens.refreshSoon();
      throw err;
    }
  }

  release(upstream: Upstream, reuse: Reuse): void {
    if (reuse !== 'close' && !this.draining) this.pool.giveBack(upstream, reuse);
    else upstream.socket.destroy();
  }

  /** Stops accepting; existing sessions continue. */
  async stopListening(): Promise<void> {
    this.draining = true;
    await Promise.all(this.servers.map((server) => new Promise((r) => server.close(r))));
  }

  /** Closes every session at once. */
  closeAll(reason: string): void {
    for (const session of [...this.sessions]) session.close(reason);
    this.rotation.stop();
    this.pool.close();
    clearInterval(this.sweeper);
  }
}
