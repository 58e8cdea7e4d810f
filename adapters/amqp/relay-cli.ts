// `npm run relay`: the outbox relay as its own process — Postgres (DATABASE_URL) to RabbitMQ (AMQP_URL), polling.
import knex from 'knex';
import { createRelay } from '../../lib/relay.js';
import { KnexOutbox, KnexUnitOfWork, tables } from '../knex/index.js';
import { AmqpBus } from './bus.js';
import { AmqpConnection } from './connection.js';
import { DEFAULT_EXCHANGES } from './topology.js';

const { DATABASE_URL, AMQP_URL, UCC_SCHEMA, UCC_PREFIX, RELAY_POLL_MS = '250', UCC_MANDATORY_EVENTS, UCC_EXCHANGES } = process.env;
if (!DATABASE_URL || !AMQP_URL) {
  console.error('Set DATABASE_URL (the outbox) and AMQP_URL (the broker), e.g. postgres://postgres@127.0.0.1:5432/test and amqp://guest:guest@127.0.0.1:5672');
  process.exit(2);
}
const db = knex({ client: 'pg', connection: DATABASE_URL, pool: { min: 1, max: 2 } });
const outbox = new KnexOutbox(new KnexUnitOfWork(db), tables({ schema: UCC_SCHEMA || undefined, prefix: UCC_PREFIX || undefined }).outbox);
const connection = new AmqpConnection(AMQP_URL);
// UCC_EXCHANGES=name gives exchanges name.events, name.jobs and name.dead (default usecasecore.*).
const exchanges = UCC_EXCHANGES ? { events: `${UCC_EXCHANGES}.events`, jobs: `${UCC_EXCHANGES}.jobs`, dead: `${UCC_EXCHANGES}.dead` } : DEFAULT_EXCHANGES;
const relay = createRelay(outbox, new AmqpBus(connection, { exchanges, mandatoryEvents: UCC_MANDATORY_EVENTS === '1' }));
relay.start(Number(RELAY_POLL_MS)); // another process committed the rows: nothing wakes this one, so it polls
console.log(`usecasecore relay: ${tables({ schema: UCC_SCHEMA || undefined, prefix: UCC_PREFIX || undefined }).outbox} → ${exchanges.events} at ${AMQP_URL.replace(/\/\/[^@]*@/, '//')}, polling every ${RELAY_POLL_MS} ms`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    await relay.stop();
    await connection.close();
    await db.destroy();
    process.exit(0);
  });
}
setInterval(() => undefined, 1 << 30); // keep the process alive until a signal (the relay's timer is unref'd)
