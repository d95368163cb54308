/**
 * What fault tests read from outside the proxy process, as an operator would:
 * /proc for memory and descriptors, the admin listener for metrics, and raw
 * sockets for bytes exactly as the proxy sent them.
 */
import { connect, type Socket } from 'node:net';

import { metric, scrape } from '../../testbed/observe.js';

export { metric, openFds, rssBytes, scrape } from '../../testbed/observe.js';

export async function metricNow(adminPort: number, name: string): Promise<number> {
  return metric(await scrape(adminPort), name);
}

/**
 * Polls `probe` until it returns a value `accept` likes, or the deadline
 * passes; returns the last value either way so the caller asserts on it
 * with a useful message. The deadline bounds a wait, it is not a measurement.
 */
export async function pollUntil<T>(
  probe: () => T | Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value) || Date.now() >= deadline) return value;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A raw client that keeps every byte received and knows when the proxy closed. */
export interface RawClient {
  socket: Socket;
  received(): Buffer;
  text(): string;
  /** Resolves once the connection is closed (by either side). */
  closed: Promise<void>;
  /** True when the proxy ended the connection (FIN or reset), not us. */
  endedByPeer(): boolean;
}

export function rawClient(port: number): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    // Our own destroy() emits neither 'end' nor 'error': both mean the proxy.
    let byPeer = false;
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('end', () => {
      byPeer = true;
    });
    socket.on('error', () => {
      byPeer = true;
    });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve({
        socket,
        received: () => Buffer.concat(chunks),
        text: () => Buffer.concat(chunks).toString('latin1'),
        closed,
        endedByPeer: () => byPeer,
      });
    });
    socket.once('error', reject);
  });
}

/** Waits for the close, failing the test instead of hanging when it never comes. */
export async function expectClose(client: RawClient, timeoutMs = 10_000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => {
    timer = setTimeout(() => r(false), timeoutMs);
  });
  const result = await Promise.race([client.closed.then(() => true), timeout]);
  clearTimeout(timer);
  return result;
}

/** RESP multibulk encoding of a command. */
export function command(...args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg) : arg;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}
