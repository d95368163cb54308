/**
 * The client workloads of the soak, each a loop that runs until stopped and
 * checks every reply it gets: plain commands, pipelines, pub/sub
 * subscribers (sequence numbers must arrive without gaps), clients blocked in
 * BLPOP across token rotations, and short-lived raw connections.
 */
import { connect } from 'node:net';

import { Redis } from 'ioredis';

/** What the workloads did; read by the sampler, never reset. */
export interface Tally {
  commands: number;
  /** Commands that failed or replies that were not what was sent. */
  errors: number;
  /** Connections the proxy dropped under a running client (ioredis reconnects). */
  drops: number;
  messages: number;
  /** Pub/sub messages missing between two received ones. */
  gaps: number;
  blpopServed: number;
  shortLived: number;
  /** The first few error texts, for the report. */
  samples: string[];
}

export function newTally(): Tally {
  return {
    commands: 0,
    errors: 0,
    drops: 0,
    messages: 0,
    gaps: 0,
    blpopServed: 0,
    shortLived: 0,
    samples: [],
  };
}

export interface Mix {
  plain: number;
  pipeline: number;
  subscribers: number;
  blocked: number;
  shortLived: number;
}

/** Splits `clients` over the workloads; the publisher and pusher come on top. */
export function mixFor(clients: number): Mix {
  const blocked = Math.max(1, Math.round(clients * 0.04));
  const subscribers = Math.max(1, Math.round(clients * 0.16));
  const pipeline = Math.max(1, Math.round(clients * 0.2));
  const shortLived = Math.max(1, Math.round(clients * 0.2));
  const plain = Math.max(1, clients - blocked - subscribers - pipeline - shortLived);
  return { plain, pipeline, subscribers, blocked, shortLived };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs the mix against the proxy until `stop()`; resolves once every loop ended. */
export class Workload {
  readonly tally = newTally();
  private running = true;
  private readonly loops: Promise<void>[] = [];
  private readonly clients: Redis[] = [];

  constructor(private readonly port: number) {}

  start(mix: Mix): void {
    for (let i = 0; i < mix.plain; i++) this.loops.push(this.plain(i));
    for (let i = 0; i < mix.pipeline; i++) this.loops.push(this.pipeline(i));
    for (let i = 0; i < mix.subscribers; i++) this.loops.push(this.subscriber());
    this.loops.push(this.publisher());
    for (let i = 0; i < mix.blocked; i++) this.loops.push(this.blocked(i));
    this.loops.push(this.pusher(mix.blocked));
    for (let i = 0; i < mix.shortLived; i++) this.loops.push(this.shortLived(i));
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const client of this.clients) client.disconnect();
    await Promise.allSettled(this.loops);
  }

  private client(blocking = false): Redis {
    const client = new Redis({
      host: '127.0.0.1',
      port: this.port,
      // A reply that never comes is an error; blocking commands wait on purpose.
      commandTimeout: blocking ? undefined : 10_000,
      maxRetriesPerRequest: 1,
      retryStrategy: () => 200,
    });
    client.on('error', () => undefined);
    client.on('reconnecting', () => {
      if (this.running) this.tally.drops++;
    });
    this.clients.push(client);
    return client;
  }

  private error(err: unknown): void {
    if (!this.running) return;
    this.tally.errors++;
    const text = err instanceof Error ? err.message : String(err);
    if (this.tally.samples.length < 10) this.tally.samples.push(text);
  }

  private async plain(id: number): Promise<void> {
    const client = this.client();
    let n = 0;
    while (this.running) {
      try {
        const value = `v${id}-${n++}`;
        await client.set(`soak:plain:${id}`, value);
        const got = await client.get(`soak:plain:${id}`);
        if (got !== value) throw new Error(`GET returned ${got}, expected ${value}`);
        await client.incr('soak:counter');
        this.tally.commands += 3;
      } catch (err) {
        this.error(err);
      }
      await sleep(40);
    }
  }

  /** 20 commands per pipeline, one of them carrying 64 KiB. */
  private async pipeline(id: number): Promise<void> {
    const client = this.client();
    const big = 'x'.repeat(64 * 1024);
    let n = 0;
    while (this.running) {
      try {
        const batch = client.pipeline();
        const tag = `${id}-${n++}`;
        batch.set(`soak:big:${id}`, big);
        for (let i = 0; i < 9; i++) batch.set(`soak:pipe:${id}:${i}`, `${tag}-${i}`);
        for (let i = 0; i < 9; i++) batch.get(`soak:pipe:${id}:${i}`);
        batch.strlen(`soak:big:${id}`);
        const results = (await batch.exec()) ?? [];
        for (const [err] of results) if (err) throw err;
        for (let i = 0; i < 9; i++) {
          if (results[10 + i][1] !== `${tag}-${i}`) throw new Error('pipeline reply out of order');
        }
        if (results[19][1] !== big.length) throw new Error('STRLEN of the big value is wrong');
        this.tally.commands += 20;
      } catch (err) {
        this.error(err);
      }
      await sleep(200);
    }
  }

  private async subscriber(): Promise<void> {
    const client = this.client(true);
    let last = -1;
    client.on('message', (_channel: string, message: string) => {
      const seq = Number(message);
      this.tally.messages++;
      if (last >= 0 && seq > last + 1) this.tally.gaps += seq - last - 1;
      last = seq;
    });
    try {
      await client.subscribe('soak:channel');
    } catch (err) {
      this.error(err);
    }
    while (this.running) await sleep(500);
  }

  private async publisher(): Promise<void> {
    const client = this.client();
    let seq = 0;
    while (this.running) {
      try {
        await client.publish('soak:channel', String(seq++));
        this.tally.commands++;
      } catch (err) {
        this.error(err);
      }
      await sleep(100);
    }
  }

  /** BLPOP with no timeout: it spans many token lifetimes between pushes. */
  private async blocked(id: number): Promise<void> {
    const client = this.client(true);
    while (this.running) {
      try {
        const got = await client.blpop(`soak:queue:${id}`, 0);
        if (got === null || got[1] !== 'item') throw new Error(`BLPOP returned ${String(got)}`);
        this.tally.blpopServed++;
        this.tally.commands++;
      } catch (err) {
        this.error(err);
        await sleep(200);
      }
    }
  }

  private async pusher(queues: number): Promise<void> {
    const client = this.client();
    while (this.running) {
      await sleep(15_000);
      if (!this.running) return;
      for (let i = 0; i < queues; i++) {
        await client.lpush(`soak:queue:${i}`, 'item').catch((err) => this.error(err));
      }
    }
  }

  /** connect, PING, then QUIT or an abrupt close; every other time mid-command. */
  private async shortLived(id: number): Promise<void> {
    let n = 0;
    while (this.running) {
      try {
        await this.oneShort(n++ % 3, id);
        this.tally.shortLived++;
      } catch (err) {
        this.error(err);
      }
      await sleep(150);
    }
  }

  private oneShort(style: number, id: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.port, '127.0.0.1');
      let text = '';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`short-lived client ${id}: no reply; got ${JSON.stringify(text)}`));
      }, 10_000);
      const done = (err?: Error): void => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      socket.on('error', (err) => done(err));
      socket.on('data', (chunk) => {
        text += chunk.toString('latin1');
        if (text === '+PONG\r\n') {
          if (style === 0) {
            socket.write('QUIT\r\n');
          } else {
            // Abrupt: a half-sent command, then gone.
            if (style === 2) socket.write('*3\r\n$3\r\nSET\r\n$4\r\nsoak');
            socket.destroy();
            done();
          }
        } else if (text === '+PONG\r\n+OK\r\n') {
          socket.once('close', () => done());
        } else if (!'+PONG\r\n+OK\r\n'.startsWith(text)) {
          socket.destroy();
          done(new Error(`short-lived client got ${JSON.stringify(text)}`));
        }
      });
      socket.write('PING\r\n');
    });
  }
}
