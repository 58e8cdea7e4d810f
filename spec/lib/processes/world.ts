// A world for the process specs on one backend: memory; PGlite with the memory bus; Postgres with RabbitMQ.
import { randomUUID } from 'node:crypto';
import { Container, injectable } from 'inversify';
import type { Knex } from 'knex';
import * as v from 'valibot';
import { AmqpConnection, amqpModule, type Exchanges } from '../../../adapters/amqp/index.js';
import { KnexUnitOfWork, knexModule } from '../../../adapters/knex/index.js';
import { memoryBusModule, memoryModule } from '../../../adapters/memory/index.js';
import {
  Command,
  TOKENS,
  createMediator,
  handles,
  failure,
  ok,
  unwrap,
  type Handler,
  type Middleware,
  type RequestClass,
  type RetryPolicy,
  type SendOptions,
  typeOf,
} from '../../../lib/core/index.js';
import { work } from '../../../lib/jobs/index.js';
import { subscribe, type MessageSource, type RunningRelay } from '../../../lib/messaging/index.js';
import {
  CancelProcess,
  GetProcess,
  RetryProcess,
  process,
  processes,
  sleep,
  step,
} from '../../../lib/processes/index.js';
import { ManualClock, settled } from '../../../lib/testing/index.js';
import { everyone, recommendedStack } from '../../../middleware/index.js';
import { deleteTopology, isolatedTopology, queueType, rabbit } from '../../support/broker.js';
import { dropSchema, freshSchema, postgres, sharedPglite } from '../../support/db.js';
import {
  CancelOrder,
  Charge,
  Checkout,
  KnexShop,
  MemoryShop,
  PaymentConfirmed,
  Refund,
  Release,
  Reserve,
  SHOP,
  SHOP_HANDLERS,
  Settle,
  Ship,
  type Shop,
} from './checkout.js';

export const ann: SendOptions = { actor: { id: 'ann', roles: ['customer'] }, tenant: 'acme' };

/** A process that sleeps until its input says, with a deadline of 1 s. */
export class Note extends Command(v.object({ until: v.string() }))<{ until: string }> {}
@handles(Note)
@injectable()
class NoteHandler implements Handler<Note> {
  handle(note: Note) {
    return ok({ until: note.until });
  }
}
export const Later = process('Later', [step(Note), sleep((note: { until: string }) => note.until), step(Note)], {
  deadlineMs: 1_000,
});

/** A step whose provider answers 503 every time; its first attempt opens `failing.began`. */
export class Flaky extends Command(v.object({ until: v.string() }))<{ until: string }> {}
export const failing = { began: latch() };
@handles(Flaky)
@injectable()
class FlakyHandler implements Handler<Flaky> {
  handle() {
    failing.began.open();
    return failure({ kind: 'unavailable', message: 'the provider answered 503' });
  }
}
/** Note, then Flaky with a deadline of 5 s from when it became due. */
export const Deadlined = process('Deadlined', [step(Note), step(Flaky, { deadlineMs: 5_000 })]);

/** The onFailure of Doomed: its service answers 503 while `unreachable.down`. */
export class Unreachable extends Command(v.object({ processId: v.string() }))<{ processId: string }> {}
export const unreachable = { down: false };
@handles(Unreachable)
@injectable()
class UnreachableHandler implements Handler<Unreachable> {
  handle(cmd: Unreachable) {
    if (unreachable.down) return failure({ kind: 'unavailable', message: 'the order service answered 503' });
    return ok({ processId: cmd.processId });
  }
}
/** One Flaky step, and an onFailure that may be unreachable. */
export const Doomed = process('Doomed', [step(Flaky)], { onFailure: Unreachable });

/** A promise to open once. */
export function latch() {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open: () => open() };
}

export type Backend = 'memory' | 'PGlite' | 'Postgres + RabbitMQ';

/** The services a backend's worlds share: its database and broker (none for memory). */
interface Services {
  readonly db?: Knex;
  readonly url?: string;
}

/** The backend's services, or undefined when they do not answer (the block skips, or fails under CI=true). */
async function servicesOf(kind: Backend): Promise<Services | undefined> {
  if (kind === 'memory') return {};
  if (kind === 'PGlite') return { db: await sharedPglite() };
  const [db, url] = [await postgres(), await rabbit()];
  return db && url ? { db, url } : undefined;
}

/** Binds a Logger that keeps quiet: a step that keeps throwing is dead-lettered and says so (SPEC_LOG=1 shows it). */
function quietly(container: Container): void {
  const quiet = () => undefined;
  if (!globalThis.process.env.SPEC_LOG)
    container.bind(TOKENS.Logger).toConstantValue({ debug: quiet, info: quiet, warn: quiet, error: quiet });
}

/** A container on an existing schema of `db` (the library's tables and `effects`), on RabbitMQ or the memory bus. */
export function knexContainer(
  db: Knex,
  schema: string,
  clock: ManualClock | undefined,
  broker?: { readonly url: string; readonly exchanges: Exchanges },
): Container {
  const container = new Container();
  quietly(container);
  container.load(knexModule({ knex: db, schema, prefix: 'ucc_', ...(clock ? { clock } : {}) }));
  container.load(broker ? amqpModule({ ...broker, retryDelayMs: () => 5, queueType: queueType() }) : memoryBusModule());
  container.bind(SHOP).toConstantValue(new KnexShop(container.get(KnexUnitOfWork), `${schema}.effects`));
  return container;
}

/** A container on the backend's services (modules loaded, the shop bound), and how to close it. */
async function backend(services: Services, clock: ManualClock) {
  const { db, url } = services;
  if (!db) {
    const container = new Container();
    quietly(container);
    container.load(memoryModule({ clock }));
    container.bind(SHOP).to(MemoryShop).inSingletonScope();
    return { container, service: 'spec', queues: [] as string[], schema: undefined, close: async () => undefined };
  }
  const { schema } = await freshSchema(db);
  await KnexShop.create(db, schema);
  const topology = isolatedTopology();
  const container = knexContainer(db, schema, clock, url ? { url, exchanges: topology.exchanges } : undefined);
  const queues: string[] = [];
  const close = async () => {
    await container.get<RunningRelay>(TOKENS.Relay).stop();
    if (url) await container.get(AmqpConnection).close();
    if (url) await deleteTopology(url, topology.exchanges, queues);
    await dropSchema(db, schema);
  };
  return { container, service: topology.prefix, queues, schema, close };
}

/**
 * The checkout and Later processes on `container`: the mediator (`outer` middleware first, e.g. tracing()), and
 * (with `workers`) the step workers and the subscribers of the awaited events, consuming. Returns what it consumes,
 * for cleanup.
 */
export async function checkoutApp(
  container: Container,
  service: string,
  workers = true,
  outer: Middleware[] = [],
  retry: RetryPolicy = { attempts: 3, baseMs: 1, maxMs: 2 },
) {
  const runtime = processes([Checkout, Later, Deadlined, Doomed]);
  const types: RequestClass[] = [
    ...[Checkout, Later, Deadlined, Doomed, Reserve, Release, Charge, Refund, Ship, Settle, CancelOrder, Note, Flaky],
    Unreachable,
    PaymentConfirmed,
    ...[GetProcess, CancelProcess, RetryProcess],
  ];
  const mediator = createMediator(container, {
    handlers: [...SHOP_HANDLERS, NoteHandler, FlakyHandler, UnreachableHandler, ...runtime.handlers],
    middleware: [
      ...outer,
      ...recommendedStack({ rules: [...types.map((type) => everyone(type)), ...runtime.rules], inbox: true }),
    ],
  });
  const jobs = [...runtime.jobs, CancelOrder];
  const queues = jobs.map((j) => mediator.ports.queues.job(typeOf(j)));
  if (!workers) return { mediator, queues, consumers: [] };
  const source = container.get<MessageSource>(TOKENS.MessageSource);
  const consumers = await work(mediator, source, jobs, { retry });
  queues.push(...(await subscribe(mediator, source, service)));
  return { mediator, queues, consumers };
}

/** How a world differs from the usual one: the step workers' retry policy. */
export interface WorldOptions {
  readonly retry?: RetryPolicy;
}

/** A world on `services`: the checkout and Later processes, their workers and subscribers, running. */
async function openWorld(services: Services, options: WorldOptions = {}) {
  const clock = new ManualClock(Date.now());
  const opened = await backend(services, clock);
  const { container } = opened;
  const { mediator, queues, consumers } = await checkoutApp(container, opened.service, true, [], options.retry);
  opened.queues.push(...queues);
  const get = async (processId: string) => unwrap(await mediator.send(new GetProcess({ processId }), ann));
  const settle = () => settled(container, 20_000);
  return {
    clock,
    mediator,
    /** The schema of the library's tables (none on memory). */
    schema: opened.schema,
    container,
    shop: container.get<Shop>(SHOP),
    settled: settle,
    get,
    /** Starts a checkout and lets it run as far as it goes. */
    async checkout(card: string, orderId = `o-${randomUUID().slice(0, 8)}`) {
      const { processId } = unwrap(await mediator.send(new Checkout({ orderId, qty: 2, card }), ann));
      await settle();
      return { processId, orderId, process: await get(processId) };
    },
    async close() {
      await Promise.all(consumers.map((c) => c.close()));
      await opened.close();
    },
  };
}

export type World = Awaited<ReturnType<typeof openWorld>>;

/** A world on `kind`'s services, or undefined when they do not answer. Close it after the case. */
export async function worldOn(kind: Backend): Promise<World | undefined> {
  const services = await servicesOf(kind);
  return services && openWorld(services);
}

/** Registers `body`'s cases once per backend; each case opens a world with `open()`, closed after it. */
export function onEveryBackend(title: string, body: (open: (options?: WorldOptions) => Promise<World>) => void): void {
  for (const kind of ['memory', 'PGlite', 'Postgres + RabbitMQ'] as const) {
    describe(`${title} (${kind})`, function () {
      this.timeout(30_000);
      let services: Services | undefined;
      before(async function () {
        services = await servicesOf(kind);
        if (!services) this.skip();
      });
      const worlds: World[] = [];
      afterEach(async () => {
        for (const world of worlds.splice(0)) await world.close();
      });
      body(async (options) => {
        const world = await openWorld(services!, options);
        worlds.push(world);
        return world;
      });
    });
  }
}
