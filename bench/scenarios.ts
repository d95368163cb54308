/**
 * The loads every system is measured under. Request counts are sized so that
 * a direct run takes about a second on a 2-core machine and the whole default
 * bench (5 rounds) stays under ten minutes.
 */
import type { Load, Test } from './redis-benchmark.js';
import type { SystemName } from './systems.js';

export interface Scenario {
  /** Short name for the command line and the result file. */
  name: string;
  /** The redis-benchmark flags that make it, for tables. */
  label: string;
  load: Omit<Load, 'test' | 'requests'>;
  /** Requests per test in a full run. */
  requests: number;
  /**
   * Requests of an unmeasured run of each test on each fresh process, before
   * any is measured: Node runs its first thousands of requests in the
   * interpreter, which would otherwise count against whichever test comes
   * first.
   */
  warmup: number;
  /** SET first, so that GET reads a value of the scenario's size. */
  tests: Test[];
  /** Systems measured besides the common ones (the pool only matters with -k 0). */
  extraSystems: SystemName[];
  /** Latency is what this scenario is for: tables show p50/p99, not just ops/s. */
  latency: boolean;
}

const BASE = { clients: 50, pipeline: 1, dataSize: 64, keepAlive: true, resp3: false };
const BOTH: Test[] = ['set', 'get'];

export const SCENARIOS: Scenario[] = [
  {
    name: 'c50',
    label: '-c 50 -P 1',
    load: BASE,
    requests: 20_000,
    warmup: 5_000,
    tests: BOTH,
    extraSystems: [],
    latency: false,
  },
  {
    name: 'c50-P16',
    label: '-c 50 -P 16',
    load: { ...BASE, pipeline: 16 },
    requests: 200_000,
    warmup: 20_000,
    tests: BOTH,
    extraSystems: [],
    latency: false,
  },
  {
    name: 'c10-k0',
    label: '-c 10 -k 0',
    load: { ...BASE, clients: 10, keepAlive: false },
    // A few hundred requests last a fifth of a second through the pool and
    // measured mostly how the first connections were made; these take two
    // seconds direct, and the warm-up gets the accept path compiled.
    requests: 2_000,
    warmup: 1_000,
    tests: BOTH,
    extraSystems: ['proxy-pool'],
    latency: false,
  },
  {
    name: 'd100k',
    label: '-c 50 -d 100000',
    load: { ...BASE, dataSize: 100_000 },
    requests: 2_000,
    warmup: 300,
    tests: BOTH,
    extraSystems: [],
    latency: false,
  },
  {
    name: 'resp3',
    label: '-c 50 -P 1 -3',
    load: { ...BASE, resp3: true },
    requests: 20_000,
    warmup: 5_000,
    tests: BOTH,
    extraSystems: [],
    latency: false,
  },
  {
    name: 'c1',
    label: '-c 1 -P 1',
    load: { ...BASE, clients: 1 },
    requests: 5_000,
    warmup: 2_000,
    tests: BOTH,
    extraSystems: [],
    latency: true,
  },
];

/** --quick: a fifth of the requests, never fewer than a few per client. */
export function quickRequests(scenario: Scenario): number {
  return Math.max(Math.round(scenario.requests / 5), scenario.load.clients * 4);
}
