import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';

import { OPTIONS, envName } from '../../src/config-options.js';
import {
  REPO,
  readDockerfile,
  runCommand,
  stageCopies,
  stageEnv,
  stageWorkdir,
  type Stage,
} from './dockerfile.js';

const run = promisify(execFile);
const dockerfile = readDockerfile();
const runtime = dockerfile.stages[dockerfile.stages.length - 1];
const stageNamed = (name: string): Stage => {
  const stage = dockerfile.stages.find((s) => s.name === name);
  assert.ok(stage, `no stage named ${name}`);
  return stage;
};
const runs = (stage: Stage): string[] =>
  stage.instructions.filter((i) => i.keyword === 'RUN').map(runCommand);
const instruction = (stage: Stage, keyword: string): string[] =>
  stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);

/** The stage a runtime COPY --from names, and the path inside its WORKDIR. */
function copiedFrom(from: string, source: string): { stage: Stage; relative: string } {
  const stage = stageNamed(from);
  const relative = posix.relative(stageWorkdir(stage), source);
  assert.ok(!relative.startsWith('..'), `${source} lies outside ${from}'s WORKDIR`);
  return { stage, relative };
}

function entrypoint(): string[] {
  const [text] = instruction(runtime, 'ENTRYPOINT');
  assert.ok(text, 'no ENTRYPOINT');
  const parsed = JSON.parse(text) as string[];
  assert.ok(Array.isArray(parsed), 'ENTRYPOINT must use the exec (JSON) form: signals reach node');
  return parsed;
}

describe('Dockerfile', () => {
  test('builds on the current Node LTS in separate stages and runs on another image', () => {
    assert.ok(dockerfile.stages.length >= 2);
    assert.equal(stageNamed('build').from, 'node:22-bookworm-slim');
    assert.match(runtime.from, /^gcr\.io\/distroless\/nodejs\d+-debian\d+(:nonroot)?$|-slim$/);
    assert.notEqual(runtime.from, stageNamed('build').from);
  });

  test('the build stage installs from the lockfile and compiles with tsc', () => {
    const steps = runs(stageNamed('build'));
    assert.ok(
      steps.some((s) => /^npm ci\b/.test(s)),
      steps.join('\n'),
    );
    assert.ok(steps.includes('npx tsc -p .'), steps.join('\n'));
  });

  test('runs as a numeric user other than root', () => {
    const users = instruction(runtime, 'USER');
    assert.equal(users.length, 1);
    const match = /^(\d+)(?::(\d+))?$/.exec(users[0]);
    assert.ok(match, `USER ${users[0]} must be numeric so that runAsNonRoot can be verified`);
    assert.notEqual(Number(match[1]), 0);
  });

  test('exposes the client and admin ports', () => {
    const ports = instruction(runtime, 'EXPOSE').join(' ').split(/\s+/);
    assert.deepEqual([...ports].sort(), ['6379', '9090']);
  });

  test('copies only dist/src, package.json and production dependencies', () => {
    const copies = stageCopies(runtime);
    const copied = copies.flatMap((c) =>
      c.sources.map((s) => (c.from === undefined ? s : copiedFrom(c.from, s).relative)),
    );
    assert.deepEqual([...copied].sort(), ['dist/src', 'node_modules', 'package.json']);

    const modules = copies.find((c) => c.sources.some((s) => s.endsWith('node_modules')))!;
    const installs = runs(copiedFrom(modules.from!, modules.sources[0]).stage);
    assert.ok(
      installs.some((s) => /npm (ci|prune)\b.*--omit=dev/.test(s)),
      `node_modules must come from a stage that installs production dependencies only: ${installs.join(',')}`,
    );
    const compiled = copies.find((c) => c.sources.some((s) => s.endsWith('dist/src')))!;
    assert.ok(runs(copiedFrom(compiled.from!, compiled.sources[0]).stage).includes('npx tsc -p .'));

    // The distroless image has no shell: a RUN there would fail to build.
    assert.deepEqual(runs(runtime), []);
  });

  test('the entry point runs the compiled CLI with node', () => {
    const [node, script, ...rest] = entrypoint();
    assert.match(node, /(^|\/)node$/);
    assert.deepEqual(rest, []);
    const workdir = stageWorkdir(runtime);
    assert.equal(posix.resolve(workdir, script), posix.join(workdir, 'dist/src/cli.js'));

    // tsc maps src/cli.ts to dist/src/cli.js (outDir dist, rootDir .).
    assert.ok(existsSync(join(REPO, 'src', 'cli.ts')));
    const tsconfig = JSON.parse(readFileSync(join(REPO, 'tsconfig.json'), 'utf8')) as {
      compilerOptions: { outDir: string; rootDir: string };
    };
    assert.equal(posix.normalize(tsconfig.compilerOptions.outDir), 'dist');
    assert.equal(posix.normalize(tsconfig.compilerOptions.rootDir), '.');
  });

  test('sets only real proxy flags in the environment; admin on all interfaces', () => {
    const env = stageEnv(runtime);
    const known = new Set(OPTIONS.map((o) => envName(o.name)));
    for (const name of env.keys()) {
      if (name.startsWith('REDIS_PROXY_')) assert.ok(known.has(name), `${name} is not a flag`);
    }
    assert.equal(env.get('REDIS_PROXY_ADMIN_LISTEN'), '0.0.0.0:9090');
    // The client listener keeps its loopback default: a sidecar shares the
    // pod's loopback; a shared proxy must choose 0.0.0.0 with a password.
    assert.equal(env.get('REDIS_PROXY_LISTEN'), undefined);
  });

  test('has no HEALTHCHECK, and says why', () => {
    assert.deepEqual(instruction(runtime, 'HEALTHCHECK'), []);
    assert.match(readFileSync(join(REPO, 'Dockerfile'), 'utf8'), /# No HEALTHCHECK: .*distroless/);
  });

  test('.dockerignore keeps local artefacts out of the build context', () => {
    const patterns = readFileSync(join(REPO, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    for (const needed of ['node_modules', 'dist', '.git'])
      assert.ok(patterns.includes(needed), needed);
    const copiedByBuild = dockerfile.stages
      .flatMap(stageCopies)
      .filter((c) => c.from === undefined)
      .flatMap((c) => c.sources);
    for (const source of copiedByBuild) {
      assert.ok(!patterns.includes(source) && !patterns.includes('*'), `${source} is ignored`);
    }
  });
});

describe('Dockerfile steps run as plain commands', () => {
  let work: string;
  const dirs = new Map<string, string>();
  let root: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'redis-entra-proxy-image-'));

    // build: the same sources, the repository's node_modules in place of
    // `npm ci` (which would install every devDependency again), then tsc.
    const build = stageNamed('build');
    dirs.set('build', copyContext(build, join(work, 'build')));
    symlinkSync(join(REPO, 'node_modules'), join(dirs.get('build')!, 'node_modules'), 'dir');
    for (const command of runs(build).filter((c) => !/^npm ci\b/.test(c))) {
      await shell(command, dirs.get('build')!, stageEnv(build));
    }

    // deps: the stage's own commands, from the lockfile; the npm cache
    // serves the packages when it has them.
    const deps = stageNamed('deps');
    dirs.set('deps', copyContext(deps, join(work, 'deps')));
    for (const command of runs(deps)) {
      await shell(command, dirs.get('deps')!, stageEnv(deps), {
        npm_config_prefer_offline: 'true',
      });
    }

    // runtime: exactly what the last stage copies.
    root = join(work, 'runtime');
    mkdirSync(root);
    for (const copy of stageCopies(runtime)) {
      for (const source of copy.sources) {
        const from =
          copy.from === undefined
            ? join(REPO, source)
            : join(dirs.get(copy.from)!, copiedFrom(copy.from, source).relative);
        const dest = join(
          root,
          copy.dest,
          copy.sources.length > 1 || copy.dest.endsWith('/') ? posix.basename(source) : '',
        );
        mkdirSync(dirname(dest), { recursive: true });
        // The stages' directories are scratch: moving is what copying would
        // give, without rewriting thousands of files.
        if (copy.from === undefined) cpSync(from, dest, { recursive: true });
        else renameSync(from, dest);
      }
    }
  });

  after(() => {
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  test('the entry point names a file that tsc produced', () => {
    // dist/src in the runtime tree came from the build stage's tsc run.
    assert.ok(existsSync(join(root, entrypoint()[1])));
    assert.ok(!existsSync(join(root, 'src')), 'sources stay in the build stage');
  });

  test('the runtime tree holds production dependencies only', async () => {
    const { stdout } = await run('npm', ['ls', '--omit=dev', '--all', '--parseable'], {
      cwd: REPO,
    });
    const production = new Set(
      stdout
        .split('\n')
        .filter(Boolean)
        .map((p) => posix.relative(REPO, p)),
    );
    const installed = topLevelPackages(join(root, 'node_modules'));
    assert.ok(installed.length > 0);
    for (const name of installed) {
      assert.ok(production.has(`node_modules/${name}`), `${name} is not a production dependency`);
    }
    for (const dev of ['typescript', '@types/node', 'kubernetes-models', 'fast-check']) {
      assert.ok(!installed.includes(dev), dev);
    }
  });

  test('--help and --version run from the runtime tree', async () => {
    const env = imageEnv();
    const help = await run(process.execPath, [entrypoint()[1], '--help'], { cwd: root, env });
    assert.match(help.stdout, /^Usage: redis-entra-proxy /m);
    const version = await run(process.execPath, [entrypoint()[1], '--version'], { cwd: root, env });
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    assert.equal(version.stdout.trim(), pkg.version);
  });

  test('starts, answers probes, stops on SIGTERM with 0 and writes nothing', async () => {
    const before = snapshot(root);
    const child = spawn(
      process.execPath,
      [
        entrypoint()[1],
        '--upstream=127.0.0.1:1',
        '--listen=127.0.0.1:0',
        '--admin-listen=127.0.0.1:0',
        // No `az` on this PATH: the credential fails at once, with no network.
        '--credential=azure-cli',
      ],
      { cwd: root, env: imageEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    );
    try {
      const admin = await adminAddress(child.stdout);
      assert.equal(await status(`http://${admin}/livez`), 200);
      assert.equal(await status(`http://${admin}/readyz`), 503);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
    }
    assert.deepEqual(snapshot(root), before);
  });
});

/** Copies what a stage COPYs from the build context into dir. */
function copyContext(stage: Stage, dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const copy of stageCopies(stage)) {
    assert.equal(copy.from, undefined, 'build stages copy from the context only');
    for (const source of copy.sources) {
      const dest = copy.dest === './' || copy.dest === '.' ? source : copy.dest;
      cpSync(join(REPO, source), join(dir, dest), { recursive: true });
    }
  }
  return dir;
}

async function shell(
  command: string,
  cwd: string,
  ...envs: (Map<string, string> | Record<string, string>)[]
): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const extra of envs)
    Object.assign(env, extra instanceof Map ? Object.fromEntries(extra) : extra);
  await run('sh', ['-c', command], { cwd, env, maxBuffer: 16 * 1024 * 1024 });
}

/** The image's environment, with a PATH holding node alone. */
function imageEnv(): NodeJS.ProcessEnv {
  return {
    ...Object.fromEntries(stageEnv(runtime)),
    PATH: dirname(process.execPath),
    HOME: '/nonexistent',
  };
}

function topLevelPackages(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => !name.startsWith('.'))
    .flatMap((name) =>
      name.startsWith('@')
        ? readdirSync(join(dir, name)).map((inner) => `${name}/${inner}`)
        : [name],
    );
}

/** Every file under dir with its size, to show that nothing was written. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const visit = (path: string): void => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) visit(full);
      else out.push(`${posix.relative(dir, full)} ${statSync(full).size}`);
    }
  };
  visit(dir);
  return out.sort();
}

/** Reads the JSON log until the admin listener reports its address. */
function adminAddress(stdout: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(
      () => reject(new Error(`no admin_listening line in: ${buffered}`)),
      10_000,
    );
    stdout.setEncoding('utf8');
    stdout.on('data', (chunk: string) => {
      buffered += chunk;
      for (const line of buffered.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const entry = JSON.parse(line) as { event?: string; address?: string };
          if (entry.event === 'admin_listening' && entry.address !== undefined) {
            clearTimeout(timer);
            resolve(entry.address);
          }
        } catch {
          // a line still arriving
        }
      }
    });
  });
}

function status(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}
