/**
 * Reads a V8 .cpuprofile (as `node --cpu-prof` writes it) and says where the
 * time went: self time per function, time including callees for the
 * proxy's own functions, and shares by origin (proxy, Node, dependencies,
 * V8 itself). Samples can be limited to a time window, such as the measured
 * run without start-up and warm-up.
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionTime {
  name: string;
  /** src/session/session.js:123 style; empty for V8 and native entries. */
  where: string;
  origin: string;
  selfMs: number;
  /** Self time as a share of busy (non-idle) time. */
  selfShare: number;
  totalMs: number;
  totalShare: number;
}

export interface ProfileSummary {
  /** Sampled time in the window, idle included. */
  windowMs: number;
  busyMs: number;
  idleMs: number;
  origins: Array<{ origin: string; ms: number; share: number }>;
  bySelf: FunctionTime[];
  /** The proxy's own functions by time including what they call. */
  proxyByTotal: FunctionTime[];
}

/** Window bounds are microseconds of the monotonic clock, like the profile's. */
export function summarizeProfile(
  profile: CpuProfile,
  window: { from: number; to: number } = { from: -Infinity, to: Infinity },
  top = 25,
): ProfileSummary {
  const selfById = sampledTime(profile, window);
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  const total = new Map<string, number>();

  // Time including callees: each node's self time counts once for every
  // distinct function on its stack, so recursion is not counted twice.
  const visit = (id: number, stack: Map<string, number>): void => {
    const node = nodes.get(id)!;
    const key = keyOf(node.callFrame);
    const ms = (selfById.get(id) ?? 0) / 1000;

    stack.set(key, (stack.get(key) ?? 0) + 1);
    self.set(key, (self.get(key) ?? 0) + ms);
    for (const onStack of stack.keys()) total.set(onStack, (total.get(onStack) ?? 0) + ms);
    for (const child of node.children ?? []) visit(child, stack);
    const depth = stack.get(key)! - 1;
    if (depth === 0) stack.delete(key);
    else stack.set(key, depth);
  };
  visit(profile.nodes[0].id, new Map());

  const idleMs = self.get(keyOf({ functionName: '(idle)', url: '', lineNumber: -1 })) ?? 0;
  const windowMs = [...self.values()].reduce((a, b) => a + b, 0);
  const busyMs = windowMs - idleMs;
  const rows = [...self.keys()]
    .filter((key) => !key.startsWith('(idle)') && !key.startsWith('(root)'))
    .map((key) => row(key, self.get(key)!, total.get(key) ?? 0, busyMs));

  return {
    windowMs,
    busyMs,
    idleMs,
    origins: byOrigin(rows, busyMs),
    bySelf: [...rows].sort((a, b) => b.selfMs - a.selfMs).slice(0, top),
    proxyByTotal: rows
      .filter((r) => r.origin === 'proxy')
      .sort((a, b) => b.totalMs - a.totalMs)
      .slice(0, top),
  };
}

/** Microseconds of self time per node id, for samples inside the window. */
function sampledTime(
  profile: CpuProfile,
  window: { from: number; to: number },
): Map<number, number> {
  const time = new Map<number, number>();
  let at = profile.startTime;

  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i];
    if (at < window.from || at > window.to) continue;
    // A sample stands for the interval up to the next one.
    const next = profile.timeDeltas[i + 1] ?? 0;
    time.set(profile.samples[i], (time.get(profile.samples[i]) ?? 0) + next);
  }
  return time;
}

const SEPARATOR = '\u0000';

function keyOf(frame: CallFrame): string {
  return [frame.functionName || '(anonymous)', frame.url, frame.lineNumber].join(SEPARATOR);
}

function row(key: string, selfMs: number, totalMs: number, busyMs: number): FunctionTime {
  const [name, url, line] = key.split(SEPARATOR);
  const where = shortUrl(url);

  return {
    name,
    where: where === '' ? '' : `${where}:${Number(line) + 1}`,
    origin: originOf(name, url),
    selfMs,
    selfShare: selfMs / busyMs,
    totalMs,
    totalShare: totalMs / busyMs,
  };
}

/** file:///…/dist/src/session/session.js → src/session/session.js. */
function shortUrl(url: string): string {
  const inDist = /\/dist\/((?:src|bench|testbed)\/.*)$/.exec(url);
  if (inDist !== null) return inDist[1];
  const inModules = /\/node_modules\/(.*)$/.exec(url);
  if (inModules !== null) return inModules[1];
  return url;
}

function originOf(name: string, url: string): string {
  if (url.includes('/dist/src/')) return 'proxy';
  if (url.includes('/node_modules/')) {
    const parts = /\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    return parts === null ? 'dependencies' : parts[1];
  }
  if (url.startsWith('node:') || url.startsWith('internal/')) return 'node (JS)';
  if (name === '(garbage collector)') return 'garbage collector';
  if (name === '(program)') return 'V8/native (program)';
  return 'native (C++ bindings)';
}

function byOrigin(rows: FunctionTime[], busyMs: number): ProfileSummary['origins'] {
  const sums = new Map<string, number>();
  for (const r of rows) sums.set(r.origin, (sums.get(r.origin) ?? 0) + r.selfMs);
  return [...sums.entries()]
    .map(([origin, ms]) => ({ origin, ms, share: ms / busyMs }))
    .sort((a, b) => b.ms - a.ms);
}

/** The summary as text tables for a terminal or docs/performance.md. */
export function renderSummary(summary: ProfileSummary): string {
  const pct = (share: number): string => `${(share * 100).toFixed(1)}%`;
  const fn = (r: FunctionTime): string =>
    `| ${pct(r.selfShare).padStart(6)} | ${pct(r.totalShare).padStart(6)} | ${r.name} ` +
    `| ${r.where || r.origin} |`;
  const busy = `busy ${summary.busyMs.toFixed(0)} ms of ${summary.windowMs.toFixed(0)} ms sampled`;

  return [
    `${busy} (idle ${summary.idleMs.toFixed(0)} ms); shares are of busy time`,
    '',
    '| origin | self |',
    '|---|---|',
    ...summary.origins.map((o) => `| ${o.origin} | ${pct(o.share)} |`),
    '',
    '| self | total | function | where |',
    '|---|---|---|---|',
    ...summary.bySelf.map(fn),
    '',
    'proxy functions by total (self + callees):',
    '',
    '| self | total | function | where |',
    '|---|---|---|---|',
    ...summary.proxyByTotal.map(fn),
  ].join('\n');
}
