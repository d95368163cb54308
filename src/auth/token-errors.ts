/**
 * One line explaining why a token request failed, for logs and for the
 * error reply a client gets. @azure/identity errors carry multi-line messages
 * with troubleshooting links and trace ids; the identity service's own reason
 * (for example "AADSTS7000215: Invalid client secret provided.") is what an
 * operator needs. Secrets never appear in these messages, but the text is
 * still cut to one short line.
 */
export function describeTokenError(err: unknown): string {
  if (!(err instanceof Error)) return `token request failed: ${String(err)}`;
  const response = (err as { errorResponse?: { errorDescription?: string; error?: string } })
    .errorResponse;
  const aadReason = /AADSTS\d+:[^\r\n]*?(?=\s*Trace ID|\r|\n|$)/.exec(
    response?.errorDescription ?? err.message,
  );
  const name = err.name === 'Error' ? '' : `${err.name}: `;
  const text = aadReason?.[0] ?? firstLine(err.message);
  return shorten(`${name}${text}`);
}

function firstLine(text: string): string {
  return (
    text
      .split(/\r?\n/)
      .map((s) => s.trim())
      .find((s) => s !== '') ?? 'unknown error'
  );
}

function shorten(text: string): string {
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}
