/**
 * Child processes of the benchmark: every one is registered here so that a
 * normal end, an error and Ctrl-C all leave nothing running.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { connect } from 'node:net';
import { constants } from 'node:os';

const live = new Set<ChildProcess>();
const STOP_GRACE_MS = 3_000;
const OUTPUT_LIMIT = 64 * 1024;

export interface Child {
  process: ChildProcess;
  pid: number;
  /** The tail of stdout and stderr, for error messages. */
  output(): string;
  /** Resolves with the exit code (or 128 + signal) once the process ended. */
  exited: Promise<number>;
  /** Signals the process, then SIGKILLs it after a grace period. Idempotent. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

/** Spawns a tracked child whose output is kept, not shown. */
export function start(command: string, args: string[], opts: SpawnOptions = {}): Child {
  const child = spawn(command, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const append = (chunk: Buffer): void => {
    text = (text + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
  };

  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  live.add(child);

  const exited = new Promise<number>((resolve) => {
    child.once('error', (err) => {
      append(Buffer.from(`\n${command}: ${err.message}\n`));
      live.delete(child);
      resolve(127);
    });
    // 'close', not 'exit': by then all output has been read.
    child.once('close', (code, signal) => {
      live.delete(child);
      resolve(code ?? 128 + signalNumber(signal));
    });
  });

  return {
    process: child,
    pid: child.pid ?? -1,
    output: () => text,
    exited,
    stop: (signal = 'SIGTERM') => stopChild(child, exited, signal),
  };
}

async function stopChild(
  child: ChildProcess,
  exited: Promise<number>,
  signal: NodeJS.Signals,
): Promise<number> {
  if (child.exitCode === null && child.signalCode === null) {
    const force = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    child.kill(signal);
    const code = await exited;
    clearTimeout(force);
    return code;
  }
  return exited;
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal === null ? 0 : (constants.signals[signal] ?? 0);
}

/** Last resort on exit: the process is going away, so no waiting. */
export function killAll(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

/**
 * Waits until something accepts TCP connections on the port. For daemons
 * (stunnel, haproxy) that say nothing parseable when they are ready.
 */
export async function waitForPort(port: number, child: Child, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;

  while (Date.now() < deadline) {
    if (child.process.exitCode !== null) {
      throw new Error(`exited with ${child.process.exitCode} before listening\n${child.output()}`);
    }
    if (await accepts(port)) return;
    await sleep(20);
  }
  throw new Error(`nothing listening on ${port} after ${timeoutMs} ms\n${child.output()}`);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Waits for a `{"event":"listening","address":"127.0.0.1:PORT"}` line on
 * stdout, as the proxy and the node pipe print once they bound port 0.
 */
export async function listeningPort(
  child: Child,
  what: string,
  timeoutMs = 10_000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;

  while (Date.now() < deadline) {
    const match = /"event":"listening"[^\n]*"address":"127\.0\.0\.1:(\d+)"/.exec(child.output());
    if (match !== null) return Number(match[1]);
    if (child.process.exitCode !== null) break;
    await sleep(10);
  }
  await child.stop('SIGKILL');
  throw new Error(`${what} did not start:\n${child.output()}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
