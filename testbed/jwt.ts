/**
 * JSON Web Tokens as the testbed issues and checks them: RS256 access tokens shaped like
 * Entra ID's, and verification of the RS256/PS256 assertions that credentials send.
 */
import {
  createHash,
  constants,
  generateKeyPairSync,
  randomUUID,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';

export interface SigningKey {
  /** Key id, sent in the `kid` header and published in the JWKS. */
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export type JwtClaims = Record<string, unknown>;

export interface DecodedJwt {
  header: Record<string, unknown>;
  payload: JwtClaims;
}

/** Claims of an access token, as far as the proxy and the tests look at them. */
export interface AccessTokenClaims extends JwtClaims {
  aud: string;
  iss: string;
  /** Object id of the identity; Azure Cache uses it as the Redis user name. */
  oid: string;
  sub: string;
  tid: string;
  appid: string;
  iat: number;
  nbf: number;
  /** Expiry, whole seconds since the epoch. */
  exp: number;
}

export interface AccessTokenInput {
  issuer: string;
  audience: string;
  tenantId: string;
  clientId: string;
  /** Defaults to a fresh UUID. */
  oid?: string;
  lifetimeSeconds: number;
}

export function createSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const kid = createHash('sha256').update(der).digest('base64url').slice(0, 16);

  return { kid, privateKey, publicKey };
}

export function signJwt(claims: JwtClaims, key: SigningKey): string {
  const header = { alg: 'RS256', typ: 'JWT', kid: key.kid };
  const signed = `${encodePart(header)}.${encodePart(claims)}`;
  const signature = sign('sha256', Buffer.from(signed), key.privateKey);

  return `${signed}.${signature.toString('base64url')}`;
}

/**
 * Signs an access token. `exp` is rounded up to the next whole second so that a token
 * never lives shorter than asked, which matters for lifetimes of a few seconds.
 */
export function signAccessToken(
  input: AccessTokenInput,
  key: SigningKey,
): { token: string; claims: AccessTokenClaims } {
  const now = Date.now() / 1000;
  const iat = Math.floor(now);
  const oid = input.oid ?? randomUUID();
  const claims: AccessTokenClaims = {
    aud: input.audience,
    iss: input.issuer,
    oid,
    sub: oid,
    tid: input.tenantId,
    appid: input.clientId,
    idtyp: 'app',
    ver: '1.0',
    uti: randomUUID(),
    iat,
    nbf: iat,
    exp: Math.ceil(now + input.lifetimeSeconds),
  };

  return { token: signJwt(claims, key), claims };
}

/** Splits and parses a JWT without checking anything; throws on malformed input. */
export function decodeJwt(token: string): DecodedJwt {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error('a JWT has three dot-separated parts');

  return {
    header: decodePart(parts[0]),
    payload: decodePart(parts[1]),
  };
}

/**
 * Checks the signature of an RS256 or PS256 JWT and returns its payload, or undefined
 * when the signature or the algorithm is not acceptable. Claims are the caller's business.
 * PS256 matters because MSAL signs client assertions with it when it has a SHA-256
 * thumbprint of the certificate.
 */
export function verifyJwt(token: string, publicKey: KeyObject): JwtClaims | undefined {
  let decoded: DecodedJwt;
  try {
    decoded = decodeJwt(token);
  } catch {
    return undefined;
  }

  const [head, body, signature] = token.split('.') as [string, string, string];
  const data = Buffer.from(`${head}.${body}`);
  const sig = Buffer.from(signature, 'base64url');

  if (decoded.header.alg === 'RS256') {
    return verify('sha256', data, publicKey, sig) ? decoded.payload : undefined;
  }

  if (decoded.header.alg === 'PS256') {
    const key = {
      key: publicKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: constants.RSA_PSS_SALTLEN_AUTO,
    };
    return verify('sha256', data, key, sig) ? decoded.payload : undefined;
  }

  return undefined;
}

function encodePart(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function decodePart(part: string): Record<string, unknown> {
  const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  if (typeof value !== 'object' || value === null) throw new Error('JWT part is not an object');
  return value as Record<string, unknown>;
}
