import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import ts from 'typescript';

/**
 * Offline checks of Kubernetes objects, in two layers:
 * - the JSON schemas generated from the Kubernetes OpenAPI document that the
 *   kubernetes-models package ships (types, required fields, enums, formats);
 *   they accept unknown fields, as the API server does without strict field
 *   validation;
 * - an unknown-field check, as `kubectl apply` (strict field validation since
 *   1.27) does: it walks the object along the package's TypeScript
 *   declarations with the TypeScript compiler, so a misspelt field such as
 *   readOnlyRootFileSystem is reported.
 * The schemas are those of the Kubernetes release the package was generated
 * from (with native sidecars and the preStop sleep action), not of a cluster.
 */

interface Validatable {
  validate(): void;
}

const KINDS: Record<string, { model: new (data: never) => Validatable; type: string }> = {
  'apps/v1/Deployment': { model: Deployment, type: 'apps/v1/Deployment:IDeployment' },
  'batch/v1/Job': { model: Job, type: 'batch/v1/Job:IJob' },
  'policy/v1/PodDisruptionBudget': {
    model: PodDisruptionBudget,
    type: 'policy/v1/PodDisruptionBudget:IPodDisruptionBudget',
  },
  'v1/Secret': { model: Secret, type: 'v1/Secret:ISecret' },
  'v1/Service': { model: Service, type: 'v1/Service:IService' },
  'v1/ServiceAccount': { model: ServiceAccount, type: 'v1/ServiceAccount:IServiceAccount' },
};

/** The problems found in one object, as "path: message" lines; empty when valid. */
export function validateObject(object: Record<string, unknown>): string[] {
  const key = `${String(object.apiVersion)}/${String(object.kind)}`;
  const kind = KINDS[key];
  if (kind === undefined) return [`${key}: no schema for this kind in the test`];

  const problems: string[] = [];
  try {
    new kind.model(structuredClone(object) as never).validate();
  } catch (err) {
    problems.push(`schema: ${(err as Error).message}`);
  }
  const fields = typeChecker();
  walk(object, fields.typeOf(key), '', fields.checker, problems);
  return problems;
}

interface Fields {
  checker: ts.TypeChecker;
  typeOf(key: string): ts.Type;
}

let cached: Fields | undefined;

/**
 * A TypeScript program over a virtual file that imports the declaration of
 * each kind; its checker answers "which fields does this object type have".
 */
function typeChecker(): Fields {
  if (cached !== undefined) return cached;
  const here = dirname(fileURLToPath(import.meta.url));
  // The virtual file sits at the repository root (this module runs from
  // dist/test/deploy/) so that module resolution finds node_modules there.
  const root = join(here, '..', '..', '..');
  const virtual = join(root, '__k8s_kinds__.ts');
  const lines: string[] = [];
  const members: string[] = [];
  Object.values(KINDS).forEach(({ type }, i) => {
    const [module, name] = type.split(':');
    lines.push(`import type { ${name} as K${i} } from 'kubernetes-models/${module}';`);
    members.push(`  '${Object.keys(KINDS)[i]}': K${i};`);
  });
  const source = `${lines.join('\n')}\nexport interface Kinds {\n${members.join('\n')}\n}\n`;

  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const original = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, languageVersion, ...rest) =>
    fileName === virtual
      ? ts.createSourceFile(fileName, source, languageVersion)
      : original(fileName, languageVersion, ...rest);
  const originalExists = host.fileExists.bind(host);
  host.fileExists = (fileName) => fileName === virtual || originalExists(fileName);

  const program = ts.createProgram([virtual], options, host);
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(virtual)!;
  const errors = ts.getPreEmitDiagnostics(program, file);
  if (errors.length > 0) {
    const text = errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    throw new Error(`cannot load the kubernetes-models declarations: ${text.join('; ')}`);
  }
  const kinds = checker.getTypeAtLocation(file.statements.find(ts.isInterfaceDeclaration)!.name);
  cached = {
    checker,
    typeOf(key: string): ts.Type {
      return checker.getTypeOfSymbol(kinds.getProperty(key)!);
    },
  };
  return cached;
}

function walk(
  value: unknown,
  type: ts.Type,
  path: string,
  checker: ts.TypeChecker,
  problems: string[],
): void {
  if (value === null || typeof value !== 'object') return;
  const target = checker.getNonNullableType(type);

  if (Array.isArray(value)) {
    const element = target.getNumberIndexType();
    if (element === undefined) {
      problems.push(`${path}: a list where ${checker.typeToString(target)} belongs`);
      return;
    }
    value.forEach((item, i) => walk(item, element, `${path}[${i}]`, checker, problems));
    return;
  }

  // Unions of objects do not occur in these declarations; a union here is a
  // scalar type such as IntOrString, which the schema layer checks.
  if (target.isUnion()) return;
  const map = target.getStringIndexType();
  const properties = checker.getPropertiesOfType(target);
  for (const [key, child] of Object.entries(value)) {
    const property = target.getProperty(key);
    if (property !== undefined) {
      walk(child, checker.getTypeOfSymbol(property), `${path}.${key}`, checker, problems);
    } else if (map !== undefined) {
      walk(child, map, `${path}.${key}`, checker, problems);
    } else if (properties.length > 0) {
      problems.push(`${path}.${key}: unknown field of ${checker.typeToString(target)}`);
    }
  }
}
