/**
 * Network pieces that fault tests put between the proxy and the cache, all on
 * 127.0.0.1 port 0: a TCP relay that can cut one connection after a given
 * number of bytes or hold what goes to the target for a while, and a
 * listener that accepts connections and never answers.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';

/** How the relay ends a connection it cuts: RST, or FIN in the middle of the stream. */
export type CutStyle = 'reset' | 'fin';

export interface Relay {
  port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /**
   * The next connection accepted is cut once `afterBytes` bytes went from the
   * target to the relay's client (TLS bytes: the cut falls inside a record).
   * Resolves when the cut happened.
   */
  cutNext(afterBytes: number, style: CutStyle): Promise<void>;
  close(): Promise<void>;
}

interface CutPlan {
  afterBytes: number;
  style: CutStyle;
  done: () => void;
}

/**
 * A byte-counting TCP relay to 127.0.0.1:`targetPort`. With `delayMs`, what
 * its clients send reaches the target that much later (a slow network in one
 * direction); replies are not held.
 */
export async function startRelay(
  targetPort: number,
  options: { delayMs?: number } = {},
): Promise<Relay> {
  const delayMs = options.delayMs ?? 0;
  const sockets = new Set<Socket>();
  let accepted = 0;
  let plan: CutPlan | null = null;

  const server = createServer((client) => {
    accepted++;
    const mine = plan;
    plan = null;
    const target = connect(targetPort, '127.0.0.1');
    for (const s of [client, target]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        target.destroy();
      });
    }
    client.on('end', () => target.end());
    target.on('end', () => client.end());
    client.on('data', (chunk: Buffer) => {
      if (delayMs > 0) {
        // Timers of equal delay fire in order: the stream stays in order.
        setTimeout(() => target.write(chunk), delayMs);
      } else if (!target.write(chunk)) {
        client.pause();
      }
    });
    target.on('drain', () => client.resume());
    client.on('drain', () => target.resume());

    let sent = 0;
    let cut = false;
    target.on('data', (chunk: Buffer) => {
      if (cut) return;
      if (mine !== null && sent + chunk.length >= mine.afterBytes) {
        cut = true;
        client.write(chunk.subarray(0, mine.afterBytes - sent), () => {
          if (mine.style === 'reset') client.resetAndDestroy();
          else client.end();
          target.destroy();
          mine.done();
        });
        return;
      }
      sent += chunk.length;
      if (!client.write(chunk)) target.pause();
    });
  });
  const port = await listenLocal(server);

  return {
    port,
    get accepted() {
      return accepted;
    },
    cutNext(afterBytes, style) {
      return new Promise<void>((done) => {
        plan = { afterBytes, style, done };
      });
    },
    close: () => closeAll(server, sockets),
  };
}

export interface SilentListener {
  port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Accepted connections the other side has not closed yet. */
  readonly open: number;
  /** Bytes received over all connections (a TLS ClientHello, say). */
  readonly bytesReceived: number;
  close(): Promise<void>;
}

/** Accepts TCP connections, reads what comes and never writes a byte. */
export async function startSilentListener(): Promise<SilentListener> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  let bytesReceived = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('data', (chunk: Buffer) => {
      bytesReceived += chunk.length;
    });
    // The peer's FIN: close our side too, so that `open` counts live connections.
    socket.on('end', () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
  });
  const port = await listenLocal(server);
  return {
    port,
    get accepted() {
      return accepted;
    },
    get open() {
      return sockets.size;
    },
    get bytesReceived() {
      return bytesReceived;
    },
    close: () => closeAll(server, sockets),
  };
}

export function listenLocal(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : 0);
    });
  });
}

function closeAll(server: Server, sockets: Set<Socket>): Promise<void> {
  for (const socket of sockets) socket.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * Established TCP connections of process `pid` to 127.0.0.1:`port`, read from
 * /proc: the process's socket descriptors matched against /proc/net/tcp.
 */
export function connectionsTo(pid: number, port: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match !== null) inodes.add(match[1]);
    } catch {
      // closed meanwhile
    }
  }
  const remote = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let count = 0;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
    if (fields[2] === remote && fields[3] === '01' && inodes.has(fields[9])) count++;
  }
  return count;
}
