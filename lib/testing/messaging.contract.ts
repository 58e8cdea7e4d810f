// The MessageBus + MessageSource contract: routing, delivery, ack, retry, dead letters, prefetch, idle().
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { OutboxMessage } from '../core/ports.js';
import { queueNames, type QueueNames } from '../core/queues.js';
import type {
  Delivery,
  Disposition,
  MessageBus,
  MessageSource,
  PublishReport,
  QueueOptions,
} from '../messaging/ports.js';
import { eventually, withFixture, type TestApi } from './harness.js';

/** A message a consumer queue set aside for good, as the adapter stored it. */
export interface DeadLetter {
  /** The message's id. */
  readonly id: string;
  /** The delivery that gave up (1 for a message dead-lettered on its first delivery). */
  readonly attempt: number;
  /** Why: contains the reason the handler gave (or the error it threw). */
  readonly reason: string;
}

/** What the messaging contract runs against, made fresh for every case. */
export interface MessagingFixture {
  /** The publisher; the source must receive what it publishes. */
  readonly bus: MessageBus;
  readonly source: MessageSource;
  /** The queue names the bus and source use (a job type's queue). Default `queueNames()`. */
  readonly queues?: QueueNames;
  /** The messages `queue` dead-lettered so far, oldest first (a case reads each queue once, after `idle()`). */
  deadLetters(queue: string): Promise<DeadLetter[]>;
  /** Closes what `make` opened; the cases close their own consumers first. */
  close(): Promise<void>;
}

type Handle = (delivery: Delivery) => Promise<Disposition>;

/** One case's view: the fixture, names no other case uses, and consumers closed when the case ends. */
interface Case extends Omit<MessagingFixture, 'close' | 'queues'> {
  readonly queues: QueueNames;
  /** A queue or message type name unique to this case. */
  unique(name: string): string;
  consume(
    queue: string,
    bindings: QueueOptions['bindings'],
    handle: Handle,
    options?: Partial<QueueOptions>,
  ): Promise<{ close(): Promise<void> }>;
  publish(messages: readonly OutboxMessage[]): Promise<PublishReport>;
}

/**
 * Registers the messaging contract for a MessageBus and the MessageSource that consumes what it publishes: events
 * routed by type, jobs by their job queue, ack / retry (attempt + 1) / requeue (uncounted) / dead letters after
 * `maxAttempts` or at once, the prefetch bound, `idle()`, and confirmed ids in `sent`. Every case uses queue and type
 * names of its own, and a retry should come back within tens of milliseconds (configure the adapter's retry delay
 * so).
 * @example
 * runMessagingContract({ describe, it }, 'memory', async () => {
 *   const bus = new MemoryBus({ retryDelayMs: () => 5 });
 *   const deadLetters = async (queue: string) =>
 *     bus.deadLetters(queue).map((d) => ({ id: d.message.id, attempt: d.attempts, reason: d.reason }));
 *   return { bus, source: bus, deadLetters, close: async () => {} };
 * });
 */
export function runMessagingContract(t: TestApi, name: string, make: () => Promise<MessagingFixture>): void {
  const test = (title: string, body: (c: Case) => Promise<void>) =>
    t.it(title, () => withFixture(make, (fixture) => runCase(fixture, body)));

  t.describe(`Messaging contract (MessageBus + MessageSource): ${name}`, () => {
    test('should report every published id as sent, in order, and fail none', async (c) => {
      const [placed, paid, ship] = [c.unique('Placed'), c.unique('Paid'), c.unique('Ship')];
      await c.consume(
        c.unique('orders'),
        [
          { kind: 'event', type: placed },
          { kind: 'event', type: paid },
        ],
        ack,
      );
      await c.consume(c.queues.job(ship), [{ kind: 'job', type: ship }], ack);
      const batch = [message('event', placed), message('job', ship), message('event', paid)];
      const report = await c.publish(batch);
      assert.deepStrictEqual(
        report.sent,
        batch.map((m) => m.id),
      );
      assert.deepStrictEqual(report.failed, []);
      assert.deepStrictEqual(report.unconfirmed ?? [], []);
      const empty = await c.publish([]);
      assert.deepStrictEqual([empty.sent, empty.failed, empty.unconfirmed ?? []], [[], [], []], 'an empty batch');
      await c.source.idle();
    });

    test('should deliver a message intact (id, kind, type, payload, aggregate, headers) as attempt 1', async (c) => {
      const type = c.unique('Placed'),
        seen = recorder();
      await c.consume(c.unique('orders'), [{ kind: 'event', type }], seen.handle, { prefetch: 1 });
      const withAggregate = message('event', type, {
        aggregateId: 'order-7',
        headers: { requestId: 'r-7', tenant: 'acme', actor: 'alice' },
        payload: { name: 'Zoë ✓', nested: { list: [1, 2.5, null, true], text: "' OR 1=1 --" } },
      });
      const withoutAggregate = message('event', type);
      await c.publish([withAggregate, withoutAggregate]);
      await c.source.idle();
      assert.deepStrictEqual(seen.deliveries, [
        { message: withAggregate, attempt: 1, redelivered: false },
        { message: withoutAggregate, attempt: 1, redelivered: false },
      ]);
    });

    test('should route events by type and jobs by job queue, to every queue bound to them', async (c) => {
      const [a, b, j] = [c.unique('A'), c.unique('B'), c.unique('J')];
      const onlyA = recorder(),
        aAndB = recorder(),
        worker = recorder();
      await c.consume(c.unique('only-a'), [{ kind: 'event', type: a }], onlyA.handle);
      await c.consume(
        c.unique('a-and-b'),
        [
          { kind: 'event', type: a },
          { kind: 'event', type: b },
        ],
        aAndB.handle,
      );
      await c.consume(c.queues.job(j), [{ kind: 'job', type: j }], worker.handle);
      const [eventA, eventB, jobJ, jobA, eventJ] = [
        message('event', a),
        message('event', b),
        message('job', j),
        message('job', a),
        message('event', j),
      ];
      await c.publish([eventA, eventB, jobJ, jobA, eventJ]);
      await c.source.idle();
      assert.deepStrictEqual(onlyA.ids(), [eventA.id], 'a queue bound to event A takes only event A (not job A)');
      assert.deepStrictEqual(aAndB.ids().sort(), [eventA.id, eventB.id].sort(), 'each bound queue gets its own copy');
      assert.deepStrictEqual(worker.ids(), [jobJ.id], 'the job queue takes job J, not event J');
    });

    test('should keep jobs published before any worker until one consumes their job queue', async (c) => {
      const type = c.unique('SendReceipt'),
        worker = recorder();
      const jobs = [message('job', type), message('job', type)];
      assert.deepStrictEqual(
        (await c.publish(jobs)).sent,
        jobs.map((m) => m.id),
      );
      await c.consume(c.queues.job(type), [{ kind: 'job', type }], worker.handle, { prefetch: 1 });
      await c.source.idle();
      assert.deepStrictEqual(
        worker.ids(),
        jobs.map((m) => m.id),
      );
    });

    test('should not deliver to a queue an event published before the queue was bound', async (c) => {
      const type = c.unique('Placed'),
        seen = recorder();
      const early = message('event', type),
        late = message('event', type);
      await c.publish([early]);
      await c.consume(c.unique('late-joiner'), [{ kind: 'event', type }], seen.handle, { prefetch: 1 });
      await c.publish([late]);
      await c.source.idle();
      assert.deepStrictEqual(seen.ids(), [late.id]);
    });

    test("should deliver a queue's messages in publish order with prefetch 1", async (c) => {
      const type = c.unique('Step'),
        seen = recorder();
      await c.consume(c.unique('steps'), [{ kind: 'event', type }], seen.handle, { prefetch: 1 });
      const steps = Array.from({ length: 5 }, () => message('event', type));
      await c.publish(steps);
      await c.source.idle();
      assert.deepStrictEqual(
        seen.ids(),
        steps.map((m) => m.id),
      );
    });

    test("should keep a queue's messages for the next consumer after one closed", async (c) => {
      const type = c.unique('Placed'),
        queue = c.unique('handover'),
        first = recorder(),
        second = recorder();
      const consumer = await c.consume(queue, [{ kind: 'event', type }], first.handle);
      const before = message('event', type),
        after = message('event', type);
      await c.publish([before]);
      await c.source.idle();
      await consumer.close();
      await c.publish([after]);
      await c.consume(queue, [{ kind: 'event', type }], second.handle);
      await c.source.idle();
      assert.deepStrictEqual([first.ids(), second.ids()], [[before.id], [after.id]]);
    });

    test('should run each message once across two consumers of one queue', async (c) => {
      const type = c.unique('Placed'),
        queue = c.unique('shared'),
        one = recorder(),
        two = recorder();
      await c.consume(queue, [{ kind: 'event', type }], one.handle);
      await c.consume(queue, [{ kind: 'event', type }], two.handle);
      const batch = Array.from({ length: 10 }, () => message('event', type));
      await c.publish(batch);
      await c.source.idle();
      assert.deepStrictEqual([...one.ids(), ...two.ids()].sort(), batch.map((m) => m.id).sort());
    });

    test('should redeliver a message whose handler asked for a retry, with attempt + 1, until it acks', async (c) => {
      const type = c.unique('Flaky'),
        queue = c.unique('retrying');
      const seen = recorder((d) => (d.attempt < 3 ? { action: 'retry', reason: 'not yet' } : { action: 'ack' }));
      await c.consume(queue, [{ kind: 'event', type }], seen.handle, { maxAttempts: 5 });
      const flaky = message('event', type);
      await c.publish([flaky]);
      await c.source.idle();
      assert.deepStrictEqual(seen.attemptsOf(flaky.id), [1, 2, 3]);
      assert.equal(seen.deliveries.length, 3, 'only the one message was delivered');
      assert.deepStrictEqual(seen.deliveries[2]?.message, flaky, 'a redelivered message is the same message');
      assert.deepStrictEqual(await c.deadLetters(queue), []);
    });

    test('should treat a handler that throws as asking for a retry', async (c) => {
      const type = c.unique('Throwing'),
        queue = c.unique('throwing');
      const once = message('event', type),
        always = message('event', type);
      const seen = recorder((d) => {
        if (d.message.id === always.id || d.attempt === 1) throw new Error(`kaboom ${d.message.id}`);
        return { action: 'ack' };
      });
      await c.consume(queue, [{ kind: 'event', type }], seen.handle, { maxAttempts: 2 });
      await c.publish([once, always]);
      await c.source.idle();
      assert.deepStrictEqual(seen.attemptsOf(once.id), [1, 2], 'thrown once, then acked');
      assert.deepStrictEqual(seen.attemptsOf(always.id), [1, 2], 'thrown until maxAttempts');
      const dead = await c.deadLetters(queue);
      assert.deepStrictEqual(
        dead.map((d) => [d.id, d.attempt]),
        [[always.id, 2]],
      );
      assert.match(dead[0]!.reason, new RegExp(`kaboom ${always.id}`), 'the dead letter says what was thrown');
    });

    test('should dead-letter a message after maxAttempts with its reason, and keep the queue flowing', async (c) => {
      const type = c.unique('Poison'),
        queue = c.unique('poisoned');
      const poison = message('event', type),
        fine = message('event', type);
      const seen = recorder((d): Disposition =>
        d.message.id === poison.id ? { action: 'retry', reason: 'downstream refused' } : { action: 'ack' },
      );
      await c.consume(queue, [{ kind: 'event', type }], seen.handle, { maxAttempts: 3 });
      await c.publish([poison, fine]);
      await c.source.idle();
      assert.deepStrictEqual(seen.attemptsOf(poison.id), [1, 2, 3]);
      assert.deepStrictEqual(seen.attemptsOf(fine.id), [1]);
      const dead = await c.deadLetters(queue);
      assert.deepStrictEqual(
        dead.map((d) => [d.id, d.attempt]),
        [[poison.id, 3]],
      );
      assert.match(dead[0]!.reason, /downstream refused/);
    });

    test('should requeue without counting an attempt, past maxAttempts, and never dead-letter for it', async (c) => {
      const type = c.unique('Unrecorded'),
        queue = c.unique('requeued');
      let requeues = 3;
      const seen = recorder((d): Disposition => {
        if (d.attempt < 2) return { action: 'retry', reason: 'not yet' };
        return requeues-- > 0 ? { action: 'requeue', reason: 'the database is down' } : { action: 'ack' };
      });
      await c.consume(queue, [{ kind: 'event', type }], seen.handle, { maxAttempts: 2 });
      const unrecorded = message('event', type);
      await c.publish([unrecorded]);
      await c.source.idle();
      assert.deepStrictEqual(
        seen.attemptsOf(unrecorded.id),
        [1, 2, 2, 2, 2],
        'requeued at its last attempt, uncounted',
      );
      assert.deepStrictEqual(await c.deadLetters(queue), []);
    });

    test('should dead-letter at once a message whose handler says dead', async (c) => {
      const type = c.unique('Unparseable'),
        queue = c.unique('strict');
      const seen = recorder(() => ({ action: 'dead', reason: 'payload can never parse' }));
      await c.consume(queue, [{ kind: 'event', type }], seen.handle, { maxAttempts: 5 });
      const bad = message('event', type);
      await c.publish([bad]);
      await c.source.idle();
      assert.deepStrictEqual(seen.attemptsOf(bad.id), [1]);
      const dead = await c.deadLetters(queue);
      assert.deepStrictEqual(
        dead.map((d) => [d.id, d.attempt]),
        [[bad.id, 1]],
      );
      assert.match(dead[0]!.reason, /payload can never parse/);
    });

    test('should never have more than prefetch deliveries of a consumer in flight', async (c) => {
      const type = c.unique('Slow'),
        gate = latch();
      let inFlight = 0,
        most = 0;
      const seen = recorder(async () => {
        most = Math.max(most, ++inFlight);
        await gate.opened;
        inFlight--;
        return { action: 'ack' };
      });
      await c.consume(c.unique('slow'), [{ kind: 'event', type }], seen.handle, { prefetch: 2 });
      const batch = Array.from({ length: 6 }, () => message('event', type));
      await c.publish(batch);
      await eventually(() => inFlight === 2, 'two deliveries in flight');
      await new Promise((resolve) => setTimeout(resolve, 100)); // room for a third, if the bound leaked
      assert.equal(seen.deliveries.length, 2, 'no third delivery while two are unfinished');
      gate.open();
      await c.source.idle();
      assert.equal(most, 2);
      assert.deepStrictEqual(seen.ids().sort(), batch.map((m) => m.id).sort());
    });

    test('should resolve idle() only once every delivery, retries included, was handled', async (c) => {
      const type = c.unique('Slow'),
        finished: number[] = [];
      const seen = recorder(async (d) => {
        await new Promise((resolve) => setTimeout(resolve, 30));
        finished.push(d.attempt);
        return d.attempt === 1 ? { action: 'retry', reason: 'once more' } : { action: 'ack' };
      });
      await c.consume(c.unique('idle'), [{ kind: 'event', type }], seen.handle);
      await c.publish([message('event', type)]);
      await c.source.idle();
      assert.deepStrictEqual(finished, [1, 2]);
    });

    test('should close a consumer only after its deliveries in flight finished, and ack them', async (c) => {
      const type = c.unique('Slow'),
        queue = c.unique('closing'),
        gate = latch(),
        later = recorder();
      let finished = false;
      const slow = recorder(async () => {
        await gate.opened;
        finished = true;
        return { action: 'ack' };
      });
      const consumer = await c.consume(queue, [{ kind: 'event', type }], slow.handle);
      await c.publish([message('event', type)]);
      await eventually(() => slow.deliveries.length === 1, 'the delivery to start');
      let closed = false;
      const closing = consumer.close().then(() => {
        closed = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(closed, false, 'close() waits for the handler');
      gate.open();
      await closing;
      assert.equal(finished, true);
      const marker = message('event', type);
      await c.consume(queue, [{ kind: 'event', type }], later.handle);
      await c.publish([marker]);
      await c.source.idle();
      assert.deepStrictEqual(later.ids(), [marker.id], 'the finished delivery was acked, not handed out again');
    });
  });
}

/** Runs one case with names of its own, and closes the consumers it started (before the fixture closes). */
async function runCase(fixture: MessagingFixture, body: (c: Case) => Promise<void>): Promise<void> {
  const prefix = `contract-${randomUUID().slice(0, 8)}`;
  const consumers: Array<{ close(): Promise<void> }> = [];
  const c: Case = {
    bus: fixture.bus,
    source: fixture.source,
    queues: fixture.queues ?? queueNames(),
    deadLetters: (queue) => fixture.deadLetters(queue),
    unique: (name) => `${prefix}.${name}`,
    publish: (messages) => fixture.bus.publish(messages),
    async consume(queue, bindings, handle, options = {}) {
      const queueOptions: QueueOptions = { queue, bindings, prefetch: 4, maxAttempts: 5, ...options };
      const consumer = await fixture.source.consume(queueOptions, handle);
      consumers.push(consumer);
      return consumer;
    },
  };
  try {
    await body(c);
  } finally {
    await Promise.allSettled(consumers.map((consumer) => consumer.close()));
  }
}

function message(kind: OutboxMessage['kind'], type: string, extra: Partial<OutboxMessage> = {}): OutboxMessage {
  return {
    id: randomUUID(),
    kind,
    type,
    payload: { type },
    occurredAt: new Date().toISOString(),
    aggregateId: undefined,
    headers: { requestId: `r-${randomUUID().slice(0, 8)}` },
    ...extra,
  };
}

const ack: Handle = async () => ({ action: 'ack' });

/** A handler that records every delivery and answers with `decide` (ack by default). */
function recorder(decide: (delivery: Delivery) => Disposition | Promise<Disposition> = () => ({ action: 'ack' })) {
  const deliveries: Delivery[] = [];
  return {
    deliveries,
    ids: () => deliveries.map((d) => d.message.id),
    attemptsOf: (id: string) => deliveries.filter((d) => d.message.id === id).map((d) => d.attempt),
    handle: async (delivery: Delivery): Promise<Disposition> => {
      deliveries.push(delivery);
      return decide(delivery);
    },
  };
}

/** A promise the case opens by hand. */
function latch(): { opened: Promise<void>; open(): void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}
