/**
 * Helpers shared by the testbed tests: credential options for the local authority and
 * Redis connections authenticated the way the proxy authenticates upstream.
 */
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import {
  decodeJwt,
  type Certificates,
  type RedisServer,
  type TokenService,
} from '../../testbed/index.js';

export const SCOPE = 'https://redis.azure.com/.default';

/**
 * Fails early with an explanation when the process does not trust the testbed CA:
 * otherwise MSAL reports the TLS failure as "endpoints_resolution_error".
 */
export function requireTrustedCa(certs: Certificates): void {
  if (process.env.NODE_EXTRA_CA_CERTS !== certs.caFile) {
    throw new Error(
      'NODE_EXTRA_CA_CERTS does not name the testbed CA; ' +
        'run the tests through dist/test/run.js',
    );
  }
}

/**
 * Options every credential needs for the local authority. Retries are off because
 * @azure/identity retries 5xx and connection errors with back-off, which only slows the
 * failure-mode tests down.
 */
export function credentialOptions(svc: TokenService) {
  return {
    authorityHost: svc.authorityHost,
    disableInstanceDiscovery: true,
    retryOptions: { maxRetries: 0 },
  };
}

export function oidOf(token: string): string {
  return String(decodeJwt(token).payload.oid);
}

/** A TLS connection to the testbed redis-server, authenticated with AUTH user password. */
export async function connectAs(
  redis: RedisServer,
  username: string,
  password: string,
): Promise<Redis> {
  const client = new Redis({
    host: redis.host,
    port: redis.tlsPort,
    tls: { ca: readFileSync(redis.caFile, 'utf8') },
    username,
    password,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });

  // ioredis reports a failed AUTH as an 'error' event and then rejects connect() with a
  // bare "Connection is closed"; the event carries the server's reply.
  let lastError: Error | undefined;
  client.on('error', (err: Error) => (lastError = err));

  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    throw lastError ?? err;
  }
  return client;
}

/** Resolves when the server has closed the client's connection for good. */
export function whenClosed(client: Redis): Promise<void> {
  if (client.status === 'end') return Promise.resolve();
  return new Promise((resolve) => client.once('end', () => resolve()));
}

/** Resolves with the rejection of `promise`, or fails when it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}
