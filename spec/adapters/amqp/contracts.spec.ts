// The RabbitMQ bus and source (AMQP_URL) against the messaging contract; skips without a broker, fails under CI=true.
import { queueNames } from '../../../lib/core/queues.js';
import { connect } from 'amqplib';
import { AmqpBus, AmqpConnection, AmqpSource } from '../../../adapters/amqp/index.js';
import { runMessagingContract, type DeadLetter } from '../../../lib/testing/index.js';
import type { MessageSource } from '../../../lib/messaging/index.js';
import { deleteTopology, isolatedTopology, queueType, rabbit } from '../../support/broker.js';

describe('amqp adapters on RabbitMQ', function () {
  this.timeout(30_000);
  let url: string;
  before(async function () {
    const found = await rabbit();
    if (!found) return this.skip();
    url = found;
  });

  runMessagingContract({ describe, it }, 'RabbitMQ', async () => {
    const { exchanges } = isolatedTopology();
    const connection = new AmqpConnection(url);
    const bus = new AmqpBus(connection, { exchanges, mandatoryEvents: false, queueType: queueType() });
    const amqp = new AmqpSource(connection, { exchanges, retryDelayMs: () => 20, queueType: queueType() });
    const queues = new Set<string>();
    /** The source, noting every queue it consumes so `close` can delete it. */
    const source: MessageSource = {
      consume: (options, handle) => {
        queues.add(options.queue);
        return amqp.consume(options, handle);
      },
      idle: () => amqp.idle(),
    };
    return {
      source,
      bus: {
        publish(messages) {
          for (const m of messages) if (m.kind === 'job') queues.add(queueNames(exchanges).job(m.type)); // the bus declares it
          return bus.publish(messages);
        },
      },
      queues: queueNames(exchanges),
      deadLetters: (queue) => deadLetters(url, queue),
      async close() {
        await connection.close();
        await deleteTopology(url, exchanges, [...queues]);
      },
    };
  });
});

/** Reads `<queue>.dead` without taking anything off it (unacked messages go back when the channel closes). */
async function deadLetters(url: string, queue: string): Promise<DeadLetter[]> {
  const model = await connect(url);
  try {
    const channel = await model.createChannel();
    const letters: DeadLetter[] = [];
    for (let raw = await channel.get(`${queue}.dead`); raw; raw = await channel.get(`${queue}.dead`)) {
      const headers = raw.properties.headers ?? {};
      letters.push({
        id: String(raw.properties.messageId),
        attempt: Number(headers['x-usecasecore-attempt']),
        reason: String(headers['x-usecasecore-dead-reason']),
      });
    }
    return letters;
  } finally {
    await model.close();
  }
}
