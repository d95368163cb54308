/**
 * Medians over rounds and the tables printed at the end. A ratio is taken
 * within a round (system ÷ direct, measured minutes apart at most) and then
 * the median over rounds, so that drift of the shared machine between
 * rounds cancels out.
 */
import type { Scenario } from './scenarios.js';

/** One redis-benchmark test against one system. */
export interface RunRecord {
  round: number;
  scenario: string;
  system: string;
  test: string;
  requests: number;
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU of the process between client and server, per request (absent for direct). */
  cpuMicrosPerOp?: number;
  /** Its peak resident set over its whole life (it is started fresh for each scenario). */
  peakRssMiB?: number;
  /** User and system CPU of the whole machine, as a share of all CPUs during the run. */
  machineBusyShare: number;
  /** CPU used by processes outside the benchmark, as a share of all CPUs during the run. */
  foreignCpuShare: number;
  /** CPU the hypervisor gave to other guests, as a share of all CPUs during the run. */
  stealShare: number;
}

export interface Cell {
  system: string;
  /** Median over rounds of the same-round ratio to direct. */
  ratio: number | null;
  ratioMin: number | null;
  ratioMax: number | null;
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  cpuMicrosPerOp: number | null;
  peakRssMiB: number | null;
  rounds: number;
}

export interface Row {
  scenario: string;
  label: string;
  test: string;
  cells: Cell[];
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function summarize(records: RunRecord[], scenarios: Scenario[], systems: string[]): Row[] {
  const rows: Row[] = [];

  for (const scenario of scenarios) {
    for (const test of scenario.tests) {
      const mine = records.filter((r) => r.scenario === scenario.name && r.test === test);
      if (mine.length === 0) continue;
      const cells = systems
        .map((system) => cellFor(system, mine))
        .filter((cell): cell is Cell => cell !== null);
      rows.push({ scenario: scenario.name, label: scenario.label, test, cells });
    }
  }
  return rows;
}

function cellFor(system: string, records: RunRecord[]): Cell | null {
  const runs = records.filter((r) => r.system === system);
  if (runs.length === 0) return null;

  const ratios: number[] = [];
  for (const run of runs) {
    const direct = records.find((r) => r.system === 'direct' && r.round === run.round);
    if (direct !== undefined) ratios.push(run.opsPerSecond / direct.opsPerSecond);
  }
  const cpu = runs.flatMap((r) => (r.cpuMicrosPerOp === undefined ? [] : [r.cpuMicrosPerOp]));
  const rss = runs.flatMap((r) => (r.peakRssMiB === undefined ? [] : [r.peakRssMiB]));

  return {
    system,
    ratio: ratios.length > 0 ? median(ratios) : null,
    ratioMin: ratios.length > 0 ? Math.min(...ratios) : null,
    ratioMax: ratios.length > 0 ? Math.max(...ratios) : null,
    opsPerSecond: median(runs.map((r) => r.opsPerSecond)),
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    cpuMicrosPerOp: cpu.length > 0 ? median(cpu) : null,
    peakRssMiB: rss.length > 0 ? median(rss) : null,
    rounds: runs.length,
  };
}

/** Ratio to direct TLS, with the range over rounds when there is more than one. */
export function ratioTable(rows: Row[], systems: string[]): string {
  const header = ['scenario', 'test', 'direct ops/s', ...systems.filter((s) => s !== 'direct')];
  const body = rows.map((row) => {
    const direct = row.cells.find((c) => c.system === 'direct');
    return [
      row.label,
      row.test.toUpperCase(),
      direct ? formatCount(direct.opsPerSecond) : '-',
      ...header.slice(3).map((system) => formatRatio(row.cells.find((c) => c.system === system))),
    ];
  });
  return markdown(header, body);
}

/** p50 / p99 in milliseconds, for the scenarios about latency. */
export function latencyTable(rows: Row[], systems: string[]): string {
  const header = ['scenario', 'test', ...systems];
  const body = rows.map((row) => [
    row.label,
    row.test.toUpperCase(),
    ...systems.map((system) => {
      const cell = row.cells.find((c) => c.system === system);
      return cell ? `${formatMs(cell.p50Ms)} / ${formatMs(cell.p99Ms)}` : '-';
    }),
  ]);
  return markdown(header, body);
}

/** CPU microseconds per request and peak RSS of whatever sits between client and server. */
export function costTable(rows: Row[], systems: string[]): string {
  const middlemen = systems.filter((s) => s !== 'direct');
  const header = ['scenario', 'test', ...middlemen.map((s) => `${s} µs/op, MiB`)];
  const body = rows.map((row) => [
    row.label,
    row.test.toUpperCase(),
    ...middlemen.map((system) => {
      const cell = row.cells.find((c) => c.system === system);
      if (!cell || cell.cpuMicrosPerOp === null) return '-';
      const rss = cell.peakRssMiB === null ? '?' : cell.peakRssMiB.toFixed(0);
      return `${cell.cpuMicrosPerOp.toFixed(1)}, ${rss}`;
    }),
  ]);
  return markdown(header, body);
}

function formatRatio(cell: Cell | undefined): string {
  if (cell === undefined || cell.ratio === null) return '-';
  const value = cell.ratio.toFixed(2);
  if (cell.rounds < 2 || cell.ratioMin === null || cell.ratioMax === null) return value;
  return `${value} (${cell.ratioMin.toFixed(2)}-${cell.ratioMax.toFixed(2)})`;
}

function formatCount(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function formatMs(value: number): string {
  return value < 10 ? value.toFixed(3) : value.toFixed(1);
}

function markdown(header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i])).join(' | ')} |`;
  const rule = `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`;

  return [line(header), rule, ...body.map(line)].join('\n');
}
