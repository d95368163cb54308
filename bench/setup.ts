/**
 * What the bench and the profiler share: the testbed (certificates, TLS
 * redis-server, token service), a private copy of the compiled proxy, and
 * one list of things to undo however the process ends.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ADMIN_USER, makeCertificates, startRedis, startTokenService } from '../testbed/index.js';
import { killAll } from './children.js';
import type { Setup } from './systems.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Results, profiles and the proxy copy; gitignored. */
export const RESULTS_DIR = join(ROOT, '.bench');

const cleanups: Array<() => Promise<unknown>> = [];
let cleaning: Promise<void> | undefined;

/** Registers an undo step; returns a function that unregisters it. */
export function onCleanup(undo: () => Promise<unknown>): () => void {
  cleanups.push(undo);
  return () => {
    const at = cleanups.indexOf(undo);
    if (at >= 0) cleanups.splice(at, 1);
  };
}

/** Runs every undo step, last registered first, once. */
export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const undo of cleanups.reverse()) {
      await undo().catch((err: Error) => process.stderr.write(`cleanup: ${err.message}\n`));
    }
  })();
  return cleaning;
}

/** Ctrl-C and SIGTERM stop everything before leaving; exit kills what is left. */
export function cleanupOnSignals(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: stopping everything\n`);
      void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
  process.once('exit', killAll);
}

export interface ProxyBuild {
  cliPath: string;
  fingerprint: { gitHead: string; srcDirty: boolean; distHash: string; copiedFrom: string };
}

/**
 * Copies the compiled proxy aside, so that someone rebuilding dist/ during
 * the minutes of a run cannot change what is measured halfway through.
 * package.json goes along: it makes the files ES modules and gives the version.
 */
export async function proxyBuild(explicitCli: string | undefined): Promise<ProxyBuild> {
  const source = explicitCli === undefined ? join(ROOT, 'dist/src') : join(explicitCli, '..');
  const copy = join(RESULTS_DIR, `proxy-build-${process.pid}`);

  await mkdir(RESULTS_DIR, { recursive: true });
  await cp(source, join(copy, 'dist/src'), { recursive: true });
  await cp(join(ROOT, 'package.json'), join(copy, 'package.json'));
  onCleanup(() => rm(copy, { recursive: true, force: true }));

  const git = (args: string[]): string =>
    spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() ?? '';
  return {
    cliPath: join(copy, 'dist/src/cli.js'),
    fingerprint: {
      gitHead: git(['rev-parse', '--short', 'HEAD']),
      srcDirty: git(['status', '--porcelain', '--', 'src']) !== '',
      distHash: await hashTree(source),
      copiedFrom: source,
    },
  };
}

/** sha256 over the .js files of a tree, to tell two proxy builds apart. */
async function hashTree(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const files = (await readdir(dir, { recursive: true })).filter((f) => f.endsWith('.js')).sort();

  for (const file of files) {
    hash.update(file);
    hash.update(await readFile(join(dir, file)));
  }
  return hash.digest('hex').slice(0, 12);
}

export async function startTestbed(proxyCli: string): Promise<Setup> {
  const certs = await makeCertificates();
  onCleanup(() => certs.remove());
  const redis = await startRedis({ certs });
  onCleanup(() => redis.stop());
  const sts = await startTokenService({ certs, redis: { admin: redis.admin } });
  onCleanup(() => sts.stop());

  return {
    tlsPort: redis.tlsPort,
    caFile: redis.caFile,
    adminUser: ADMIN_USER,
    adminPassword: redis.adminPassword,
    proxyCli,
    proxyEnv: { ...sts.envFor('client-secret'), NODE_EXTRA_CA_CERTS: certs.caFile },
  };
}
