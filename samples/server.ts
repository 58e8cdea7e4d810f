// `npm start`: serves the sample on PORT (default 3000) and shuts down cleanly on SIGINT/SIGTERM.
import type { AddressInfo } from 'node:net';
import { TOKENS, auditSealer, retention, type RunningRelay } from '../lib/index.js';
import { createApp, createHttpServer } from './app.js';
import { backendFromEnv } from './backend.js';

const SHUTDOWN_GRACE_MS = 5_000;
const HOUR = 3_600_000,
  DAY = 24 * HOUR;

const port = Number(process.env.PORT ?? 3000);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  console.error(`PORT must be a port number (0–65535), got "${process.env.PORT}"`);
  process.exit(1);
}

const backend = await backendFromEnv(process.env);
const { app, container } = createApp(backend.container);
const relay = container.get<RunningRelay>(TOKENS.Relay);
relay.start(1_000); // woken after every commit; the poll also picks up rows an earlier run left unsent
// Sent events kept a week (to look into), inbox records a month (longer than any redelivery), hourly.
const cleanup = retention(container, { outboxSentMs: 7 * DAY, inboxMs: 30 * DAY, idempotency: true, everyMs: HOUR });
// Audit records commit unchained; the sealer chains them into each tenant's hash chain within a second.
const sealer = auditSealer(container, { everyMs: 200 });
const server = createHttpServer(app);
server.listen(port, () => {
  const { port: bound } = server.address() as AddressInfo;
  console.log(`usecasecore sample on http://localhost:${bound} — ${backend.description}`);
});

/** Stops accepting connections, lets committed events leave, then lets the process end on its own. */
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  console.log(`${signal} received, shutting down`);
  setTimeout(() => process.exit(1), SHUTDOWN_GRACE_MS).unref();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  await closed;
  await relay.drain(SHUTDOWN_GRACE_MS / 2).catch((error: unknown) => console.error(error));
  await cleanup.stop();
  await sealer.stop();
  await relay.stop();
  await backend.close();
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, (received) => void shutdown(received));
