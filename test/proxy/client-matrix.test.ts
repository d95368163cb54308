import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';

import { Redis } from 'ioredis';
import { Redis as Redis6 } from 'ioredis6';
import { createClient, MultiErrorReply, RESP_TYPES } from 'redis';

import { startStack, waitForToken, type Stack } from '../support/stack.js';

/**
 * One table of scenarios, run once per client: ioredis 5 (RESP2), ioredis 6 with its
 * defaults (HELLO 3), node-redis 5 with RESP3 and with RESP2, and redis-cli. Library
 * clients run each scenario through a small adapter (`Conn`) over their own API
 * (pipeline(), multi(), subscribe()...); redis-cli runs it with what its command line
 * offers (--pipe, -x, -n, commands on stdin). A client that truly cannot do a scenario
 * is skipped with the reason, in the table.
 */

const BIG = 8 * 1024 * 1024;
const PIPELINE = 5000;
const CONCURRENT = 100;
const MESSAGES = 100;

type Arg = string | number | Buffer;

/** One connection through the proxy, as a library client sees it. */
interface Conn {
  call(...args: Arg[]): Promise<unknown>;
  setBuffer(key: string, value: Buffer): Promise<unknown>;
  getBuffer(key: string): Promise<Buffer | null>;
  /** Sends all commands as one pipeline; replies in order, error replies as Error. */
  pipeline(commands: string[][]): Promise<unknown[]>;
  /** MULTI, the commands, EXEC; the EXEC reply. */
  multi(commands: string[][]): Promise<unknown[]>;
  select(db: number): Promise<void>;
  subscribe(channel: string, onMessage: (message: string) => void): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  blpop(key: string): Promise<[string, string] | null>;
  close(): Promise<void>;
}

interface ConnectOptions {
  username?: string;
  password?: string;
  /** Client name, set the way the library sets it (HELLO SETNAME or CLIENT SETNAME). */
  name?: string;
}

interface LibClient {
  kind: 'lib';
  id: string;
  label: string;
  /** The protocol the library negotiates. */
  resp: 2 | 3;
  connect(port: number, options?: ConnectOptions): Promise<Conn>;
  /**
   * A connection on which `HELLO <resp> AUTH user pass SETNAME name` was sent: by the
   * library's own handshake when it sends that, otherwise as an explicit command.
   */
  helloAuthSetname(port: number, user: string, pass: string, name: string): Promise<Conn>;
}

interface CliClient {
  kind: 'cli';
  id: string;
  label: string;
}

type Client = LibClient | CliClient;

interface Ctx {
  stack: Stack;
  /** A key (or channel) name unique to this client and scenario. */
  key: (name: string) => string;
}

interface Scenario {
  name: string;
  lib?: (client: LibClient, ctx: Ctx) => Promise<void>;
  cli?: (ctx: Ctx) => Promise<void>;
  /** Clients (by id) that cannot run this scenario, and why. */
  cannot?: Record<string, string>;
}

// ---------------------------------------------------------------------------------------
// Library adapters

/** The part of the ioredis API (identical in 5 and 6) that the scenarios use. */
interface IoredisApi {
  connect(): Promise<void>;
  call(command: string, ...args: Arg[]): Promise<unknown>;
  set(key: string, value: Buffer): Promise<unknown>;
  getBuffer(key: string): Promise<Buffer | null>;
  pipeline(commands: string[][]): { exec(): Promise<[Error | null, unknown][] | null> };
  multi(commands: string[][]): { exec(): Promise<[Error | null, unknown][] | null> };
  select(db: number): Promise<unknown>;
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  blpop(key: string, timeout: number): Promise<[string, string] | null>;
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  quit(): Promise<unknown>;
  disconnect(): void;
}

type IoredisOptions = {
  host: string;
  port: number;
  lazyConnect: boolean;
  maxRetriesPerRequest: number;
  retryStrategy: () => null;
  username?: string;
  password?: string;
  connectionName?: string;
};

function ioredisClient(
  id: string,
  label: string,
  resp: 2 | 3,
  make: (options: IoredisOptions) => IoredisApi,
): LibClient {
  const connect = async (port: number, options: ConnectOptions = {}): Promise<Conn> => {
    const client = make({
      host: '127.0.0.1',
      port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      username: options.username,
      password: options.password,
      connectionName: options.name,
    });
    let lastError: Error | undefined;
    client.on('error', (err) => (lastError = err));
    try {
      await client.connect();
    } catch (err) {
      client.disconnect();
      throw lastError ?? err;
    }
    const listeners = new Map<string, (message: string) => void>();
    client.on('message', (channel, message) => listeners.get(channel)?.(message));
    const flatten = (results: [Error | null, unknown][] | null): unknown[] => {
      assert.ok(results !== null, 'EXEC aborted');
      return results.map(([err, value]) => err ?? value);
    };
    return {
      call: (command, ...args) => client.call(String(command), ...args),
      setBuffer: (key, value) => client.set(key, value),
      getBuffer: (key) => client.getBuffer(key),
      // ioredis looks each command up as a method: lower-case names.
      pipeline: async (commands) => flatten(await client.pipeline(lower(commands)).exec()),
      multi: async (commands) => flatten(await client.multi(lower(commands)).exec()),
      select: async (db) => {
        await client.select(db);
      },
      subscribe: async (channel, onMessage) => {
        listeners.set(channel, onMessage);
        await client.subscribe(channel);
      },
      unsubscribe: async (channel) => {
        await client.unsubscribe(channel);
        listeners.delete(channel);
      },
      blpop: (key) => client.blpop(key, 0),
      close: async () => {
        await client.quit().catch(() => client.disconnect());
      },
    };
  };
  return {
    kind: 'lib',
    id,
    label,
    resp,
    connect,
    async helloAuthSetname(port, user, pass, name) {
      // Neither ioredis sends SETNAME inside HELLO, so the command is sent as is, in the
      // protocol the connection already speaks.
      const conn = await connect(port);
      const reply = await conn.call('HELLO', String(resp), 'AUTH', user, pass, 'SETNAME', name);
      assert.ok(Array.isArray(reply) && reply.includes('proto'), `HELLO replied ${String(reply)}`);
      return conn;
    },
  };
}

function lower(commands: string[][]): string[][] {
  return commands.map(([name, ...args]) => [name.toLowerCase(), ...args]);
}

/** node-redis rejects a batch with an error reply in it; the replies are in the error. */
async function withErrors(batch: Promise<unknown[]>): Promise<unknown[]> {
  try {
    return await batch;
  } catch (err) {
    if (err instanceof MultiErrorReply) return err.replies;
    throw err;
  }
}

function nodeRedisClient(id: string, label: string, resp: 2 | 3): LibClient {
  const connect = async (port: number, options: ConnectOptions = {}): Promise<Conn> => {
    const client = createClient({
      socket: { host: '127.0.0.1', port, reconnectStrategy: false },
      RESP: resp,
      username: options.username,
      password: options.password,
      name: options.name,
    });
    let lastError: Error | undefined;
    client.on('error', (err: Error) => (lastError = err));
    try {
      await client.connect();
    } catch (err) {
      client.destroy();
      throw lastError ?? err;
    }
    const buffers = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
    const queue = (commands: string[][]) => {
      const multi = client.multi();
      for (const command of commands) multi.addCommand(command);
      return multi;
    };
    return {
      call: (...args) => client.sendCommand(args.map((a) => (Buffer.isBuffer(a) ? a : String(a)))),
      setBuffer: (key, value) => client.set(key, value),
      getBuffer: (key) => buffers.get(key),
      // Commands issued in the same tick go out as one pipeline (node-redis's own
      // pipelining); execAsPipeline() would reject at the first error reply.
      pipeline: async (commands) => {
        const settled = await Promise.allSettled(commands.map((c) => client.sendCommand(c)));
        return settled.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error)));
      },
      multi: (commands) => withErrors(queue(commands).exec()),
      select: (db) => client.select(db),
      subscribe: (channel, onMessage) => client.subscribe(channel, (message) => onMessage(message)),
      unsubscribe: (channel) => client.unsubscribe(channel),
      blpop: async (key) => {
        const reply = await client.blPop(key, 0);
        return reply === null ? null : [reply.key, reply.element];
      },
      close: async () => {
        await client.close().catch(() => client.destroy());
      },
    };
  };
  return {
    kind: 'lib',
    id,
    label,
    resp,
    connect,
    // node-redis sends `HELLO <RESP> AUTH user pass SETNAME name` itself when RESP is set.
    helloAuthSetname: (port, username, password, name) =>
      connect(port, { username, password, name }),
  };
}

const CLIENTS: Client[] = [
  ioredisClient('io5', 'ioredis 5 (RESP2)', 2, (o) => new Redis(o)),
  ioredisClient('io6', 'ioredis 6 with its defaults (HELLO 3)', 3, (o) => new Redis6(o)),
  nodeRedisClient('nr3', 'node-redis 5 with RESP3', 3),
  nodeRedisClient('nr2', 'node-redis 5 with RESP2', 2),
  { kind: 'cli', id: 'cli', label: 'redis-cli' },
];

// ---------------------------------------------------------------------------------------
// redis-cli

interface CliResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs redis-cli against the proxy with `input` on stdin. */
function redisCli(
  port: number,
  args: string[],
  input: string | Buffer = '',
  env: Record<string, string> = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(stdout), stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/** stdout lines of a redis-cli run that must succeed. */
async function cliLines(
  port: number,
  args: string[],
  input: string | Buffer = '',
  env: Record<string, string> = {},
): Promise<string[]> {
  const result = await redisCli(port, args, input, env);
  assert.equal(result.code, 0, `redis-cli ${args.join(' ')}: ${result.stderr}`);
  return result.stdout.toString().split('\n').slice(0, -1);
}

/** A long-running redis-cli (SUBSCRIBE, BLPOP) whose stdout lines are collected. */
interface CliProcess {
  lines: string[];
  waitForLines(count: number): Promise<void>;
  exited: Promise<number | null>;
  stop(): void;
}

function spawnCli(port: number, args: string[]): CliProcess {
  const child: ChildProcess = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => lines.push(line));
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  return {
    lines,
    exited,
    waitForLines: (count) =>
      waitFor(() => lines.length >= count, `${count} lines from redis-cli ${args.join(' ')}`),
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  };
}

// ---------------------------------------------------------------------------------------
// helpers

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Clients blocked on the redis-server itself, read over the testbed's admin connection. */
async function blockedClients(stack: Stack): Promise<number> {
  const info = await stack.redis.admin.info('clients');
  return Number(/blocked_clients:(\d+)/.exec(info)?.[1]);
}

/** 8 MiB of random bytes that also contain every byte value, CR and LF included. */
function bigValue(): Buffer {
  const value = randomBytes(BIG);
  for (let i = 0; i < 256; i++) value[i] = i;
  return value;
}

/**
 * Published messages, mostly short; some larger than the 4 KiB up to which the proxy
 * reads a push frame whole (it translates pushes for RESP2 subscribers).
 */
function messages(): string[] {
  return Array.from({ length: MESSAGES }, (_, i) => {
    const size = i % 25 === 0 ? 70_000 : i % 10 === 5 ? 5000 : 0;
    return `m${i}`.padEnd(size, '.');
  });
}

/** Replies of `RPUSH list i` / `LINDEX list i`, alternating, for i = 0... */
function pipelineCommands(list: string): string[][] {
  const commands: string[][] = [];
  for (let i = 0; i < PIPELINE / 2; i++) {
    commands.push(['RPUSH', list, String(i)], ['LINDEX', list, String(i)]);
  }
  return commands;
}

/** Matches an error reply with this code, whatever the library's error class. */
function replyError(code: string): (err: unknown) => boolean {
  return (err) => err instanceof Error && err.message.startsWith(`${code} `);
}

function assertIssuedOid(stack: Stack, whoami: unknown): void {
  assert.equal(typeof whoami, 'string');
  assert.ok(
    stack.sts.tokens.has(whoami as string),
    `${String(whoami)} is the oid of a token the service issued`,
  );
}

// ---------------------------------------------------------------------------------------
// the scenarios

const SCENARIOS: Scenario[] = [
  {
    name: `a pipeline of ${PIPELINE} commands: replies come back in order`,
    lib: async (client, { stack, key }) => {
      const conn = await client.connect(stack.port);
      try {
        const list = key('pipeline');
        const replies = await conn.pipeline(pipelineCommands(list));
        assert.equal(replies.length, PIPELINE);
        for (let i = 0; i < PIPELINE / 2; i++) {
          assert.equal(replies[2 * i], i + 1, `RPUSH reply #${i}`);
          assert.equal(replies[2 * i + 1], String(i), `LINDEX reply #${i}`);
        }
        assert.equal(await conn.call('LLEN', list), PIPELINE / 2);
      } finally {
        await conn.close();
      }
    },
    cli: async ({ stack, key }) => {
      const list = key('pipeline');
      const input = pipelineCommands(list)
        .map((command) => `${command.join(' ')}\r\n`)
        .join('');
      const result = await redisCli(stack.port, ['--pipe'], input);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout.toString(), new RegExp(`errors: 0, replies: ${PIPELINE}\\b`));
      assert.deepEqual(await cliLines(stack.port, ['LLEN', list]), [String(PIPELINE / 2)]);
      assert.deepEqual(await cliLines(stack.port, ['LRANGE', list, '0', '4']), [
        '0',
        '1',
        '2',
        '3',
        '4',
      ]);
      assert.deepEqual(await cliLines(stack.port, ['LINDEX', list, '-1']), [
        String(PIPELINE / 2 - 1),
      ]);
    },
  },
  {
    name: 'an 8 MiB binary value (all 256 byte values) reads back byte-identical',
    lib: async (client, { stack, key }) => {
      const conn = await client.connect(stack.port);
      try {
        const value = bigValue();
        assert.equal(await conn.setBuffer(key('big'), value), 'OK');
        const back = await conn.getBuffer(key('big'));
        assert.ok(back !== null && back.length === BIG, `got ${back?.length} bytes`);
        assert.ok(value.equals(back), 'same bytes');
        assert.equal(await conn.call('STRLEN', key('big')), BIG);
      } finally {
        await conn.close();
      }
    },
    cli: async ({ stack, key }) => {
      const value = bigValue();
      assert.deepEqual(await cliLines(stack.port, ['-x', 'SET', key('big')], value), ['OK']);
      const back = await redisCli(stack.port, ['--raw', 'GET', key('big')]);
      assert.equal(back.code, 0, back.stderr);
      // --raw prints the value as it is, then a newline.
      assert.equal(back.stdout.length, BIG + 1);
      assert.ok(value.equals(back.stdout.subarray(0, BIG)), 'same bytes');
      assert.deepEqual(await cliLines(stack.port, ['STRLEN', key('big')]), [String(BIG)]);
    },
  },
  {
    name: 'MULTI/EXEC runs the queued commands as one transaction',
    lib: async (client, { stack, key }) => {
      const conn = await client.connect(stack.port);
      try {
        const replies = await conn.multi([
          ['SET', key('tx'), 'a'],
          ['INCR', key('tx-n')],
          ['INCR', key('tx-n')],
          ['GET', key('tx')],
        ]);
        assert.deepEqual(replies, ['OK', 1, 2, 'a']);
        assert.equal(await conn.call('GET', key('tx-n')), '2');
        // A command failing inside EXEC is an error element; the others still ran.
        const mixed = await conn.multi([
          ['INCR', key('tx')],
          ['INCR', key('tx-n')],
        ]);
        assert.ok(replyError('ERR')(mixed[0]), `got ${String(mixed[0])}`);
        assert.equal(mixed[1], 3);
      } finally {
        await conn.close();
      }
    },
    cli: async ({ stack, key }) => {
      const input = `MULTI\nSET ${key('tx')} a\nINCR ${key('tx-n')}\nINCR ${key('tx-n')}\nGET ${key('tx')}\nEXEC\n`;
      assert.deepEqual(await cliLines(stack.port, [], input), [
        'OK',
        'QUEUED',
        'QUEUED',
        'QUEUED',
        'QUEUED',
        'OK',
        '1',
        '2',
        'a',
      ]);
    },
  },
  {
    name: 'SELECT: a value lives in its database only',
    lib: async (client, { stack, key }) => {
      const db = 5;
      const conn = await client.connect(stack.port);
      try {
        await conn.select(db);
        await conn.call('SET', key('db'), `in-${db}`);
        await conn.select(0);
        assert.equal(await conn.call('GET', key('db')), null);
        await conn.call('SET', key('db'), 'in-0');
        await conn.select(db);
        assert.equal(await conn.call('GET', key('db')), `in-${db}`);
      } finally {
        await conn.close();
      }
      // The upstream connection goes back to the pool; the next client starts in db 0.
      const next = await client.connect(stack.port);
      try {
        assert.equal(await next.call('GET', key('db')), 'in-0');
      } finally {
        await next.close();
      }
    },
    cli: async ({ stack, key }) => {
      assert.deepEqual(await cliLines(stack.port, ['-n', '5', 'SET', key('db'), 'in-5']), ['OK']);
      assert.deepEqual(await cliLines(stack.port, ['SET', key('db'), 'in-0']), ['OK']);
      assert.deepEqual(await cliLines(stack.port, ['-n', '5', 'GET', key('db')]), ['in-5']);
      assert.deepEqual(await cliLines(stack.port, ['-n', '0', 'GET', key('db')]), ['in-0']);
      assert.deepEqual(await cliLines(stack.port, ['-n', '6', 'EXISTS', key('db')]), ['0']);
    },
  },
  {
    name: `pub/sub: the subscriber receives ${MESSAGES} published messages (up to 70 KB) in order`,
    lib: async (client, { stack, key }) => {
      const channel = key('news');
      const sub = await client.connect(stack.port);
      const pub = await client.connect(stack.port);
      try {
        const received: string[] = [];
        await sub.subscribe(channel, (message) => received.push(message));
        const sent = messages();
        for (const message of sent) assert.equal(await pub.call('PUBLISH', channel, message), 1);
        await waitFor(() => received.length >= MESSAGES, `${MESSAGES} messages`);
        assert.deepEqual(received, sent);
        await sub.unsubscribe(channel);
        // String(): node-redis answers PING with a Buffer once a connection has subscribed,
        // through the proxy as against redis-server directly.
        assert.equal(String(await sub.call('PING')), 'PONG');
      } finally {
        await Promise.all([sub.close(), pub.close()]);
      }
    },
    cli: async ({ stack, key }) => {
      const channel = key('news');
      const sub = spawnCli(stack.port, ['SUBSCRIBE', channel]);
      try {
        await sub.waitForLines(3);
        assert.deepEqual(sub.lines, ['subscribe', channel, '1']);
        const sent = messages();
        const input = sent.map((m) => `PUBLISH ${channel} ${m}\n`).join('');
        const counts = await cliLines(stack.port, [], input);
        assert.deepEqual(counts, Array<string>(MESSAGES).fill('1'));
        await sub.waitForLines(3 + 3 * MESSAGES);
        const expected = sent.flatMap((m) => ['message', channel, m]);
        assert.deepEqual(sub.lines.slice(3), expected);
      } finally {
        sub.stop();
        await sub.exited;
      }
    },
  },
  {
    name: 'BLPOP blocks until another connection pushes',
    lib: async (client, { stack, key }) => {
      const blocker = await client.connect(stack.port);
      const pusher = await client.connect(stack.port);
      try {
        const baseline = await blockedClients(stack);
        const popped = blocker.blpop(key('queue'));
        popped.catch(() => undefined); // awaited below; rejects only if the test fails first
        await waitFor(async () => (await blockedClients(stack)) > baseline, 'BLPOP to block');
        assert.equal(await pusher.call('RPUSH', key('queue'), 'job'), 1);
        assert.deepEqual(await popped, [key('queue'), 'job']);
        assert.equal(await blocker.call('LLEN', key('queue')), 0);
      } finally {
        await Promise.all([blocker.close(), pusher.close()]);
      }
    },
    cli: async ({ stack, key }) => {
      const baseline = await blockedClients(stack);
      const blocker = spawnCli(stack.port, ['BLPOP', key('queue'), '0']);
      try {
        await waitFor(async () => (await blockedClients(stack)) > baseline, 'BLPOP to block');
        assert.deepEqual(blocker.lines, []);
        assert.deepEqual(await cliLines(stack.port, ['RPUSH', key('queue'), 'job']), ['1']);
        assert.equal(await blocker.exited, 0);
        assert.deepEqual(blocker.lines, [key('queue'), 'job']);
      } finally {
        blocker.stop();
      }
    },
  },
  {
    name: 'error replies arrive as errors and the connection stays usable',
    lib: async (client, { stack, key }) => {
      const conn = await client.connect(stack.port);
      try {
        await conn.call('SET', key('str'), 'x');
        await assert.rejects(conn.call('INCR', key('str')), replyError('ERR'));
        await assert.rejects(conn.call('LPUSH', key('str'), 'y'), replyError('WRONGTYPE'));
        const replies = await conn.pipeline([
          ['INCR', key('str')],
          ['GET', key('str')],
        ]);
        assert.ok(replyError('ERR')(replies[0]), `got ${String(replies[0])}`);
        assert.equal(replies[1], 'x');
        assert.equal(await conn.call('GET', key('str')), 'x');
      } finally {
        await conn.close();
      }
    },
    cli: async ({ stack, key }) => {
      const input = `SET ${key('str')} x\nINCR ${key('str')}\nLPUSH ${key('str')} y\nGET ${key('str')}\n`;
      // redis-cli follows each error line with an empty one.
      const lines = (await cliLines(stack.port, [], input)).filter((line) => line !== '');
      assert.equal(lines.length, 4, lines.join('|'));
      assert.equal(lines[0], 'OK');
      assert.match(lines[1], /^ERR /);
      assert.match(lines[2], /^WRONGTYPE /);
      assert.equal(lines[3], 'x');
    },
  },
  {
    name: `${CONCURRENT} concurrent connections, each with its own upstream connection`,
    lib: async (client, { stack, key }) => {
      const settled = await Promise.allSettled(
        Array.from({ length: CONCURRENT }, () => client.connect(stack.port)),
      );
      const conns = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      try {
        const failed = settled.find((r) => r.status === 'rejected');
        if (failed) throw failed.reason;
        const results = await Promise.all(
          conns.map(async (conn, i) => {
            await conn.call('SET', key(`c${i}`), `v${i}`);
            await conn.call('INCR', key('count'));
            const id = await conn.call('CLIENT', 'ID');
            return { id, value: await conn.call('GET', key(`c${i}`)) };
          }),
        );
        assert.deepEqual(
          results.map((r) => r.value),
          conns.map((_, i) => `v${i}`),
        );
        assert.equal(new Set(results.map((r) => r.id)).size, CONCURRENT, 'distinct CLIENT IDs');
        assert.equal(await conns[0].call('GET', key('count')), String(CONCURRENT));
      } finally {
        await Promise.all(conns.map((conn) => conn.close()));
      }
    },
    cli: async ({ stack, key }) => {
      const outputs = await Promise.all(
        Array.from({ length: CONCURRENT }, (_, i) =>
          cliLines(
            stack.port,
            [],
            `SET ${key(`c${i}`)} v${i}\nINCR ${key('count')}\nCLIENT ID\nGET ${key(`c${i}`)}\n`,
          ),
        ),
      );
      outputs.forEach((lines, i) => {
        assert.equal(lines.length, 4, lines.join('|'));
        assert.equal(lines[0], 'OK');
        assert.equal(lines[3], `v${i}`);
      });
      const ids = new Set(outputs.map((lines) => lines[2]));
      assert.equal(ids.size, CONCURRENT, 'distinct CLIENT IDs');
      const counts = outputs.map((lines) => Number(lines[1])).sort((a, b) => a - b);
      assert.deepEqual(
        counts,
        Array.from({ length: CONCURRENT }, (_, i) => i + 1),
      );
    },
  },
  {
    name: 'ACL WHOAMI names the principal of an issued token',
    lib: async (client, { stack }) => {
      const conn = await client.connect(stack.port);
      try {
        assertIssuedOid(stack, await conn.call('ACL', 'WHOAMI'));
      } finally {
        await conn.close();
      }
    },
    cli: async ({ stack }) => {
      const lines = await cliLines(stack.port, ['ACL', 'WHOAMI']);
      assert.equal(lines.length, 1);
      assertIssuedOid(stack, lines[0]);
    },
  },
  {
    name: 'AUTH with any password (and any user) is accepted; upstream stays the token',
    lib: async (client, { stack }) => {
      // Password only, then user and password, through the library's own handshake
      // (AUTH for RESP2 clients, HELLO 3 AUTH for ioredis 6 and node-redis RESP3).
      for (const options of [
        { password: randomBytes(8).toString('hex') },
        { username: 'app', password: 'pw' },
      ]) {
        const conn = await client.connect(stack.port, options);
        try {
          assert.equal(await conn.call('PING'), 'PONG');
          assertIssuedOid(stack, await conn.call('ACL', 'WHOAMI'));
          // An explicit AUTH later on is answered by the proxy as well.
          assert.equal(await conn.call('AUTH', 'whatever'), 'OK');
          assert.equal(await conn.call('AUTH', 'someone', 'else'), 'OK');
          assertIssuedOid(stack, await conn.call('ACL', 'WHOAMI'));
        } finally {
          await conn.close();
        }
      }
    },
    cli: async ({ stack }) => {
      // REDISCLI_AUTH keeps the password off the command line (and the warning off stderr).
      const lines = await cliLines(stack.port, ['--user', 'app'], 'PING\nACL WHOAMI\n', {
        REDISCLI_AUTH: randomBytes(8).toString('hex'),
      });
      assert.equal(lines[0], 'PONG');
      assertIssuedOid(stack, lines[1]);
      assert.deepEqual(await cliLines(stack.port, [], 'AUTH whatever\nAUTH a b\nPING\n'), [
        'OK',
        'OK',
        'PONG',
      ]);
    },
  },
  {
    name: 'HELLO AUTH user pass SETNAME name (HELLO 3 for RESP3 clients) is accepted',
    lib: async (client, { stack, key }) => {
      const name = key('name').replace(/:/g, '-');
      const conn = await client.helloAuthSetname(stack.port, 'app', 'secret', name);
      try {
        assert.equal(await conn.call('CLIENT', 'GETNAME'), name);
        const info = String(await conn.call('CLIENT', 'INFO'));
        assert.match(info, new RegExp(` resp=${client.resp}\\b`));
        assert.match(info, new RegExp(` name=${name} `));
        assertIssuedOid(stack, await conn.call('ACL', 'WHOAMI'));
      } finally {
        await conn.close();
      }
      // The next client (likely on the same upstream connection) starts without the name.
      const next = await client.connect(stack.port);
      try {
        assert.equal(await next.call('CLIENT', 'GETNAME'), null);
        assert.match(String(await next.call('CLIENT', 'INFO')), / name= /);
      } finally {
        await next.close();
      }
    },
    // RESP2 clients send HELLO 2 instead: ioredis 5 parses RESP2 only (HELLO 3's map
    // reply is a fatal "Protocol error, got '%' as reply type byte"), and node-redis
    // with RESP: 2 sends HELLO 2 AUTH ... SETNAME itself; a HELLO 3 under it would switch
    // a connection the client decodes as RESP2. The assertion on `resp=` tells them apart.
    cli: async ({ stack, key }) => {
      const name = key('name').replace(/:/g, '-');
      const lines = await cliLines(
        stack.port,
        [],
        `HELLO 3 AUTH app secret SETNAME ${name}\nCLIENT GETNAME\nCLIENT INFO\nACL WHOAMI\n`,
      );
      // The HELLO map comes first, one "field value" line per entry, "modules" last.
      assert.ok(lines.includes('proto 3'), lines.join('|'));
      const rest = lines.slice(lines.findIndex((line) => line.startsWith('modules')) + 1);
      assert.equal(rest[0], name);
      assert.match(rest[1], / resp=3\b/);
      assertIssuedOid(stack, rest[2]);
      // The next connection speaks RESP2 again and has no name.
      const next = await cliLines(stack.port, ['CLIENT', 'INFO']);
      assert.match(next[0], / name= .* resp=2\b/);
    },
  },
  {
    name: 'inline commands are accepted',
    cannot: {
      io5: 'ioredis always sends multibulk commands',
      io6: 'ioredis always sends multibulk commands',
      nr3: 'node-redis always sends multibulk commands',
      nr2: 'node-redis always sends multibulk commands',
    },
    cli: async ({ stack, key }) => {
      // --pipe writes stdin as it is: here, inline commands with a quoted argument.
      const input = `PING\r\nSET ${key('inline')} "two words"\r\nGET ${key('inline')}\r\n`;
      const result = await redisCli(stack.port, ['--pipe'], input);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout.toString(), /errors: 0, replies: 3\b/);
      assert.deepEqual(await cliLines(stack.port, ['GET', key('inline')]), ['two words']);
    },
  },
];

describe('client matrix through the proxy', () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack();
    await waitForToken(stack);
  });
  after(() => stack?.stop());

  for (const client of CLIENTS) {
    describe(client.label, () => {
      for (const scenario of SCENARIOS) {
        const reason = scenario.cannot?.[client.id];
        const ctx = (): Ctx => ({
          stack,
          key: (name) => `${client.id}:${name}`,
        });
        if (reason !== undefined) {
          it(scenario.name, { skip: reason }, () => undefined);
        } else if (client.kind === 'lib') {
          const run = scenario.lib;
          assert.ok(run, `${scenario.name}: no library implementation and no reason`);
          it(scenario.name, () => run(client, ctx()));
        } else {
          const run = scenario.cli;
          assert.ok(run, `${scenario.name}: no redis-cli implementation and no reason`);
          it(scenario.name, () => run(ctx()));
        }
      }
    });
  }
});
