/**
 * The local stand-ins for Azure used by tests, benchmarks and the demo: certificates, an
 * Azure-like TLS redis-server, a token service for @azure/identity credentials, and a
 * helper that runs the compiled proxy as a child process.
 */
export { makeCertificates, type Certificates } from './certs.js';
export { freePort } from './free-port.js';
export {
  createSigningKey,
  decodeJwt,
  signAccessToken,
  signJwt,
  verifyJwt,
  type AccessTokenClaims,
  type AccessTokenInput,
  type DecodedJwt,
  type JwtClaims,
  type SigningKey,
} from './jwt.js';
export {
  startProxy,
  type LogLine,
  type ProxyProcess,
  type ProxyProcessOptions,
} from './proxy-process.js';
export {
  ADMIN_USER,
  startRedis,
  type RedisServer,
  type RedisServerOptions,
} from './redis-server.js';
export {
  startTokenService,
  type CredentialKind,
  type FailMode,
  type TokenService,
  type TokenServiceOptions,
} from './token-service.js';
