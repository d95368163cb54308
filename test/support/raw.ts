import { connect } from 'node:net';

/**
 * Sends raw bytes and collects the reply text until `done` says so (by
 * default, until `lines` CRLF-terminated top-level replies look complete).
 */
export async function rawExchange(
  port: number,
  request: string,
  lines: number,
  done?: (text: string) => boolean,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`timed out; got ${JSON.stringify(text)}`));
    }, 5000);
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      const complete = done ? done(text) : countReplies(text) >= lines;
      if (complete) {
        clearTimeout(timer);
        socket.destroy();
        resolve(text);
      }
    });
    socket.on('error', reject);
    socket.write(request);
  });
}

function countReplies(text: string): number {
  let count = 0;
  let i = 0;
  while (i < text.length) {
    const lf = text.indexOf('\n', i);
    if (lf < 0) break;
    const type = text[i];
    if (type === '$') {
      const n = Number(text.slice(i + 1, lf - 1));
      i = n < 0 ? lf + 1 : lf + 1 + n + 2;
    } else {
      i = lf + 1;
    }
    if (i <= text.length) count++;
  }
  return count;
}
