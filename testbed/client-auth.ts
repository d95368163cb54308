/**
 * How the token service decides that a client_credentials request comes from the
 * registered application: a client secret, a JWT assertion signed with the client
 * certificate, or a federated (workload identity) token from the trusted issuer.
 */
import { randomUUID, type KeyObject } from 'node:crypto';
import {
  badAssertion,
  invalidClientSecret,
  invalidRequest,
  unknownClient,
  type AadError,
} from './aad-errors.js';
import { decodeJwt, signJwt, verifyJwt, type JwtClaims, type SigningKey } from './jwt.js';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** The audience Entra ID requires in federated tokens, as AKS and GitHub issue them. */
export const FEDERATION_AUDIENCE = 'api://AzureADTokenExchange';

/** The one application registration the service knows. */
export interface RegisteredClient {
  clientId: string;
  clientSecret: string;
  /** Public key of the client certificate registered for the application. */
  certificateKey: KeyObject;
  /** Issuer of federated tokens the application trusts, and the key it signs with. */
  federation: { issuer: string; key: SigningKey };
}

export type ClientAuthMethod = 'client-secret' | 'client-certificate' | 'federated';

export type ClientAuthResult =
  { ok: true; method: ClientAuthMethod } | { ok: false; error: AadError };

/** Checks the client part of a token request; `tokenEndpoint` is what assertions must name. */
export function authenticateClient(
  form: URLSearchParams,
  client: RegisteredClient,
  tokenEndpoint: string,
): ClientAuthResult {
  const clientId = form.get('client_id') ?? '';
  if (clientId !== client.clientId) return fail(unknownClient(clientId));

  const secret = form.get('client_secret');
  if (secret !== null) {
    return secret === client.clientSecret
      ? { ok: true, method: 'client-secret' }
      : fail(invalidClientSecret(clientId));
  }

  const assertion = form.get('client_assertion');
  if (assertion === null) {
    return fail(
      invalidRequest(
        7000218,
        "The request body must contain the parameter 'client_assertion' or 'client_secret'.",
      ),
    );
  }
  if (form.get('client_assertion_type') !== JWT_BEARER) {
    return fail(invalidRequest(50027, `client_assertion_type must be '${JWT_BEARER}'.`));
  }

  return isFederated(assertion, client)
    ? checkFederatedToken(assertion, client)
    : checkCertificateAssertion(assertion, client, tokenEndpoint);
}

/**
 * A federated token as a workload identity platform would project it into a pod: signed
 * by the trusted issuer, for the token-exchange audience, naming a service account.
 */
export function createFederatedToken(client: RegisteredClient, lifetimeSeconds: number): string {
  const now = Math.floor(Date.now() / 1000);

  return signJwt(
    {
      iss: client.federation.issuer,
      sub: 'system:serviceaccount:default:testbed',
      aud: FEDERATION_AUDIENCE,
      jti: randomUUID(),
      iat: now,
      nbf: now,
      exp: now + lifetimeSeconds,
    },
    client.federation.key,
  );
}

function isFederated(assertion: string, client: RegisteredClient): boolean {
  try {
    return decodeJwt(assertion).payload.iss === client.federation.issuer;
  } catch {
    return false;
  }
}

function checkFederatedToken(assertion: string, client: RegisteredClient): ClientAuthResult {
  const claims = verifyJwt(assertion, client.federation.key.publicKey);

  if (!claims) return fail(badAssertion('federated token signature is not valid'));
  if (claims.aud !== FEDERATION_AUDIENCE) {
    return fail(badAssertion(`federated token audience must be '${FEDERATION_AUDIENCE}'`));
  }
  if (isExpired(claims)) return fail(badAssertion('federated token has expired'));
  return { ok: true, method: 'federated' };
}

function checkCertificateAssertion(
  assertion: string,
  client: RegisteredClient,
  tokenEndpoint: string,
): ClientAuthResult {
  const claims = verifyJwt(assertion, client.certificateKey);

  if (!claims) return fail(badAssertion('signature does not match the registered certificate'));
  if (claims.iss !== client.clientId || claims.sub !== client.clientId) {
    return fail(badAssertion('iss and sub must be the client id'));
  }
  if (claims.aud !== tokenEndpoint) return fail(badAssertion('aud must be the token endpoint'));
  if (isExpired(claims)) return fail(badAssertion('assertion has expired'));
  return { ok: true, method: 'client-certificate' };
}

function isExpired(claims: JwtClaims): boolean {
  return typeof claims.exp !== 'number' || claims.exp * 1000 <= Date.now();
}

function fail(error: AadError): ClientAuthResult {
  return { ok: false, error };
}
