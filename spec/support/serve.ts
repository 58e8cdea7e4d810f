// An HTTP app (Express or a plain request listener) served on a free port for a spec, and closed with its sockets.
import { once } from 'node:events';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Serves `app` on 127.0.0.1 at a free port: its base URL, and `close()`, which also ends kept-alive sockets. */
export async function serve(app: RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(app).listen(0);
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
