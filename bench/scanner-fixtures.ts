/**
 * Inputs for bench/scanner.ts: byte streams as an upstream (replies) or a
 * client (commands) would send them, built from a seeded generator so that
 * every run measures the same bytes.
 */

/** One input: its bytes, cut the way a socket hands them over. */
export interface Input {
  name: string;
  bytes: Buffer;
  chunks: Buffer[];
  /** Top-level frames (replies or commands) in `bytes`. */
  frames: number;
}

/** What a Node socket reads at most at once. */
export const CHUNK = 64 * 1024;

/** Deterministic pseudo-random numbers (mulberry32). */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bulk(payload: Buffer | string): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  return Buffer.concat([Buffer.from(`$${data.length}\r\n`, 'latin1'), data, CRLF]);
}

const CRLF = Buffer.from('\r\n', 'latin1');
const text = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Repeats `next()` until about `size` bytes, then cuts the stream into chunks. */
function build(name: string, size: number, next: () => Buffer): Input {
  const frames: Buffer[] = [];
  let length = 0;
  while (length < size) {
    const frame = next();
    frames.push(frame);
    length += frame.length;
  }
  const bytes = Buffer.concat(frames, length);
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += CHUNK) chunks.push(bytes.subarray(i, i + CHUNK));
  return { name, bytes, chunks, frames: frames.length };
}

function value64(rnd: () => number): string {
  let s = '';
  while (s.length < 64) s += Math.floor(rnd() * 36 ** 6).toString(36);
  return s.slice(0, 64);
}

/** GET/SET/INCR-style replies: `$64` bulk strings, `+OK`, `:n`, some `$-1`. */
export function smallReplies(size = 16 << 20): Input {
  const rnd = random(1);
  return build('small replies', size, () => {
    const r = rnd();
    if (r < 0.5) return bulk(value64(rnd));
    if (r < 0.75) return text('+OK\r\n');
    if (r < 0.95) return text(`:${Math.floor(rnd() * 1e9)}\r\n`);
    return text('$-1\r\n');
  });
}

/** MGET/HGETALL-style replies: arrays of ten 16-byte bulk strings. */
export function arrayReplies(size = 16 << 20): Input {
  const rnd = random(2);
  return build('arrays *10 of $16', size, () => {
    const items = [text('*10\r\n')];
    for (let i = 0; i < 10; i++) items.push(bulk(value64(rnd).slice(0, 16)));
    return Buffer.concat(items);
  });
}

/** Large values: bulk strings of `payload` bytes each. */
export function bigBulk(payload: number, label: string, size: number): Input {
  const data = Buffer.alloc(payload, 0x61);
  // Decoys: a payload that looks like RESP must not be read as frames.
  data.write('\r\n*3\r\n$-1\r\n:1\r\n', 100, 'latin1');
  const frame = bulk(data);
  return build(`bulk ${label}`, size, () => frame);
}

/**
 * RESP3 traffic: maps (HELLO, CLIENT TRACKING style), pub/sub push messages,
 * sets, doubles, booleans, nulls and an attribute.
 */
export function resp3Replies(size = 16 << 20): Input {
  const rnd = random(3);
  return build('RESP3 mix', size, () => {
    const r = rnd();
    if (r < 0.4) {
      return Buffer.concat([
        text('%3\r\n'),
        bulk('field1'),
        bulk(value64(rnd)),
        bulk('score'),
        text(`,${(rnd() * 1000).toFixed(3)}\r\n`),
        bulk('active'),
        text('#t\r\n'),
      ]);
    }
    if (r < 0.8) {
      return Buffer.concat([text('>3\r\n'), bulk('message'), bulk('events'), bulk(value64(rnd))]);
    }
    if (r < 0.9) return Buffer.concat([text('~3\r\n:1\r\n:2\r\n'), bulk(value64(rnd))]);
    if (r < 0.97) return text('_\r\n');
    return Buffer.concat([text('|1\r\n+ttl\r\n:3600\r\n'), bulk(value64(rnd))]);
  });
}

/** A client pipelining `GET key` and `SET key <64 bytes>` as RESP multibulk. */
export function pipelinedCommands(size = 16 << 20): Input {
  const rnd = random(4);
  return build('GET/SET commands', size, () => {
    const key = `key:${Math.floor(rnd() * 1e6)
      .toString()
      .padStart(6, '0')}`;
    if (rnd() < 0.5) return Buffer.concat([text('*2\r\n'), bulk('GET'), bulk(key)]);
    return Buffer.concat([text('*3\r\n'), bulk('SET'), bulk(key), bulk(value64(rnd))]);
  });
}
