/**
 * Runs redis-benchmark once and reads its `--csv` output: requests per second
 * and the latency percentiles redis-benchmark 7 reports for each test.
 */
import { start } from './children.js';

/** Where redis-benchmark connects, and what it must do itself to get in. */
export interface Target {
  port: number;
  /** Speak TLS to the port (direct to redis-server). */
  tls?: { caFile: string };
  /** Send `AUTH user password` itself (everything but the proxy). */
  auth?: { user: string; password: string };
}

export type Test = 'get' | 'set';

export interface Load {
  test: Test;
  clients: number;
  pipeline: number;
  requests: number;
  dataSize: number;
  /** false: a new connection per request (`-k 0`). */
  keepAlive: boolean;
  /** Start every connection with `HELLO 3`. */
  resp3: boolean;
}

export interface Measurement {
  test: string;
  opsPerSecond: number;
  avgMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

export function benchmarkArgs(target: Target, load: Load): string[] {
  const args = [
    '-h',
    '127.0.0.1',
    '-p',
    String(target.port),
    '-t',
    load.test,
    '-c',
    String(load.clients),
    '-P',
    String(load.pipeline),
    '-n',
    String(load.requests),
    '-d',
    String(load.dataSize),
    '-k',
    load.keepAlive ? '1' : '0',
    '--csv',
  ];

  if (load.resp3) args.push('-3');
  if (target.tls) args.push('--tls', '--cacert', target.tls.caFile);
  if (target.auth) args.push('--user', target.auth.user, '-a', target.auth.password);
  return args;
}

/** Runs one test; rejects when redis-benchmark fails, hangs or prints no result. */
export async function runBenchmark(
  target: Target,
  load: Load,
  timeoutMs: number,
): Promise<Measurement> {
  const child = start('redis-benchmark', benchmarkArgs(target, load));
  const timer = setTimeout(() => void child.stop('SIGKILL'), timeoutMs);
  const code = await child.exited;

  clearTimeout(timer);
  const output = child.output();
  // redis-benchmark exits 0 even after some errors; a missing row is the tell.
  const row = parseCsv(output).find((m) => m.test.toLowerCase() === load.test);
  if (code !== 0 || row === undefined || !(row.opsPerSecond > 0)) {
    throw new Error(
      `redis-benchmark ${load.test} on port ${target.port} failed ` +
        `(exit ${code}):\n${output.slice(-2_000)}`,
    );
  }
  return row;
}

const HEADER = [
  'test',
  'rps',
  'avg_latency_ms',
  'min_latency_ms',
  'p50_latency_ms',
  'p95_latency_ms',
  'p99_latency_ms',
  'max_latency_ms',
];

/**
 * Reads the rows after the CSV header line. Warnings (about keep-alive, a
 * CONFIG that could not be fetched) come on other lines and are skipped.
 */
export function parseCsv(text: string): Measurement[] {
  const lines = text.split('\n').map((line) => line.trim());
  const headerAt = lines.findIndex((line) => line === HEADER.map(quoted).join(','));
  if (headerAt < 0) return [];

  const rows: Measurement[] = [];
  for (const line of lines.slice(headerAt + 1)) {
    const cells = /^"([^"]*)"((?:,"[^"]*")+)$/.exec(line);
    if (cells === null) continue;
    const numbers = cells[2].slice(2, -1).split('","').map(Number);
    if (numbers.length !== HEADER.length - 1 || numbers.some(Number.isNaN)) continue;
    const [rps, avg, , p50, p95, p99, max] = numbers;
    rows.push({
      test: cells[1],
      opsPerSecond: rps,
      avgMs: avg,
      p50Ms: p50,
      p95Ms: p95,
      p99Ms: p99,
      maxMs: max,
    });
  }
  return rows;
}

function quoted(cell: string): string {
  return `"${cell}"`;
}
