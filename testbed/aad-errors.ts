/**
 * Error bodies in the shape Entra ID (AAD) returns from its token endpoint. MSAL copies
 * `error`, `error_description` and `error_codes` into the errors it throws, so callers see
 * the familiar AADSTS numbers.
 */
import { randomUUID } from 'node:crypto';

export interface AadErrorBody {
  error: string;
  error_description: string;
  error_codes: number[];
  timestamp: string;
  trace_id: string;
  correlation_id: string;
  error_uri: string;
}

export interface AadError {
  status: number;
  body: AadErrorBody;
}

export function aadError(status: number, error: string, code: number, text: string): AadError {
  const timestamp = new Date()
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
  const traceId = randomUUID();
  const correlationId = randomUUID();
  const description =
    `AADSTS${code}: ${text} Trace ID: ${traceId} Correlation ID: ${correlationId} ` +
    `Timestamp: ${timestamp}`;

  return {
    status,
    body: {
      error,
      error_description: description,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `https://login.microsoftonline.com/error?code=${code}`,
    },
  };
}

export function invalidClientSecret(clientId: string): AadError {
  return aadError(
    401,
    'invalid_client',
    7000215,
    'Invalid client secret provided. Ensure the secret being sent in the request is the ' +
      `client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
  );
}

export function badAssertion(reason: string): AadError {
  return aadError(401, 'invalid_client', 700027, `Client assertion failed validation: ${reason}.`);
}

export function unknownClient(clientId: string): AadError {
  return aadError(
    400,
    'unauthorized_client',
    700016,
    `Application with identifier '${clientId}' was not found in the directory.`,
  );
}

export function unknownTenant(tenant: string): AadError {
  return aadError(400, 'invalid_request', 90002, `Tenant '${tenant}' not found.`);
}

export function invalidRequest(code: number, text: string): AadError {
  return aadError(400, 'invalid_request', code, text);
}

export function serviceUnavailable(): AadError {
  return aadError(
    500,
    'temporarily_unavailable',
    50000,
    'There was an error issuing a token (testbed failure mode http500).',
  );
}
