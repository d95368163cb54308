/**
 * The HTTP endpoints of the token service: the authority's OpenID metadata, its JWKS and
 * its token endpoint (client credentials), and the App Service managed identity endpoint.
 * Failure modes apply to the two token-issuing endpoints only; discovery keeps working so
 * that a failing service looks like Entra ID failing to issue, not like a wrong address.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  aadError,
  invalidClientSecret,
  invalidRequest,
  serviceUnavailable,
  unknownTenant,
  type AadError,
} from './aad-errors.js';
import { authenticateClient, type RegisteredClient } from './client-auth.js';
import { readBody, sendJson } from './http-io.js';
import type { SigningKey } from './jwt.js';
import type { FailMode } from './token-service.js';

/** What the endpoints need from the service. */
export interface Issuer {
  readonly tenantId: string;
  readonly authorityHost: string;
  readonly tokenEndpoint: string;
  readonly msiHeader: string;
  readonly managedIdentityClientId: string;
  readonly failMode: FailMode;
  readonly client: RegisteredClient;
  readonly signingKey: SigningKey;
  issue(audience: string, appId: string): Promise<{ token: string; exp: number }>;
}

export type Handler = (
  issuer: Issuer,
  url: URL,
  req: IncomingMessage,
  res: ServerResponse,
) => Promise<void>;

const METADATA_PATH = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/;
const KEYS_PATH = /^\/([^/]+)\/discovery\/v2\.0\/keys$/;
const TOKEN_PATH = /^\/([^/]+)\/oauth2\/v2\.0\/token$/;

/** The version of the App Service identity protocol that MSAL speaks. */
const MSI_API_VERSION = '2019-08-01';

export const handleAuthority: Handler = async (issuer, url, req, res) => {
  const metadata = METADATA_PATH.exec(url.pathname);
  const keys = KEYS_PATH.exec(url.pathname);
  const token = TOKEN_PATH.exec(url.pathname);
  const tenant = (metadata ?? keys ?? token)?.[1];

  if (tenant === undefined) return sendJson(res, 404, { error: 'not_found' });
  if (tenant !== issuer.tenantId) return sendError(res, unknownTenant(tenant));

  if (metadata && req.method === 'GET') return sendJson(res, 200, openIdMetadata(issuer));
  if (keys && req.method === 'GET') return sendJson(res, 200, jwks(issuer.signingKey));
  if (token && req.method === 'POST') return issueForClient(issuer, req, res);
  return sendJson(res, 405, { error: 'method_not_allowed' });
};

export const handleManagedIdentity: Handler = async (issuer, url, req, res) => {
  if (url.pathname !== '/msi/token' || req.method !== 'GET') {
    return sendJson(res, 404, { error: 'not_found' });
  }
  if (req.headers['x-identity-header'] !== issuer.msiHeader) {
    return sendJson(res, 401, {
      error: 'unauthorized',
      error_description: 'X-IDENTITY-HEADER is missing or does not match IDENTITY_HEADER.',
    });
  }
  if (failed(issuer.failMode, issuer, res)) return;

  const resource = url.searchParams.get('resource');
  if (url.searchParams.get('api-version') !== MSI_API_VERSION || !resource) {
    return sendJson(res, 400, {
      error: 'invalid_request',
      error_description: `api-version=${MSI_API_VERSION} and resource are required.`,
    });
  }

  // A user-assigned identity is chosen by client_id; its tokens carry that app id.
  const appId = url.searchParams.get('client_id') ?? issuer.managedIdentityClientId;
  const { token, exp } = await issuer.issue(resource, appId);

  sendJson(res, 200, {
    access_token: token,
    expires_on: String(exp),
    resource,
    token_type: 'Bearer',
    client_id: appId,
  });
};

/**
 * MSAL checks that the document has authorization_endpoint, token_endpoint, issuer and
 * jwks_uri, substitutes the tenant in them and posts to token_endpoint. The other fields
 * are the ones OpenID Connect Discovery requires of every provider.
 */
function openIdMetadata(issuer: Issuer) {
  const base = `${issuer.authorityHost}/${issuer.tenantId}`;

  return {
    issuer: `${base}/v2.0`,
    authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
    token_endpoint: `${base}/oauth2/v2.0/token`,
    jwks_uri: `${base}/discovery/v2.0/keys`,
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt'],
    grant_types_supported: ['client_credentials'],
  };
}

function jwks(key: SigningKey) {
  const jwk = key.publicKey.export({ format: 'jwk' });
  return { keys: [{ ...jwk, kid: key.kid, use: 'sig', alg: 'RS256' }] };
}

async function issueForClient(issuer: Issuer, req: IncomingMessage, res: ServerResponse) {
  const form = new URLSearchParams(await readBody(req));

  if (failed(issuer.failMode, issuer, res)) return;

  if (form.get('grant_type') !== 'client_credentials') {
    return sendError(
      res,
      aadError(
        400,
        'unsupported_grant_type',
        70003,
        'The app requested an unsupported grant type; only client_credentials is served.',
      ),
    );
  }

  const auth = authenticateClient(form, issuer.client, issuer.tokenEndpoint);
  if (!auth.ok) return sendError(res, auth.error);

  const audience = audienceOf(form.get('scope'));
  if (!audience) {
    return sendError(
      res,
      invalidRequest(
        1002012,
        'Client credential flows must have a scope value with /.default suffixed to the ' +
          'resource identifier (application ID URI).',
      ),
    );
  }

  const { token, exp } = await issuer.issue(audience, issuer.client.clientId);
  // MSAL adds expires_in to its own rounded clock reading taken before the request, so
  // rounding here too keeps its idea of the expiry from passing `exp`.
  const expiresIn = exp - Math.round(Date.now() / 1000);

  sendJson(res, 200, {
    token_type: 'Bearer',
    expires_in: expiresIn,
    ext_expires_in: expiresIn,
    access_token: token,
  });
}

/** `https://redis.azure.com/.default` (among other scopes) → `https://redis.azure.com`. */
function audienceOf(scope: string | null): string | undefined {
  const resource = scope?.split(' ').find((s) => s.endsWith('/.default'));
  return resource?.slice(0, -'/.default'.length);
}

/** Answers according to the failure mode; true when the request is taken care of. */
function failed(mode: FailMode, issuer: Issuer, res: ServerResponse): boolean {
  switch (mode) {
    case null:
      return false;
    case 'http500':
      sendError(res, serviceUnavailable());
      return true;
    case 'invalid_client':
      sendError(res, invalidClientSecret(issuer.client.clientId));
      return true;
    case 'garbage':
      // Claims to be JSON, is not: the client's parser must fail, not the connection.
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end('{"token_type":"Bearer","access_token":<html>upstream proxy error</html>');
      return true;
    case 'hang':
      // Never answered; pause() or stop() drops the connection.
      return true;
  }
}

function sendError(res: ServerResponse, error: AadError): void {
  sendJson(res, error.status, error.body);
}
