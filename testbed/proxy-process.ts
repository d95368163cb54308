/**
 * Runs the compiled proxy (dist/src/cli.js) as a child process and follows its JSON log
 * lines, the way an operator would: the proxy is ready once it logs `"event":"listening"`
 * with an `address` such as "127.0.0.1:41234", one line per listener.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export type LogLine = Record<string, unknown>;

export interface ProxyProcessOptions {
  args?: string[];
  /** Added to this process's environment; an undefined value removes a variable. */
  env?: Record<string, string | undefined>;
  /** Default: dist/src/cli.js next to this compiled file. */
  cliPath?: string;
  /** How long to wait for the first "listening" line; default 10 s. */
  startTimeoutMs?: number;
}

export interface ProxyProcess {
  /** Port of the first listener. */
  port: number;
  /** Address of the first listener, as logged. */
  address: string;
  /** Addresses of every listener logged so far. */
  readonly addresses: string[];
  /** Address of the admin server, once its "admin_listening" line has been seen. */
  readonly adminAddress: string | undefined;
  /** Parsed JSON log lines so far; grows while the process runs. */
  lines: LogLine[];
  /** stdout and stderr as text, including lines that are not JSON. */
  output(): string;
  /** Resolves with the first line (seen or future) matching; rejects on timeout or exit. */
  waitForLine(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Signals the process and resolves with its exit code (128 + signal number if killed). */
  stop(signal?: NodeJS.Signals): Promise<number>;
  process: ChildProcess;
}

const DEFAULT_CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const OUTPUT_LIMIT = 256 * 1024;
const KILL_AFTER_MS = 10_000;

export async function startProxy(opts: ProxyProcessOptions = {}): Promise<ProxyProcess> {
  const child = spawn(process.execPath, [opts.cliPath ?? DEFAULT_CLI, ...(opts.args ?? [])], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = new LogFollower(child);
  const killOnExit = () => child.kill('SIGKILL');

  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));

  let first: LogLine;
  try {
    first = await log.waitFor(isListening, opts.startTimeoutMs ?? 10_000);
  } catch (err) {
    await stopChild(child, 'SIGKILL');
    throw new Error(`proxy did not start: ${(err as Error).message}\n${log.output()}`);
  }

  const address = String(first.address);

  return {
    port: portOf(address),
    address,
    get addresses() {
      return log.lines.filter(isListening).map((line) => String(line.address));
    },
    get adminAddress() {
      const line = log.lines.find((l) => l.event === 'admin_listening');
      return line ? String(line.address) : undefined;
    },
    lines: log.lines,
    output: () => log.output(),
    waitForLine: (predicate, timeoutMs = 5_000) => log.waitFor(predicate, timeoutMs),
    stop: (signal = 'SIGTERM') => stopChild(child, signal),
    process: child,
  };
}

function isListening(line: LogLine): boolean {
  return line.event === 'listening' && typeof line.address === 'string';
}

/** "127.0.0.1:41234" or "[::1]:41234" → 41234; a unix socket path → 0. */
function portOf(address: string): number {
  if (address.startsWith('/')) return 0;
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  if (!Number.isInteger(port) || port <= 0) throw new Error(`no port in address ${address}`);
  return port;
}

interface Waiter {
  predicate: (line: LogLine) => boolean;
  resolve: (line: LogLine) => void;
  reject: (err: Error) => void;
}

/** Collects the child's output and hands matching log lines to whoever waits for them. */
class LogFollower {
  readonly lines: LogLine[] = [];
  #text = '';
  #waiters = new Set<Waiter>();
  #exit: string | undefined;

  constructor(child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => this.#onLine(line));
    createInterface({ input: child.stderr! }).on('line', (line) => this.#append(line));

    child.once('error', (err) => this.#onExit(`failed to run: ${err.message}`));
    // 'close' rather than 'exit': by then every line of output has been read.
    child.once('close', (code, signal) => this.#onExit(`exited with ${signal ?? code}`));
  }

  output(): string {
    return this.#text;
  }

  waitFor(predicate: (line: LogLine) => boolean, timeoutMs: number): Promise<LogLine> {
    const seen = this.lines.find(predicate);
    if (seen) return Promise.resolve(seen);
    if (this.#exit) return Promise.reject(new Error(`proxy ${this.#exit} before the line`));

    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        resolve: (line) => settle(() => resolve(line)),
        reject: (err) => settle(() => reject(err)),
      };
      const timeout = new Error(`no matching log line within ${timeoutMs} ms`);
      const timer = setTimeout(() => waiter.reject(timeout), timeoutMs);
      const settle = (done: () => void) => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        done();
      };

      this.#waiters.add(waiter);
    });
  }

  #onLine(text: string): void {
    this.#append(text);

    let line: LogLine;
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return;
      line = parsed as LogLine;
    } catch {
      return;
    }

    this.lines.push(line);
    for (const waiter of [...this.#waiters]) {
      if (waiter.predicate(line)) waiter.resolve(line);
    }
  }

  #append(text: string): void {
    this.#text = (this.#text + text + '\n').slice(-OUTPUT_LIMIT);
  }

  #onExit(reason: string): void {
    this.#exit ??= reason;
    for (const waiter of [...this.#waiters]) {
      waiter.reject(new Error(`proxy ${reason} before the line`));
    }
  }
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<number> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const force = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);

    child.kill(signal);
    await exited;
    clearTimeout(force);
  }
  return exitCodeOf(child);
}

function exitCodeOf(child: ChildProcess): number {
  if (child.exitCode !== null) return child.exitCode;

  // The shell convention, so that a SIGTERM that killed the proxy reads as 143.
  const signal = child.signalCode;
  return 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
}
