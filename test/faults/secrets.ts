/**
 * Secrets a proxy run must never reveal, and a search for them. The token
 * service keeps only each token's oid and expiry; `recordIssuedTokens`
 * wraps its `issue` method (which both of its endpoints call for every token
 * they hand out) so that a test knows every token value the proxy received.
 */
import type { TokenService } from '../../testbed/index.js';

type Issue = (audience: string, appId: string) => Promise<{ token: string; exp: number }>;

/** Every access token issued from now on, in order. */
export function recordIssuedTokens(sts: TokenService): string[] {
  const service = sts as unknown as { issue: Issue };
  if (typeof service.issue !== 'function') {
    throw new Error('the token service has no issue() method to record tokens from');
  }
  const original = service.issue.bind(sts);
  const tokens: string[] = [];
  service.issue = async (audience, appId) => {
    const issued = await original(audience, appId);
    tokens.push(issued.token);
    return issued;
  };
  return tokens;
}

/** A JWT's three base64url parts, the usual shape of a leaked token. */
export const JWT_PATTERN = /eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}/;

/**
 * Where in `text` any of the secrets shows up, as readable findings (empty
 * when none). A token is searched whole and by its signature alone, which is
 * what would be left of it in a truncated line.
 */
export function findSecrets(
  text: string,
  secrets: { tokens?: readonly string[]; others?: Record<string, string> },
): string[] {
  const findings: string[] = [];
  const around = (at: number) => JSON.stringify(text.slice(Math.max(0, at - 60), at + 60));
  (secrets.tokens ?? []).forEach((token, i) => {
    const signature = token.split('.')[2] ?? token;
    for (const [what, needle] of [
      ['token', token],
      ['token signature', signature],
    ] as const) {
      const at = text.indexOf(needle);
      if (at >= 0) findings.push(`${what} #${i} at ${around(at)}`);
    }
  });
  for (const [what, needle] of Object.entries(secrets.others ?? {})) {
    const at = text.indexOf(needle);
    if (at >= 0) findings.push(`${what} at ${around(at)}`);
  }
  const jwt = JWT_PATTERN.exec(text);
  if (jwt !== null) findings.push(`a JWT at ${around(jwt.index)}`);
  return findings;
}

/** True for text that carries a JavaScript stack trace. */
export function hasStackTrace(text: string): boolean {
  return /\n\s+at |\bat [^\s]+ \(?(file|node):[^\s)]+:\d+:\d+\)?/.test(text);
}
