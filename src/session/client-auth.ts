import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * How the proxy answers the AUTH and HELLO ... AUTH that applications send.
 * The application's credentials are checked here (or accepted blindly when no
 * --client-password is set) and never forwarded: the upstream connection is
 * already authenticated with the proxy's token.
 */

export const WRONGPASS = '-WRONGPASS invalid username-password pair or user is disabled.\r\n';
export const NOAUTH = '-NOAUTH Authentication required.\r\n';
export const HELLO_NOAUTH =
  '-NOAUTH HELLO must be called with the client already authenticated, otherwise the ' +
  'HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and ' +
  'select the RESP protocol version at the same time\r\n';

/** Compares in constant time: hashing first makes the lengths equal. */
export function passwordMatches(given: Buffer, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** Parsed `HELLO [protover [AUTH username password] [SETNAME clientname]]`. */
export interface Hello {
  protover?: number;
  password?: Buffer;
  setname?: Buffer;
  /** Arguments to forward: everything but the AUTH part. */
  forward: Buffer[];
  error?: string;
}

export function parseHello(args: readonly Buffer[]): Hello {
  const forward: Buffer[] = [args[0]];
  const hello: Hello = { forward };
  if (args.length === 1) return hello;

  const version = Number(args[1].toString('latin1'));
  if (!Number.isInteger(version)) {
    hello.error = '-ERR Protocol version is not an integer or out of range\r\n';
    return hello;
  }
  hello.protover = version;
  forward.push(args[1]);

  for (let i = 2; i < args.length; i++) {
    const option = args[i].toString('latin1').toUpperCase();
    if (option === 'AUTH' && i + 2 < args.length) {
      hello.password = args[i + 2];
      i += 2;
    } else if (option === 'SETNAME' && i + 1 < args.length) {
      hello.setname = args[i + 1];
      forward.push(args[i], args[i + 1]);
      i += 1;
    } else {
      hello.error = `-ERR Syntax error in HELLO option '${option.replace(/[\r\n]/g, '')}'\r\n`;
      return hello;
    }
  }
  return hello;
}
