/**
 * A local stand-in for Microsoft Entra ID and for the App Service managed identity
 * endpoint, good enough for the real @azure/identity credentials to get tokens from it.
 * Linked to the testbed redis-server, it also plays the part of Azure Cache: each token
 * it issues becomes a Redis user that disappears, with its connections, at expiry.
 */
import { randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { Certificates } from './certs.js';
import { createFederatedToken, type RegisteredClient } from './client-auth.js';
import { createSigningKey, signAccessToken, type SigningKey } from './jwt.js';
import { sendJson } from './http-io.js';
import { PausableListener } from './pausable-listener.js';
import {
  handleAuthority,
  handleManagedIdentity,
  type Handler,
  type Issuer,
} from './token-endpoints.js';
import { UpstreamUsers } from './upstream-users.js';

/**
 * How the two token endpoints misbehave; null is normal service. As @azure/identity 4.13
 * (MSAL inside) experiences them:
 * - 'http500': 500 temporarily_unavailable (AADSTS50000). MSAL then replays that error to
 *   the same credential for 60 s without asking again (its throttling of 5xx answers).
 * - 'hang': never answered. getToken's abortSignal does not end the request; only
 *   pause() or stop() does, so callers need a timeout of their own.
 * - 'garbage': 200 with a body that is not JSON; MSAL reports network_error.
 * - 'invalid_client': 401 AADSTS7000215, as for a wrong client secret.
 */
export type FailMode = 'http500' | 'hang' | 'garbage' | 'invalid_client' | null;

export type CredentialKind =
  'client-secret' | 'client-certificate' | 'workload-identity' | 'managed-identity';

export interface TokenServiceOptions {
  certs: Certificates;
  /** The testbed redis-server (its admin connection) to enforce tokens on, like Azure. */
  redis?: { admin: Redis };
  /** Lifetime of issued tokens; default one hour. */
  lifetimeSeconds?: number;
  tenantId?: string;
  clientId?: string;
  clientSecret?: string;
}

export interface TokenService {
  /** `https://127.0.0.1:PORT`, for `authorityHost` / AZURE_AUTHORITY_HOST. */
  readonly authorityHost: string;
  readonly tokenEndpoint: string;
  /** Plain-http App Service style endpoint, for IDENTITY_ENDPOINT. */
  readonly msiEndpoint: string;
  /** Secret for the X-IDENTITY-HEADER header, for IDENTITY_HEADER. */
  readonly msiHeader: string;
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** The app id that managed identity tokens carry. */
  readonly managedIdentityClientId: string;
  readonly lifetimeSeconds: number;
  readonly failMode: FailMode;
  /** Number of tokens issued so far. */
  readonly issued: number;
  /** Requests received, by URL path (without query). */
  readonly requests: Readonly<Record<string, number>>;
  /** Every token issued so far: its `oid` and its `exp` (seconds since the epoch). */
  readonly tokens: ReadonlyMap<string, number>;
  /** Oids whose Redis users currently exist (only when linked to redis). */
  readonly liveUsers: string[];
  /** ACL commands that failed; enforcement carries on regardless. */
  readonly enforcementErrors: readonly Error[];
  setLifetime(seconds: number): void;
  fail(mode: FailMode): void;
  /** Stops listening (connections are refused and open ones dropped) until resume(). */
  pause(): Promise<void>;
  /** Listens again on the same ports. */
  resume(): Promise<void>;
  /** Expires a token's Redis user now, as if its token had run out. */
  revoke(oid: string): Promise<void>;
  /** Environment variables that make the credential of `kind` use this service. */
  envFor(kind: CredentialKind): Record<string, string>;
  stop(): Promise<void>;
}

/** Federated tokens live long; their lifetime is not what the tests exercise. */
const FEDERATED_TOKEN_SECONDS = 24 * 3600;

/**
 * The issuer of federated tokens, as an AKS cluster's OIDC issuer would be. Nothing
 * fetches it (the service knows the key), so it names a host that cannot resolve.
 */
const FEDERATION_ISSUER = 'https://workload-issuer.testbed.invalid/';

export async function startTokenService(opts: TokenServiceOptions): Promise<TokenService> {
  const service = new LocalTokenService(opts, await mkdtemp(join(tmpdir(), 'testbed-sts-')));

  try {
    await service.start();
  } catch (err) {
    await service.stop();
    throw err;
  }
  return service;
}

class LocalTokenService implements TokenService, Issuer {
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly managedIdentityClientId = randomUUID();
  readonly msiHeader = randomBytes(16).toString('hex');
  readonly client: RegisteredClient;

  #certs: Certificates;
  #dir: string;
  #key: SigningKey = createSigningKey();
  #lifetime: number;
  #failMode: FailMode = null;
  #requests: Record<string, number> = {};
  #tokens = new Map<string, number>();
  #users: UpstreamUsers | undefined;
  #authority: PausableListener;
  #msi: PausableListener;
  #stopping: Promise<void> | undefined;

  constructor(opts: TokenServiceOptions, dir: string) {
    this.#certs = opts.certs;
    this.#dir = dir;
    this.#lifetime = opts.lifetimeSeconds ?? 3600;
    this.#users = opts.redis ? new UpstreamUsers(opts.redis.admin) : undefined;
    this.tenantId = opts.tenantId ?? randomUUID();
    this.clientId = opts.clientId ?? randomUUID();
    this.clientSecret = opts.clientSecret ?? `tb~${randomBytes(24).toString('base64url')}`;
    this.client = {
      clientId: this.clientId,
      clientSecret: this.clientSecret,
      certificateKey: certificateKeyOf(opts.certs.clientPemFile),
      federation: { issuer: FEDERATION_ISSUER, key: createSigningKey() },
    };

    const tls = {
      cert: readFileSync(opts.certs.serverCertFile),
      key: readFileSync(opts.certs.serverKeyFile),
    };
    const https = createHttpsServer(tls, (req, res) => this.#serve(req, res, handleAuthority));
    const http = createHttpServer((req, res) => this.#serve(req, res, handleManagedIdentity));

    this.#authority = new PausableListener(https);
    this.#msi = new PausableListener(http);
  }

  async start(): Promise<void> {
    await this.#authority.listen(0);
    await this.#msi.listen(0);
  }

  get authorityHost(): string {
    return `https://127.0.0.1:${this.#authority.port}`;
  }

  get tokenEndpoint(): string {
    return `${this.authorityHost}/${this.tenantId}/oauth2/v2.0/token`;
  }

  get msiEndpoint(): string {
    return `http://127.0.0.1:${this.#msi.port}/msi/token`;
  }

  get lifetimeSeconds(): number {
    return this.#lifetime;
  }

  get failMode(): FailMode {
    return this.#failMode;
  }

  get issued(): number {
    return this.#tokens.size;
  }

  get requests(): Readonly<Record<string, number>> {
    return this.#requests;
  }

  get tokens(): ReadonlyMap<string, number> {
    return this.#tokens;
  }

  get liveUsers(): string[] {
    return this.#users?.live ?? [];
  }

  get enforcementErrors(): readonly Error[] {
    return this.#users?.errors ?? [];
  }

  setLifetime(seconds: number): void {
    if (!(seconds > 0)) throw new RangeError('token lifetime must be positive');
    this.#lifetime = seconds;
  }

  fail(mode: FailMode): void {
    this.#failMode = mode;
  }

  async pause(): Promise<void> {
    await Promise.all([this.#authority.close(), this.#msi.close()]);
  }

  async resume(): Promise<void> {
    await Promise.all([this.#authority.listen(), this.#msi.listen()]);
  }

  async revoke(oid: string): Promise<void> {
    await this.#users?.remove(oid);
  }

  /** Mints a token and, when linked, makes redis accept it before anyone sees it. */
  async issue(audience: string, appId: string): Promise<{ token: string; exp: number }> {
    const { token, claims } = signAccessToken(
      {
        issuer: `${this.authorityHost}/${this.tenantId}/`,
        audience,
        tenantId: this.tenantId,
        clientId: appId,
        lifetimeSeconds: this.#lifetime,
      },
      this.#key,
    );

    // A failed SETUSER is recorded, not fatal: the token is then simply unknown upstream,
    // which is what a client would see from a cache that does not accept it.
    await this.#users?.add(claims.oid, token, claims.exp).catch((err: Error) => {
      this.#users?.errors.push(err);
    });
    this.#tokens.set(claims.oid, claims.exp);
    return { token, exp: claims.exp };
  }

  get signingKey(): SigningKey {
    return this.#key;
  }

  envFor(kind: CredentialKind): Record<string, string> {
    const app = {
      AZURE_TENANT_ID: this.tenantId,
      AZURE_CLIENT_ID: this.clientId,
      AZURE_AUTHORITY_HOST: this.authorityHost,
    };

    switch (kind) {
      case 'client-secret':
        return { ...app, AZURE_CLIENT_SECRET: this.clientSecret };
      case 'client-certificate':
        return { ...app, AZURE_CLIENT_CERTIFICATE_PATH: this.#certs.clientPemFile };
      case 'workload-identity':
        return { ...app, AZURE_FEDERATED_TOKEN_FILE: this.#writeFederatedToken() };
      case 'managed-identity':
        return { IDENTITY_ENDPOINT: this.msiEndpoint, IDENTITY_HEADER: this.msiHeader };
    }
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#users?.clear();
      await Promise.all([this.#authority.close(), this.#msi.close()]);
      await rm(this.#dir, { recursive: true, force: true });
    })();
    return this.#stopping;
  }

  #writeFederatedToken(): string {
    const file = join(this.#dir, 'federated-token');
    writeFileSync(file, createFederatedToken(this.client, FEDERATED_TOKEN_SECONDS));
    return file;
  }

  #serve(req: IncomingMessage, res: ServerResponse, handler: Handler): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    this.#requests[url.pathname] = (this.#requests[url.pathname] ?? 0) + 1;

    handler(this, url, req, res).catch((err: Error) => {
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error', message: err.message });
      else res.destroy();
    });
  }
}

/** The public key of the certificate in a PEM that may also hold the private key. */
function certificateKeyOf(pemFile: string) {
  const pem = readFileSync(pemFile, 'utf8');
  const cert = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/);
  if (!cert) throw new Error(`no certificate in ${pemFile}`);
  return new X509Certificate(cert[0]).publicKey;
}
