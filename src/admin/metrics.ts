import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The proxy's Prometheus metrics. One registry per proxy, so that tests can
 * run several proxies in one process without their numbers mixing.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly clientsOpen = new Gauge({
    name: 'redis_proxy_client_connections',
    help: 'Client connections currently open',
    registers: [this.registry],
  });

  readonly clientsAccepted = new Counter({
    name: 'redis_proxy_client_connections_accepted_total',
    help: 'Client connections accepted',
    registers: [this.registry],
  });

  readonly clientsRefused = new Counter({
    name: 'redis_proxy_client_connections_refused_total',
    help: 'Client connections refused, by reason (max_connections, draining)',
    labelNames: ['reason'],
    registers: [this.registry],
  });

  readonly sessionsClosed = new Counter({
    name: 'redis_proxy_sessions_closed_total',
    help: 'Sessions ended, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });

  readonly upstreamOpen = new Gauge({
    name: 'redis_proxy_upstream_connections',
    help: 'Upstream connections currently open (in sessions and pooled)',
    registers: [this.registry],
  });

  readonly upstreamAcquisitions = new Counter({
    name: 'redis_proxy_upstream_acquisitions_total',
    help: 'Upstream connections handed to new sessions, by source (idle, returned, dialed)',
    labelNames: ['source'],
    registers: [this.registry],
  });

  readonly upstreamDialFailures = new Counter({
    name: 'redis_proxy_upstream_dial_failures_total',
    help: 'Upstream connections that could not be opened, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });

  readonly upstreamHandshake = new Histogram({
    name: 'redis_proxy_upstream_handshake_seconds',
    help: 'Time from dial to an authenticated upstream connection',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  /**
   * Per-frame and per-chunk counts, kept as plain numbers on the hot path and
   * handed to the counters below when Prometheus scrapes.
   */
  readonly traffic = { commands: 0, clientBytes: 0, upstreamBytes: 0 };
  private readonly reported = { commands: 0, clientBytes: 0, upstreamBytes: 0 };

  readonly commands = new Counter({
    name: 'redis_proxy_commands_total',
    help: 'Client commands forwarded upstream',
    registers: [this.registry],
    collect: () => {
      this.commands.inc(this.delta('commands'));
    },
  });

  readonly bytes = new Counter({
    name: 'redis_proxy_bytes_total',
    help: 'Bytes relayed, by direction (client_to_upstream, upstream_to_client)',
    labelNames: ['direction'],
    registers: [this.registry],
    collect: () => {
      this.bytes.inc({ direction: 'client_to_upstream' }, this.delta('clientBytes'));
      this.bytes.inc({ direction: 'upstream_to_client' }, this.delta('upstreamBytes'));
    },
  });

  private delta(key: keyof Metrics['traffic']): number {
    const delta = this.traffic[key] - this.reported[key];
    this.reported[key] = this.traffic[key];
    return delta;
  }

  readonly protocolErrors = new Counter({
    name: 'redis_proxy_protocol_errors_total',
    help: 'Malformed RESP, by side (client, upstream)',
    labelNames: ['side'],
    registers: [this.registry],
  });

  private expirySource: () => number | null = () => null;

  readonly tokenExpiry = new Gauge({
    name: 'redis_proxy_token_expiry_seconds',
    help: 'Seconds until the current token expires (negative: expired; absent: none yet)',
    registers: [this.registry],
    collect: () => {
      const seconds = this.expirySource();
      if (seconds !== null) this.tokenExpiry.set(seconds);
    },
  });

  readonly tokenRefreshes = new Counter({
    name: 'redis_proxy_token_refreshes_total',
    help: 'Token requests to the identity service, by result (success, failure)',
    labelNames: ['result'],
    registers: [this.registry],
  });

  readonly reauths = new Counter({
    name: 'redis_proxy_reauthentications_total',
    help: 'Re-AUTH of open upstream connections, by result (success, failure, deferred)',
    labelNames: ['result'],
    registers: [this.registry],
  });

  readonly blockingSlices = new Counter({
    name: 'redis_proxy_blocking_reissues_total',
    help: 'Blocking commands sent again after a slice of their wait ended before token expiry',
    registers: [this.registry],
  });

  /** Reads seconds-to-expiry at every scrape, so the gauge is never stale. */
  trackTokenExpiry(source: () => number | null): void {
    this.expirySource = source;
  }

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry });
  }
}
