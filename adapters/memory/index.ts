// Every port in memory, and the Inversify module that binds them: for tests and the quick start.
import { ContainerModule, type ContainerModuleLoadOptions, type ServiceIdentifier } from 'inversify';
import type { Clock } from '../../lib/core/ports.js';
import { bindRelay, type RelayOptions } from '../../lib/messaging/relay.js';
import { UseCaseError } from '../../lib/core/errors.js';
import { DEFAULT_EXCHANGES, queueNames, type Exchanges } from '../../lib/core/queues.js';
import { TOKENS } from '../../lib/core/tokens.js';
import { MemoryAuditStore } from './audit-store.js';
import { MemoryBus } from './bus.js';
import { MemoryIdempotencyStore } from './idempotency-store.js';
import { MemoryInbox } from './inbox.js';
import { MemoryJobStore } from './job-store.js';
import { MemoryProcessStore } from './process-store.js';
import { MemoryOutbox } from './outbox.js';
import { MemoryUnitOfWork } from './unit-of-work.js';

export { MemoryAuditStore } from './audit-store.js';
export { MemoryBus, type MemoryBusOptions, type Subscriber } from './bus.js';
export { MemoryIdempotencyStore } from './idempotency-store.js';
export { MemoryInbox } from './inbox.js';
export { MemoryJobStore } from './job-store.js';
export { MemoryProcessStore } from './process-store.js';
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
 * Binds every port to its memory adapter (singletons), plus the concrete classes for repositories and tests, and
 * `TOKENS.Clock` (`clock`, default `Date`) unless one is bound already: every store reads that one clock.
 * @example const container = new Container(); container.load(memoryModule());
 */
export function memoryModule(options: MemoryModuleOptions = {}): ContainerModule {
  return new ContainerModule(({ bind, isBound }) => {
    if (options.clock && isBound(TOKENS.Clock)) {
      throw new UseCaseError(
        'misuse',
        'memoryModule({ clock }): a Clock is bound already — give the clock once, to memoryModule or to TOKENS.Clock',
      );
    }
    if (!isBound(TOKENS.Clock)) bind(TOKENS.Clock).toConstantValue(options.clock ?? Date);
    const uow = new MemoryUnitOfWork();
    bind(MemoryUnitOfWork).toConstantValue(uow);
    bind(TOKENS.UnitOfWork).toService(MemoryUnitOfWork);
    bind(TOKENS.AuditStore).toConstantValue(new MemoryAuditStore(uow));
    const clocked = <T>(token: ServiceIdentifier<T>, make: (clock: Clock) => T) =>
      bind(token).toResolvedValue(make, [TOKENS.Clock]).inSingletonScope();
    clocked(MemoryOutbox, (clock) => new MemoryOutbox(uow, clock));
    bind(TOKENS.Outbox).toService(MemoryOutbox);
    clocked(TOKENS.IdempotencyStore, (clock) => new MemoryIdempotencyStore(uow, clock));
    clocked(TOKENS.Inbox, (clock) => new MemoryInbox(uow, clock));
    clocked(TOKENS.JobStore, (clock) => new MemoryJobStore(uow, clock));
    clocked(TOKENS.ProcessStore, (clock) => new MemoryProcessStore(uow, clock));
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

/** The bus names its job queues as the mediator does: from `TOKENS.Exchanges` when one is bound. */
function bindBus(bind: ContainerModuleLoadOptions['bind'], options: MemoryModuleOptions): void {
  bind(MemoryBus)
    .toResolvedValue(
      (exchanges: Exchanges | undefined) => new MemoryBus({ queues: queueNames(exchanges ?? DEFAULT_EXCHANGES) }),
      [{ serviceIdentifier: TOKENS.Exchanges, optional: true }],
    )
    .inSingletonScope();
  bind(TOKENS.MessageBus).toService(MemoryBus);
  bind(TOKENS.MessageSource).toService(MemoryBus);
  bindRelay(bind, MemoryBus, options.relay);
}
