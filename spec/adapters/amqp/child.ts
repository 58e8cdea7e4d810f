// A second process for the RabbitMQ fault and scenario specs, which SIGKILL it at the moment its MODE announces:
//   commit        commits COUNT sends (relay off), prints COMMITTED, waits to be killed before publishing them
//   relay-dies    commits COUNT sends, publishes them with its own relay, prints CONFIRMED <ids> once the broker
//                 confirmed them and hangs before marking them sent
//   consume       consumes QUEUE (Emitted), printing DELIVERED <id> <redelivered> and SETTLED <id> <action>; with
//                 HANG=after-commit it prints COMMITTED <id> after the handler's commit and never acks; with
//                 HANG=before-commit it prints HANDLING <id> inside the transaction (after the inbox record) and
//                 waits for a GO line on stdin
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { AmqpSource } from '../../../adapters/amqp/index.js';
import { TOKENS, withRules } from '../../../lib/core/index.js';
import {
  consume,
  createRelay,
  type Delivery,
  type MessageBus,
  type MessageSource,
  type Outbox,
} from '../../../lib/messaging/index.js';
import { scopedKnex } from '../../support/sample-db.js';
import { Emit, Emitted, faultApp } from './app.js';

const { DATABASE_URL, SCHEMA, AMQP_URL, EXCHANGES, COUNT, PREFIX, MODE = 'commit', QUEUE, HANG } = process.env;
const db = scopedKnex(DATABASE_URL!, SCHEMA!, 4);
const exchanges = JSON.parse(EXCHANGES!);
const say = (line: string) => process.stdout.write(`${line}\n`);
const forever = () => new Promise<never>(() => undefined);

async function sendAll(mediator: ReturnType<typeof faultApp>['mediator']): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < Number(COUNT); i++) {
    const id = `${PREFIX}-${i}-${randomUUID().slice(0, 4)}`;
    const result = await mediator.send(Emit.from({ id }));
    if (!result.ok) throw new Error(JSON.stringify(result));
    ids.push(id);
  }
  return ids;
}

if (MODE === 'commit') {
  const { mediator } = faultApp(db, AMQP_URL!, exchanges, { relay: false });
  await sendAll(mediator);
  say('COMMITTED');
  await forever();
} else if (MODE === 'relay-dies') {
  // A short lease, so the parent's relay may take the rows over soon after this process dies holding them.
  const { container, mediator } = faultApp(db, AMQP_URL!, exchanges, { relay: false, claimLeaseMs: 1_000 });
  await sendAll(mediator);
  const outbox = container.get<Outbox>(TOKENS.Outbox);
  const dying: Outbox = {
    add: (messages) => outbox.add(messages),
    claim: (limit) => outbox.claim(limit),
    markFailed: (id, error, park) => outbox.markFailed(id, error, park),
    release: (ids) => outbox.release(ids),
    pending: () => outbox.pending(),
    async markSent(ids) {
      say(`CONFIRMED ${JSON.stringify(ids)}`); // the broker confirmed them: die before the UPDATE
      return forever();
    },
  };
  createRelay(dying, container.get<MessageBus>(TOKENS.MessageBus), { pipeline: 1 }).wake();
  await forever();
} else if (MODE === 'consume') {
  const lines = createInterface({ input: process.stdin });
  const go = () => new Promise<void>((resolve) => lines.once('line', () => resolve()));
  const idOf = (ctx: { meta: { message?: { id: string } | undefined } }) => ctx.meta.message?.id ?? '-';
  const { container, mediator } = faultApp(db, AMQP_URL!, exchanges, {
    relay: false,
    outer:
      HANG === 'after-commit'
        ? [
            withRules(async function dieBeforeAck(ctx, next) {
              const result = await next();
              if (ctx.meta.message === undefined) return result;
              say(`COMMITTED ${idOf(ctx)}`);
              return forever();
            }, {}),
          ]
        : [],
    inner:
      HANG === 'before-commit'
        ? [
            withRules(async function holdInTransaction(ctx, next) {
              if (ctx.meta.message === undefined) return next();
              say(`HANDLING ${idOf(ctx)}`);
              await go();
              return next();
            }, {}),
          ]
        : [],
  });
  const amqp = container.get(AmqpSource);
  const source: MessageSource = {
    idle: () => amqp.idle(),
    consume: (options, handle) =>
      amqp.consume(options, async (delivery: Delivery) => {
        say(`DELIVERED ${delivery.message.id} ${delivery.redelivered}`);
        const disposition = await handle(delivery);
        say(`SETTLED ${delivery.message.id} ${disposition.action}`);
        return disposition;
      }),
  };
  await consume(mediator, source, QUEUE!, [Emitted], { prefetch: 1 });
  say('READY');
  await forever();
} else throw new Error(`unknown MODE ${MODE}: commit, relay-dies or consume`);
