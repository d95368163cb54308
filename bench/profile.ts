/**
 * CPU profile of the proxy under one redis-benchmark load:
 *
 *   npx tsc -p . && node dist/bench/profile.js [--scenario c50-P16] [--test get]
 *     [--requests N] [--pool-size 0] [--top 25]
 *
 * Runs the proxy under `node --cpu-prof`, warms it up, runs the measured
 * test, stops the proxy (the profile is written at exit) and prints where
 * the CPU time of the measured run went. The .cpuprofile is kept in .bench/
 * for Chrome DevTools or speedscope.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { listeningPort, start } from './children.js';
import { renderSummary, summarizeProfile, type CpuProfile } from './cpu-profile.js';
import { cpuSeconds } from './proc.js';
import { runBenchmark, type Test } from './redis-benchmark.js';
import { SCENARIOS } from './scenarios.js';
import {
  RESULTS_DIR,
  cleanup,
  cleanupOnSignals,
  onCleanup,
  proxyBuild,
  startTestbed,
} from './setup.js';
import { proxyArgs } from './systems.js';

const RUN_TIMEOUT_MS = 300_000;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string', default: 'c50-P16' },
      test: { type: 'string', default: 'get' },
      requests: { type: 'string' },
      'pool-size': { type: 'string', default: '0' },
      top: { type: 'string', default: '25' },
    },
  });
  const scenario = SCENARIOS.find((s) => s.name === values.scenario);
  if (scenario === undefined) throw new Error(`unknown scenario ${values.scenario}`);
  const test = values.test as Test;
  const requests = Number(values.requests ?? scenario.requests * 5);

  const build = await proxyBuild(undefined);
  const setup = await startTestbed(build.cliPath);
  const profileDir = join(RESULTS_DIR, `profile-${process.pid}`);
  await mkdir(profileDir, { recursive: true });
  onCleanup(() => rm(profileDir, { recursive: true, force: true }));

  const proxy = start(
    process.execPath,
    [
      '--cpu-prof',
      '--cpu-prof-dir',
      profileDir,
      setup.proxyCli,
      ...proxyArgs(setup, Number(values['pool-size'])),
    ],
    { env: { ...process.env, ...setup.proxyEnv } },
  );
  onCleanup(() => proxy.stop('SIGKILL'));
  const target = { port: await listeningPort(proxy, 'proxy') };

  // SET first: the key must exist, with a value of the scenario's size.
  await runBenchmark(
    target,
    { ...scenario.load, test: 'set', requests: scenario.warmup },
    RUN_TIMEOUT_MS,
  );
  await runBenchmark(target, { ...scenario.load, test, requests: scenario.warmup }, RUN_TIMEOUT_MS);

  const cpuBefore = cpuSeconds(proxy.pid);
  const from = monotonicMicros();
  const result = await runBenchmark(target, { ...scenario.load, test, requests }, RUN_TIMEOUT_MS);
  const to = monotonicMicros();
  const cpuMicrosPerOp = ((cpuSeconds(proxy.pid) - cpuBefore) * 1e6) / requests;

  // SIGTERM: the proxy shuts down gracefully and exits, which writes the profile.
  await proxy.stop('SIGTERM');
  const profile = await takeProfile(profileDir);
  // V8 stamps samples with the same monotonic clock as process.hrtime; if
  // that ever stops being true, summarize the whole profile rather than nothing.
  const aligned = from >= profile.startTime && to <= profile.endTime;
  if (!aligned) process.stderr.write('profile clock does not match; using all samples\n');
  const window = aligned ? { from, to } : undefined;
  const summary = summarizeProfile(profile, window, Number(values.top));
  const heading =
    `proxy CPU profile: ${scenario.label} ${test.toUpperCase()}, ` +
    `${requests} requests, ${Math.round(result.opsPerSecond)} ops/s under the profiler, ` +
    `${cpuMicrosPerOp.toFixed(1)} µs CPU/op`;

  process.stdout.write(`${heading}\n\n${renderSummary(summary)}\n`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const base = join(RESULTS_DIR, `profile-${scenario.name}-${test}-${stamp}`);
  await writeFile(`${base}.cpuprofile`, JSON.stringify(profile));
  await writeFile(
    `${base}.json`,
    JSON.stringify(
      {
        scenario: scenario.name,
        test,
        requests,
        result,
        cpuMicrosPerOp,
        proxy: build.fingerprint,
        summary,
      },
      null,
      2,
    ) + '\n',
  );
  process.stdout.write(`\nprofile: ${base}.cpuprofile\n`);
}

/** The clock V8 stamps profile samples with (CLOCK_MONOTONIC), in microseconds. */
function monotonicMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

async function takeProfile(dir: string): Promise<CpuProfile> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length !== 1) throw new Error(`expected one profile in ${dir}, found ${files.length}`);
  return JSON.parse(await readFile(join(dir, files[0]), 'utf8')) as CpuProfile;
}

cleanupOnSignals();

main()
  .catch((err: Error) => {
    process.stderr.write(`profile: ${err.stack ?? err.message}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
