// RabbitMQ for specs: the machine's broker (AMQP_URL), with exchange and queue names of the spec's own.
import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import type { Exchanges, QueueType } from '../../adapters/amqp/index.js';
import { postgres } from './db.js';
import { DEFAULT_AMQP_URL, missing, ran, redacted } from './services.js';

/**
 * The broker URL (`AMQP_URL`, else the usual local address), or `undefined` with a message when it does not answer.
 * Under CI=true a missing broker throws, so a spec that needs it fails instead of skipping.
 */
export async function rabbit(): Promise<string | undefined> {
  const url = process.env.AMQP_URL || DEFAULT_AMQP_URL;
  try {
    const model = await connect(url);
    await model.close();
  } catch (error) {
    return missing('RabbitMQ', `cannot reach ${redacted(url)}: ${(error as Error).message}`);
  }
  ran('RabbitMQ');
  return url;
}

/**
 * The queue type the RabbitMQ specs declare their queues with: UCC_QUEUE_TYPE, `quorum` (the library's default)
 * unless set to `classic` (CI runs the RabbitMQ specs once more that way). Pass it to amqpModule, AmqpBus, AmqpSource.
 * @example amqpModule({ url, exchanges: topology.exchanges, queueType: queueType() })
 */
export function queueType(): QueueType {
  const type = process.env.UCC_QUEUE_TYPE || 'quorum';
  if (type !== 'quorum' && type !== 'classic') throw new Error(`UCC_QUEUE_TYPE=${type}: use quorum or classic`);
  return type;
}

/** Exchange names no other run uses, and a queue-name maker with the same prefix. */
export function isolatedTopology(): { exchanges: Exchanges; queue(name: string): string; prefix: string } {
  const prefix = `ucc-spec-${randomUUID().slice(0, 8)}`;
  return {
    prefix,
    exchanges: { events: `${prefix}.events`, jobs: `${prefix}.jobs`, dead: `${prefix}.dead` },
    queue: (name) => `${prefix}.${name}`,
  };
}

/** Deletes the exchanges and the given queues (with their .retry and .dead queues). */
export async function deleteTopology(url: string, exchanges: Exchanges, queues: readonly string[]): Promise<void> {
  const model = await connect(url);
  const channel = await model.createChannel();
  for (const queue of queues)
    for (const name of [queue, `${queue}.retry`, `${queue}.dead`])
      await channel.deleteQueue(name).catch(() => undefined);
  for (const exchange of Object.values(exchanges)) await channel.deleteExchange(exchange).catch(() => undefined);
  await model.close().catch(() => undefined);
}

/**
 * For a describe block that needs Postgres and RabbitMQ: their URLs once both answer (else the block skips, or fails
 * under CI=true), and `cleanups`, run after the block, last first, each whatever the others did.
 * @example const services = realServices(); it('…', async () => { services.cleanups.push(() => db.destroy()); });
 */
export function realServices(): { amqpUrl: string; pgUrl: string; cleanups: Array<() => Promise<unknown>> } {
  const services = { amqpUrl: '', pgUrl: '', cleanups: [] as Array<() => Promise<unknown>> };
  before(async function () {
    const [url, pg] = [await rabbit(), await postgres()];
    if (!url || !pg) return this.skip();
    [services.amqpUrl, services.pgUrl] = [url, process.env.DATABASE_URL!];
  });
  after(async () => {
    for (const cleanup of services.cleanups.reverse()) await cleanup().catch(() => undefined);
  });
  return services;
}
