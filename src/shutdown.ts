import type { Server } from 'node:http';

import type { TokenSource } from './auth/token-source.js';
import type { Logger } from './log.js';
import type { Proxy } from './proxy.js';

/** How often draining looks for sessions that became idle. */
const DRAIN_POLL_MS = 50;

/**
 * Graceful shutdown: stop accepting at once (readiness turns false), let
 * every reply already asked for reach its client, close each session as soon
 * as it has nothing in flight, and cut the rest when the timeout passes.
 * Exit status 0 when every session finished in time, 1 when some were cut.
 */
export class Shutdown {
  started = false;
  private readonly servers: Server[] = [];
  private timer: NodeJS.Timeout | null = null;
  private poll: NodeJS.Timeout | null = null;

  constructor(
    private readonly proxy: Proxy,
    private readonly tokens: TokenSource,
    private readonly log: Logger,
    private readonly timeoutMs: number,
  ) {}

  /** Servers (admin) to close last, so probes keep answering while draining. */
  track(server: Server): void {
    this.servers.push(server);
  }

  readiness(): { ok: boolean; why: string } {
    if (this.started) return { ok: false, why: 'draining: shutting down' };
    if (!this.proxy.listening) return { ok: false, why: 'not listening yet' };
    if (this.tokens.current() === null) {
      return {
        ok: false,
        why: `no valid token: ${this.tokens.lastError ?? 'first request running'}`,
      };
    }
    return { ok: true, why: 'ready' };
  }

  begin(cause: string): void {
    if (this.started) return;
    this.started = true;
    this.log.info(
      {
        event: 'shutdown_started',
        cause,
        sessions: this.proxy.sessions.size,
        timeoutMs: this.timeoutMs,
      },
      'draining sessions',
    );
    void this.proxy.stopListening();
    this.timer = setTimeout(() => this.finish(true), this.timeoutMs);
    this.drainStep();
  }

  /** A second signal: no more waiting. */
  force(): void {
    this.finish(true);
  }

  private drainStep(): void {
    for (const session of [...this.proxy.sessions]) session.closeIfIdle();
    if (this.proxy.sessions.size === 0) {
      this.finish(false);
      return;
    }
    this.poll = setTimeout(() => this.drainStep(), DRAIN_POLL_MS);
  }

  private finish(cut: boolean): void {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.poll !== null) clearTimeout(this.poll);
    this.timer = null;
    this.poll = null;
    const remaining = this.proxy.sessions.size;
    this.proxy.closeAll('shutdown');
    this.tokens.stop();
    for (const server of this.servers) server.close();
    const status = cut && remaining > 0 ? 1 : 0;
    this.log.info(
      { event: 'shutdown_complete', sessionsCut: remaining, exitCode: status },
      'stopped',
    );
    // Let the logger flush; then leave even if a socket still lingers.
    setTimeout(() => process.exit(status), 100).unref();
    process.exitCode = status;
  }
}
