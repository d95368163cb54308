import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';

import { OPTIONS, envName } from '../../src/config-options.js';
import { REPO } from './dockerfile.js';
import { mergeValues, readChart } from './helm-render.js';
import { unknownProxyVariables } from './pod-checks.js';

const CHART = join(REPO, 'helm', 'redis-entra-proxy');
const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as SchemaNode;
const { values } = readChart(CHART);
const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
const validate = ajv.compile(schema);

interface SchemaNode {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  definitions?: Record<string, SchemaNode>;
  items?: SchemaNode;
  oneOf?: SchemaNode[];
}

function check(overrides: Record<string, unknown>): ErrorObject[] {
  return validate(mergeValues(values, overrides)) ? [] : [...(validate.errors ?? [])];
}

function resolve(node: SchemaNode): SchemaNode {
  if (node.$ref === undefined) return node;
  const name = node.$ref.replace('#/definitions/', '');
  return resolve(schema.definitions![name]);
}

function templates(): { name: string; text: string }[] {
  const dir = join(CHART, 'templates');
  return readdirSync(dir).map((name) => ({ name, text: readFileSync(join(dir, name), 'utf8') }));
}

describe('values.schema.json', () => {
  test('accepts values.yaml as shipped', () => {
    assert.deepEqual(check({}), []);
  });

  // One row per case: values that an operator may set and Helm must accept.
  const valid: [string, Record<string, unknown>][] = [
    ['the global key Helm passes to a dependency', { global: { imageRegistry: 'x' } }],
    [
      'a complete production setting',
      {
        image: { repository: 'myregistry.azurecr.io/redis-entra-proxy', tag: '0.1.0' },
        proxy: {
          upstream: 'mycache.redis.cache.windows.net',
          credential: 'workload-identity',
          maxConnections: 2000,
          poolSize: 4,
          idleTimeout: '10m',
          extraArgs: ['--tls-ca-file=/etc/redis-proxy/ca.pem'],
          extraEnv: [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=192' }],
        },
        clientPassword: { existingSecret: 'redis-proxy-client', existingSecretKey: 'password' },
        workloadIdentity: { clientId: '11111111-2222-3333-4444-555555555555' },
        podDisruptionBudget: { enabled: true, minAvailable: '50%' },
        service: {
          type: 'LoadBalancer',
          annotations: { 'service.beta.kubernetes.io/azure-load-balancer-internal': 'true' },
        },
      },
    ],
    [
      'Managed Redis on port 10000',
      { proxy: { upstream: 'myredis.westeurope.redis.azure.net:10000' } },
    ],
    ['an image pinned by digest', { image: { digest: `sha256:${'a'.repeat(64)}` } }],
  ];
  for (const [description, overrides] of valid) {
    test(`accepts ${description}`, () => assert.deepEqual(check(overrides), []));
  }

  // One row per case: the value, and where and by which rule it must fail.
  const invalid: [string, Record<string, unknown>, string, string][] = [
    ['a misspelt top-level key', { replicas: 3 }, '', 'additionalProperties'],
    ['a misspelt proxy key', { proxy: { upsteam: 'x' } }, '/proxy', 'additionalProperties'],
    ['an unknown credential', { proxy: { credential: 'msi' } }, '/proxy/credential', 'enum'],
    [
      'a URL as upstream',
      { proxy: { upstream: 'rediss://mycache:6380' } },
      '/proxy/upstream',
      'pattern',
    ],
    ['a port out of range', { proxy: { port: 70000 } }, '/proxy/port', 'maximum'],
    [
      'a duration in words',
      { proxy: { connectTimeout: '5 seconds' } },
      '/proxy/connectTimeout',
      'pattern',
    ],
    [
      'a shutdown timeout with a unit',
      { proxy: { shutdownTimeoutSeconds: '30s' } },
      '/proxy/shutdownTimeoutSeconds',
      'type',
    ],
    [
      'a flag split from its value',
      { proxy: { extraArgs: ['--listen', '0.0.0.0:6380'] } },
      '/proxy/extraArgs/1',
      'pattern',
    ],
    [
      'an env var without a name',
      { proxy: { extraEnv: [{ value: 'x' }] } },
      '/proxy/extraEnv/0',
      'required',
    ],
    ['an unknown log format', { proxy: { logFormat: 'yaml' } }, '/proxy/logFormat', 'enum'],
    ['replicas as text', { replicaCount: '2' }, '/replicaCount', 'type'],
    ['a tag as digest', { image: { digest: 'latest' } }, '/image/digest', 'pattern'],
    ['an unknown pull policy', { image: { pullPolicy: 'Sometimes' } }, '/image/pullPolicy', 'enum'],
    [
      'a client id that is no GUID',
      { workloadIdentity: { clientId: 'my-identity' } },
      '/workloadIdentity/clientId',
      'pattern',
    ],
    [
      'a numeric annotation',
      { serviceAccount: { annotations: { a: 1 } } },
      '/serviceAccount/annotations/a',
      'type',
    ],
    ['an ExternalName service', { service: { type: 'ExternalName' } }, '/service/type', 'enum'],
    [
      'a PDB in words',
      { podDisruptionBudget: { minAvailable: 'half' } },
      '/podDisruptionBudget/minAvailable',
      'oneOf',
    ],
    [
      'a zero grace period',
      { terminationGracePeriodSeconds: 0 },
      '/terminationGracePeriodSeconds',
      'minimum',
    ],
    [
      'an unknown resources key',
      { resources: { request: { cpu: '1' } } },
      '/resources',
      'additionalProperties',
    ],
    [
      'a Secret name in capitals',
      { clientPassword: { existingSecret: 'Redis' } },
      '/clientPassword/existingSecret',
      'pattern',
    ],
  ];
  for (const [description, overrides, path, keyword] of invalid) {
    test(`rejects ${description}`, () => {
      const errors = check(overrides).map((e) => [e.instancePath, e.keyword]);
      assert.ok(
        errors.some(([at, rule]) => at === path && rule === keyword),
        `expected ${keyword} at "${path}", got ${JSON.stringify(errors)}`,
      );
    });
  }

  test('closes every object it describes to unknown keys', () => {
    const open: string[] = [];
    const visit = (node: SchemaNode, path: string): void => {
      if (node.properties !== undefined && node.additionalProperties !== false) {
        // extraEnv items are Kubernetes EnvVar objects, checked by the API server.
        if (path !== '/proxy/extraEnv/*') open.push(path);
      }
      for (const [key, child] of Object.entries(node.properties ?? {}))
        visit(child, `${path}/${key}`);
      if (node.items !== undefined) visit(node.items, `${path}/*`);
    };
    visit(schema, '');
    assert.deepEqual(open, []);
  });

  test('describes exactly the keys values.yaml documents', () => {
    const missing: string[] = [];
    const visit = (value: unknown, node: SchemaNode, path: string): void => {
      const resolved = resolve(node);
      if (resolved.properties === undefined) return;
      const keys = Object.keys(resolved.properties).filter((k) => path !== '' || k !== 'global');
      const present = Object.keys(value as Record<string, unknown>);
      for (const key of keys) {
        if (!present.includes(key)) missing.push(`${path}/${key} (schema only)`);
        else
          visit(
            (value as Record<string, unknown>)[key],
            resolved.properties[key],
            `${path}/${key}`,
          );
      }
    };
    visit(values, schema, '');
    assert.deepEqual(missing, []);
  });
});

describe('chart templates, read without rendering', () => {
  test('every .Values path they use exists in values.yaml and the schema', () => {
    const problems: string[] = [];
    for (const { name, text } of templates()) {
      // $p := .Values.proxy makes $p.port mean .Values.proxy.port.
      const aliases = new Map<string, string>();
      for (const m of text.matchAll(/(\$\w+)\s*:=\s*\.Values((?:\.\w+)+)\s*}}/g))
        aliases.set(m[1], m[2]);
      const paths = [...text.matchAll(/\.Values((?:\.\w+)+)/g)].map((m) => m[1]);
      for (const m of text.matchAll(/(\$\w+)((?:\.\w+)+)/g)) {
        const base = aliases.get(m[1]);
        if (base !== undefined) paths.push(base + m[2]);
      }
      for (const path of new Set(paths)) {
        const keys = path.slice(1).split('.');
        let value: unknown = values;
        let node: SchemaNode | undefined = schema;
        for (const key of keys) {
          value = (value as Record<string, unknown> | undefined)?.[key];
          node = node === undefined ? undefined : resolve(node).properties?.[key];
        }
        if (value === undefined) problems.push(`${name}: .Values${path} is not in values.yaml`);
        if (node === undefined) problems.push(`${name}: .Values${path} is not in the schema`);
      }
    }
    assert.deepEqual(problems, []);
  });

  test('every included template is defined', () => {
    const all = templates()
      .map((t) => t.text)
      .join('\n');
    const defined = new Set([...all.matchAll(/define\s+"([^"]+)"/g)].map((m) => m[1]));
    const included = new Set([...all.matchAll(/include\s+"([^"]+)"/g)].map((m) => m[1]));
    assert.deepEqual(
      [...included].filter((n) => !defined.has(n)),
      [],
    );
  });

  test('every REDIS_PROXY_* variable named anywhere is a proxy flag', () => {
    const known = new Set(OPTIONS.flatMap((o) => [envName(o.name), ...(o.aliases ?? [])]));
    const sources = [
      ...templates().map((t) => ({ name: `templates/${t.name}`, text: t.text })),
      ...readdirSync(join(REPO, 'helm', 'examples')).map((n) => ({
        name: `examples/${n}`,
        text: readFileSync(join(REPO, 'helm', 'examples', n), 'utf8'),
      })),
      { name: 'values.yaml', text: readFileSync(join(CHART, 'values.yaml'), 'utf8') },
      { name: 'Dockerfile', text: readFileSync(join(REPO, 'Dockerfile'), 'utf8') },
      {
        name: 'docs/deployment.md',
        text: readFileSync(join(REPO, 'docs', 'deployment.md'), 'utf8'),
      },
    ];
    const unknown = sources.flatMap(({ name, text }) =>
      unknownProxyVariables(text, known).map((v) => `${name}: ${v}`),
    );
    assert.deepEqual(unknown, []);
  });

  test('Chart.yaml is apiVersion v2 and ships the package version', () => {
    const chart = parseYaml(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as Record<
      string,
      string
    >;
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    assert.equal(chart.apiVersion, 'v2');
    assert.equal(chart.name, 'redis-entra-proxy');
    assert.equal(chart.appVersion, pkg.version);
    assert.match(chart.version, /^\d+\.\d+\.\d+/);
    assert.match(chart.kubeVersion, /^>=1\.(29|[3-9]\d)\./);
  });
});
