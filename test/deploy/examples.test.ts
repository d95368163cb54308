import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { parseAllDocuments } from 'yaml';

import { REPO } from './dockerfile.js';
import { validateObject } from './k8s-validate.js';
import {
  configProblems,
  isProxy,
  probeProblems,
  proxyConfig,
  securityProblems,
  shutdownSeconds,
  type Container,
  type PodTemplateOwner,
} from './pod-checks.js';

const EXAMPLES = join(REPO, 'helm', 'examples');

function load(file: string): Record<string, unknown>[] {
  const docs = parseAllDocuments(readFileSync(join(EXAMPLES, file), 'utf8'));
  for (const doc of docs) assert.deepEqual(doc.errors, [], file);
  return docs.map((d) => d.toJS() as Record<string, unknown>).filter((o) => o !== null);
}

function workloads(objects: Record<string, unknown>[]): PodTemplateOwner[] {
  return objects.filter(
    (o) => o.kind === 'Deployment' || o.kind === 'Job',
  ) as unknown as PodTemplateOwner[];
}

function proxies(owner: PodTemplateOwner): { container: Container; native: boolean }[] {
  const pod = owner.spec.template.spec;
  return [
    ...(pod.initContainers ?? []).filter(isProxy).map((container) => ({ container, native: true })),
    ...pod.containers.filter(isProxy).map((container) => ({ container, native: false })),
  ];
}

/** The workload identity wiring of one pod template, as problems. */
function identityProblems(owner: PodTemplateOwner, objects: Record<string, unknown>[]): string[] {
  const problems: string[] = [];
  const { metadata, spec } = owner.spec.template;
  if (metadata?.labels?.['azure.workload.identity/use'] !== 'true') {
    problems.push(`${owner.metadata.name}: pod label azure.workload.identity/use: "true"`);
  }
  const account = objects.find(
    (o) =>
      o.kind === 'ServiceAccount' &&
      (o.metadata as { name: string }).name === spec.serviceAccountName,
  ) as { metadata: { annotations?: Record<string, string> } } | undefined;
  if (account === undefined) {
    problems.push(
      `${owner.metadata.name}: service account ${spec.serviceAccountName} is not in the file`,
    );
  } else if (
    !/^[0-9a-f-]{36}$/.test(
      account.metadata.annotations?.['azure.workload.identity/client-id'] ?? '',
    )
  ) {
    problems.push(
      `${owner.metadata.name}: service account lacks azure.workload.identity/client-id`,
    );
  }
  return problems;
}

describe('helm/examples', () => {
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml'));

  test('holds the sidecar Deployment and the Job examples', () => {
    assert.deepEqual(files.sort(), ['job-with-sidecar.yaml', 'sidecar-pod.yaml']);
  });

  for (const file of files) {
    describe(file, () => {
      const objects = load(file);

      test('every object passes the Kubernetes schemas and has no unknown field', () => {
        for (const object of objects) {
          assert.deepEqual(validateObject(object), [], `${String(object.kind)} in ${file}`);
        }
      });

      test('every proxy container is configured as the proxy reads it', () => {
        for (const owner of workloads(objects)) {
          const found = proxies(owner);
          assert.equal(found.length, 1, owner.metadata.name);
          for (const { container } of found) {
            assert.equal(configProblems(container), null, container.name);
            // The application reaches the proxy over the pod's loopback only.
            for (const address of proxyConfig(container).listen) {
              assert.deepEqual(address, { kind: 'tcp', host: '127.0.0.1', port: 6379 });
            }
            assert.match(container.image ?? '', /redis-entra-proxy/);
          }
        }
      });

      test('proxy containers are hardened', () => {
        for (const owner of workloads(objects)) {
          for (const { container } of proxies(owner)) {
            assert.deepEqual(securityProblems(container, owner.spec.template.spec), []);
          }
        }
      });

      test('pods sign in with AKS workload identity', () => {
        for (const owner of workloads(objects))
          assert.deepEqual(identityProblems(owner, objects), []);
      });
    });
  }
});

describe('helm/examples/sidecar-pod.yaml', () => {
  const objects = load('sidecar-pod.yaml');
  const [app] = workloads(objects);
  const pod = app.spec.template.spec;

  test('runs the proxy as a native sidecar with probes on the admin port', () => {
    assert.equal(app.kind, 'Deployment');
    const [{ container, native }] = proxies(app);
    assert.ok(native, 'the proxy is in initContainers');
    assert.equal(container.restartPolicy, 'Always');
    assert.deepEqual(probeProblems(container), []);
    assert.equal(container.startupProbe?.httpGet?.path, '/livez');
  });

  test('the application talks to the proxy on loopback', () => {
    const appContainer = pod.containers[0];
    const env = Object.fromEntries((appContainer.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.REDIS_HOST, '127.0.0.1');
    assert.equal(env.REDIS_PORT, '6379');
  });

  test('the grace period outlasts the proxy shutdown timeout', () => {
    const [{ container }] = proxies(app);
    assert.ok(pod.terminationGracePeriodSeconds! > shutdownSeconds(container));
  });
});

describe('helm/examples/job-with-sidecar.yaml', () => {
  const objects = load('job-with-sidecar.yaml');
  const [native, legacy] = workloads(objects);

  test('the native-sidecar Job ends when its work ends', () => {
    assert.equal(native.kind, 'Job');
    assert.equal(native.spec.template.spec.restartPolicy, 'Never');
    const [{ container, native: isNative }] = proxies(native);
    assert.ok(isNative);
    assert.equal(container.restartPolicy, 'Always');
    assert.deepEqual(probeProblems(container), []);
    // The work starts only once the proxy holds a token.
    assert.equal(container.startupProbe?.httpGet?.path, '/readyz');
    assert.equal(proxyConfig(container).enableQuitQuitQuit, false);
  });

  test('the Job for older clusters stops the proxy with POST /quitquitquit', () => {
    assert.equal(legacy.kind, 'Job');
    const pod = legacy.spec.template.spec;
    assert.equal(pod.restartPolicy, 'Never');
    assert.equal(pod.initContainers, undefined);
    const [{ container, native: isNative }] = proxies(legacy);
    assert.ok(!isNative);
    const config = proxyConfig(container);
    assert.equal(config.enableQuitQuitQuit, true);
    // /quitquitquit stays on loopback: nothing outside the pod may stop it.
    assert.deepEqual(config.admin, { kind: 'tcp', host: '127.0.0.1', port: 9090 });
    assert.equal(container.readinessProbe, undefined);

    const work = pod.containers.find((c) => !isProxy(c))!;
    const script = (work.command ?? []).join(' ');
    const admin = `http://127.0.0.1:${config.admin.kind === 'tcp' ? config.admin.port : 0}`;
    assert.ok(script.includes(`${admin}/readyz`), 'waits for the proxy before working');
    assert.match(script, new RegExp(`trap '[^']*--post-data[^']*${admin}/quitquitquit' EXIT`));
    assert.ok((legacy.spec as { activeDeadlineSeconds?: number }).activeDeadlineSeconds! > 0);
  });
});
