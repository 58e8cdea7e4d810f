// Probes: GET /health (the process is up) and GET /ready (the database answers and, with RabbitMQ, the broker
// connection is open and not blocked), for a load balancer or an orchestrator.
import express, { type Router } from 'express';
import type { Container } from 'inversify';
import type { Knex } from 'knex';
import { AmqpConnection } from '../../adapters/amqp/index.js';
import { problem } from '../../adapters/http/index.js';
import { KNEX } from '../../adapters/knex/index.js';
import { TOKENS } from '../../lib/core/index.js';
import type { MessageBus } from '../../lib/messaging/index.js';
import { sendReply } from './reply.js';

/** How long each readiness check may take before it counts as down. */
export const READY_TIMEOUT_MS = 2_000;

/** A check's verdict: `ok`, or why it is down. */
type Check = { readonly ok: true } | { readonly ok: false; readonly why: string };

/**
 * `GET /health` → 200 `{ status: 'ok' }` while the process serves HTTP. `GET /ready` → 200
 * `{ status: 'ready', checks }` when every dependency answers: the database (`SELECT 1` through the container's
 * knex; the memory backend is always ready) and, when the container binds RabbitMQ, the broker (the publishing
 * connection open — opened now if it is not — and not blocked by a resource alarm, `bus.state()`). Else 503
 * problem+json, kind `unavailable`, whose detail names what is down (`database: …; broker: …`).
 * @example app.use(probes(container));
 */
export function probes(container: Container): Router {
  const router = express.Router();
  const knex = container.isBound(KNEX) ? container.get<Knex>(KNEX) : undefined;
  const amqp = container.isBound(AmqpConnection) ? container.get(AmqpConnection) : undefined;
  const bus = container.isBound(TOKENS.MessageBus) ? container.get<MessageBus>(TOKENS.MessageBus) : undefined;

  const database = async (): Promise<Check> => {
    if (!knex) return { ok: true }; // in memory: up while the process is
    return within(knex.raw('SELECT 1').then(() => undefined));
  };
  const broker = async (): Promise<Check> => {
    const state = bus?.state?.();
    if (state?.blocked) return { ok: false, why: `blocked by the broker since ${state.since} (${state.reason})` };
    if (!amqp) return { ok: true }; // the in-process bus
    if (amqp.closed) return { ok: false, why: 'the connection is closed (shutting down)' };
    return within(amqp.model('publish').then(() => undefined));
  };

  router.get('/health', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });
  router.get('/ready', async (_req, res) => {
    const [db, mq] = await Promise.all([database(), broker()]);
    const checks = { database: db, broker: mq };
    const down = Object.entries(checks).flatMap(([name, check]) => (check.ok ? [] : [`${name}: ${check.why}`]));
    res.set('Cache-Control', 'no-store');
    if (down.length > 0) return sendReply(res, problem('unavailable', down.join('; ')));
    res.json({ status: 'ready', checks: { database: 'ok', broker: 'ok' } });
  });
  return router;
}

/** `ok` when `work` resolves within READY_TIMEOUT_MS; else why not (its error, or the time it took too long). */
async function within(work: Promise<void>): Promise<Check> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const inTime = await Promise.race([
      work.then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), READY_TIMEOUT_MS);
      }),
    ]);
    return inTime ? { ok: true } : { ok: false, why: `no answer within ${READY_TIMEOUT_MS} ms` };
  } catch (error) {
    return { ok: false, why: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}
