/**
 * An HTTP(S) server on 127.0.0.1 that can stop listening and listen again on the same
 * port, so clients see "connection refused" in between, as when a token service is down.
 */
import type { Server as NetServer } from 'node:net';

/** http.Server and https.Server both fit. */
export type HttpServer = NetServer & { closeAllConnections(): void };

export class PausableListener {
  #server: HttpServer;
  #port = 0;
  #listening = false;

  constructor(server: HttpServer) {
    this.#server = server;
  }

  get port(): number {
    return this.#port;
  }

  get listening(): boolean {
    return this.#listening;
  }

  /** Listens on `port`, or on a free port the first time when none is given. */
  async listen(port = this.#port): Promise<void> {
    if (this.#listening) return;

    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, '127.0.0.1', () => {
        this.#server.off('error', reject);
        resolve();
      });
    });

    const address = this.#server.address();
    this.#port = typeof address === 'object' && address ? address.port : port;
    this.#listening = true;
  }

  /**
   * Stops accepting and drops every open connection, including idle keep-alive ones and
   * requests the service deliberately left hanging: a paused service must not answer.
   */
  async close(): Promise<void> {
    if (!this.#listening) return;

    this.#listening = false;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
  }
}
