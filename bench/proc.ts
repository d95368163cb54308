/**
 * What /proc says about a process (CPU time, peak memory) and about the
 * machine, so that every result file records where it was measured.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

/** Clock ticks per second of utime/stime; 100 on every Linux this runs on. */
const TICKS_PER_SECOND = Number(tryRun('getconf', ['CLK_TCK'])) || 100;

/** CPU seconds (user + system, all threads) the process has used so far. */
export function cpuSeconds(pid: number): number {
  const fields = statFields(pid);
  if (fields === null) throw new Error(`process ${pid} is gone`);
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/**
 * CPU seconds of the whole machine, from the first line of /proc/stat:
 * `busy` is user + nice + system time of every process; `steal` is time the
 * hypervisor gave to other guests (interrupt time is left out: loopback
 * traffic of the benchmark itself lands there).
 */
export function machineCpu(): { busy: number; steal: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const [user, nice, system, , , , , steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return { busy: (user + nice + system) / TICKS_PER_SECOND, steal: steal / TICKS_PER_SECOND };
}

/**
 * CPU seconds of this process and all its descendants, living or reaped:
 * a child's time moves into our cutime/cstime when it is reaped, so nothing
 * is counted twice or lost across a run.
 */
export function treeCpuSeconds(root = process.pid): number {
  const stats = new Map<number, { ppid: number; seconds: number }>();

  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields === null) continue;
    const [ppid, utime, stime, cutime, cstime] = [1, 11, 12, 13, 14].map((i) => Number(fields[i]));
    stats.set(Number(entry), {
      ppid,
      seconds: (utime + stime + cutime + cstime) / TICKS_PER_SECOND,
    });
  }

  let total = 0;
  const pending = [root];
  while (pending.length > 0) {
    const pid = pending.pop()!;
    total += stats.get(pid)?.seconds ?? 0;
    for (const [child, stat] of stats) if (stat.ppid === pid) pending.push(child);
  }
  return total;
}

/** Fields after the command name of /proc/PID/stat (index 0 is the state); null if gone. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Peak resident set size in bytes (VmHWM), over the life of the process. */
export function peakRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  if (match === null) throw new Error(`no VmHWM for process ${pid}`);
  return Number(match[1]) * 1024;
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  kernel: string;
  node: string;
  redisServer: string;
  redisBenchmark: string;
  stunnel: string;
  haproxy: string;
  /** One-minute load average when the run started. */
  loadAverage: number;
}

export function describeMachine(): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? '?';

  return {
    cpus: Number(tryRun('nproc', [])) || cpus().length,
    cpuModel: model.trim(),
    kernel: tryRun('uname', ['-r']),
    node: process.version,
    redisServer: /v=(\S+)/.exec(tryRun('redis-server', ['--version']))?.[1] ?? '?',
    redisBenchmark: firstLine(tryRun('redis-benchmark', ['--version'])),
    stunnel: /stunnel (\S+)/.exec(tryRun('stunnel', ['-version']))?.[1] ?? 'not installed',
    haproxy: /version (\S+)/.exec(tryRun('haproxy', ['-v']))?.[1] ?? 'not installed',
    loadAverage: loadavg()[0],
  };
}

/** stdout and stderr of a short command (some print versions on stderr), or ''. */
function tryRun(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 5_000 });
  return `${result.stdout ?? ''}${result.stderr ?? ''}`.trim();
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? '';
}
