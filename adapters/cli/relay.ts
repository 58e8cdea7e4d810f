// `usecasecore relay`: the outbox relay as its own process (Postgres to RabbitMQ), with the audit sealer and optional
// retention.
import { createRelay } from '../../lib/messaging/relay.js';
import { retention, type Retention, type RetentionOptions } from '../../lib/ops/retention.js';
import { auditSealer, type AuditSealer } from '../../lib/audit/sealer.js';
import { AmqpBus } from '../amqp/bus.js';
import { AmqpConnection } from '../amqp/connection.js';
import {
  DEFAULT_DELIVERY_LIMIT,
  DEFAULT_EXCHANGES,
  isQueueType,
  type Exchanges,
  type QueueType,
} from '../amqp/topology.js';
import { KnexAuditStore } from '../knex/audit-store.js';
import { KnexIdempotencyStore } from '../knex/idempotency-store.js';
import { KnexInbox } from '../knex/inbox.js';
import { KnexJobStore } from '../knex/job-store.js';
import { KnexOutbox } from '../knex/outbox.js';
import { KnexProcessStore } from '../knex/process-store.js';
import { KnexUnitOfWork } from '../knex/unit-of-work.js';
import { EXIT, UsageError, formatDuration, redact, type Command, type Invocation } from './common.js';

/**
 * The `relay` command.
 * @example usecasecore relay --amqp-url amqp://guest:guest@127.0.0.1:5672 --purge-sent-after 7d
 */
export const relayCommand: Command = {
  name: 'relay',
  summary: 'publish outbox rows to RabbitMQ and seal audit records until SIGTERM/SIGINT, with optional retention',
  usage: '[--amqp-url <url>] [--poll <duration>] [--purge-sent-after <duration>] … [options]',
  help: `Polls the outbox for committed rows and publishes them to RabbitMQ with confirms (rows another process
committed: nothing wakes this one). Connects to the database and the broker first, then logs one line when it starts;
publish failures go to stderr (at most one line a minute: it retries by itself). On SIGTERM or SIGINT it finishes the
batch under way (waiting 10s at most: rows it claimed are published again once their claim runs out), closes the
broker connection and the database pool, and exits 0; a second signal exits 1 at once.

Options:
  --amqp-url <url>                 the broker (default: $AMQP_URL)
  --exchanges <name>               exchanges <name>.events, <name>.jobs, <name>.dead (default: $UCC_EXCHANGES,
                                   else usecasecore)
  --poll <duration>                time between polls (default: $RELAY_POLL_MS in ms, else 250ms)
  --mandatory-events               park events no queue takes (default: $UCC_MANDATORY_EVENTS=1; jobs always are)
  --queue-type <quorum|classic>    the type of the job queues it declares, as your amqpModule({ queueType })
                                   (default: $UCC_QUEUE_TYPE, else quorum)
  --delivery-limit <n>             quorum job queues' delivery limit, as your amqpModule({ deliveryLimit })
                                   (default: $UCC_DELIVERY_LIMIT, else 20)
Audit sealing (on by default: appends commit unchained, the sealer chains them into each tenant's hash chain):
  --audit-seal-every <duration>    time between seals (default 200ms: a record is sealed well within 1s)
  --no-audit-seal                  do not seal here: another process must (a relay, or auditSealer()); several
                                   sealers are safe, they take turns
Retention, so no other process is needed (each off unless given):
  --purge-sent-after <duration>    delete outbox rows sent longer ago than this, e.g. 7d
  --purge-inbox-after <duration>   forget inbox records older than this, e.g. 30d
  --reap-idempotency               delete expired idempotency records
  --purge-jobs-after <duration>    delete the records of jobs settled longer ago than this, e.g. 30d
  --purge-processes-after <duration>
                                   delete processes that ended completed or compensated longer ago than this,
                                   e.g. 90d (running and failed ones stay)
  --retention-every <duration>     how often retention runs (default 1h; it also runs at start)

Exit codes: 0 stopped by a signal, 1 it could not start (database or broker unreachable, tables missing) or a
second signal cut the shutdown short, 2 bad usage.`,
  options: {
    'amqp-url': { type: 'string' },
    exchanges: { type: 'string' },
    poll: { type: 'string' },
    'mandatory-events': { type: 'boolean' },
    'queue-type': { type: 'string' },
    'delivery-limit': { type: 'string' },
    'audit-seal-every': { type: 'string' },
    'no-audit-seal': { type: 'boolean' },
    'purge-sent-after': { type: 'string' },
    'purge-inbox-after': { type: 'string' },
    'reap-idempotency': { type: 'boolean' },
    'purge-jobs-after': { type: 'string' },
    'purge-processes-after': { type: 'string' },
    'retention-every': { type: 'string' },
  },
  async run(cli) {
    const config = relayConfig(cli); // bad usage first (exit 2), before anything is opened
    const opened = await open(cli, config);
    if (!opened) return EXIT.problem;
    const { uow, outbox, connection } = opened;
    const stopped = firstSignal(cli);
    const { exchanges, mandatoryEvents, queueType, deliveryLimit } = config;
    const bus = new AmqpBus(connection, { exchanges, mandatoryEvents, queueType, deliveryLimit });
    const relay = createRelay(outbox, bus, {
      onError: rateLimited((line) => cli.err(`usecasecore relay: publishing failed: ${line}`)),
    });
    relay.start(config.pollMs);
    const cleanup = config.retention && startRetention(cli, uow, config.retention);
    const sealer = config.sealEveryMs === undefined ? undefined : startSealer(cli, uow, config.sealEveryMs);
    printStarted(cli, config);
    const alive = setInterval(() => undefined, 1 << 30); // the relay's and retention's timers are unref'd
    const signal = await stopped;
    clearInterval(alive);
    // Claimed rows left behind stay leased and are claimed again when the lease runs out: nothing is lost.
    const finished = await within(STOP_DEADLINE_MS, Promise.all([relay.stop(), cleanup?.stop(), sealer?.stop()]));
    if (!finished) {
      cli.err(
        `usecasecore relay: the batch under way did not finish within ${formatDuration(STOP_DEADLINE_MS)}: closing ` +
          'anyway (its rows are published again once their claim runs out)',
      );
      setTimeout(() => process.exit(EXIT.problem), STOP_DEADLINE_MS).unref(); // never hang on a pool still in use
    }
    await within(STOP_DEADLINE_MS, connection.close());
    if (!cli.json) cli.out(`usecasecore relay: ${signal}, stopped`);
    return EXIT.ok;
  },
};

/** What the flags and the environment ask the relay for, checked before anything is opened. */
interface RelayConfig {
  readonly amqpUrl: string;
  readonly pollMs: number;
  readonly exchanges: Exchanges;
  readonly mandatoryEvents: boolean;
  readonly queueType: QueueType;
  readonly deliveryLimit: number;
  readonly retention: (RetentionOptions & { description: string }) | undefined;
  readonly sealEveryMs: number | undefined;
}

function relayConfig(cli: Invocation): RelayConfig {
  const amqpUrl = cli.string('amqp-url') ?? cli.env.AMQP_URL;
  if (!amqpUrl) throw new UsageError('Set AMQP_URL or pass --amqp-url (e.g. amqp://guest:guest@127.0.0.1:5672)');
  const name = cli.string('exchanges') ?? (cli.env.UCC_EXCHANGES || undefined);
  const queueType = cli.string('queue-type') ?? (cli.env.UCC_QUEUE_TYPE || 'quorum');
  if (!isQueueType(queueType))
    throw new UsageError(`--queue-type must be quorum or classic (as amqpModule's queueType), got ${queueType}`);
  return {
    amqpUrl,
    pollMs: cli.duration('poll') ?? pollFromEnv(cli.env.RELAY_POLL_MS),
    exchanges: name ? { events: `${name}.events`, jobs: `${name}.jobs`, dead: `${name}.dead` } : DEFAULT_EXCHANGES,
    mandatoryEvents: cli.flag('mandatory-events') || cli.env.UCC_MANDATORY_EVENTS === '1',
    queueType,
    deliveryLimit: deliveryLimitOf(cli),
    retention: retentionOf(cli),
    sealEveryMs: sealEveryOf(cli),
  };
}

/**
 * The outbox and the broker connection, each tried once so a missing table or an unreachable broker fails now, with
 * the fix, rather than after "started"; undefined (said on stderr) when the broker does not answer.
 */
async function open(cli: Invocation, config: RelayConfig) {
  const uow = new KnexUnitOfWork(cli.db({ min: 1, max: 3 }));
  const outbox = new KnexOutbox(uow, cli.tables.outbox);
  await outbox.pending(); // throws, with the fix, when the database or the tables are missing
  const connection = new AmqpConnection(config.amqpUrl);
  try {
    await connection.model();
  } catch (error) {
    await connection.close();
    cli.err(
      `usecasecore relay: cannot connect to RabbitMQ at ${redact(config.amqpUrl)} (${(error as Error).message}) — ` +
        'check --amqp-url or AMQP_URL (host, port, user, password, vhost), and that the broker is up',
    );
    return undefined;
  }
  return { uow, outbox, connection };
}

/** The one line a started relay prints (and its fields, with --json). */
function printStarted(cli: Invocation, config: RelayConfig): void {
  const started = {
    outbox: cli.tables.outbox,
    exchange: config.exchanges.events,
    broker: redact(config.amqpUrl),
    pollMs: config.pollMs,
  };
  const sealing =
    config.sealEveryMs === undefined ? null : `sealing ${cli.tables.audit} every ${formatDuration(config.sealEveryMs)}`;
  cli.print(
    `usecasecore relay: ${started.outbox} → ${started.exchange} at ${started.broker}, polling every ` +
      `${formatDuration(config.pollMs)}${sealing ? `, ${sealing}` : ''}` +
      `${config.retention ? `, ${config.retention.description}` : ''}`,
    { started, sealing, retention: config.retention?.description ?? null },
  );
}

/** How long a shutdown waits for the batch (and retention purge) under way. */
const STOP_DEADLINE_MS = 10_000;
/** At most one line per this long about publish failures. */
const FAILURE_LOG_EVERY_MS = 60_000;

/** The first SIGINT or SIGTERM; a second one ends the process at once (exit 1). */
function firstSignal(cli: Invocation): Promise<NodeJS.Signals> {
  let first: NodeJS.Signals | undefined;
  return new Promise((resolve) => {
    // One listener for the process' life: swapping listeners would lose a signal that arrives with the first.
    const listener = (signal: NodeJS.Signals) => {
      if (first === undefined) {
        first = signal;
        cli.err(`usecasecore relay: ${signal}, stopping (again to exit at once)`);
        resolve(signal);
        return;
      }
      cli.err(`usecasecore relay: ${signal} again, exiting now (claimed rows are published again after their lease)`);
      process.exit(EXIT.problem);
    };
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, listener);
  });
}

/** True when `work` settled within `ms`, false when the time ran out first (`work` goes on, unawaited). */
async function within(ms: number, work: Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const done = work.then(
    () => true,
    () => true,
  );
  try {
    return await Promise.race([done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * An onError that prints the first failure at once, then at most one line per minute with how many failed since,
 * so an outage (the relay retries every few seconds) does not flood the log.
 */
function rateLimited(print: (line: string) => void): (error: unknown) => void {
  let lastAt = -Infinity,
    unreported = 0;
  return (error) => {
    unreported++;
    if (Date.now() - lastAt < FAILURE_LOG_EVERY_MS) return;
    const more = unreported > 1 ? ` (${unreported} failures since the last report)` : '';
    print(`${(error as Error | undefined)?.message ?? String(error)}${more} — retrying with backoff`);
    lastAt = Date.now();
    unreported = 0;
  };
}

/** The delivery limit job queues are declared with: it must be the one amqpModule declares them with, or they clash. */
function deliveryLimitOf(cli: Invocation): number {
  const given = cli.string('delivery-limit') ?? (cli.env.UCC_DELIVERY_LIMIT || undefined);
  if (given === undefined) return DEFAULT_DELIVERY_LIMIT;
  const limit = Number(given);
  if (!Number.isInteger(limit) || limit < 1)
    throw new UsageError(`--delivery-limit must be a whole number ≥ 1 (as amqpModule's deliveryLimit), got ${given}`);
  return limit;
}

function pollFromEnv(value: string | undefined): number {
  if (value === undefined || value === '') return 250;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms <= 0) {
    throw new UsageError(`RELAY_POLL_MS must be a whole number of ms, got "${value}" — or pass --poll 250ms`);
  }
  return ms;
}

/** Starts the audit sealer on its timer, and seals once now (what committed while no relay ran). */
function startSealer(cli: Invocation, uow: KnexUnitOfWork, everyMs: number): AuditSealer {
  const onError = rateLimited((line) => cli.err(`usecasecore relay: sealing audit records failed: ${line}`));
  const sealer = auditSealer(new KnexAuditStore(uow, cli.tables.audit, cli.tables.auditHeads), { everyMs, onError });
  void sealer.sealOnce().catch(onError);
  return sealer;
}

/** The audit sealer's period, or undefined with --no-audit-seal. */
function sealEveryOf(cli: Invocation): number | undefined {
  const everyMs = cli.duration('audit-seal-every');
  if (cli.flag('no-audit-seal')) {
    if (everyMs !== undefined) throw new UsageError('--audit-seal-every and --no-audit-seal contradict: give one');
    return undefined;
  }
  if (everyMs === 0) throw new UsageError('--audit-seal-every must be more than 0 (or pass --no-audit-seal)');
  return everyMs ?? 200;
}

/** The retention flags: each one's option and how `relay` describes it. */
const RETENTION_FLAGS = [
  ['purge-sent-after', 'outboxSentMs', 'sent rows kept'],
  ['purge-inbox-after', 'inboxMs', 'inbox kept'],
  ['purge-jobs-after', 'jobsMs', 'settled jobs kept'],
  ['purge-processes-after', 'processesMs', 'ended processes kept'],
] as const;

/** The retention the flags ask for, checked (bad usage throws) but not started; undefined when none is. */
function retentionOf(cli: Invocation): (RetentionOptions & { description: string }) | undefined {
  const idempotency = cli.flag('reap-idempotency'),
    everyMs = cli.duration('retention-every') ?? 3_600_000;
  const given = RETENTION_FLAGS.flatMap(([flag, option, kept]) => {
    const ms = cli.duration(flag);
    return ms === undefined ? [] : [{ option, ms, description: `${kept} ${formatDuration(ms)}` }];
  });
  if (given.length === 0 && !idempotency) {
    if (cli.string('retention-every') !== undefined) {
      const flags = RETENTION_FLAGS.map(([flag]) => `--${flag}`).join(', ');
      throw new UsageError(`--retention-every needs one of ${flags} or --reap-idempotency`);
    }
    return undefined;
  }
  const parts = [...given.map((g) => g.description), ...(idempotency ? ['idempotency reaped'] : [])];
  return {
    ...Object.fromEntries(given.map((g) => [g.option, g.ms])),
    idempotency,
    everyMs,
    onError: (error: unknown) => cli.err(`usecasecore relay: retention failed: ${String(error)}`),
    description: `retention every ${formatDuration(everyMs)}: ${parts.join(', ')}`,
  };
}

/** Starts retention on its timer, and runs it once now (the same guard: runs never overlap). */
function startRetention(cli: Invocation, uow: KnexUnitOfWork, options: RetentionOptions): Retention {
  const running = retention(
    {
      outbox: new KnexOutbox(uow, cli.tables.outbox),
      inbox: new KnexInbox(uow, cli.tables.inbox),
      idempotency: new KnexIdempotencyStore(uow, cli.tables.idempotency),
      jobs: new KnexJobStore(uow, cli.tables.jobs),
      processes: new KnexProcessStore(uow, cli.tables),
    },
    options,
  );
  void running.runOnce().catch((error: unknown) => options.onError?.(error));
  return running;
}
