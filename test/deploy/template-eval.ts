import { createHash } from 'node:crypto';

import { stringify as stringifyYaml } from 'yaml';

import {
  RenderError,
  parseTemplate,
  type Node,
  type Pipeline,
  type Term,
  type Value,
} from './template-parse.js';

/**
 * Evaluates parsed templates the way Go's text/template does, with the Sprig
 * functions the chart uses (see helm-render.ts for what is left out).
 */

// ---------------------------------------------------------------- evaluation

interface Scope {
  dot: Value;
  vars: Map<string, Value>;
  parent?: Scope;
}

function lookupVar(scope: Scope, name: string, where: string): Value {
  for (let s: Scope | undefined = scope; s !== undefined; s = s.parent) {
    if (s.vars.has(name)) return s.vars.get(name);
  }
  throw new RenderError(`${where}: undefined variable ${name}`);
}

function truthy(value: Value): boolean {
  if (value === undefined || value === null || value === false) return false;
  if (value === 0 || value === '') return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return true;
}

export function isMap(value: Value): value is Record<string, Value> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function field(base: Value, path: string[], where: string, name: string): Value {
  let value = base;
  for (const key of path) {
    if (value === undefined || value === null) {
      throw new RenderError(`${where}: nil pointer evaluating ${name}.${path.join('.')}`);
    }
    if (!isMap(value)) throw new RenderError(`${where}: ${key} of a non-map in ${name}`);
    value = value[key];
  }
  return value;
}

function toText(value: Value, where: string): string {
  if (value === undefined || value === null) {
    throw new RenderError(`${where}: printed a missing value (Helm would print nothing)`);
  }
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new RenderError(`${where}: printed a ${Array.isArray(value) ? 'list' : 'map'}`);
}

/** Helm's toYaml: keys sorted, no trailing newline. */
function toYaml(value: Value): string {
  if (value === undefined || value === null) return 'null';
  return stringifyYaml(value, { sortMapEntries: true, lineWidth: 0 }).replace(/\n$/, '');
}

function indentText(spaces: number, text: string): string {
  const pad = ' '.repeat(spaces);
  return text
    .split('\n')
    .map((line) => pad + line)
    .join('\n');
}

/**
 * A value as text for quote and the string functions: scalars as String()
 * gives them; a map or list, which the chart never passes there, as JSON
 * rather than "[object Object]".
 */
function plainText(value: Value): string {
  if (typeof value === 'string') return value;
  if (value === undefined || value === null) return String(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  return JSON.stringify(value);
}

function goQuote(value: Value): string {
  if (value === undefined || value === null) return '""';
  return JSON.stringify(plainText(value));
}

function printf(format: string, args: Value[], where: string): string {
  let n = 0;
  return format.replace(/%([sdvq%])/g, (_, verb: string) => {
    if (verb === '%') return '%';
    const arg = args[n++];
    if (verb === 'q') return goQuote(arg);
    return toText(arg, where);
  });
}

function toInt(value: Value, where: string): number {
  if (value === undefined || value === null) return 0;
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || Number.isNaN(n))
    throw new RenderError(`${where}: int of ${plainText(value)}`);
  return Math.trunc(n);
}

export class Renderer {
  private readonly defines = new Map<string, Node[]>();

  /** Registers the `define`s of a file; returns its top-level nodes. */
  load(source: string, file: string): Node[] {
    const { nodes, defines } = parseTemplate(source, file);
    for (const [name, body] of defines) this.defines.set(name, body);
    return nodes;
  }

  /** Renders a named template with the given data as dot (Helm's `include`). */
  include(name: string, data: Value, where = name): string {
    const body = this.defines.get(name);
    if (body === undefined) throw new RenderError(`${where}: no template "${name}"`);
    const scope: Scope = { dot: data, vars: new Map([['$', data]]) };
    return this.nodes(body, scope);
  }

  execute(nodes: Node[], data: Value): string {
    return this.nodes(nodes, { dot: data, vars: new Map([['$', data]]) });
  }

  private nodes(nodes: Node[], scope: Scope): string {
    let out = '';
    for (const node of nodes) out += this.node(node, scope);
    return out;
  }

  private node(node: Node, scope: Scope): string {
    switch (node.kind) {
      case 'text':
        return node.text;
      case 'print': {
        const value = this.pipeline(node.pipe, scope, node.where);
        return node.pipe.declare === undefined ? toText(value, node.where) : '';
      }
      case 'if':
        for (const branch of node.branches) {
          if (truthy(this.pipeline(branch.cond, scope, node.where))) {
            return this.nodes(branch.body, { dot: scope.dot, vars: new Map(), parent: scope });
          }
        }
        return this.nodes(node.otherwise, { dot: scope.dot, vars: new Map(), parent: scope });
      case 'with': {
        const value = this.pipeline(node.pipe, scope, node.where);
        if (truthy(value))
          return this.nodes(node.body, { dot: value, vars: new Map(), parent: scope });
        return this.nodes(node.otherwise, { dot: scope.dot, vars: new Map(), parent: scope });
      }
      case 'range': {
        if (node.pipe.declare !== undefined) {
          throw new RenderError(`${node.where}: range with variables is outside the subset`);
        }
        const value = this.pipeline(node.pipe, scope, node.where);
        if (!truthy(value)) {
          return this.nodes(node.otherwise, { dot: scope.dot, vars: new Map(), parent: scope });
        }
        const items = Array.isArray(value)
          ? value
          : isMap(value)
            ? Object.keys(value)
                .sort()
                .map((k) => value[k])
            : null;
        if (items === null) throw new RenderError(`${node.where}: range over a scalar`);
        return items
          .map((item) => this.nodes(node.body, { dot: item, vars: new Map(), parent: scope }))
          .join('');
      }
    }
  }

  private pipeline(pipe: Pipeline, scope: Scope, where: string): Value {
    let value: Value;
    let piped = false;
    for (const command of pipe.commands) {
      value = this.command(command, scope, where, piped ? [value] : []);
      piped = true;
    }
    if (pipe.declare !== undefined) scope.vars.set(pipe.declare, value);
    return value;
  }

  private command(terms: Term[], scope: Scope, where: string, piped: Value[]): Value {
    const [head, ...rest] = terms;
    if (head.kind !== 'func') {
      if (rest.length > 0 || piped.length > 0)
        throw new RenderError(`${where}: cannot call a value`);
      return this.term(head, scope, where);
    }
    const args = [...rest.map((t) => this.term(t, scope, where)), ...piped];
    return this.call(head.name, args, where);
  }

  private term(term: Term, scope: Scope, where: string): Value {
    switch (term.kind) {
      case 'literal':
        return term.value;
      case 'sub':
        return this.pipeline(term.pipe, { dot: scope.dot, vars: new Map(), parent: scope }, where);
      case 'field': {
        const base = term.base === 'dot' ? scope.dot : lookupVar(scope, term.base, where);
        return field(base, term.path, where, term.base === 'dot' ? '' : term.base);
      }
      case 'func':
        return this.call(term.name, [], where);
    }
  }

  private call(name: string, args: Value[], where: string): Value {
    const need = (count: number): void => {
      if (args.length !== count)
        throw new RenderError(`${where}: ${name} wants ${count} arguments`);
    };
    const str = (value: Value): string =>
      value === undefined || value === null ? '' : plainText(value);
    switch (name) {
      case 'include':
        need(2);
        return this.include(str(args[0]), args[1], where);
      case 'toYaml':
        need(1);
        return toYaml(args[0]);
      case 'nindent':
        need(2);
        return `\n${indentText(toInt(args[0], where), str(args[1]))}`;
      case 'indent':
        need(2);
        return indentText(toInt(args[0], where), str(args[1]));
      case 'quote':
        return args.map(goQuote).join(' ');
      case 'default':
        need(2);
        return truthy(args[1]) ? args[1] : args[0];
      case 'required':
        need(2);
        if (args[1] === undefined || args[1] === null || args[1] === '') {
          throw new RenderError(str(args[0]), 'ERR_TEMPLATE_FAIL');
        }
        return args[1];
      case 'fail':
        need(1);
        throw new RenderError(str(args[0]), 'ERR_TEMPLATE_FAIL');
      case 'printf':
        return printf(str(args[0]), args.slice(1), where);
      case 'trunc':
        need(2);
        return str(args[1]).slice(0, toInt(args[0], where));
      case 'trimSuffix': {
        need(2);
        const [suffix, text] = [str(args[0]), str(args[1])];
        return suffix !== '' && text.endsWith(suffix) ? text.slice(0, -suffix.length) : text;
      }
      case 'replace':
        need(3);
        return str(args[2]).split(str(args[0])).join(str(args[1]));
      case 'contains':
        need(2);
        return str(args[1]).includes(str(args[0]));
      case 'sha256sum':
        need(1);
        return createHash('sha256').update(str(args[0])).digest('hex');
      case 'hasKey':
        need(2);
        return isMap(args[0]) && Object.hasOwn(args[0], str(args[1]));
      case 'dict': {
        if (args.length % 2 !== 0) throw new RenderError(`${where}: dict wants pairs`);
        const map: Record<string, Value> = {};
        for (let i = 0; i < args.length; i += 2) map[str(args[i])] = args[i + 1];
        return map;
      }
      case 'list':
        return [...args];
      case 'int':
        need(1);
        return toInt(args[0], where);
      case 'add':
        return args.reduce<number>((sum, v) => sum + toInt(v, where), 0);
      case 'eq':
        return args.slice(1).some((v) => v === args[0]);
      case 'ne':
        need(2);
        return args[0] !== args[1];
      case 'lt':
      case 'le':
      case 'gt':
      case 'ge':
        need(2);
        return compare(name, args[0], args[1], where);
      case 'and':
        return args.find((v) => !truthy(v)) ?? args[args.length - 1];
      case 'or':
        return args.find((v) => truthy(v)) ?? args[args.length - 1];
      case 'not':
        need(1);
        return !truthy(args[0]);
      case 'empty':
        need(1);
        return !truthy(args[0]);
      default:
        throw new RenderError(`${where}: function "${name}" is outside the supported subset`);
    }
  }
}

function compare(op: string, a: Value, b: Value, where: string): boolean {
  if (typeof a !== 'number' || typeof b !== 'number') {
    throw new RenderError(`${where}: ${op} compares numbers only`);
  }
  return op === 'lt' ? a < b : op === 'le' ? a <= b : op === 'gt' ? a > b : a >= b;
}
