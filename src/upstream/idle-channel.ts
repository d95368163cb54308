import type { TLSSocket } from 'node:tls';

import { decodeFrame, type Value } from '../resp/decode.js';
import { encodeCommand } from '../resp/encode.js';
import { ReplyScanner } from '../resp/reply-scanner.js';

const PUSH = 0x3e; // '>'

/**
 * Talks to an upstream connection that no client uses (a pooled one): sends
 * the proxy's own commands and hands each reply to whoever asked, in order.
 * A reply nobody asked for means the connection is not what we think it is,
 * so it is closed rather than trusted.
 */
export class IdleChannel {
  private readonly scanner = new ReplyScanner();
  private readonly waiting: Array<(value: Value) => void> = [];
  private parts: Buffer[] = [];
  private readonly onData = (chunk: Buffer): void => this.read(chunk);
  private readonly onGone = (): void => {
    for (const resolve of this.waiting.splice(0)) resolve(null);
    this.onClose();
  };

  constructor(
    private readonly socket: TLSSocket,
    private readonly onClose: () => void,
  ) {
    socket.on('data', this.onData);
    socket.on('close', this.onGone);
    socket.on('error', this.onGone);
    socket.resume();
  }

  /** No reply outstanding: the connection may change hands. */
  get quiet(): boolean {
    return this.waiting.length === 0 && this.scanner.atBoundary;
  }

  send(args: string[]): Promise<Value> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.socket.write(encodeCommand(args));
    });
  }

  /** Several commands in one write (one TLS record); resolves with every reply. */
  sendAll(commands: string[][]): Promise<Value[]> {
    const replies = commands.map(() => new Promise<Value>((resolve) => this.waiting.push(resolve)));
    this.socket.write(Buffer.concat(commands.map((args) => encodeCommand(args))));
    return Promise.all(replies);
  }

  /** Stops listening so that a session can take the socket over. */
  detach(): void {
    this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onGone);
    this.socket.off('error', this.onGone);
  }

  private read(chunk: Buffer): void {
    let pos = 0;
    try {
      while (pos < chunk.length) {
        const end = this.scanner.scan(chunk, pos);
        if (end < 0) {
          this.parts.push(chunk.subarray(pos));
          return;
        }
        this.parts.push(chunk.subarray(pos, end));
        const frame = Buffer.concat(this.parts);
        this.parts = [];
        pos = end;
        // A push (a message for the last client's subscription, a tracking
        // invalidation) answers no command: dropped, never taken for a reply.
        if (this.scanner.type === PUSH) continue;
        const resolve = this.waiting.shift();
        if (resolve === undefined) throw new Error('unexpected reply on an idle connection');
        resolve(decodeFrame(frame));
      }
    } catch {
      this.socket.destroy();
    }
  }
}
