// Closing an HTTP server gracefully: stop accepting, answer what was received, end keep-alive connections, and cut
// what is still open after a grace period.
import type { Server, ServerResponse } from 'node:http';

/** What a graceful close did. */
export interface HttpClosed {
  /** Requests still unanswered when the grace period ended, whose connections were cut. */
  readonly cut: number;
}

/**
 * Prepares `server` to close gracefully; call it right after creating the server (it watches every request).
 * The returned function stops accepting connections, answers the requests already received with
 * `Connection: close` (so a keep-alive client opens no more requests on that connection), closes idle connections
 * as soon as they become idle, and after `graceMs` cuts the connections still open (their sends run on: wait for
 * them before closing the database). It resolves once every connection is closed.
 * @example const close = gracefulClose(server); …; const { cut } = await close(5_000);
 */
export function gracefulClose(server: Server): (graceMs: number) => Promise<HttpClosed> {
  const open = new Set<ServerResponse>();
  let closing = false;
  // Prepended, so it runs before the app could answer synchronously (a 401 writes its headers at once).
  server.prependListener('request', (_req, res: ServerResponse) => {
    open.add(res);
    if (closing) res.setHeader('Connection', 'close'); // a request that came in on a keep-alive connection
    res.once('close', () => {
      open.delete(res);
      if (closing) server.closeIdleConnections(); // its connection is idle now: do not wait for keepAliveTimeout
    });
  });
  return async (graceMs) => {
    closing = true;
    for (const res of open) if (!res.headersSent) res.setHeader('Connection', 'close');
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([
      closed.then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (inTime) return { cut: 0 };
    const cut = open.size;
    server.closeAllConnections();
    await closed;
    return { cut };
  };
}
