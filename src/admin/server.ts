import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

import type { ListenAddress } from '../config.js';
import type { Metrics } from './metrics.js';

/** What the admin server reads; it changes nothing but through `quit`. */
export interface AdminView {
  metrics: Metrics;
  /** Listening, not draining, and holding a valid token. */
  ready(): { ok: boolean; why: string };
  /** Opens (and closes) one authenticated upstream connection. */
  checkUpstream(): Promise<void>;
  /** Set when POST /quitquitquit is enabled. */
  quit?: () => void;
}

/**
 * The admin HTTP server: /livez (the process runs), /readyz (it can serve
 * clients: listening with a valid token), /upstreamz (the cache answers: a
 * separate probe, so an unreachable cache does not take pods out of service
 * unless the operator asks for it), /metrics, and POST /quitquitquit.
 */
export function startAdmin(
  address: ListenAddress,
  view: AdminView,
): Promise<{ server: Server; address: string }> {
  const server = createServer((req, res) => {
    route(req, res, view).catch((err: Error) => send(res, 500, `${err.message}\n`));
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new Error(`cannot listen on admin address: ${err.code ?? err.message}`));
    });
    const onListening = (): void => {
      const bound = server.address();
      const text =
        typeof bound === 'object' && bound !== null
          ? `${bound.address.includes(':') ? `[${bound.address}]` : bound.address}:${bound.port}`
          : String(bound);
      resolve({ server, address: text });
    };
    if (address.kind === 'unix') server.listen(address.path, onListening);
    else server.listen({ host: address.host, port: address.port }, onListening);
  });
}

async function route(req: IncomingMessage, res: ServerResponse, view: AdminView): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  switch (path) {
    case '/livez':
      send(res, 200, 'ok\n');
      return;
    case '/readyz': {
      const { ok, why } = view.ready();
      send(res, ok ? 200 : 503, `${why}\n`);
      return;
    }
    case '/upstreamz':
      try {
        await view.checkUpstream();
        send(res, 200, 'ok\n');
      } catch (err) {
        send(res, 503, `${(err as Error).message}\n`);
      }
      return;
    case '/metrics': {
      const body = await view.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': view.metrics.registry.contentType });
      res.end(body);
      return;
    }
    case '/quitquitquit':
      if (view.quit === undefined) {
        send(res, 404, 'not enabled (--enable-quitquitquit)\n');
      } else if (req.method !== 'POST') {
        send(res, 405, 'use POST\n');
      } else {
        send(res, 200, 'shutting down\n');
        view.quit();
      }
      return;
    default:
      send(res, 404, 'not found\n');
  }
}

function send(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(body);
}
