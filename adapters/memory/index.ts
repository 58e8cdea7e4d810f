// Every port in memory, and the Inversify module that binds them: for tests and the quick start.
import { ContainerModule, type ContainerModuleLoadOptions } from 'inversify';
import type { Clock } from '../../lib/core/ports.js';
import { bindRelay, type RelayOptions } from '../../lib/messaging/relay.js';
import { TOKENS } from '../../lib/core/tokens.js';
import { MemoryAuditStore } from './audit-store.js';
import { MemoryBus } from './bus.js';
import { MemoryIdempotencyStore } from './idempotency-store.js';
import { MemoryInbox } from './inbox.js';
import { MemoryJobStore } from './job-store.js';
import { MemoryOutbox } from './outbox.js';
import { MemoryUnitOfWork } from './unit-of-work.js';

export { MemoryAuditStore } from './audit-store.js';
export { MemoryBus, type MemoryBusOptions, type Subscriber } from './bus.js';
export { MemoryIdempotencyStore } from './idempotency-store.js';
export { MemoryInbox } from './inbox.js';
export { MemoryJobStore } from './job-store.js';
export { MemoryOutbox } from './outbox.js';
export { MemoryTransaction, MemoryUnitOfWork, TransactionalMap } from './unit-of-work.js';

/** Options of `memoryModule()` and `memoryBusModule()`. */
export interface MemoryModuleOptions {
  readonly clock?: Clock;
  readonly relay?: RelayOptions;
  /** Also bind the in-process bus, source and relay. Default true; false when another module (amqpModule) does. */
  readonly bus?: boolean;
}

/**
 * Binds every port to its memory adapter (singletons), plus the concrete classes for repositories and tests.
 * @example const container = new Container(); container.load(memoryModule());
 */
export function memoryModule(options: MemoryModuleOptions = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    const clock = options.clock ?? Date;
    const uow = new MemoryUnitOfWork();
    const outbox = new MemoryOutbox(uow, clock);
    const constants: Array<[symbol | Function, unknown]> = [
      [TOKENS.Clock, clock],
      [TOKENS.UnitOfWork, uow],
      [MemoryUnitOfWork, uow],
      [TOKENS.IdempotencyStore, new MemoryIdempotencyStore(uow, clock)],
      [TOKENS.AuditStore, new MemoryAuditStore(uow)],
      [TOKENS.Outbox, outbox],
      [MemoryOutbox, outbox],
      [TOKENS.Inbox, new MemoryInbox(uow, clock)],
      [TOKENS.JobStore, new MemoryJobStore(uow, clock)],
    ];
    for (const [token, value] of constants) bind(token as symbol).toConstantValue(value);
    if (options.bus !== false) bindBus(bind, options);
  });
}

/**
 * Binds only the in-process bus and a relay over whatever Outbox is bound (e.g. the knex one).
 * @example container.load(knexModule({ knex }), memoryBusModule());
 */
export function memoryBusModule(options: MemoryModuleOptions = {}): ContainerModule {
  return new ContainerModule(({ bind }) => bindBus(bind, options));
}

function bindBus(bind: ContainerModuleLoadOptions['bind'], options: MemoryModuleOptions): void {
  const bus = new MemoryBus();
  bind(TOKENS.MessageBus).toConstantValue(bus);
  bind(TOKENS.MessageSource).toConstantValue(bus);
  bind(MemoryBus).toConstantValue(bus);
  bindRelay(bind, bus, options.relay);
}
