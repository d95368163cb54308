import {
  connect,
  createSecureContext,
  rootCertificates,
  type SecureContext,
  type TLSSocket,
} from 'node:tls';

import { decodeFrame, ErrorReply, type Value } from '../resp/decode.js';
import { encodeCommand } from '../resp/encode.js';
import { ReplyScanner } from '../resp/reply-scanner.js';
import type { Token } from '../auth/token-source.js';
import { UpstreamError, describeDialError } from './errors.js';

export interface UpstreamTarget {
  host: string;
  port: number;
  servername: string;
  /** PEM of CAs trusted besides Node's built-in public CAs. */
  ca?: string;
  connectTimeoutMs: number;
}

/** An authenticated upstream connection, handed to a session or the pool. */
export interface Upstream {
  socket: TLSSocket;
  /** CLIENT ID on the server, logged so that CLIENT LIST on the cache can be matched. */
  clientId: number;
  /** Expiry of the token this connection last authenticated with. */
  authExpiresAt: number;
  /**
   * A client left state on it and it was kept as it was (Reuse 'quiet' in
   * pool.ts): the next session sends RESET and AUTH ahead of its client's
   * first command.
   */
  mustReset?: boolean;
}

/**
 * Dialer opens TLS connections to the cache and authenticates them before
 * anyone else may write to them. It keeps the last TLS session so that new
 * connections resume it instead of paying a full handshake.
 */
export class Dialer {
  /**
   * Built once: parsing the ~140 built-in CAs for every connection would cost
   * more than the TLS handshake itself.
   */
  private readonly context: SecureContext;
  private tlsSession: Buffer | undefined;

  constructor(readonly target: UpstreamTarget) {
    const ca = target.ca === undefined ? [...rootCertificates] : [...rootCertificates, target.ca];
    this.context = createSecureContext({ ca, minVersion: 'TLSv1.2' });
  }

  get address(): string {
    return `${this.target.host}:${this.target.port}`;
  }

  /**
   * Connects, checks the certificate against the host name, sends
   * `AUTH <username> <token>` and `CLIENT ID`, and resolves once both replied.
   * Rejects with an UpstreamError whose message says what to fix.
   */
  dial(token: Token): Promise<Upstream> {
    const { host, port, servername, connectTimeoutMs } = this.target;
    return new Promise<Upstream>((resolve, reject) => {
      const socket = connect({
        host,
        port,
        servername: isIpAddress(servername) ? undefined : servername,
        secureContext: this.context,
        session: this.tlsSession,
      });
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 30_000);

      const fail = (error: UpstreamError): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      const timer = setTimeout(() => {
        fail(
          new UpstreamError(
            'ERR_UPSTREAM_TIMEOUT',
            'timeout',
            `no authenticated connection to ${this.address} within ${connectTimeoutMs} ms`,
          ),
        );
      }, connectTimeoutMs);

      socket.on('session', (session: Buffer) => {
        this.tlsSession = session;
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        fail(describeDialError(err, this.address));
      });
      socket.once('close', () => {
        fail(
          new UpstreamError(
            'ERR_UPSTREAM_CLOSED',
            'closed',
            `${this.address} closed the connection during the handshake`,
          ),
        );
      });
      socket.once('secureConnect', () => {
        socket.write(encodeCommand(['AUTH', token.username, token.value]));
        socket.write(encodeCommand(['CLIENT', 'ID']));
        readReplies(socket, 2)
          .then(([auth, id]) => {
            if (auth instanceof ErrorReply) {
              fail(authError(auth, token, this.address));
              return;
            }
            clearTimeout(timer);
            socket.removeAllListeners('error');
            socket.removeAllListeners('close');
            resolve({
              socket,
              clientId: typeof id === 'number' ? id : -1,
              authExpiresAt: token.expiresAt,
            });
          })
          .catch((err: Error) => {
            fail(new UpstreamError('ERR_UPSTREAM_PROTOCOL', 'protocol', err.message));
          });
      });
    });
  }
}

/** The cache said no to our token: usually a missing access policy. */
export function authError(reply: ErrorReply, token: Token, address: string): UpstreamError {
  return new UpstreamError(
    'ERR_UPSTREAM_AUTH',
    'auth_rejected',
    `${address} rejected the token of ${token.username}: ${reply.message.split('\n')[0]}; ` +
      'check that this identity has a Redis data access policy on the cache',
  );
}

/**
 * Reads `count` replies during the handshake. The socket is paused afterwards
 * so that no byte is lost before the session attaches its own reader.
 */
function readReplies(socket: TLSSocket, count: number): Promise<Value[]> {
  return new Promise((resolve, reject) => {
    const scanner = new ReplyScanner();
    const replies: Value[] = [];
    let frame: Buffer[] = [];
    const onData = (chunk: Buffer): void => {
      let pos = 0;
      try {
        while (pos < chunk.length && replies.length < count) {
          const end = scanner.scan(chunk, pos);
          if (end < 0) {
            frame.push(chunk.subarray(pos));
            pos = chunk.length;
            break;
          }
          frame.push(chunk.subarray(pos, end));
          replies.push(decodeFrame(Buffer.concat(frame)));
          frame = [];
          pos = end;
        }
      } catch (err) {
        socket.off('data', onData);
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      if (replies.length === count) {
        socket.off('data', onData);
        socket.pause();
        if (pos < chunk.length) socket.unshift(chunk.subarray(pos));
        resolve(replies);
      }
    };
    socket.on('data', onData);
  });
}

function isIpAddress(name: string): boolean {
  return /^[\d.]+$/.test(name) || name.includes(':');
}
