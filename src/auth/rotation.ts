import type { Metrics } from '../admin/metrics.js';
import type { Logger } from '../log.js';
import { reauthWindow } from './schedule.js';
import type { Token, TokenSource } from './token-source.js';

/** Anything holding an upstream connection that must follow token rotation. */
export interface Reauthenticatable {
  reauthenticate(token: Token): void;
}

/**
 * Rotation hands every new token to every open upstream connection (live
 * sessions and pooled ones), each at its own random moment within a window
 * well before the previous token expires, so that the cache does not receive
 * all AUTH commands at once. Each target decides when AUTH can actually go
 * out (see Session.reauthenticate).
 */
export class Rotation {
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly tokens: TokenSource,
    private readonly targets: () => Iterable<Reauthenticatable>,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    tokens.on('token', (token: Token, previous: Token | null) => this.rotate(token, previous));
  }

  private rotate(token: Token, previous: Token | null): void {
    this.metrics.tokenExpiry.set((token.expiresAt - Date.now()) / 1000);
    if (previous === null) return;
    const window = reauthWindow(Date.now(), previous.expiresAt);
    let count = 0;
    for (const target of this.targets()) {
      count++;
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        // A newer token may have arrived meanwhile; always send the latest.
        const latest = this.tokens.current() ?? token;
        target.reauthenticate(latest);
      }, Math.random() * window);
      timer.unref();
      this.timers.add(timer);
    }
    this.log.info(
      { event: 'rotation_started', connections: count, windowMs: Math.round(window) },
      're-authenticating open connections',
    );
  }

  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}
