import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root; these tests run from dist/test/deploy/. */
export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface Instruction {
  keyword: string;
  /** The arguments, continuation lines joined. */
  args: string;
  line: number;
}

export interface Stage {
  /** The base image with build arguments substituted. */
  from: string;
  name?: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  args: Map<string, string>;
  stages: Stage[];
}

/**
 * Reads a Dockerfile into stages. Enough of the syntax for this repository's
 * file: comments, parser directives, backslash continuations, ARG defaults
 * before FROM, and `FROM image AS name`; no heredocs.
 */
export function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (pending === '' && /^\s*(#|$)/.test(line)) return;
    if (pending !== '' && /^\s*#/.test(line)) return;
    if (pending === '') start = i + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const match = /^(\w+)\s+(.*)$/s.exec(full);
    if (match === null) throw new Error(`Dockerfile:${start}: cannot read "${full}"`);
    instructions.push({ keyword: match[1].toUpperCase(), args: match[2].trim(), line: start });
  });

  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [image, as, name] = instruction.args.split(/\s+/);
      const from = image.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a?: string, b?: string) => {
        const value = args.get((a ?? b)!);
        if (value === undefined) throw new Error(`Dockerfile:${instruction.line}: unknown ARG`);
        return value;
      });
      stages.push({ from, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else if (stages.length === 0) {
      if (instruction.keyword !== 'ARG')
        throw new Error(`Dockerfile:${instruction.line}: before FROM`);
      const [name, value] = instruction.args.split('=');
      args.set(name, value ?? '');
    } else {
      stages[stages.length - 1].instructions.push(instruction);
    }
  }
  return { args, stages };
}

export function readDockerfile(): Dockerfile {
  return parseDockerfile(readFileSync(join(REPO, 'Dockerfile'), 'utf8'));
}

/** ENV of a stage as a map; both `ENV a=b c=d` and `ENV a b` forms. */
export function stageEnv(stage: Stage): Map<string, string> {
  const env = new Map<string, string>();
  for (const { keyword, args } of stage.instructions) {
    if (keyword !== 'ENV') continue;
    if (!args.includes('=')) {
      const [name, ...value] = args.split(/\s+/);
      env.set(name, value.join(' '));
      continue;
    }
    for (const pair of args.match(/\S+="[^"]*"|\S+=\S*/g) ?? []) {
      const at = pair.indexOf('=');
      env.set(pair.slice(0, at), pair.slice(at + 1).replace(/^"(.*)"$/, '$1'));
    }
  }
  return env;
}

/** A COPY instruction: sources, destination, and the stage copied from. */
export interface Copy {
  from?: string;
  sources: string[];
  dest: string;
}

export function stageCopies(stage: Stage): Copy[] {
  return stage.instructions
    .filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')
    .map((i) => {
      const words = i.args.split(/\s+/);
      const flags = words.filter((w) => w.startsWith('--'));
      const paths = words.filter((w) => !w.startsWith('--'));
      const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
      return { from, sources: paths.slice(0, -1), dest: paths[paths.length - 1] };
    });
}

/** The last WORKDIR of a stage. */
export function stageWorkdir(stage: Stage): string {
  const workdirs = stage.instructions.filter((i) => i.keyword === 'WORKDIR');
  return workdirs.length > 0 ? workdirs[workdirs.length - 1].args : '/';
}

/** A RUN's shell command without BuildKit flags such as --mount. */
export function runCommand(instruction: Instruction): string {
  return instruction.args.replace(/^(--\S+\s+)+/, '');
}
