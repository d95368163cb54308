import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { Ajv } from 'ajv';
import { parse as parseYaml, parseAllDocuments } from 'yaml';

import { REPO } from './dockerfile.js';
import { RenderError, Renderer, mergeValues, readChart, renderChart } from './helm-render.js';
import { validateObject } from './k8s-validate.js';
import {
  configProblems,
  probeProblems,
  proxyConfig,
  securityProblems,
  type Container,
  type PodTemplateOwner,
} from './pod-checks.js';

const CHART = join(REPO, 'helm', 'redis-entra-proxy');
const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as object;
const validateValues = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(
  schema,
);

/** What an operator sets at the least: image, cache, identity and password source. */
const REQUIRED = {
  image: { repository: 'myregistry.azurecr.io/redis-entra-proxy' },
  proxy: { upstream: 'mycache.redis.cache.windows.net' },
  workloadIdentity: { clientId: '11111111-2222-3333-4444-555555555555' },
  clientPassword: { existingSecret: 'redis-proxy-client' },
};

/** helm template: values checked against the schema first, as Helm does. */
function render(overrides: Record<string, unknown> = {}): ReturnType<typeof renderChart> {
  const merged = mergeValues(REQUIRED, overrides) as Record<string, unknown>;
  const all = mergeValues(readChart(CHART).values, merged);
  assert.ok(validateValues(all), JSON.stringify(validateValues.errors));
  return renderChart(CHART, merged);
}

function byKind(objects: Record<string, unknown>[], kind: string): Record<string, unknown>[] {
  return objects.filter((o) => o.kind === kind);
}

function deployment(objects: Record<string, unknown>[]): PodTemplateOwner {
  const [found] = byKind(objects, 'Deployment');
  assert.ok(found, 'no Deployment');
  return found as unknown as PodTemplateOwner;
}

function proxyOf(objects: Record<string, unknown>[]): Container {
  return deployment(objects).spec.template.spec.containers[0];
}

function failure(overrides: Record<string, unknown>): RenderError {
  try {
    render(overrides);
  } catch (err) {
    assert.ok(err instanceof RenderError, String(err));
    return err;
  }
  assert.fail('rendered without error');
}

describe('template renderer (the subset of Helm the chart uses)', () => {
  // One row per case: template, data, expected output.
  const cases: [string, string, unknown, string][] = [
    ['trims around {{- and -}}', 'a  {{- "b" -}}  c', {}, 'abc'],
    ['prints fields', '{{ .a.b }}', { a: { b: 'x' } }, 'x'],
    ['if / else if / else', '{{ if .a }}A{{ else if .b }}B{{ else }}C{{ end }}', { b: 1 }, 'B'],
    ['with rebinds dot', '{{ with .a }}{{ .b }}{{ end }}', { a: { b: 2 } }, '2'],
    ['with skips empty maps', '{{ with .a }}x{{ else }}y{{ end }}', { a: {} }, 'y'],
    ['range over a list', '{{ range .l }}[{{ . }}]{{ end }}', { l: [1, 2] }, '[1][2]'],
    ['pipes into the last argument', '{{ .a | default "d" | quote }}', { a: '' }, '"d"'],
    [
      'variables and $',
      '{{ $x := .a }}{{ with .b }}{{ $x }}{{ $.a }}{{ end }}',
      { a: 'v', b: 1 },
      'vv',
    ],
    [
      'toYaml sorts keys; nindent',
      'k:{{ toYaml .m | nindent 2 }}',
      { m: { b: 1, a: 2 } },
      'k:\n  a: 2\n  b: 1',
    ],
    [
      'printf, trunc, trimSuffix',
      '{{ printf "%s-%s" .a .b | trunc 4 | trimSuffix "-" }}',
      { a: 'abc', b: 'd' },
      'abc',
    ],
    ['comparisons on ints', '{{ if le (int .a) (add 1 2) }}y{{ end }}', { a: 3 }, 'y'],
    ['hasKey', '{{ hasKey . "a" }}/{{ hasKey . "b" }}', { a: false }, 'true/false'],
    ['comments', '{{/* note {{ not code }} */}}x', {}, 'x'],
  ];
  for (const [description, source, data, expected] of cases) {
    test(description, () => {
      const renderer = new Renderer();
      assert.equal(renderer.execute(renderer.load(source, 't'), data), expected);
    });
  }

  test('throws on a missing value, an unknown function and fail', () => {
    const renderer = new Renderer();
    const run = (source: string): unknown =>
      renderer.execute(renderer.load(source, 't'), { a: {} });
    assert.throws(() => run('{{ .a.b }}'), { code: 'ERR_TEMPLATE' });
    assert.throws(() => run('{{ .a.b.c }}'), { code: 'ERR_TEMPLATE' });
    assert.throws(() => run('{{ lookup "v1" "Secret" "" "" }}'), { code: 'ERR_TEMPLATE' });
    assert.throws(() => run('{{ fail "no" }}'), { code: 'ERR_TEMPLATE_FAIL' });
    assert.throws(() => run('{{ required "need b" .a.b }}'), { code: 'ERR_TEMPLATE_FAIL' });
  });
});

describe('chart rendered with the values an operator must set', () => {
  const { objects, files } = render();

  test('renders a Deployment, a Service and a ServiceAccount, all valid', () => {
    assert.deepEqual(objects.map((o) => o.kind).sort(), [
      'Deployment',
      'Service',
      'ServiceAccount',
    ]);
    for (const object of objects) assert.deepEqual(validateObject(object), [], String(object.kind));
  });

  test('the proxy listens on the pod network behind a client password', () => {
    const proxy = proxyOf(objects);
    assert.equal(configProblems(proxy), null);
    const config = proxyConfig(proxy);
    assert.deepEqual(config.listen, [{ kind: 'tcp', host: '0.0.0.0', port: 6379 }]);
    assert.equal(config.upstream.host, 'mycache.redis.cache.windows.net');
    assert.equal(config.credential, 'workload-identity');
    assert.equal(config.allowRemoteClients, false);
    const password = proxy.env?.find((e) => e.name === 'REDIS_PROXY_CLIENT_PASSWORD');
    assert.deepEqual(password?.valueFrom, {
      secretKeyRef: { name: 'redis-proxy-client', key: 'password' },
    });

    // Without the password variable, the proxy itself refuses these flags.
    const bare = { ...proxy, env: [] };
    assert.ok(configProblems(bare)?.some((p) => p.includes('--client-password')));
  });

  test('probes, hardening and shutdown timing fit the proxy', () => {
    const pod = deployment(objects).spec.template.spec;
    const proxy = proxyOf(objects);
    assert.deepEqual(probeProblems(proxy), []);
    assert.deepEqual(securityProblems(proxy, pod), []);
    const shutdown = proxyConfig(proxy).shutdownTimeoutMs / 1000;
    assert.ok(pod.terminationGracePeriodSeconds! > shutdown + 5, 'grace covers preStop + drain');
  });

  test('the Service targets the client port of the selected pods', () => {
    const [service] = byKind(objects, 'Service') as {
      spec: { selector: Record<string, string>; ports: { port: number; targetPort: string }[] };
    }[];
    const pod = deployment(objects).spec.template;
    for (const [key, value] of Object.entries(service.spec.selector)) {
      assert.equal(pod.metadata?.labels?.[key], value, key);
    }
    assert.deepEqual(
      service.spec.ports.map((p) => [p.port, p.targetPort]),
      [[6379, 'redis']],
    );
    assert.equal(proxyOf(objects).ports?.find((p) => p.name === 'redis')?.containerPort, 6379);
  });

  test('workload identity: pod label and service account annotation', () => {
    const pod = deployment(objects).spec.template;
    assert.equal(pod.metadata?.labels?.['azure.workload.identity/use'], 'true');
    const [account] = byKind(objects, 'ServiceAccount') as {
      metadata: { name: string; annotations: Record<string, string> };
    }[];
    assert.equal(pod.spec.serviceAccountName, account.metadata.name);
    assert.equal(
      account.metadata.annotations['azure.workload.identity/client-id'],
      REQUIRED.workloadIdentity.clientId,
    );
  });

  test('NOTES.txt renders', () => {
    assert.match(files.get('NOTES.txt')!, /cache-redis-entra-proxy\.default\.svc:6379/);
  });
});

describe('chart rendered with other values', () => {
  test('a password value creates the Secret and restarts pods when it changes', () => {
    const { objects } = render({ clientPassword: { existingSecret: '', value: 's3cret' } });
    const [secret] = byKind(objects, 'Secret') as {
      metadata: { name: string };
      stringData: Record<string, string>;
    }[];
    assert.equal(secret.stringData.password, 's3cret');
    const proxy = proxyOf(objects);
    const ref = proxy.env?.[0].valueFrom as { secretKeyRef: { name: string; key: string } };
    assert.deepEqual(ref.secretKeyRef, { name: secret.metadata.name, key: 'password' });
    const annotations = deployment(objects).spec.template.metadata?.annotations ?? {};
    assert.match(annotations['checksum/client-password'] ?? '', /^[0-9a-f]{64}$/);
    for (const object of objects) assert.deepEqual(validateObject(object), [], String(object.kind));
  });

  test('allowRemoteClients without a password renders flags the proxy accepts', () => {
    const { objects } = render({
      clientPassword: { existingSecret: '' },
      proxy: { allowRemoteClients: true },
    });
    const proxy = proxyOf(objects);
    assert.equal(proxy.env, undefined);
    assert.equal(configProblems(proxy), null);
    assert.equal(proxyConfig(proxy).allowRemoteClients, true);
  });

  test('a pod disruption budget, extra flags, volumes and no workload identity', () => {
    const { objects } = render({
      podDisruptionBudget: { enabled: true, minAvailable: '50%' },
      workloadIdentity: { enabled: false, clientId: '' },
      serviceAccount: { create: false, name: 'existing' },
      proxy: {
        credential: 'managed-identity',
        extraArgs: ['--tls-servername=mycache.redis.cache.windows.net'],
        maxConnections: 1000000,
      },
      extraVolumes: [{ name: 'ca', configMap: { name: 'redis-ca' } }],
      extraVolumeMounts: [{ name: 'ca', mountPath: '/etc/redis-proxy', readOnly: true }],
      preStopSleepSeconds: 0,
    });
    assert.deepEqual(objects.map((o) => o.kind).sort(), [
      'Deployment',
      'PodDisruptionBudget',
      'Service',
    ]);
    for (const object of objects) assert.deepEqual(validateObject(object), [], String(object.kind));
    const owner = deployment(objects);
    assert.equal(owner.spec.template.metadata?.labels?.['azure.workload.identity/use'], undefined);
    assert.equal(owner.spec.template.spec.serviceAccountName, 'existing');
    const config = proxyConfig(proxyOf(objects));
    assert.equal(config.tls.servername, 'mycache.redis.cache.windows.net');
    assert.equal(config.maxConnections, 1000000);
    assert.equal((proxyOf(objects) as { lifecycle?: unknown }).lifecycle, undefined);
  });

  test('standalone.enabled=false renders no objects', () => {
    const { objects, files } = render({ standalone: { enabled: false } });
    assert.deepEqual(objects, []);
    assert.match(files.get('NOTES.txt')!, /redis-entra-proxy\.sidecar/);
  });

  // One row per case: values that must stop the render with a clear failure.
  const refused: [string, Record<string, unknown>, RegExp][] = [
    ['no image', { image: { repository: '' } }, /image\.repository/],
    ['no upstream', { proxy: { upstream: '' } }, /proxy\.upstream/],
    [
      'no client id for workload identity',
      { workloadIdentity: { clientId: '' } },
      /workloadIdentity\.clientId/,
    ],
    ['no password source', { clientPassword: { existingSecret: '' } }, /clientPassword/],
    ['two password sources', { clientPassword: { value: 'x' } }, /not both/],
    [
      'a grace period shorter than the drain',
      { terminationGracePeriodSeconds: 30 },
      /terminationGracePeriodSeconds/,
    ],
  ];
  for (const [description, overrides, message] of refused) {
    test(`refuses ${description}`, () => {
      const err = failure(overrides);
      assert.equal(err.code, 'ERR_TEMPLATE_FAIL');
      assert.match(err.message, message);
    });
  }
});

describe('the redis-entra-proxy.sidecar template', () => {
  const { renderer } = renderChart(CHART, { standalone: { enabled: false } });
  const sidecar = (args: Record<string, unknown>): Container[] =>
    parseYaml(renderer.include('redis-entra-proxy.sidecar', args)) as Container[];
  const example = (file: string, doc: number): Container => {
    const docs = parseAllDocuments(readFileSync(join(REPO, 'helm', 'examples', file), 'utf8'));
    return (docs[doc].toJS() as PodTemplateOwner).spec.template.spec.initContainers![0];
  };
  const base = {
    image: 'myregistry.azurecr.io/redis-entra-proxy:0.1.0',
    upstream: 'mycache.redis.cache.windows.net',
  };

  test('renders what helm/examples/sidecar-pod.yaml shows', () => {
    assert.deepEqual(sidecar(base), [example('sidecar-pod.yaml', 1)]);
  });

  test('with waitForToken, what the native-sidecar Job example shows', () => {
    assert.deepEqual(sidecar({ ...base, waitForToken: true }), [
      example('job-with-sidecar.yaml', 1),
    ]);
  });

  test('is a native sidecar on loopback with probes and hardening', () => {
    const [proxy] = sidecar(base);
    assert.equal(proxy.restartPolicy, 'Always');
    assert.deepEqual(proxyConfig(proxy).listen, [{ kind: 'tcp', host: '127.0.0.1', port: 6379 }]);
    assert.deepEqual(probeProblems(proxy), []);
    assert.deepEqual(securityProblems(proxy, { containers: [] }), []);
  });

  test('options: ports, credential, quitquitquit, readiness, flags, resources', () => {
    const [proxy] = sidecar({
      ...base,
      port: 6380,
      adminPort: 9191,
      credential: 'managed-identity',
      enableQuitQuitQuit: true,
      gateReadiness: false,
      extraArgs: ['--pool-size=2'],
      env: [{ name: 'AZURE_CLIENT_ID', value: '11111111-2222-3333-4444-555555555555' }],
      resources: { requests: { cpu: '10m', memory: '80Mi' }, limits: { memory: '128Mi' } },
    });
    const config = proxyConfig(proxy);
    assert.deepEqual(config.listen, [{ kind: 'tcp', host: '127.0.0.1', port: 6380 }]);
    assert.deepEqual(config.admin, { kind: 'tcp', host: '0.0.0.0', port: 9191 });
    assert.equal(config.credential, 'managed-identity');
    assert.equal(config.enableQuitQuitQuit, true);
    assert.equal(config.poolSize, 2);
    assert.deepEqual(probeProblems(proxy, { readiness: false }), []);
    assert.equal(proxy.resources?.limits?.memory, '128Mi');
    assert.equal(proxy.env?.[0].name, 'AZURE_CLIENT_ID');
  });

  test('requires image and upstream', () => {
    assert.throws(() => sidecar({ upstream: 'x' }), { code: 'ERR_TEMPLATE_FAIL' });
    assert.throws(() => sidecar({ image: 'x' }), { code: 'ERR_TEMPLATE_FAIL' });
  });
});
