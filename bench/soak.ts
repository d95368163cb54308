/**
 * Soak test: many clients of every kind through one proxy for minutes, with
 * tokens that live seconds, sampling the proxy every interval. A proxy that
 * leaks shows a slope in memory or file descriptors; one that mishandles
 * rotation shows dropped connections, gaps in pub/sub or failed re-auths.
 * Not part of CI.
 *
 *   node dist/bench/soak.js [--minutes 10] [--clients 50] [--token-lifetime 5]
 *                           [--interval 10] [--pool-size 4]
 *
 * Writes .bench/soak-<time>.json and .csv (rewritten after every sample, so
 * an interrupted run still leaves its figures) and prints a summary.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { makeCertificates, startProxy, startRedis, startTokenService } from '../testbed/index.js';
import { describeMachine } from './proc.js';
import { mixFor, Workload, type Tally } from './soak-clients.js';
import { metric, openFds, rssBytes, scrape, sum } from '../testbed/observe.js';
import { RESULTS_DIR, cleanup, cleanupOnSignals, onCleanup, proxyBuild } from './setup.js';

interface Options {
  minutes: number;
  clients: number;
  tokenLifetime: number;
  intervalSeconds: number;
  poolSize: number;
}

/** One row of the table: the proxy at one moment, counters as running totals. */
interface Sample {
  elapsedSeconds: number;
  rssMiB: number;
  heapUsedMiB: number;
  fds: number;
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
  sessions: number;
  upstreamConnections: number;
  tokenRefreshes: number;
  reauthSuccess: number;
  reauthFailure: number;
  /** Sessions the proxy ended for a reason other than the client leaving. */
  abnormalCloses: number;
  commands: number;
  clientErrors: number;
  drops: number;
  pubsubGaps: number;
  blpopServed: number;
  shortLived: number;
}

const CLEAN_REASONS = new Set(['client_closed', 'client_quit']);

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  cleanupOnSignals();
  const machine = describeMachine();
  const mix = mixFor(options.clients);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const base = join(RESULTS_DIR, `soak-${stamp}`);
  await mkdir(RESULTS_DIR, { recursive: true });

  const { proxy, adminPort } = await startStackFor(options);
  process.stderr.write(
    `soak: ${options.minutes} min, ${options.clients} clients ` +
      `${JSON.stringify(mix)}, ${options.tokenLifetime} s tokens, proxy pid ${proxy.process.pid}\n`,
  );

  const workload = new Workload(proxy.port);
  workload.start(mix);
  onCleanup(() => workload.stop());

  const pid = proxy.process.pid!;
  const started = Date.now();
  const samples: Sample[] = [];
  const deadline = started + options.minutes * 60_000;
  for (;;) {
    const next = started + (samples.length + 1) * options.intervalSeconds * 1000;
    if (next > deadline + 1000) break;
    await new Promise((r) => setTimeout(r, next - Date.now()));
    const row = await takeSample(pid, adminPort, workload.tally, started);
    samples.push(row);
    process.stderr.write(`${formatRow(row)}\n`);
    await writeResults(base, {
      options,
      mix,
      machine,
      samples,
      errorSamples: workload.tally.samples,
    });
  }

  await workload.stop();
  const summary = summarize(samples);
  await writeResults(base, {
    options,
    mix,
    machine,
    samples,
    summary,
    errorSamples: workload.tally.samples,
    closeReasons: closeReasons(await scrape(adminPort)),
  });
  process.stdout.write(`${summaryText(summary, samples)}\nresults: ${base}.json, ${base}.csv\n`);
  await cleanup();
}

async function startStackFor(options: Options) {
  const build = await proxyBuild(undefined);
  const certs = await makeCertificates();
  onCleanup(() => certs.remove());
  const redis = await startRedis({ certs });
  onCleanup(() => redis.stop());
  const sts = await startTokenService({
    certs,
    redis: { admin: redis.admin },
    lifetimeSeconds: options.tokenLifetime,
  });
  onCleanup(() => sts.stop());
  const proxy = await startProxy({
    cliPath: build.cliPath,
    args: [
      '--listen',
      '127.0.0.1:0',
      '--admin-listen',
      '127.0.0.1:0',
      '--upstream',
      `127.0.0.1:${redis.tlsPort}`,
      '--tls-ca-file',
      certs.caFile,
      '--credential',
      'client-secret',
      '--disable-instance-discovery',
      '--pool-size',
      String(options.poolSize),
    ],
    env: { ...sts.envFor('client-secret'), NODE_EXTRA_CA_CERTS: certs.caFile },
  });
  onCleanup(() => proxy.stop('SIGKILL'));
  const admin = await proxy.waitForLine((l) => l.event === 'admin_listening');
  const adminPort = Number(String(admin.address).split(':').pop());
  // The first token is there once the pool can be filled; /readyz says so.
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
    if (res.status === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { proxy, adminPort };
}

async function takeSample(pid: number, adminPort: number, tally: Tally, started: number) {
  const metrics = await scrape(adminPort);
  const mib = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;
  const ms = (seconds: number): number => Math.round(seconds * 10000) / 10;
  const closed = closeReasons(metrics);
  return {
    elapsedSeconds: Math.round((Date.now() - started) / 1000),
    rssMiB: mib(rssBytes(pid)),
    heapUsedMiB: mib(metric(metrics, 'nodejs_heap_size_used_bytes')),
    fds: openFds(pid),
    eventLoopP99Ms: ms(metric(metrics, 'nodejs_eventloop_lag_p99_seconds')),
    eventLoopMaxMs: ms(metric(metrics, 'nodejs_eventloop_lag_max_seconds')),
    sessions: metric(metrics, 'redis_proxy_client_connections'),
    upstreamConnections: metric(metrics, 'redis_proxy_upstream_connections'),
    tokenRefreshes: sum(metrics, 'redis_proxy_token_refreshes_total'),
    reauthSuccess: metric(metrics, 'redis_proxy_reauthentications_total{result="success"}'),
    reauthFailure: metric(metrics, 'redis_proxy_reauthentications_total{result="failure"}'),
    abnormalCloses: Object.entries(closed)
      .filter(([reason]) => !CLEAN_REASONS.has(reason))
      .reduce((n, [, count]) => n + count, 0),
    commands: tally.commands,
    clientErrors: tally.errors,
    drops: tally.drops,
    pubsubGaps: tally.gaps,
    blpopServed: tally.blpopServed,
    shortLived: tally.shortLived,
  } satisfies Sample;
}

function closeReasons(metrics: string): Record<string, number> {
  const reasons: Record<string, number> = {};
  const pattern = /^redis_proxy_sessions_closed_total\{reason="([^"]+)"\} (\S+)$/gm;
  for (const match of metrics.matchAll(pattern)) reasons[match[1]] = Number(match[2]);
  return reasons;
}

interface Trend {
  firstThird: number;
  lastThird: number;
  /** Least-squares slope per minute over all samples. */
  slopePerMinute: number;
}

type Summary = Record<'rssMiB' | 'heapUsedMiB' | 'fds' | 'eventLoopP99Ms' | 'sessions', Trend>;

function summarize(samples: Sample[]): Summary {
  const trend = (key: keyof Sample): Trend => {
    const third = Math.max(1, Math.floor(samples.length / 3));
    const mean = (rows: Sample[]): number => rows.reduce((s, r) => s + r[key], 0) / rows.length;
    const xs = samples.map((s) => s.elapsedSeconds / 60);
    const ys = samples.map((s) => s[key]);
    const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
    const my = ys.reduce((a, b) => a + b, 0) / ys.length;
    let num = 0;
    let den = 0;
    for (let i = 0; i < xs.length; i++) {
      num += (xs[i] - mx) * (ys[i] - my);
      den += (xs[i] - mx) ** 2;
    }
    const round = (n: number): number => Math.round(n * 100) / 100;
    return {
      firstThird: round(mean(samples.slice(0, third))),
      lastThird: round(mean(samples.slice(-third))),
      slopePerMinute: round(den === 0 ? 0 : num / den),
    };
  };
  return {
    rssMiB: trend('rssMiB'),
    heapUsedMiB: trend('heapUsedMiB'),
    fds: trend('fds'),
    eventLoopP99Ms: trend('eventLoopP99Ms'),
    sessions: trend('sessions'),
  };
}

function formatRow(r: Sample): string {
  return (
    `t=${r.elapsedSeconds}s rss=${r.rssMiB}MiB heap=${r.heapUsedMiB}MiB fds=${r.fds} ` +
    `lagP99=${r.eventLoopP99Ms}ms sessions=${r.sessions} upstream=${r.upstreamConnections} ` +
    `reauth=${r.reauthSuccess}/${r.reauthFailure} abnormal=${r.abnormalCloses} ` +
    `cmds=${r.commands} errors=${r.clientErrors} drops=${r.drops} gaps=${r.pubsubGaps}`
  );
}

function summaryText(summary: Summary, samples: Sample[]): string {
  const last = samples[samples.length - 1];
  const lines = ['', 'metric            first third  last third  slope/min'];
  for (const [name, t] of Object.entries(summary)) {
    lines.push(
      `${name.padEnd(18)}${String(t.firstThird).padStart(11)}` +
        `${String(t.lastThird).padStart(12)}${String(t.slopePerMinute).padStart(11)}`,
    );
  }
  lines.push(
    '',
    `totals: ${last.commands} commands, ${last.shortLived} short-lived connections, ` +
      `${last.tokenRefreshes} token refreshes, ${last.reauthSuccess} re-auths ` +
      `(${last.reauthFailure} failed), ${last.abnormalCloses} abnormal session ends, ` +
      `${last.clientErrors} client errors, ${last.drops} drops, ${last.pubsubGaps} pub/sub gaps, ` +
      `${last.blpopServed} BLPOP served`,
  );
  return lines.join('\n');
}

async function writeResults(
  base: string,
  result: { samples: Sample[]; [key: string]: unknown },
): Promise<void> {
  await writeFile(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
  const rows = result.samples;
  if (rows.length === 0) return;
  const keys = Object.keys(rows[0]) as (keyof Sample)[];
  const csv = [keys.join(','), ...rows.map((r) => keys.map((k) => r[k]).join(','))];
  await writeFile(`${base}.csv`, `${csv.join('\n')}\n`);
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      minutes: { type: 'string', default: '10' },
      clients: { type: 'string', default: '50' },
      'token-lifetime': { type: 'string', default: '5' },
      interval: { type: 'string', default: '10' },
      'pool-size': { type: 'string', default: '4' },
    },
  });
  const number = (name: keyof typeof values, min: number): number => {
    const n = Number(values[name]);
    if (!(n >= min)) throw new Error(`--${name}: "${values[name]}" must be a number >= ${min}`);
    return n;
  };
  return {
    minutes: number('minutes', 0.1),
    clients: number('clients', 5),
    tokenLifetime: number('token-lifetime', 2),
    intervalSeconds: number('interval', 1),
    poolSize: number('pool-size', 0),
  };
}

main().catch(async (err: Error) => {
  process.stderr.write(`soak: ${err.stack ?? err.message}\n`);
  await cleanup();
  process.exitCode = 1;
});
