/**
 * Lexer and parser for the subset of Go's text/template that the chart uses
 * (see helm-render.ts). Actions become a tree of nodes; pipelines become
 * lists of commands whose terms are literals, fields, variables, functions
 * or parenthesised pipelines.
 */

/** Raised for a template the subset does not cover or a failed `fail`/`required`. */
export class RenderError extends Error {
  readonly code: 'ERR_TEMPLATE_FAIL' | 'ERR_TEMPLATE';

  constructor(message: string, code: 'ERR_TEMPLATE_FAIL' | 'ERR_TEMPLATE' = 'ERR_TEMPLATE') {
    super(message);
    this.name = 'RenderError';
    this.code = code;
  }
}

export type Value = unknown;

// ---------------------------------------------------------------- lexing

type Piece = { kind: 'text'; text: string } | { kind: 'action'; body: string; where: string };

function lex(source: string, file: string): Piece[] {
  const pieces: Piece[] = [];
  let pos = 0;
  let trimNext = false;
  while (pos < source.length) {
    const open = source.indexOf('{{', pos);
    let text = source.slice(pos, open === -1 ? source.length : open);
    if (trimNext) text = text.replace(/^\s+/, '');
    trimNext = false;
    if (open === -1) {
      pieces.push({ kind: 'text', text });
      break;
    }

    let start = open + 2;
    if (/^-\s/.test(source.slice(start, start + 2))) {
      text = text.replace(/\s+$/, '');
      start += 1;
    }
    pieces.push({ kind: 'text', text });

    const line = source.slice(0, open).split('\n').length;
    const where = `${file}:${line}`;
    const comment = /^\s*\/\*/.exec(source.slice(start));
    let end: number;
    if (comment !== null) {
      const close = source.indexOf('*/', start);
      if (close === -1) throw new RenderError(`${where}: unclosed comment`);
      end = source.indexOf('}}', close);
    } else {
      end = findActionEnd(source, start, where);
    }
    let body = source.slice(start, end);
    if (/\s-$/.test(body)) {
      body = body.slice(0, -1);
      trimNext = true;
    }
    if (comment === null) pieces.push({ kind: 'action', body: body.trim(), where });
    pos = end + 2;
  }
  return pieces;
}

/** The closing `}}` of an action, skipping over string literals. */
function findActionEnd(source: string, from: number, where: string): number {
  let i = from;
  while (i < source.length) {
    const c = source[i];
    if (c === '"') {
      i += 1;
      while (i < source.length && source[i] !== '"') i += source[i] === '\\' ? 2 : 1;
    } else if (c === '`') {
      i = source.indexOf('`', i + 1);
      if (i === -1) break;
    } else if (c === '}' && source[i + 1] === '}') {
      return i;
    }
    i += 1;
  }
  throw new RenderError(`${where}: unclosed action`);
}

// ---------------------------------------------------------------- parsing

export type Node =
  | { kind: 'text'; text: string }
  | { kind: 'print'; pipe: Pipeline; where: string }
  | { kind: 'if'; branches: { cond: Pipeline; body: Node[] }[]; otherwise: Node[]; where: string }
  | { kind: 'with'; pipe: Pipeline; body: Node[]; otherwise: Node[]; where: string }
  | { kind: 'range'; pipe: Pipeline; body: Node[]; otherwise: Node[]; where: string };

export interface Pipeline {
  declare?: string;
  commands: Term[][];
}

export type Term =
  | { kind: 'literal'; value: Value }
  // base is 'dot' for .a.b, otherwise the variable's name ($p for $p.a.b).
  | { kind: 'field'; base: string; path: string[] }
  | { kind: 'func'; name: string }
  | { kind: 'sub'; pipe: Pipeline };

class Parser {
  private index = 0;
  readonly defines = new Map<string, Node[]>();

  constructor(private readonly pieces: Piece[]) {}

  /** Parses a whole file; returns its top-level nodes. */
  file(): Node[] {
    const { nodes, stop } = this.list();
    if (stop !== null) throw new RenderError(`${stop.where}: unexpected {{${stop.body}}}`);
    return nodes;
  }

  /** Nodes up to an `end` or `else` (returned as stop) or the end of input. */
  private list(): { nodes: Node[]; stop: { body: string; where: string } | null } {
    const nodes: Node[] = [];
    while (this.index < this.pieces.length) {
      const piece = this.pieces[this.index++];
      if (piece.kind === 'text') {
        if (piece.text !== '') nodes.push({ kind: 'text', text: piece.text });
        continue;
      }
      const { body, where } = piece;
      const keyword = /^(\w+)\b/.exec(body)?.[1];
      if (keyword === 'end' || keyword === 'else') return { nodes, stop: { body, where } };
      if (keyword === 'if') nodes.push(this.ifNode(body.slice(2), where));
      else if (keyword === 'with' || keyword === 'range')
        nodes.push(this.block(keyword, body, where));
      else if (keyword === 'define') this.define(body, where);
      else if (keyword === 'template' || keyword === 'block' || keyword === 'break') {
        throw new RenderError(`${where}: "${keyword}" is outside the supported subset`);
      } else {
        nodes.push({ kind: 'print', pipe: parsePipeline(body, where), where });
      }
    }
    return { nodes, stop: null };
  }

  private ifNode(condition: string, where: string): Node {
    const branches = [{ cond: parsePipeline(condition, where), body: [] as Node[] }];
    for (;;) {
      const { nodes, stop } = this.list();
      if (stop === null) throw new RenderError(`${where}: if without end`);
      branches[branches.length - 1].body = nodes;
      if (stop.body === 'end') return { kind: 'if', branches, otherwise: [], where };
      const elseIf = /^else\s+if\s+(.*)$/s.exec(stop.body);
      if (elseIf !== null) {
        branches.push({ cond: parsePipeline(elseIf[1], stop.where), body: [] });
        continue;
      }
      if (stop.body !== 'else')
        throw new RenderError(`${stop.where}: unsupported {{${stop.body}}}`);
      const rest = this.list();
      if (rest.stop?.body !== 'end') throw new RenderError(`${where}: if without end`);
      return { kind: 'if', branches, otherwise: rest.nodes, where };
    }
  }

  private block(keyword: 'with' | 'range', body: string, where: string): Node {
    const pipe = parsePipeline(body.slice(keyword.length), where);
    const first = this.list();
    let otherwise: Node[] = [];
    if (first.stop?.body === 'else') {
      const rest = this.list();
      if (rest.stop?.body !== 'end') throw new RenderError(`${where}: ${keyword} without end`);
      otherwise = rest.nodes;
    } else if (first.stop?.body !== 'end') {
      throw new RenderError(`${where}: ${keyword} without end`);
    }
    return { kind: keyword, pipe, body: first.nodes, otherwise, where };
  }

  private define(body: string, where: string): void {
    const name = /^define\s+"([^"]+)"$/.exec(body)?.[1];
    if (name === undefined) throw new RenderError(`${where}: bad define`);
    const { nodes, stop } = this.list();
    if (stop?.body !== 'end') throw new RenderError(`${where}: define without end`);
    this.defines.set(name, nodes);
  }
}

type Token =
  | { kind: 'string' | 'number' | 'bool' | 'nil'; value: Value }
  | { kind: 'field'; text: string }
  | { kind: 'var'; text: string }
  | { kind: 'ident'; text: string }
  | { kind: '(' | ')' | '|' | ':=' | '=' };

function tokenize(text: string, where: string): Token[] {
  const tokens: Token[] = [];
  const re = new RegExp(
    [
      /\s+/.source,
      /"(?:[^"\\]|\\.)*"/.source,
      /`[^`]*`/.source,
      /-?\d+(?:\.\d+)?/.source,
      /:=|=|\(|\)|\|/.source,
      /\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*/.source,
      /(?:\.[A-Za-z0-9_]+)+|\./.source,
      /[A-Za-z_][A-Za-z0-9_]*/.source,
    ].join('|'),
    'y',
  );
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const match = re.exec(text);
    if (match === null) throw new RenderError(`${where}: cannot read "${text.slice(pos)}"`);
    const t = match[0];
    pos = re.lastIndex;
    if (/^\s/.test(t)) continue;
    if (t.startsWith('"')) tokens.push({ kind: 'string', value: JSON.parse(t) as string });
    else if (t.startsWith('`')) tokens.push({ kind: 'string', value: t.slice(1, -1) });
    else if (/^-?\d/.test(t)) tokens.push({ kind: 'number', value: Number(t) });
    else if (t === '(' || t === ')' || t === '|' || t === ':=' || t === '=')
      tokens.push({ kind: t });
    else if (t.startsWith('$')) tokens.push({ kind: 'var', text: t });
    else if (t.startsWith('.')) tokens.push({ kind: 'field', text: t });
    else if (t === 'true' || t === 'false') tokens.push({ kind: 'bool', value: t === 'true' });
    else if (t === 'nil') tokens.push({ kind: 'nil', value: null });
    else tokens.push({ kind: 'ident', text: t });
  }
  return tokens;
}

function parsePipeline(text: string, where: string): Pipeline {
  const tokens = tokenize(text, where);
  let i = 0;

  const pipeline = (): Pipeline => {
    const result: Pipeline = { commands: [] };
    const first = tokens[i];
    const second = tokens[i + 1];
    if (first?.kind === 'var' && (second?.kind === ':=' || second?.kind === '=')) {
      result.declare = first.text;
      i += 2;
    }
    let command: Term[] = [];
    while (i < tokens.length && tokens[i].kind !== ')') {
      const token = tokens[i++];
      if (token.kind === '|') {
        result.commands.push(command);
        command = [];
      } else if (token.kind === '(') {
        command.push({ kind: 'sub', pipe: pipeline() });
        if (tokens[i++]?.kind !== ')') throw new RenderError(`${where}: missing )`);
      } else if (token.kind === 'field') {
        command.push({ kind: 'field', base: 'dot', path: splitPath(token.text) });
      } else if (token.kind === 'var') {
        const [name, ...path] = token.text.split('.');
        command.push({ kind: 'field', base: name, path });
      } else if (token.kind === 'ident') {
        command.push({ kind: 'func', name: token.text });
      } else if ('value' in token) {
        command.push({ kind: 'literal', value: token.value });
      } else {
        throw new RenderError(`${where}: unexpected "${token.kind}"`);
      }
    }
    result.commands.push(command);
    if (result.commands.some((c) => c.length === 0))
      throw new RenderError(`${where}: empty command`);
    return result;
  };

  const result = pipeline();
  if (i !== tokens.length) throw new RenderError(`${where}: unbalanced )`);
  return result;
}

function splitPath(text: string): string[] {
  return text === '.' ? [] : text.slice(1).split('.');
}

/** Parses one template file into its top-level nodes and its `define`s. */
export function parseTemplate(
  source: string,
  file: string,
): { nodes: Node[]; defines: Map<string, Node[]> } {
  const parser = new Parser(lex(source, file));
  const nodes = parser.file();
  return { nodes, defines: parser.defines };
}
