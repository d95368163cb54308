import {
  AzureCliCredential,
  ClientCertificateCredential,
  ClientSecretCredential,
  DefaultAzureCredential,
  ManagedIdentityCredential,
  WorkloadIdentityCredential,
  type TokenCredential,
  type TokenCredentialOptions,
} from '@azure/identity';

import type { CredentialKind } from '../config.js';

/**
 * Builds the @azure/identity credential named by --credential. Each reads the
 * standard AZURE_* variables, so that the same deployment manifests work for
 * the proxy as for any Azure SDK application. Missing variables are reported
 * here, at start-up, rather than at the first token request.
 */
export function createCredential(
  kind: CredentialKind,
  env: NodeJS.ProcessEnv,
  disableInstanceDiscovery: boolean,
  requestTimeoutMs: number,
): TokenCredential {
  // TokenSource retries with its own backoff, for as long as the process
  // runs; retries inside the SDK would only delay reporting each failure.
  const retryOptions = { maxRetries: 0 };
  // The token source gives up on a request after --token-timeout, but the
  // SDK's HTTP request would run on and keep its socket open for as long as
  // the identity service hangs: one more with every retry. A deadline on
  // each HTTP request ends it, socket and all.
  const additionalPolicies = [requestTimeout(requestTimeoutMs)];
  const common = {
    authorityHost: env.AZURE_AUTHORITY_HOST,
    disableInstanceDiscovery,
    retryOptions,
    additionalPolicies,
  };
  const need = (...names: string[]): string[] => {
    const missing = names.filter((name) => !env[name]);
    if (missing.length > 0) {
      throw new CredentialConfigError(
        `--credential ${kind} needs ${missing.join(', ')} in the environment`,
      );
    }
    return names.map((name) => env[name]!);
  };

  switch (kind) {
    case 'client-secret': {
      const [tenant, client, secret] = need(
        'AZURE_TENANT_ID',
        'AZURE_CLIENT_ID',
        'AZURE_CLIENT_SECRET',
      );
      return new ClientSecretCredential(tenant, client, secret, common);
    }
    case 'client-certificate': {
      const [tenant, client, path] = need(
        'AZURE_TENANT_ID',
        'AZURE_CLIENT_ID',
        'AZURE_CLIENT_CERTIFICATE_PATH',
      );
      return new ClientCertificateCredential(
        tenant,
        client,
        { certificatePath: path, certificatePassword: env.AZURE_CLIENT_CERTIFICATE_PASSWORD },
        common,
      );
    }
    case 'workload-identity': {
      const [tenantId, clientId, tokenFilePath] = need(
        'AZURE_TENANT_ID',
        'AZURE_CLIENT_ID',
        'AZURE_FEDERATED_TOKEN_FILE',
      );
      return new WorkloadIdentityCredential({ tenantId, clientId, tokenFilePath, ...common });
    }
    case 'managed-identity':
      return env.AZURE_CLIENT_ID
        ? new ManagedIdentityCredential({
            clientId: env.AZURE_CLIENT_ID,
            retryOptions,
            additionalPolicies,
          })
        : new ManagedIdentityCredential({ retryOptions, additionalPolicies });
    case 'azure-cli':
      return new AzureCliCredential({
        tenantId: env.AZURE_TENANT_ID,
        processTimeoutInMs: requestTimeoutMs,
        retryOptions,
      });
    case 'default':
      return new DefaultAzureCredential(common);
  }
}

type AdditionalPolicy = NonNullable<TokenCredentialOptions['additionalPolicies']>[number];

/** A pipeline policy that gives every HTTP request of a credential a deadline. */
function requestTimeout(ms: number): AdditionalPolicy {
  return {
    position: 'perCall',
    policy: {
      name: 'redisEntraProxyRequestTimeout',
      sendRequest: (request, next) => {
        request.timeout = ms;
        return next(request);
      },
    },
  };
}

export class CredentialConfigError extends Error {
  readonly code = 'ERR_CREDENTIAL_CONFIG';
}
