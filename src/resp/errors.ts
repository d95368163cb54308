/**
 * ProtocolError is raised by the scanners when bytes cannot be RESP.
 * Its message reads like redis-server's own ("Protocol error: ..."), because
 * the client side sends it back verbatim as an error reply before closing.
 */
export class ProtocolError extends Error {
  readonly code = 'ERR_RESP_PROTOCOL';

  constructor(detail: string) {
    super(`Protocol error: ${detail}`);
    this.name = 'ProtocolError';
  }
}
