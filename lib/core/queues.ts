// How the library names exchanges and queues: one function, read by the job handles and records (enqueue), the
// buses and sources (memory and RabbitMQ), work() and subscribe(), so a name can never differ between them.

/** Names of the exchanges (`amqpModule({ exchanges })`; bind them under `TOKENS.Exchanges` to change them). */
export interface Exchanges {
  /** Topic exchange for events; routing key = event type. Default `usecasecore.events`. */
  readonly events: string;
  /** Direct exchange for jobs; routing key = command type. Default `usecasecore.jobs`. */
  readonly jobs: string;
  /** Direct exchange for dead letters; routing key = the consumer queue. Default `usecasecore.dead`. */
  readonly dead: string;
}

/** The exchanges every process uses unless `TOKENS.Exchanges` says otherwise. */
export const DEFAULT_EXCHANGES: Exchanges = Object.freeze({
  events: 'usecasecore.events',
  jobs: 'usecasecore.jobs',
  dead: 'usecasecore.dead',
});

/** A subscriber class as its queue's name sees it: a `static subscription` pins the name across renames. */
export interface SubscriberClass {
  readonly name: string;
  readonly subscription?: string;
}

/** The names of a deployment's queues, from its exchanges. */
export interface QueueNames {
  readonly exchanges: Exchanges;
  /** The queue every worker of a job type shares: `<jobs exchange>.<type>`, e.g. `usecasecore.jobs.SendReceipt`. */
  job(type: string): string;
  /** An event subscriber's queue: `<service>.<its static subscription, else its class name>`. */
  subscriber(service: string, handler: SubscriberClass): string;
  /** Where a queue's messages wait between attempts. */
  retry(queue: string): string;
  /** Where a queue's messages go when they are given up on. */
  dead(queue: string): string;
}

/**
 * The queue names of a deployment whose exchanges are `exchanges`.
 * @example queueNames().job('SendReceipt') // 'usecasecore.jobs.SendReceipt'
 */
export function queueNames(exchanges: Exchanges = DEFAULT_EXCHANGES): QueueNames {
  return {
    exchanges,
    job: (type) => `${exchanges.jobs}.${type}`,
    subscriber: (service, handler) => `${service}.${handler.subscription ?? handler.name}`,
    retry: (queue) => `${queue}.retry`,
    dead: (queue) => `${queue}.dead`,
  };
}
