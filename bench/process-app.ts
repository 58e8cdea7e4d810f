// The application of the process bench (bench/process.bench.ts): a three-step checkout declared with process(), a
// plain one-step job doing the same kind of write, an instant in-process payment provider, and one service wired as a
// production user wires it (knexModule + amqpModule, recommendedStack with the inbox, the module's relay started and
// woken after each commit, work() with its defaults). Every handler records when its transaction committed.
import { Container, inject, injectable } from 'inversify';
import type { Knex } from 'knex';
import * as v from 'valibot';
import { AmqpConnection, amqpModule, type Exchanges } from '../adapters/amqp/index.js';
import { KnexOutbox, KnexUnitOfWork, knexModule } from '../adapters/knex/index.js';
import {
  Command,
  TOKENS,
  createMediator,
  handles,
  ok,
  typeOf,
  type Context,
  type Handler,
  type Mediator,
  type RequestClass,
} from '../lib/core/index.js';
import { work } from '../lib/jobs/index.js';
import type { MessageSource, Outbox, OutboxMessage, RunningRelay } from '../lib/messaging/index.js';
import { ProcessStep, process, processes, step } from '../lib/processes/index.js';
import { everyone, recommendedStack } from '../middleware/index.js';
import { TimedOutbox } from './amqp-common.js';

// ---- commit times ------------------------------------------------------------------------------------------------

/** What committed: the three steps of a checkout, and the plain job. */
export const KINDS = ['reserve', 'charge', 'ship', 'job'] as const;
export type Kind = (typeof KINDS)[number];

/**
 * When each handler's transaction committed (`performance.now()`, by kind and seq), and who waits for it. Written by
 * `ctx.afterCommit` hooks: they run after COMMIT returned, in this process, with no polling. A step's command is a
 * nested send of the step job's send, so its hook runs after the outermost commit: the one that also saves the
 * process (for the last step: marks it `completed`, lib/processes/advance.ts `#end`) and stages the next step's job.
 */
export class Commits {
  readonly at: Record<Kind, number[]> = { reserve: [], charge: [], ship: [], job: [] };
  /** When each handler began (its last attempt): the job was delivered, taken, and its transaction begun. */
  readonly began: Record<Kind, number[]> = { reserve: [], charge: [], ship: [], job: [] };
  /** Handler runs begun and committed (a difference means attempts rolled back and retried). */
  runs = 0;
  commits = 0;
  /** Compensations run: none should (no step fails in this bench). */
  compensations = 0;
  readonly #waiting = new Map<string, Array<() => void>>();

  committed(kind: Kind, seq: number): void {
    this.at[kind][seq] = performance.now();
    this.commits++;
    const key = `${kind}:${seq}`;
    for (const resolve of this.#waiting.get(key) ?? []) resolve();
    this.#waiting.delete(key);
  }

  /** Resolves once `kind` of `seq` committed (at once if it has). */
  when(kind: Kind, seq: number): Promise<void> {
    if (this.at[kind][seq] !== undefined) return Promise.resolve();
    const key = `${kind}:${seq}`;
    return new Promise((resolve) => this.#waiting.set(key, [...(this.#waiting.get(key) ?? []), resolve]));
  }

  /** How many of seqs [from, to) of `kind` committed. */
  count(kind: Kind, from: number, to: number): number {
    let n = 0;
    for (let seq = from; seq < to; seq++) if (this.at[kind][seq] !== undefined) n++;
    return n;
  }
}

/**
 * When the broker confirmed each step job and plain job to the relay (`TimedOutbox`'s hooks: the relay calls
 * `markSent` right after the confirms of a batch), keyed by what the message runs: `<processId>:<step>` or
 * `job:<seq>`.
 */
export class Relayed {
  readonly confirmedAt = new Map<string, number>();
  readonly #keyOf = new Map<string, string>();

  added(messages: readonly OutboxMessage[]): void {
    for (const { id, type, payload } of messages) {
      const p = payload as { processId?: string; step?: number; phase?: string; seq?: number };
      if (type === typeOf(ProcessStep) && p.phase === 'run') this.#keyOf.set(id, `${p.processId}:${p.step}`);
      else if (type === typeOf(BenchJob)) this.#keyOf.set(id, `job:${p.seq}`);
    }
  }

  confirmed(ids: readonly string[], at: number): void {
    for (const id of ids) {
      const key = this.#keyOf.get(id);
      if (key === undefined) continue;
      this.confirmedAt.set(key, at);
      this.#keyOf.delete(id);
    }
  }
}

// ---- the steps' effects and the provider -------------------------------------------------------------------------

const EFFECTS = Symbol.for('bench.process.Effects');
const PROVIDER = Symbol.for('bench.process.Provider');
/** The bench's own table: one row per (kind, seq), primary key on both, so a step that ran twice would fail. */
export const EFFECTS_TABLE = 'bench_effects';

/** One small real write in the handler's transaction, and its commit time recorded. */
export class Effects {
  constructor(
    private readonly uow: KnexUnitOfWork,
    private readonly table: string,
    readonly commits: Commits,
  ) {}

  async write(kind: Kind, seq: number, ctx: Context): Promise<void> {
    this.commits.runs++;
    this.commits.began[kind][seq] = performance.now();
    await (await this.uow.db())(this.table).insert({ kind, seq });
    ctx.afterCommit(() => this.commits.committed(kind, seq));
  }
}

/** A payment provider that answers at once (in-process, no I/O): the bench measures the library, not a provider. */
export class InstantProvider {
  calls = 0;
  async charge(orderId: string, idempotencyKey: string | undefined): Promise<{ chargeId: string }> {
    this.calls++;
    return { chargeId: `ch-${orderId}-${idempotencyKey === undefined ? 'nokey' : 'keyed'}` };
  }
}

// ---- the checkout: reserve → charge → ship -----------------------------------------------------------------------

const order = { seq: v.number(), orderId: v.string() };
export class BenchReserve extends Command(v.object(order))<{ seq: number; orderId: string; reservationId: string }> {}
export class BenchRelease extends Command(v.object({ ...order, reservationId: v.string() }))<void> {}
export class BenchCharge extends Command(v.object({ ...order, reservationId: v.string() }))<{
  seq: number;
  orderId: string;
  chargeId: string;
}> {}
export class BenchRefund extends Command(v.object({ ...order, chargeId: v.string() }))<void> {}
export class BenchShip extends Command(v.object({ ...order, chargeId: v.string() }))<{ shipped: string }> {}

export const BenchCheckout = process('BenchCheckout', [
  step(BenchReserve, { compensate: BenchRelease }),
  step(BenchCharge, { compensate: BenchRefund }),
  step(BenchShip),
]);

@handles(BenchReserve)
@injectable()
class ReserveHandler implements Handler<BenchReserve> {
  constructor(@inject(EFFECTS) private readonly effects: Effects) {}
  async handle(cmd: BenchReserve, ctx: Context<BenchReserve>) {
    await this.effects.write('reserve', cmd.seq, ctx);
    return ok({ seq: cmd.seq, orderId: cmd.orderId, reservationId: `r-${cmd.orderId}` });
  }
}

@handles(BenchCharge)
@injectable()
class ChargeHandler implements Handler<BenchCharge> {
  constructor(
    @inject(EFFECTS) private readonly effects: Effects,
    @inject(PROVIDER) private readonly provider: InstantProvider,
  ) {}
  async handle(cmd: BenchCharge, ctx: Context<BenchCharge>) {
    // The step's key goes to the provider, as a real integration passes it to an API that honours idempotency keys.
    const { chargeId } = await this.provider.charge(cmd.orderId, ctx.meta.process?.key);
    await this.effects.write('charge', cmd.seq, ctx);
    return ok({ seq: cmd.seq, orderId: cmd.orderId, chargeId });
  }
}

@handles(BenchShip)
@injectable()
class ShipHandler implements Handler<BenchShip> {
  constructor(@inject(EFFECTS) private readonly effects: Effects) {}
  async handle(cmd: BenchShip, ctx: Context<BenchShip>) {
    await this.effects.write('ship', cmd.seq, ctx);
    return ok({ shipped: cmd.orderId });
  }
}

/** The compensations: declared as a real process declares them; counted, as none should run. */
function compensation<C extends RequestClass>(type: C) {
  @handles(type as never)
  @injectable()
  class Compensate {
    constructor(@inject(EFFECTS) private readonly effects: Effects) {}
    handle() {
      this.effects.commits.compensations++;
      return ok(undefined);
    }
  }
  return Compensate;
}

// ---- the plain job -----------------------------------------------------------------------------------------------

/** A one-step job doing what one step does: one INSERT in its own transaction. */
export class BenchJob extends Command(v.object({ seq: v.number() }))<void> {}
/** The client's send that enqueues it (as `send(BenchCheckout)` is the client's send that starts a process). */
export class EnqueueBenchJob extends Command(v.object({ seq: v.number() }))<{ jobId: string }> {}

@handles(BenchJob)
@injectable()
class BenchJobHandler implements Handler<BenchJob> {
  constructor(@inject(EFFECTS) private readonly effects: Effects) {}
  async handle(cmd: BenchJob, ctx: Context<BenchJob>) {
    await this.effects.write('job', cmd.seq, ctx);
    return ok(undefined);
  }
}

@handles(EnqueueBenchJob)
@injectable()
class EnqueueBenchJobHandler implements Handler<EnqueueBenchJob> {
  handle(cmd: EnqueueBenchJob, ctx: Context<EnqueueBenchJob>) {
    const { jobId } = ctx.enqueue(new BenchJob({ seq: cmd.seq }));
    return ok({ jobId });
  }
}

// ---- the service -------------------------------------------------------------------------------------------------

export interface AppOptions {
  readonly db: Knex;
  readonly schema: string;
  readonly url: string;
  readonly exchanges: Exchanges;
  /** The relay's poll interval (`relay.start(pollMs)`); it is also woken after each commit. */
  readonly pollMs: number;
  /** Deliveries in flight per job queue (`work()`'s prefetch); undefined: work()'s default. */
  readonly prefetch: number | undefined;
  /** Off: the relay hears no wake after commit and runs on its poll alone, as a relay in another process does. */
  readonly wake: boolean;
}

/** The running service, and how to stop it. */
export interface App {
  readonly mediator: Mediator;
  readonly commits: Commits;
  readonly relayed: Relayed;
  readonly provider: InstantProvider;
  /** The outbox the relay claims through, timed (claims, empty claims, rows per batch). */
  readonly outbox: TimedOutbox;
  readonly connection: AmqpConnection;
  readonly source: MessageSource;
  /** Every queue work() consumes, with its `.retry` and `.dead` (deleted at the end). */
  readonly queues: readonly string[];
  close(): Promise<void>;
}

const HANDLERS = [
  ReserveHandler,
  ChargeHandler,
  ShipHandler,
  compensation(BenchRelease),
  compensation(BenchRefund),
  BenchJobHandler,
  EnqueueBenchJobHandler,
];
const TYPES: RequestClass[] = [BenchCheckout, BenchReserve, BenchRelease, BenchCharge, BenchRefund, BenchShip];

/** The container: the library's modules on the bench's pool and topology, the effects and the provider bound. */
function containerOf(options: AppOptions, commits: Commits, relayed: Relayed, provider: InstantProvider) {
  const { db, schema, url, exchanges } = options;
  const container = new Container();
  container.load(
    knexModule({ knex: db, schema }),
    amqpModule({ url, exchanges, connectionName: `${exchanges.jobs} bench` }),
  );
  const effects = new Effects(container.get(KnexUnitOfWork), `${schema}.${EFFECTS_TABLE}`, commits);
  container.bind(EFFECTS).toConstantValue(effects);
  container.bind(PROVIDER).toConstantValue(provider);
  const outbox = new TimedOutbox(container.get(KnexOutbox), {
    added: (messages) => relayed.added(messages),
    confirmed: (ids, at) => relayed.confirmed(ids, at),
  });
  container.rebind<Outbox>(TOKENS.Outbox).toConstantValue(outbox); // before the relay is made: it claims through it
  return { container, outbox };
}

/**
 * The relay as the mediator sees it (`ports.relay`, woken after each commit): the module's own, or (`wake: false`)
 * one whose wake does nothing, so only its poll moves rows, as with `usecasecore relay` in a process of its own.
 */
function relayPort(relay: RunningRelay, wake: boolean): RunningRelay {
  if (wake) return relay;
  return {
    wake: () => undefined,
    start: (pollMs) => relay.start(pollMs),
    stop: () => relay.stop(),
    drain: (timeoutMs) => relay.drain(timeoutMs),
    status: () => relay.status(),
  };
}

/** Starts the service: mediator, relay (started, as a deployment starts it), and the job workers (work()). */
export async function startApp(options: AppOptions): Promise<App> {
  const commits = new Commits();
  const [provider, relayed] = [new InstantProvider(), new Relayed()];
  const { container, outbox } = containerOf(options, commits, relayed, provider);
  const relay = container.get<RunningRelay>(TOKENS.Relay);
  container.rebind<RunningRelay>(TOKENS.Relay).toConstantValue(relayPort(relay, options.wake));
  const runtime = processes([BenchCheckout]);
  const rules = [...[...TYPES, BenchJob, EnqueueBenchJob].map((type) => everyone(type)), ...runtime.rules];
  const mediator = createMediator(container, {
    handlers: [...HANDLERS, ...runtime.handlers],
    middleware: recommendedStack({ rules, inbox: true }),
  });
  relay.start(options.pollMs);
  const source = container.get<MessageSource>(TOKENS.MessageSource);
  const jobs = [...runtime.jobs, BenchJob];
  const workers = await work(mediator, source, jobs, options.prefetch ? { prefetch: options.prefetch } : {});
  const names = jobs.map((job) => mediator.ports.queues.job(typeOf(job)));
  const connection = container.get(AmqpConnection);
  return {
    mediator,
    commits,
    relayed,
    provider,
    outbox,
    connection,
    source,
    queues: names.flatMap((q) => [q, mediator.ports.queues.retry(q), mediator.ports.queues.dead(q)]),
    close: async () => {
      await Promise.all(workers.map((w) => w.close()));
      await relay.stop();
      await connection.close();
    },
  };
}
