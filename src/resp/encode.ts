/** Encodes a command as a RESP multibulk of bulk strings. */
export function encodeCommand(args: ReadonlyArray<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`, 'latin1')];
  for (const arg of args) {
    const value = typeof arg === 'string' ? Buffer.from(arg, 'utf8') : arg;
    parts.push(Buffer.from(`$${value.length}\r\n`, 'latin1'), value, CRLF);
  }
  return Buffer.concat(parts);
}

/** An error reply; CR and LF in the message would break framing and are replaced. */
export function encodeError(message: string): Buffer {
  return Buffer.from(`-${message.replace(/[\r\n]+/g, ' ')}\r\n`, 'utf8');
}

export const CRLF = Buffer.from('\r\n', 'latin1');
export const OK = Buffer.from('+OK\r\n', 'latin1');
