import { ConfigError, parseConfig, type Config } from '../../src/config.js';
import { readDockerfile, stageEnv } from './dockerfile.js';

/**
 * Checks shared by the chart and example tests: a pod's proxy container, read
 * with the proxy's own configuration parser, against its probes and hardening.
 */

export interface Probe {
  httpGet?: { path?: string; port?: number | string };
  exec?: unknown;
  tcpSocket?: unknown;
}

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  ports?: { name?: string; containerPort: number }[];
  restartPolicy?: string;
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> };
  securityContext?: Record<string, unknown>;
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: Record<string, unknown>;
  serviceAccountName?: string;
  terminationGracePeriodSeconds?: number;
  restartPolicy?: string;
}

export interface PodTemplateOwner {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec: {
    template: {
      metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
      spec: PodSpec;
    };
  };
}

export function isProxy(container: Container): boolean {
  return (container.args ?? []).some((a) => a.startsWith('--upstream='));
}

/** The environment the image sets (Dockerfile ENV of the runtime stage). */
export function imageEnvironment(): Record<string, string> {
  const { stages } = readDockerfile();
  return Object.fromEntries(stageEnv(stages[stages.length - 1]));
}

/**
 * The proxy's configuration for a container: its args and env over the
 * image's environment, parsed by the proxy itself. Values from Secrets and
 * other references stand in as "from-reference".
 */
export function proxyConfig(container: Container): Config {
  const env: Record<string, string> = { ...imageEnvironment() };
  for (const item of container.env ?? []) env[item.name] = item.value ?? 'from-reference';
  const parsed = parseConfig(container.args ?? [], env);
  if (parsed.action !== 'run') throw new Error(`${container.name}: args ask for ${parsed.action}`);
  return parsed.config;
}

/** proxyConfig's problems as text, or null when the container's flags parse. */
export function configProblems(container: Container): string[] | null {
  try {
    proxyConfig(container);
    return null;
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

function probePort(container: Container, probe: Probe): number | undefined {
  const port = probe.httpGet?.port;
  if (typeof port === 'number') return port;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/**
 * What the probes of a proxy container must be: HTTP GETs on the admin port
 * the proxy listens on, reachable from the kubelet (not loopback), startup
 * and liveness on /livez (or startup on /readyz to wait for a token),
 * readiness on /readyz, and never /upstreamz: a cache outage must not take
 * pods out of service.
 */
export function probeProblems(container: Container, opts: { readiness?: boolean } = {}): string[] {
  const problems: string[] = [];
  const config = proxyConfig(container);
  const admin = config.admin;
  if (admin === null || admin.kind !== 'tcp') return [`${container.name}: no TCP admin listener`];
  if (admin.host.startsWith('127.') || admin.host === 'localhost' || admin.host === '::1') {
    problems.push(
      `${container.name}: admin listens on ${admin.host}; the kubelet probes the pod IP`,
    );
  }
  const expected: [keyof Container, string[] | null][] = [
    ['startupProbe', ['/livez', '/readyz']],
    ['livenessProbe', ['/livez']],
    ['readinessProbe', opts.readiness === false ? null : ['/readyz']],
  ];
  for (const [key, paths] of expected) {
    const probe = container[key] as Probe | undefined;
    if (paths === null) {
      if (probe !== undefined) problems.push(`${container.name}.${key}: not expected`);
      continue;
    }
    if (probe?.httpGet === undefined) {
      problems.push(`${container.name}.${key}: missing or not httpGet`);
      continue;
    }
    if (!paths.includes(probe.httpGet.path ?? '')) {
      problems.push(
        `${container.name}.${key}: path ${probe.httpGet.path}, expected ${paths.join(' or ')}`,
      );
    }
    if (probePort(container, probe) !== admin.port) {
      problems.push(
        `${container.name}.${key}: port ${probe.httpGet.port} is not the admin port ${admin.port}`,
      );
    }
  }
  return problems;
}

/** The hardening every proxy container must have, pod-level defaults counted. */
export function securityProblems(container: Container, pod: PodSpec): string[] {
  const own = container.securityContext ?? {};
  const podLevel = pod.securityContext ?? {};
  const effective = (key: string): unknown => own[key] ?? podLevel[key];
  const problems: string[] = [];
  const expect = (what: string, ok: boolean): void => {
    if (!ok) problems.push(`${container.name}: ${what}`);
  };
  expect('runAsNonRoot', effective('runAsNonRoot') === true);
  expect('runAsUser is not 0', effective('runAsUser') !== 0);
  expect('readOnlyRootFilesystem', own.readOnlyRootFilesystem === true);
  expect('allowPrivilegeEscalation false', own.allowPrivilegeEscalation === false);
  const caps = own.capabilities as { drop?: string[]; add?: string[] } | undefined;
  expect('capabilities drop ALL', caps?.drop?.includes('ALL') === true && caps.add === undefined);
  const seccomp = effective('seccompProfile') as { type?: string } | undefined;
  expect('seccompProfile RuntimeDefault', seccomp?.type === 'RuntimeDefault');
  expect('privileged not set', own.privileged === undefined || own.privileged === false);
  expect(
    'resources: memory request and limit',
    container.resources?.requests?.memory !== undefined &&
      container.resources?.limits?.memory !== undefined,
  );
  return problems;
}

/** Every REDIS_PROXY_* variable named in the text that is not a proxy flag. */
export function unknownProxyVariables(text: string, known: Set<string>): string[] {
  return [...new Set(text.match(/REDIS_PROXY_[A-Z0-9_]+/g) ?? [])].filter((n) => !known.has(n));
}

/** --shutdown-timeout in seconds, as the proxy reads it. */
export function shutdownSeconds(container: Container): number {
  return proxyConfig(container).shutdownTimeoutMs / 1000;
}
