/**
 * A bare redis-server (plain TCP, no users, DEBUG allowed) that the RESP tests
 * compare the scanners with. The testbed's server is TLS with AUTH required,
 * which changes redis's protocol error texts ("unauthenticated multibulk
 * length"), so it cannot serve here.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { freePort } from '../../testbed/free-port.js';

export interface PlainRedis {
  port: number;
  stop(): Promise<void>;
}

/** Whether redis-server can be started here; suites skip themselves if not. */
export const redisInstalled = spawnSync('redis-server', ['--version']).status === 0;

const ATTEMPTS = 3;

export async function startPlainRedis(): Promise<PlainRedis> {
  let last: Error | undefined;

  // The free port may be taken before redis binds it; another port fixes that.
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const port = await freePort();
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--enable-debug-command',
        'yes',
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    try {
      await ready(child);
      return { port, stop: () => stop(child) };
    } catch (err) {
      last = err as Error;
      await stop(child);
    }
  }
  throw last ?? new Error('redis-server did not start');
}

function ready(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      reject(new Error(`redis-server did not start: ${output}`));
    }, 5000);
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}: ${output}`));
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/**
 * Sends `request` on a new connection and collects what comes back until
 * `enough` says so or the server closes the connection.
 */
export function exchange(
  port: number,
  request: Buffer,
  enough: (received: Buffer) => boolean = () => false,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer: ${Buffer.concat(chunks).toString('latin1')}`));
    }, 5000);
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks));
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (enough(Buffer.concat(chunks))) finish();
    });
    // redis closes after a protocol error; unread request bytes turn that
    // into a reset, which ends the answer like a close does.
    socket.on('close', finish);
    socket.on('error', finish);
    socket.write(request);
  });
}
