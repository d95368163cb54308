/**
 * `npm test`: makes the testbed certificates once, then runs node's test runner with
 * TESTBED_CERT_DIR and NODE_EXTRA_CA_CERTS set, which every test process inherits.
 * NODE_EXTRA_CA_CERTS is read only at process start, so a test cannot set it itself.
 *
 *   node dist/test/run.js [node --test flags] [files or directories...]
 *
 * Flags go to the runner as they are; give their values as `--flag=value`.
 * Directories are expanded here to their *.test.js files: given a directory, node 20's
 * runner would also execute every other .js file under a directory named "test",
 * this script and the test helpers included.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeCertificates } from '../testbed/certs.js';

const TEST_ROOT = fileURLToPath(new URL('.', import.meta.url));

async function main(argv: string[]): Promise<number> {
  const flags = argv.filter((arg) => arg.startsWith('-'));
  const paths = argv.filter((arg) => !arg.startsWith('-'));
  const files = await testFiles(paths.length > 0 ? paths : [TEST_ROOT]);

  if (files.length === 0) {
    process.stderr.write(`no *.test.js files in ${paths.join(' ') || TEST_ROOT}\n`);
    return 1;
  }

  // Ctrl-C reaches the runner too (same process group), so SIGINT only has to keep this
  // process alive until the runner is done; SIGTERM is passed on. Either way the
  // certificates are removed after the last test process is gone.
  let stopped: NodeJS.Signals | undefined;
  let runner: ChildProcess | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    stopped ??= signal;
    if (signal === 'SIGTERM') runner?.kill('SIGTERM');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const dir = await mkdtemp(join(tmpdir(), 'testbed-run-'));
  try {
    const certs = await makeCertificates(dir);
    if (stopped) return 128 + constants.signals[stopped];

    runner = spawn(process.execPath, ['--test', '--test-reporter=spec', ...flags, ...files], {
      stdio: 'inherit',
      env: { ...process.env, TESTBED_CERT_DIR: certs.dir, NODE_EXTRA_CA_CERTS: certs.caFile },
    });
    return await exitCodeOf(runner);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function exitCodeOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('error', () => resolve(1));
    child.once('exit', (code, signal) => {
      resolve(code ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });
}

/** Files as given, directories expanded recursively to their *.test.js files, sorted. */
async function testFiles(paths: string[]): Promise<string[]> {
  const found: string[] = [];

  for (const path of paths) {
    if ((await stat(path)).isDirectory()) {
      const entries = await readdir(path, { recursive: true });
      found.push(...entries.filter((e) => e.endsWith('.test.js')).map((e) => join(path, e)));
    } else {
      found.push(path);
    }
  }
  return found.sort();
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
