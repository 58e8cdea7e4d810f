// The RabbitMQ adapters (amqplib) and the Inversify module that binds them.
import { ContainerModule } from 'inversify';
import { bindRelay, type RelayOptions } from '../../lib/relay.js';
import { TOKENS } from '../../lib/tokens.js';
import { AmqpBus } from './bus.js';
import { AmqpConnection } from './connection.js';
import { AmqpSource } from './source.js';
import { DEFAULT_EXCHANGES, type Exchanges } from './topology.js';

export { AmqpBus, type AmqpBusOptions } from './bus.js';
export { AmqpConnection, type AmqpBlocked, type AmqpRole } from './connection.js';
export { AmqpSource, type AmqpSourceOptions } from './source.js';
export { DEFAULT_EXCHANGES, assertQueue, type Exchanges } from './topology.js';

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
  readonly retryDelayMs?: (attempt: number) => number;
}

/**
 * Binds the MessageBus (publisher with confirms), the MessageSource (consumers) and a Relay over the bound Outbox,
 * on one `AmqpConnection` (two sockets: publishing and consuming; close it on shutdown, after `relay.stop()`).
 * @example
 * container.load(knexModule({ connection: process.env.DATABASE_URL }), amqpModule({ url: process.env.AMQP_URL! }));
 */
export function amqpModule(options: AmqpModuleOptions): ContainerModule {
  return new ContainerModule(({ bind }) => {
    const exchanges = { ...DEFAULT_EXCHANGES, ...options.exchanges };
    const connection = new AmqpConnection(options.url, undefined, options.connectionName);
    const bus = new AmqpBus(connection, {
      exchanges,
      mandatoryEvents: options.mandatoryEvents ?? false,
      ...(options.confirmTimeoutMs ? { confirmTimeoutMs: options.confirmTimeoutMs } : {}),
    });
    const source = new AmqpSource(connection, {
      exchanges,
      ...(options.retryDelayMs ? { retryDelayMs: options.retryDelayMs } : {}),
    });
    bind(AmqpConnection).toConstantValue(connection);
    bind(TOKENS.MessageBus).toConstantValue(bus);
    bind(AmqpBus).toConstantValue(bus);
    bind(TOKENS.MessageSource).toConstantValue(source);
    bind(AmqpSource).toConstantValue(source);
    // The connection logs its losses through the relay's Logger (the container's).
    bindRelay(bind, bus, options.relay, (logger) => connection.logTo(logger));
  });
}
