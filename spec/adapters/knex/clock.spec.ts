// One clock: on knex, the mediator, the audit store, the outbox and the job store all read TOKENS.Clock.
import 'reflect-metadata';
import { Container, injectable } from 'inversify';
import * as v from 'valibot';
import { knexModule } from '../../../adapters/knex/index.js';
import { memoryBusModule, MemoryBus } from '../../../adapters/memory/index.js';
import {
  Command,
  createMediator,
  handles,
  ok,
  TOKENS,
  type Context,
  type Handler,
  type JobHandle,
} from '../../../lib/core/index.js';
import { GetJob, jobHandlers, work } from '../../../lib/jobs/index.js';
import { ManualClock, settled } from '../../../lib/testing/index.js';
import { everyone, recommendedStack } from '../../../middleware/index.js';
import { dropSchema, freshSchema, sharedPglite } from '../../support/db.js';
import { expect } from '../../support/helpers.js';

class Tick extends Command(v.object({ n: v.number() }))<JobHandle> {}
class Later extends Command(v.object({ n: v.number() }))<{ n: number }> {}

@handles(Tick)
@injectable()
class TickHandler implements Handler<Tick> {
  handle(cmd: Tick, ctx: Context<Tick>) {
    return ok(ctx.enqueue(new Later({ n: cmd.n }), { delayMs: 60_000 }));
  }
}

@handles(Later)
@injectable()
class LaterHandler implements Handler<Later> {
  handle(cmd: Later) {
    return ok({ n: cmd.n });
  }
}

describe('knexModule: one clock', () => {
  it('should stamp audit, outbox and job times with the clock given to knexModule, and move them with it', async () => {
    const db = await sharedPglite();
    const schema = await freshSchema(db);
    const clock = new ManualClock('2031-05-01T08:00:00Z');
    const container = new Container();
    container.load(knexModule({ knex: db, ...schema, clock }), memoryBusModule());
    try {
      expect(container.get(TOKENS.Clock)).to.equal(clock);
      const mediator = createMediator(container, {
        handlers: [TickHandler, LaterHandler, ...jobHandlers],
        middleware: recommendedStack({ rules: [everyone(Tick), everyone(Later), everyone(GetJob)], inbox: true }),
      });
      expect(mediator.ports.clock, 'the mediator reads the bound clock').to.equal(clock);
      const sent = await mediator.send(Tick.from({ n: 1 }));
      if (!sent.ok) expect.fail(`Tick failed: ${sent.failure.message}`);
      const { jobId } = sent.value;

      const [audit] = await db.withSchema(schema.schema).table(`${schema.prefix}audit`).select('at');
      expect(new Date(audit.at).toISOString(), 'the audit record').to.equal('2031-05-01T08:00:00.000Z');
      const [row] = await db
        .withSchema(schema.schema)
        .table(`${schema.prefix}outbox`)
        .select('occurred_at', 'available_at');
      expect(new Date(row.occurred_at).toISOString(), 'the outbox row').to.equal('2031-05-01T08:00:00.000Z');
      expect(new Date(row.available_at).toISOString(), 'its delay, from the clock').to.equal(
        '2031-05-01T08:01:00.000Z',
      );
      const queued = await mediator.send(new GetJob({ jobId }));
      expect(queued).to.nested.include({ 'value.enqueuedAt': '2031-05-01T08:00:00.000Z', 'value.state': 'queued' });

      await work(mediator, container.get(MemoryBus), [Later]);
      await settled(container);
      expect(await mediator.send(new GetJob({ jobId }))).to.nested.include({ 'value.state': 'queued' });
      clock.advance(60_000); // the outbox's claim judges "due" by the same clock
      await settled(container);
      expect(await mediator.send(new GetJob({ jobId }))).to.nested.include({
        'value.state': 'succeeded',
        'value.startedAt': '2031-05-01T08:01:00.000Z',
        'value.settledAt': '2031-05-01T08:01:00.000Z',
      });
    } finally {
      await dropSchema(db, schema.schema);
    }
  });

  it('should refuse a clock given twice, saying where to give it', () => {
    const container = new Container();
    container.bind(TOKENS.Clock).toConstantValue(new ManualClock());
    expect(() =>
      container.load(knexModule({ connection: 'postgres://nowhere/none', clock: new ManualClock() })),
    ).to.throw(/a Clock is bound already — give the clock once/);
  });
});
