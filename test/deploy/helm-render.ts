import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { parse as parseYaml } from 'yaml';

import { Renderer, isMap } from './template-eval.js';
import type { Node, Value } from './template-parse.js';

export { RenderError } from './template-parse.js';
export { Renderer } from './template-eval.js';

/**
 * A renderer for the part of Helm's template language (Go text/template plus
 * a few Sprig functions) that this chart uses, so that tests can render the
 * chart where no Helm binary exists. It is not Helm: anything outside the
 * subset (an unknown function, `template`, `block`, two-variable `range`,
 * method calls) throws, so a template that grows past it fails loudly here
 * instead of being checked wrongly. Where Helm prints "<no value>" for a
 * missing value this renderer throws, to catch misspelt value paths.
 */

export interface ChartMeta {
  Name: string;
  Version: string;
  AppVersion: string;
}

export interface ReleaseMeta {
  Name: string;
  Namespace: string;
  Service: string;
}

export interface RenderedChart {
  /** Rendered text of each template file, by file name (NOTES.txt included). */
  files: Map<string, string>;
  /** Every non-empty YAML document of the .yaml templates. */
  objects: Record<string, unknown>[];
  renderer: Renderer;
}

/** Helm's value coalescing: maps merge, other values replace, null deletes. */
export function mergeValues(base: Value, override: Value): Value {
  if (!isMap(base) || !isMap(override)) return override;
  const merged: Record<string, Value> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    if (value === null) delete merged[key];
    else merged[key] = mergeValues(base[key], value);
  }
  return merged;
}

export function readChart(chartDir: string): { chart: ChartMeta; values: Record<string, unknown> } {
  const meta = parseYaml(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as Record<
    string,
    string
  >;
  const chart = { Name: meta.name, Version: meta.version, AppVersion: meta.appVersion };
  const values = parseYaml(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Record<
    string,
    unknown
  >;
  return { chart, values };
}

/** Loads every template of the chart (defines first), without rendering. */
export function loadChart(chartDir: string): { renderer: Renderer; files: Map<string, Node[]> } {
  const templates = join(chartDir, 'templates');
  const renderer = new Renderer();
  const files = new Map<string, Node[]>();
  const names = readdirSync(templates).sort(
    (a, b) => Number(b.startsWith('_')) - Number(a.startsWith('_')),
  );
  for (const name of names) {
    const nodes = renderer.load(readFileSync(join(templates, name), 'utf8'), `templates/${name}`);
    if (!name.startsWith('_')) files.set(name, nodes);
  }
  return { renderer, files };
}

/** Renders the chart as `helm template` would, with values merged over values.yaml. */
export function renderChart(
  chartDir: string,
  overrides: Record<string, unknown> = {},
  release: ReleaseMeta = { Name: 'cache', Namespace: 'default', Service: 'Helm' },
): RenderedChart {
  const { chart, values } = readChart(chartDir);
  const { renderer, files } = loadChart(chartDir);
  const root = { Values: mergeValues(values, overrides), Chart: chart, Release: release };

  const rendered = new Map<string, string>();
  const objects: Record<string, unknown>[] = [];
  for (const [name, nodes] of files) {
    const text = renderer.execute(nodes, root);
    rendered.set(name, text);
    if (!name.endsWith('.yaml')) continue;
    for (const doc of text.split(/^---\s*$/m)) {
      const object = parseYaml(doc) as Record<string, unknown> | null;
      if (object !== null && object !== undefined) objects.push(object);
    }
  }
  return { files: rendered, objects, renderer };
}
