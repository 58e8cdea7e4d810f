// Jobs with handles: states, results, durable callbacks, delays, cancellation, keys and per-type retry policies.
import { queueNames } from '../../../lib/core/queues.js';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Container, injectable } from 'inversify';
import * as v from 'valibot';
import { AmqpConnection } from '../../../adapters/amqp/index.js';
import { MemoryBus, memoryModule } from '../../../adapters/memory/index.js';
import { ManualClock } from '../../../lib/testing/index.js';
import { CancelJob, GetJob, jobHandlers, work, type JobStore } from '../../../lib/jobs/index.js';
import {
  Command,
  TOKENS,
  createMediator,
  fail,
  handles,
  ok,
  type Context,
  type Handler,
  type JobHandle,
  type Mediator,
  type SendOptions,
} from '../../../lib/core/index.js';
import type { Delivery, Disposition, MessageSource, Relay } from '../../../lib/messaging/index.js';
import { everyone, recommendedStack } from '../../../middleware/index.js';
import { deleteTopology, isolatedTopology, realServices } from '../../support/broker.js';
import { expect } from '../../support/helpers.js';
import { Start, Touch, Touched, jobsApp } from './app.js';
import { createSchema, scopedKnex } from '../../support/sample-db.js';
import { spawnChild } from '../../support/processes.js';

/** What the job does: succeed with n × 2, fail with a domain code, or throw (a transient failure). */
const outcome = v.picklist(['ok', 'domain', 'throw']);
class Crunch extends Command(v.object({ n: v.number(), outcome }))<{ doubled: number }, 'unlucky'> {}
/** A job type with a retry policy of its own: three attempts, a 1–2 ms backoff. */
class Fragile extends Command(v.object({ n: v.number() })) {
  static readonly retry = { attempts: 3, baseMs: 2, maxMs: 2 };
}

const settledSchema = v.object({
  jobId: v.string(),
  type: v.string(),
  payload: v.unknown(),
  attempts: v.number(),
  result: v.optional(v.unknown()),
  failure: v.optional(v.object({ kind: v.string(), message: v.string(), code: v.optional(v.string()) })),
});
/** The callback: records what it got and who sent it. */
class Settled extends Command(settledSchema) {}

/** Enqueues a job as the options say, and returns its handle. */
const enqueueOptions = v.object({
  job: v.picklist(['Crunch', 'Fragile']),
  n: v.number(),
  outcome: v.optional(outcome, 'ok'),
  callbacks: v.optional(v.boolean(), false),
  delayMs: v.optional(v.number()),
  runAt: v.optional(v.string()),
  key: v.optional(v.string()),
});
class Enqueue extends Command(enqueueOptions)<JobHandle> {}

const runs = { crunch: 0, fragile: 0 };
const callbacks: Array<{ input: v.InferOutput<typeof settledSchema>; actor: string | undefined; tenant: string }> = [];

@handles(Enqueue)
@injectable()
class EnqueueHandler implements Handler<Enqueue> {
  handle(cmd: Enqueue, ctx: Context<Enqueue>) {
    const job = cmd.job === 'Crunch' ? new Crunch({ n: cmd.n, outcome: cmd.outcome }) : new Fragile({ n: cmd.n });
    const when = {
      ...(cmd.delayMs !== undefined ? { delayMs: cmd.delayMs } : {}),
      ...(cmd.runAt ? { runAt: cmd.runAt } : {}),
    };
    return ok(
      ctx.enqueue(job, {
        ...when,
        ...(cmd.key ? { key: cmd.key } : {}),
        ...(cmd.callbacks ? { onSuccess: Settled, onFailure: Settled } : {}),
      }),
    );
  }
}

@handles(Crunch)
@injectable()
class CrunchHandler implements Handler<Crunch> {
  handle(job: Crunch) {
    runs.crunch++;
    if (job.outcome === 'throw') throw new Error('the downstream service is down');
    return job.outcome === 'domain' ? fail('unlucky') : ok({ doubled: job.n * 2 });
  }
}

@handles(Fragile)
@injectable()
class FragileHandler implements Handler<Fragile> {
  handle(): never {
    runs.fragile++;
    throw new Error('fragile, always');
  }
}

@handles(Settled)
@injectable()
class SettledHandler implements Handler<Settled> {
  handle(input: Settled, ctx: Context<Settled>) {
    callbacks.push({ input: { ...input }, actor: ctx.meta.actor?.id, tenant: ctx.meta.tenant });
    return ok(undefined);
  }
}

const HANDLERS = [EnqueueHandler, CrunchHandler, FragileHandler, SettledHandler, ...jobHandlers];
const rules = [
  everyone(Enqueue),
  everyone(Crunch),
  everyone(Fragile),
  everyone(Settled),
  everyone(GetJob),
  everyone(CancelJob),
];
const alice: SendOptions = { actor: { id: 'alice' }, tenant: 'acme' };

/** A memory container with workers for every job type (callbacks included), on a clock the spec moves. */
async function memoryJobs(options: { deadSettlesFailing?: number } = {}) {
  runs.crunch = runs.fragile = 0;
  callbacks.length = 0;
  const clock = new ManualClock('2026-01-01T00:00:00Z');
  const container = new Container();
  container.load(memoryModule({ clock }));
  let failing = options.deadSettlesFailing ?? 0;
  if (failing > 0) {
    // The database goes away just as a job is to be settled dead.
    const store = container.get<JobStore>(TOKENS.JobStore);
    const settle = store.settle.bind(store);
    store.settle = (jobId, outcome, at) =>
      outcome.state === 'dead' && failing-- > 0
        ? Promise.reject(new Error('database down'))
        : settle(jobId, outcome, at);
  }
  const deadLetters: unknown[] = [];
  const warnings: string[] = [];
  const quiet = () => undefined;
  container.bind(TOKENS.Logger).toConstantValue({
    debug: quiet,
    info: quiet,
    warn: (message: string) => warnings.push(message),
    error: (message: string, fields?: { type?: unknown }) => deadLetters.push([message, fields?.type]),
  });
  const mediator = createMediator(container, {
    handlers: HANDLERS,
    middleware: recommendedStack({ rules, inbox: true }),
  });
  const bus = container.get(MemoryBus);
  await work(mediator, bus, [Crunch, Fragile, Settled], { maxAttempts: 4 });
  const relay = container.get<Relay>(TOKENS.Relay);
  return {
    mediator,
    clock,
    deadLetters,
    warnings,
    jobs: container.get<JobStore>(TOKENS.JobStore),
    settled: async () => {
      await relay.drain();
      await bus.idle();
    },
    enqueue: async (input: v.InferInput<typeof enqueueOptions>, options: SendOptions = alice) => {
      const sent = await mediator.send(Enqueue.from(input), options);
      if (!sent.ok) expect.fail(`Enqueue failed: ${sent.failure.message}`);
      return sent.value;
    },
  };
}

const statusOf = async (mediator: Mediator, jobId: string, options: SendOptions = alice) => {
  const read = await mediator.send(new GetJob({ jobId }), options);
  if (!read.ok) expect.fail(`GetJob ${jobId}: ${read.failure.kind} ${read.failure.message}`);
  return read.value;
};

describe('jobs with handles (memory)', () => {
  it('returns a handle at once; the job is queued, then succeeded with its result and attempts', async () => {
    const { mediator, enqueue, settled, jobs } = await memoryJobs();
    const handle = await enqueue({ job: 'Crunch', n: 21 });
    expect(handle).to.have.keys('jobId', 'queue');
    expect(handle.queue).to.equal(queueNames().job('Crunch'));
    await settled();
    const done = await statusOf(mediator, handle.jobId);
    expect(done).to.include({ jobId: handle.jobId, type: 'Crunch', state: 'succeeded', attempts: 1, tenant: 'acme' });
    expect(done.result).to.deep.equal({ doubled: 42 });
    expect(done.startedAt).to.be.a('string');
    expect(done.settledAt).to.be.a('string');
    expect(await jobs.status(handle.jobId)).to.deep.equal(done);
    expect(runs.crunch).to.equal(1);
  });

  it('records a queued job with the commit that enqueued it, readable before any worker runs it', async () => {
    const { mediator, enqueue } = await memoryJobs();
    const { jobId } = await enqueue({ job: 'Crunch', n: 1, delayMs: 60_000 });
    expect(await statusOf(mediator, jobId)).to.include({ state: 'queued', attempts: 0 });
  });

  it('sends onSuccess once with the job id, its payload and result, as the original actor and tenant', async () => {
    const { enqueue, settled } = await memoryJobs();
    const { jobId } = await enqueue({ job: 'Crunch', n: 5, callbacks: true });
    await settled();
    expect(callbacks).to.have.length(1);
    expect(callbacks[0]).to.deep.equal({
      input: { jobId, type: 'Crunch', payload: { n: 5, outcome: 'ok' }, attempts: 1, result: { doubled: 10 } },
      actor: 'alice',
      tenant: 'acme',
    });
  });

  it('settles a domain failure as failed at once (no retry) and sends onFailure with it', async () => {
    const { mediator, enqueue, settled } = await memoryJobs();
    const { jobId } = await enqueue({ job: 'Crunch', n: 5, outcome: 'domain', callbacks: true });
    await settled();
    expect(runs.crunch).to.equal(1);
    const failed = await statusOf(mediator, jobId);
    expect(failed).to.include({ state: 'failed', attempts: 1 });
    expect(failed.failure).to.deep.include({ kind: 'domain', code: 'unlucky' });
    expect(callbacks.map((c) => c.input.failure)).to.deep.equal([failed.failure]);
  });

  it("retries a job by its type's policy, then settles it dead and sends onFailure once", async () => {
    const { mediator, enqueue, settled, deadLetters } = await memoryJobs();
    const fragile = await enqueue({ job: 'Fragile', n: 1, callbacks: true });
    const crunch = await enqueue({ job: 'Crunch', n: 1, outcome: 'throw' });
    await settled();
    expect(runs.fragile, 'Fragile.retry.attempts').to.equal(3);
    expect(runs.crunch, "the worker's maxAttempts for a type without a policy").to.equal(4);
    const dead = await statusOf(mediator, fragile.jobId);
    expect(dead).to.include({ state: 'dead', attempts: 3 });
    expect(dead.failure).to.deep.equal({
      kind: 'dead',
      message: 'dead-lettered after 3 attempts: the handler threw an Error (its message is in the logs, not here)',
    });
    expect(await statusOf(mediator, crunch.jobId)).to.include({ state: 'dead', attempts: 4 });
    const said = 'consumer: dead-lettered a message; it waits in the dead queue';
    expect(deadLetters).to.have.deep.members([
      [said, 'Fragile'],
      [said, 'Crunch'],
    ]);
    expect(callbacks.map((c) => [c.input.jobId, c.input.failure?.kind, c.input.attempts])).to.deep.equal([
      [fragile.jobId, 'dead', 3],
    ]);
  });

  it('puts a job back in line, uncounted, when its dead state cannot be recorded (not left running)', async () => {
    const { mediator, enqueue, settled, deadLetters, warnings } = await memoryJobs({ deadSettlesFailing: 1 });
    const { jobId } = await enqueue({ job: 'Fragile', n: 1, callbacks: true });
    await settled();
    expect(runs.fragile, 'its 3 attempts, and once more after the requeue').to.equal(4);
    expect(warnings).to.deep.equal(['consumer: could not record a dead job; its message goes back in line']);
    expect(deadLetters, 'dead-lettered once, when it was recorded').to.have.length(1);
    expect(await statusOf(mediator, jobId)).to.include({ state: 'dead', attempts: 4 });
    expect(callbacks.map((c) => c.input.failure?.kind)).to.deep.equal(['dead']);
  });

  it('holds a delayed job until its time (delayMs and runAt), by the clock the outbox reads', async () => {
    const { mediator, enqueue, settled, clock } = await memoryJobs();
    const later = await enqueue({ job: 'Crunch', n: 1, delayMs: 30_000 });
    const scheduled = await enqueue({ job: 'Crunch', n: 2, runAt: '2026-01-01T00:01:00.000Z' });
    await settled();
    expect(runs.crunch).to.equal(0);
    expect(await statusOf(mediator, scheduled.jobId)).to.include({
      state: 'queued',
      runAt: '2026-01-01T00:01:00.000Z',
    });
    clock.advance(30_000);
    await settled();
    expect(runs.crunch).to.equal(1);
    expect((await statusOf(mediator, later.jobId)).state).to.equal('succeeded');
    expect((await statusOf(mediator, scheduled.jobId)).state).to.equal('queued');
    clock.advance(30_000);
    await settled();
    expect((await statusOf(mediator, scheduled.jobId)).state).to.equal('succeeded');
  });

  it('cancels a queued job, which then never runs; a settled one cannot be cancelled', async () => {
    const { mediator, enqueue, settled, clock } = await memoryJobs();
    const { jobId } = await enqueue({ job: 'Crunch', n: 1, delayMs: 1_000, callbacks: true });
    const cancelled = await mediator.send(new CancelJob({ jobId }), alice);
    expect(cancelled).to.deep.equal({ ok: true, value: { jobId, state: 'cancelled' } });
    clock.advance(1_000);
    await settled();
    expect(runs.crunch).to.equal(0);
    expect(callbacks).to.deep.equal([]);
    expect((await statusOf(mediator, jobId)).state).to.equal('cancelled');
    expect(await mediator.send(new CancelJob({ jobId }), alice), 'cancelling twice').to.deep.equal(cancelled);
    const ran = await enqueue({ job: 'Crunch', n: 1 });
    await settled();
    const late = await mediator.send(new CancelJob({ jobId: ran.jobId }), alice);
    expect(late).to.have.nested.property('failure.code', 'already_started');
    expect(late).to.have.nested.property('failure.details.state', 'succeeded');
  });

  it("keeps jobs to their tenant: another tenant's GetJob and CancelJob find nothing", async () => {
    const { mediator, enqueue } = await memoryJobs();
    const { jobId } = await enqueue({ job: 'Crunch', n: 1, delayMs: 1_000 });
    const other = { actor: { id: 'mallory' }, tenant: 'globex' };
    expect(await mediator.send(new GetJob({ jobId }), other)).to.have.nested.property('failure.kind', 'not_found');
    expect(await mediator.send(new CancelJob({ jobId }), other)).to.have.nested.property('failure.kind', 'not_found');
    expect((await statusOf(mediator, jobId)).state).to.equal('queued');
  });

  it('runs one job per key: enqueuing the key again returns the same handle and adds nothing', async () => {
    const { enqueue, settled, jobs } = await memoryJobs();
    const first = await enqueue({ job: 'Crunch', n: 1, key: 'nightly-2026-01-01' });
    const second = await enqueue({ job: 'Crunch', n: 1, key: 'nightly-2026-01-01' });
    const otherTenant = await enqueue({ job: 'Crunch', n: 1, key: 'nightly-2026-01-01' }, { tenant: 'globex' });
    expect(second).to.deep.equal(first);
    expect((await jobs.status(first.jobId))?.key).to.equal('nightly-2026-01-01');
    expect(otherTenant.jobId).not.to.equal(first.jobId);
    await settled();
    expect(runs.crunch).to.equal(2);
  });

  it('refuses to work a job type whose stack lacks inbox(), naming the fix', async () => {
    const container = new Container();
    container.load(memoryModule());
    const mediator = createMediator(container, { handlers: HANDLERS, middleware: recommendedStack({ rules }) });
    expect(() => work(mediator, container.get(MemoryBus), [Crunch])).to.throw(
      /Crunch is consumed through a stack without inbox\(\).*would take effect twice.*recommendedStack\(\{ rules, inbox: true \}\)/,
    );
  });

  it('records the queue its workers read even in a process that consumes nothing (no MessageSource bound)', async () => {
    const container = new Container();
    container.load(memoryModule({ bus: false })); // a web process: it enqueues, a relay and workers run elsewhere
    expect(container.isBound(TOKENS.MessageSource)).to.equal(false);
    const mediator = createMediator(container, { handlers: HANDLERS, middleware: recommendedStack({ rules }) });
    const enqueued = await mediator.send(Enqueue.from({ job: 'Crunch', n: 1 }));
    if (!enqueued.ok) return expect.fail(enqueued.failure.message);
    expect(enqueued.value.queue, 'the queue a RabbitMQ or memory worker of Crunch reads').to.equal(
      'usecasecore.jobs.Crunch',
    );
    const record = await mediator.send(new GetJob({ jobId: enqueued.value.jobId }));
    expect(record).to.nested.include({ 'value.queue': 'usecasecore.jobs.Crunch', 'value.state': 'queued' });
  });

  it('runs a job once when its duplicate is delivered while the first run still goes (recommendedStack jobs: true)', async () => {
    const container = new Container();
    container.load(memoryModule());
    const mediator = createMediator(container, {
      handlers: HANDLERS,
      middleware: recommendedStack({ rules, jobs: true }),
    });
    let handle: ((delivery: Delivery) => Promise<Disposition>) | undefined;
    const source: MessageSource = {
      consume: async (_queue, given) => {
        handle = given;
        return { close: async () => undefined };
      },
      idle: async () => undefined,
    };
    await work(mediator, source, [Crunch]);
    const before = runs.crunch;
    const message = {
      id: randomUUID(),
      kind: 'job' as const,
      type: 'Crunch',
      payload: { n: 3, outcome: 'ok' },
      occurredAt: new Date().toISOString(),
      headers: { tenant: 'default' },
    };
    const deliveries = [1, 2].map(() => handle!({ message, attempt: 1, redelivered: true }));
    expect(await Promise.all(deliveries)).to.deep.equal([{ action: 'ack' }, { action: 'ack' }]);
    expect(runs.crunch - before, 'the handler ran once for the two deliveries').to.equal(1);
  });

  it('refuses delayMs together with runAt, and a runAt that is not a time, naming the fix', async () => {
    const { mediator } = await memoryJobs();
    await expect(
      mediator.send(Enqueue.from({ job: 'Crunch', n: 1, delayMs: 5, runAt: '2026-01-01T00:00:00Z' }), alice),
    ).to.be.rejectedWith(/give delayMs or runAt, not both/);
    for (const delayMs of [-1, -0.5])
      await expect(mediator.send(Enqueue.from({ job: 'Crunch', n: 1, delayMs }), alice)).to.be.rejectedWith(
        /is not a number of ms ≥ 0 — for no delay, omit it/,
      );
    await expect(mediator.send(Enqueue.from({ job: 'Crunch', n: 1, runAt: 'tomorrow' }), alice)).to.be.rejectedWith(
      /runAt tomorrow is not a time — pass a Date or ISO 8601/,
    );
  });
});

describe('jobs on Postgres and RabbitMQ', function () {
  this.timeout(60_000);
  const services = realServices();

  it('runs onSuccess once when the worker dies between the job’s commit and its ack', async () => {
    const { amqpUrl, pgUrl, cleanups } = services;
    const schema = `jobs_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    await createSchema(pgUrl, schema);
    const db = scopedKnex(pgUrl, schema, 4);
    await db.schema.createTable('effects', (t) => {
      t.text('kind').notNullable();
      t.text('id').notNullable();
    });
    const topology = isolatedTopology();
    const { container, mediator } = jobsApp(db, amqpUrl, topology.exchanges);
    const source = container.get<MessageSource>(TOKENS.MessageSource);
    const queues = ['Touch', 'Touched'].map((type) => queueNames(topology.exchanges).job(type));
    cleanups.push(
      () => db.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]).then(() => db.destroy()),
      () => deleteTopology(amqpUrl, topology.exchanges, queues),
      () => container.get(AmqpConnection).close(),
    );
    const child = spawnChild(
      fileURLToPath(new URL('./child.ts', import.meta.url)),
      { DATABASE_URL: pgUrl, SCHEMA: schema, AMQP_URL: amqpUrl, EXCHANGES: JSON.stringify(topology.exchanges) },
      { stdin: 'ignore' },
    );
    cleanups.push(() => child.kill());
    await child.waitFor(/WORKING/);

    const started = await mediator.send(Start.from({ id: 't1' }));
    if (!started.ok) return expect.fail(started.failure.message);
    const { jobId } = started.value;
    await container.get<Relay>(TOKENS.Relay).drain();
    await child.waitFor(/COMMITTED/);
    expect(await child.exited).to.equal(0);
    const waiting = await db('ucc_outbox').where({ type: 'Touched' }).whereNull('sent_at').count({ n: '*' });
    expect(Number(waiting[0]?.n), 'the callback waits in the outbox: the dead worker never published it').to.equal(1);

    await work(mediator, source, [Touch, Touched]);
    const jobs = container.get<JobStore>(TOKENS.JobStore);
    for (const deadline = Date.now() + 20_000; ; await new Promise((resolve) => setTimeout(resolve, 25))) {
      await container.get<Relay>(TOKENS.Relay).drain();
      if ((await db('effects').where({ kind: 'callback' })).length > 0) break;
      if (Date.now() > deadline) expect.fail(`no callback after 20 s: ${JSON.stringify(await db('effects'))}`);
    }
    await source.idle(); // the dead worker's unacked Touch came back and was taken as already succeeded
    expect(await db('effects').select('kind', 'id').orderBy('kind')).to.deep.equal([
      { kind: 'callback', id: jobId },
      { kind: 'touch', id: 't1' },
    ]);
    expect(await jobs.status(jobId)).to.include({ state: 'succeeded', attempts: 1 });
    expect((await jobs.status(jobId))?.result).to.deep.equal({ touched: 't1' });
  });
});
