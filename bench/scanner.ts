/**
 * Microbenchmark of the proxy's RESP scanners against redis-parser, the RESP2
 * parser of ioredis, on the same bytes cut into 64 KiB chunks as a socket
 * delivers them. The scanners only find where each frame ends; redis-parser
 * decodes every value (returnBuffers: true, so bulk strings stay Buffers).
 * Contenders alternate within a round, their order flipping every round; the
 * table shows medians over rounds. Results and method: docs/resp-scanner.md.
 *
 *   node dist/bench/scanner.js [--runs N] [--min-ms MS] [--json]
 */
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { GCProfiler, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { ReplyScanner } from '../src/resp/reply-scanner.js';
import { RequestScanner } from '../src/resp/request-scanner.js';
import {
  arrayReplies,
  bigBulk,
  pipelinedCommands,
  resp3Replies,
  smallReplies,
  type Input,
} from './scanner-fixtures.js';

interface ParserOptions {
  returnReply(reply: unknown): void;
  returnError(err: Error): void;
  returnFatalError?(err: Error): void;
  returnBuffers: boolean;
}

/** redis-parser 3 ships no types. */
const Parser = createRequire(import.meta.url)('redis-parser') as new (options: ParserOptions) => {
  execute(chunk: Buffer): void;
};

/** Reads every chunk once and returns the number of frames seen. */
type Reader = (chunks: readonly Buffer[]) => number;

/** The frames a scanner finds in `chunks`, each chunk read once. */
function countFrames(
  scanner: { scan(buf: Buffer, pos: number): number },
  chunks: readonly Buffer[],
): number {
  let frames = 0;
  for (const chunk of chunks) {
    let pos = 0;
    while (pos < chunk.length) {
      const end = scanner.scan(chunk, pos);
      if (end < 0) break;
      frames++;
      pos = end;
    }
  }
  return frames;
}

function replyScanner(chunks: readonly Buffer[]): number {
  return countFrames(new ReplyScanner(), chunks);
}

function requestScanner(chunks: readonly Buffer[]): number {
  return countFrames(new RequestScanner(), chunks);
}

function redisParser(chunks: readonly Buffer[]): number {
  let frames = 0;
  const parser = new Parser({
    returnReply: () => {
      frames++;
    },
    returnError: () => {
      frames++;
    },
    returnFatalError: (err) => {
      throw err;
    },
    returnBuffers: true,
  });
  for (const chunk of chunks) parser.execute(chunk);
  return frames;
}

interface Case {
  input: Input;
  readers: Array<{ name: string; read: Reader }>;
}

interface Result {
  input: string;
  inputBytes: number;
  frames: number;
  reader: string;
  /** Medians over rounds; MB = 10^6 bytes. */
  mbPerSecond: number;
  framesPerSecond: number;
  mbPerSecondMin: number;
  mbPerSecondMax: number;
  /** V8 heap allocated per MiB of input (garbage included), less an empty loop's. */
  heapKibPerMib: number;
  /** Bytes copied into other buffers, per byte of input. */
  copiedShare: number;
  gcsPerPass: number;
}

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '7' },
    'min-ms': { type: 'string', default: '300' },
    json: { type: 'boolean', default: false },
  },
});
const RUNS = Number(opts.runs);
const MIN_MS = Number(opts['min-ms']);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Passes over the input until MIN_MS have gone by; MB/s and frames/s. */
function timed(read: Reader, input: Input): { mbps: number; fps: number } {
  let passes = 0;
  let frames = 0;
  const start = process.hrtime.bigint();
  let seconds = 0;
  do {
    frames += read(input.chunks);
    passes++;
    seconds = Number(process.hrtime.bigint() - start) / 1e9;
  } while (seconds * 1000 < MIN_MS);
  return { mbps: (passes * input.bytes.length) / seconds / 1e6, fps: frames / seconds };
}

type CopyMethod = (
  this: Buffer,
  target: Uint8Array,
  targetStart?: number,
  sourceStart?: number,
  sourceEnd?: number,
) => number;

/** Input read per allocation measurement, so that fixed costs spread thin. */
const ALLOC_BYTES = 64 << 20;

/**
 * V8 heap allocated while reading the input (garbage included), from the heap
 * in use before and after each collection the GC profiler reports, and the
 * bytes copied through Buffer.from, Buffer.concat and Buffer#copy (counted by
 * wrapping them). Reads whole passes until ALLOC_BYTES.
 */
function allocations(read: Reader, input: Input): { heap: number; copied: number; gcs: number } {
  const passes = Math.max(1, Math.ceil(ALLOC_BYTES / input.bytes.length));
  let copied = 0;
  const proto = Buffer.prototype as unknown as { copy: CopyMethod };
  const statics = Buffer as unknown as Record<'from' | 'concat', (...args: unknown[]) => Buffer>;
  const { copy } = proto;
  const { from, concat } = statics;
  proto.copy = function (this: Buffer, ...args: Parameters<CopyMethod>): number {
    const n = copy.apply(this, args);
    copied += n;
    return n;
  };
  statics.from = (...args: unknown[]): Buffer => {
    const buf = from.apply(Buffer, args);
    if (ArrayBuffer.isView(args[0]) || typeof args[0] === 'string') copied += buf.length;
    return buf;
  };
  statics.concat = (...args: unknown[]): Buffer => {
    const buf = concat.apply(Buffer, args);
    copied += buf.length;
    return buf;
  };

  gc();
  const profiler = new GCProfiler();
  const before = getHeapStatistics().used_heap_size;
  profiler.start();
  try {
    for (let i = 0; i < passes; i++) read(input.chunks);
  } finally {
    proto.copy = copy;
    statics.from = from;
    statics.concat = concat;
  }
  const after = getHeapStatistics().used_heap_size;
  const { statistics } = profiler.stop();
  let heap = 0;
  let previous = before;
  for (const gcEvent of statistics) {
    heap += gcEvent.beforeGC.heapStatistics.usedHeapSize - previous;
    previous = gcEvent.afterGC.heapStatistics.usedHeapSize;
  }
  heap += after - previous;
  return { heap: heap / passes, copied: copied / passes, gcs: statistics.length / passes };
}

/** Walks the chunks and does nothing: what measuring itself allocates. */
function emptyLoop(chunks: readonly Buffer[]): number {
  let bytes = 0;
  for (const chunk of chunks) bytes += chunk.length;
  return bytes;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function measure({ input, readers }: Case): Result[] {
  for (const { name, read } of readers) {
    const frames = read(input.chunks);
    if (frames !== input.frames) {
      throw new Error(`${name} found ${frames} frames in "${input.name}", not ${input.frames}`);
    }
    timed(read, input); // warm-up
  }
  const samples = readers.map(() => ({ mbps: [] as number[], fps: [] as number[] }));
  for (let round = 0; round < RUNS; round++) {
    const order = readers.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) {
      const { mbps, fps } = timed(readers[i].read, input);
      samples[i].mbps.push(mbps);
      samples[i].fps.push(fps);
    }
  }
  const baseline = median([0, 1, 2].map(() => allocations(emptyLoop, input).heap));
  return readers.map(({ name, read }, i) => {
    const alloc = allocations(read, input);
    return {
      input: input.name,
      inputBytes: input.bytes.length,
      frames: input.frames,
      reader: name,
      mbPerSecond: median(samples[i].mbps),
      framesPerSecond: median(samples[i].fps),
      mbPerSecondMin: Math.min(...samples[i].mbps),
      mbPerSecondMax: Math.max(...samples[i].mbps),
      heapKibPerMib: Math.max(0, alloc.heap - baseline) / 1024 / (input.bytes.length / 2 ** 20),
      copiedShare: alloc.copied / input.bytes.length,
      gcsPerPass: alloc.gcs,
    };
  });
}

/** What redis-parser makes of a RESP3 frame: it knows RESP2 type bytes only. */
function parserOnResp3(frame: string): string {
  let outcome = 'parsed';
  const parser = new Parser({
    returnReply: () => undefined,
    returnError: (err) => {
      outcome = `error reply: ${err.message}`;
    },
    returnFatalError: (err) => {
      outcome = `${err.name}: ${err.message}`;
    },
    returnBuffers: true,
  });
  parser.execute(Buffer.from(frame, 'latin1'));
  return outcome;
}

const scanner = { name: 'ReplyScanner', read: replyScanner };
const parser = { name: 'redis-parser', read: redisParser };
const CASES: Array<() => Case> = [
  () => ({ input: smallReplies(), readers: [scanner, parser] }),
  () => ({ input: arrayReplies(), readers: [scanner, parser] }),
  () => ({ input: bigBulk(100 * 1024, '100 KiB', 16 << 20), readers: [scanner, parser] }),
  () => ({ input: bigBulk(8 << 20, '8 MiB', 32 << 20), readers: [scanner, parser] }),
  () => ({ input: resp3Replies(), readers: [scanner] }),
  () => ({
    input: pipelinedCommands(),
    readers: [
      { name: 'RequestScanner', read: requestScanner },
      { name: 'redis-parser (as arrays)', read: redisParser },
    ],
  }),
];

const RESP3_SAMPLES: Array<[string, string]> = [
  ['%1 map', '%1\r\n$3\r\nkey\r\n:1\r\n'],
  ['>3 push', '>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n'],
];

function machine(): string {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  const load = loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');
  return (
    `${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ` +
    `${cpus().length} CPUs (${cpu}), load average ${load}`
  );
}

function fmt(n: number, digits = 0): string {
  const options = { maximumFractionDigits: digits, minimumFractionDigits: digits };
  return n.toLocaleString('en-US', options);
}

function share(fraction: number): string {
  const percent = fraction * 100;
  return `${fmt(percent, percent >= 1 || percent === 0 ? 1 : 3)} %`;
}

function table(results: Result[]): string {
  const lines = [
    '| input | frames | reader | MB/s | MB/s min-max | frames/s | heap KiB/MiB | copied |',
    '|---|--:|---|--:|--:|--:|--:|--:|',
  ];
  for (const r of results) {
    const range = `${fmt(r.mbPerSecondMin)}-${fmt(r.mbPerSecondMax)}`;
    lines.push(
      `| ${r.input} | ${fmt(r.frames)} | ${r.reader} | ${fmt(r.mbPerSecond)} ` +
        `| ${range} | ${fmt(r.framesPerSecond)} | ${fmt(r.heapKibPerMib, 1)} ` +
        `| ${share(r.copiedShare)} |`,
    );
  }
  return lines.join('\n');
}

function main(): void {
  const header = machine();
  const results: Result[] = [];
  for (const make of CASES) {
    const result = measure(make());
    results.push(...result);
    if (!opts.json) process.stderr.write(`done: ${result[0].input}\n`);
  }
  const resp3 = RESP3_SAMPLES.map(([what, frame]) => ({ what, outcome: parserOnResp3(frame) }));

  if (opts.json) {
    const report = { machine: header, runs: RUNS, minMs: MIN_MS, results, resp3 };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    [
      `RESP scanners vs redis-parser: ${header}`,
      `${RUNS} alternating rounds of >= ${MIN_MS} ms each, medians; 64 KiB chunks; ` +
        'MB = 10^6 bytes; heap: KiB allocated per MiB of input.',
      '',
      table(results),
      '',
      ...resp3.map(({ what, outcome }) => `redis-parser on a RESP3 ${what}: ${outcome}`),
      '',
    ].join('\n'),
  );
}

main();
