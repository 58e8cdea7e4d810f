// The RabbitMQ adapters (amqplib) and the Inversify module that binds them.
import { ContainerModule } from 'inversify';
import { UseCaseError } from '../../lib/core/errors.js';
import { bindRelay, type RelayOptions } from '../../lib/messaging/relay.js';
import { TOKENS } from '../../lib/core/tokens.js';
import { AmqpBus } from './bus.js';
import { AmqpConnection } from './connection.js';
import { AmqpSource } from './source.js';
import {
  DEFAULT_DELIVERY_LIMIT,
  DEFAULT_EXCHANGES,
  isQueueType,
  type Exchanges,
  type QueueDeclaration,
  type QueueType,
} from './topology.js';

export { AmqpBus, type AmqpBusOptions } from './bus.js';
export { AmqpConnection, type AmqpBlocked, type AmqpRole } from './connection.js';
export { AmqpSource, type AmqpSourceOptions } from './source.js';
export {
  DEFAULT_DELIVERY_LIMIT,
  DEFAULT_EXCHANGES,
  assertQueue,
  type Exchanges,
  type QueueDeclaration,
  type QueueType,
} from './topology.js';

/** Options of `amqpModule()`. */
export interface AmqpModuleOptions {
  /** e.g. `amqp://guest:guest@127.0.0.1:5672` */
  readonly url: string;
  readonly exchanges?: Partial<Exchanges>;
  /** Publish events `mandatory` (an event no queue takes is parked as unroutable). Default false; jobs always are. */
  readonly mandatoryEvents?: boolean;
  readonly confirmTimeoutMs?: number;
  readonly relay?: RelayOptions;
  /**
   * Names the two connections `<name> publish` and `<name> consume` in the management UI and `rabbitmqctl`, e.g.
   * your service's name. Default `usecasecore`.
   */
  readonly connectionName?: string;
  /** Wait before redelivering attempt n+1 where the queue has no retry delay of its own. */
  readonly retryDelayMs?: (attempt: number) => number;
  /**
   * The type of every queue the library declares (consumer queues with their `.retry` and `.dead`, job queues).
   * Default `quorum`, RabbitMQ's replicated durable queue. `classic` for queues created by versions before this
   * option (they have no `x-queue-type`): a queue's type cannot change, and declaring one as the other fails with
   * a UseCaseError saying how to migrate.
   */
  readonly queueType?: QueueType;
  /**
   * Quorum queues: redeliveries of one message copy (its consumer crashed or lost its connection each time) before
   * the broker moves it to `<queue>.dead`. Default 20. See `QueueDeclaration.deliveryLimit`.
   */
  readonly deliveryLimit?: number;
}

/**
 * Binds the MessageBus (publisher with confirms), the MessageSource (consumers) and a Relay over the bound Outbox,
 * on one `AmqpConnection` (two sockets: publishing and consuming; close it on shutdown, after `relay.stop()`).
 * Queues are quorum queues unless `queueType: 'classic'`.
 * @example
 * container.load(knexModule({ connection: process.env.DATABASE_URL }), amqpModule({ url: process.env.AMQP_URL! }));
 */
export function amqpModule(options: AmqpModuleOptions): ContainerModule {
  const { queueType = 'quorum', deliveryLimit = DEFAULT_DELIVERY_LIMIT } = options;
  if (!isQueueType(queueType)) {
    throw new UseCaseError('misuse', `amqpModule: queueType must be 'quorum' or 'classic', got ${String(queueType)}`);
  }
  if (!Number.isInteger(deliveryLimit) || deliveryLimit < 1) {
    // 0 or -1 would make RabbitMQ 3 drop a message the first time a consumer lets go of it (checked on 3.10.8).
    throw new UseCaseError('misuse', `amqpModule: deliveryLimit must be a whole number ≥ 1, got ${deliveryLimit}`);
  }
  // The bus declares job queues and the source consumer queues: one declaration for both, or they would clash.
  const declaration: QueueDeclaration = { queueType, deliveryLimit };
  return new ContainerModule(({ bind }) => {
    const exchanges = { ...DEFAULT_EXCHANGES, ...options.exchanges };
    const connection = new AmqpConnection(options.url, undefined, options.connectionName);
    const bus = new AmqpBus(connection, {
      ...declaration,
      exchanges,
      mandatoryEvents: options.mandatoryEvents ?? false,
      ...(options.confirmTimeoutMs ? { confirmTimeoutMs: options.confirmTimeoutMs } : {}),
    });
    const source = new AmqpSource(connection, {
      ...declaration,
      exchanges,
      ...(options.retryDelayMs ? { retryDelayMs: options.retryDelayMs } : {}),
    });
    bind(TOKENS.Exchanges).toConstantValue(exchanges); // job handles and records name the queues this module uses
    bind(AmqpConnection).toConstantValue(connection);
    bind(TOKENS.MessageBus).toConstantValue(bus);
    bind(AmqpBus).toConstantValue(bus);
    bind(TOKENS.MessageSource).toConstantValue(source);
    bind(AmqpSource).toConstantValue(source);
    // The connection logs its losses through the relay's Logger (the container's).
    bindRelay(bind, AmqpBus, options.relay, (logger) => connection.logTo(logger));
  });
}
