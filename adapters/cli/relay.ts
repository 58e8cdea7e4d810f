// `usecasecore relay`: the outbox relay as its own process (Postgres to RabbitMQ), with optional retention.
import { createRelay } from '../../lib/relay.js';
import { retention, type Retention } from '../../lib/retention.js';
import { AmqpBus } from '../amqp/bus.js';
import { AmqpConnection } from '../amqp/connection.js';
import { DEFAULT_EXCHANGES } from '../amqp/topology.js';
import { KnexIdempotencyStore } from '../knex/idempotency-store.js';
import { KnexInbox } from '../knex/inbox.js';
import { KnexOutbox } from '../knex/outbox.js';
import { KnexUnitOfWork } from '../knex/unit-of-work.js';
import { EXIT, UsageError, formatDuration, redact, type Command, type Invocation } from './common.js';

/**
 * The `relay` command.
 * @example usecasecore relay --amqp-url amqp://guest:guest@127.0.0.1:5672 --purge-sent-after 7d
 */
export const relayCommand: Command = {
  name: 'relay',
  summary: 'publish outbox rows to RabbitMQ until SIGTERM/SIGINT, optionally running retention',
  usage: '[--amqp-url <url>] [--poll <duration>] [--purge-sent-after <duration>] … [options]',
  help: `Polls the outbox for committed rows and publishes them to RabbitMQ with confirms (rows another process
committed: nothing wakes this one). Logs one line when it starts; on SIGTERM or SIGINT it finishes the batch under
way, closes the broker connection and the database pool, and exits 0.

Options:
  --amqp-url <url>                 the broker (default: $AMQP_URL)
  --exchanges <name>               exchanges <name>.events, <name>.jobs, <name>.dead (default: $UCC_EXCHANGES,
                                   else usecasecore)
  --poll <duration>                time between polls (default: $RELAY_POLL_MS in ms, else 250ms)
  --mandatory-events               park events no queue takes (default: $UCC_MANDATORY_EVENTS=1; jobs always are)
Retention, so no other process is needed (each off unless given):
  --purge-sent-after <duration>    delete outbox rows sent longer ago than this, e.g. 7d
  --purge-inbox-after <duration>   forget inbox records older than this, e.g. 30d
  --reap-idempotency               delete expired idempotency records
  --retention-every <duration>     how often retention runs (default 1h; it also runs at start)

Exit codes: 0 stopped by a signal, 1 it could not start (database unreachable, tables missing), 2 bad usage.`,
  options: {
    'amqp-url': { type: 'string' },
    exchanges: { type: 'string' },
    poll: { type: 'string' },
    'mandatory-events': { type: 'boolean' },
    'purge-sent-after': { type: 'string' },
    'purge-inbox-after': { type: 'string' },
    'reap-idempotency': { type: 'boolean' },
    'retention-every': { type: 'string' },
  },
  async run(cli) {
    const amqpUrl = cli.string('amqp-url') ?? cli.env.AMQP_URL;
    if (!amqpUrl) throw new UsageError('Set AMQP_URL or pass --amqp-url (e.g. amqp://guest:guest@127.0.0.1:5672)');
    const pollMs = cli.duration('poll') ?? pollFromEnv(cli.env.RELAY_POLL_MS);
    const name = cli.string('exchanges') ?? (cli.env.UCC_EXCHANGES || undefined);
    const exchanges = name
      ? { events: `${name}.events`, jobs: `${name}.jobs`, dead: `${name}.dead` }
      : DEFAULT_EXCHANGES;
    const mandatoryEvents = cli.flag('mandatory-events') || cli.env.UCC_MANDATORY_EVENTS === '1';
    const uow = new KnexUnitOfWork(cli.db({ min: 1, max: 2 }));
    const outbox = new KnexOutbox(uow, cli.tables.outbox);
    await outbox.pending(); // fail now, with the fix, when the database or the tables are missing
    const cleanup = retentionOf(cli, uow);
    const stopped = new Promise<NodeJS.Signals>((resolve) => {
      for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, resolve);
    });
    const connection = new AmqpConnection(amqpUrl);
    const relay = createRelay(outbox, new AmqpBus(connection, { exchanges, mandatoryEvents }));
    relay.start(pollMs);
    const started = { outbox: cli.tables.outbox, exchange: exchanges.events, broker: redact(amqpUrl), pollMs };
    cli.print(
      `usecasecore relay: ${started.outbox} → ${started.exchange} at ${started.broker}, polling every ` +
        `${formatDuration(pollMs)}${cleanup ? `, ${cleanup.description}` : ''}`,
      { started, retention: cleanup?.description ?? null },
    );
    const alive = setInterval(() => undefined, 1 << 30); // the relay's and retention's timers are unref'd
    const signal = await stopped;
    clearInterval(alive);
    cleanup?.retention.stop();
    await relay.stop();
    await connection.close();
    if (!cli.json) cli.out(`usecasecore relay: ${signal}, stopped`);
    return EXIT.ok;
  },
};

function pollFromEnv(value: string | undefined): number {
  if (value === undefined || value === '') return 250;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms <= 0) {
    throw new UsageError(`RELAY_POLL_MS must be a whole number of ms, got "${value}" — or pass --poll 250ms`);
  }
  return ms;
}

/** The retention the flags ask for (run once now, then on its timer), or undefined. */
function retentionOf(cli: Invocation, uow: KnexUnitOfWork): { retention: Retention; description: string } | undefined {
  const outboxSentMs = cli.duration('purge-sent-after'),
    inboxMs = cli.duration('purge-inbox-after');
  const idempotency = cli.flag('reap-idempotency'),
    everyMs = cli.duration('retention-every') ?? 3_600_000;
  if (outboxSentMs === undefined && inboxMs === undefined && !idempotency) {
    if (cli.string('retention-every') !== undefined) {
      throw new UsageError('--retention-every needs --purge-sent-after, --purge-inbox-after or --reap-idempotency');
    }
    return undefined;
  }
  const onError = (error: unknown) => cli.err(`usecasecore relay: retention failed: ${String(error)}`);
  const running = retention(
    {
      outbox: new KnexOutbox(uow, cli.tables.outbox),
      inbox: new KnexInbox(uow, cli.tables.inbox),
      idempotency: new KnexIdempotencyStore(uow, cli.tables.idempotency),
    },
    {
      ...(outboxSentMs === undefined ? {} : { outboxSentMs }),
      ...(inboxMs === undefined ? {} : { inboxMs }),
      idempotency,
      everyMs,
      onError,
    },
  );
  void running.runOnce().catch(onError);
  const parts = [
    ...(outboxSentMs === undefined ? [] : [`sent rows kept ${formatDuration(outboxSentMs)}`]),
    ...(inboxMs === undefined ? [] : [`inbox kept ${formatDuration(inboxMs)}`]),
    ...(idempotency ? ['idempotency reaped'] : []),
  ];
  return { retention: running, description: `retention every ${formatDuration(everyMs)}: ${parts.join(', ')}` };
}
