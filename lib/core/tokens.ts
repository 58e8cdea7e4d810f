// Inversify service identifiers. Symbol.for, so two copies of the package still agree.

/**
 * Tokens under which adapters bind the ports.
 * @example container.bind(TOKENS.Clock).toConstantValue({ now: () => fixedTime })
 */
export const TOKENS = {
  Clock: Symbol.for('usecasecore.Clock'),
  UnitOfWork: Symbol.for('usecasecore.UnitOfWork'),
  IdempotencyStore: Symbol.for('usecasecore.IdempotencyStore'),
  AuditStore: Symbol.for('usecasecore.AuditStore'),
  Outbox: Symbol.for('usecasecore.Outbox'),
  Inbox: Symbol.for('usecasecore.Inbox'),
  MessageBus: Symbol.for('usecasecore.MessageBus'),
  MessageSource: Symbol.for('usecasecore.MessageSource'),
  Relay: Symbol.for('usecasecore.Relay'),
  JobStore: Symbol.for('usecasecore.JobStore'),
  /** Where processes live (`usecasecore/processes`). */
  ProcessStore: Symbol.for('usecasecore.ProcessStore'),
  Telemetry: Symbol.for('usecasecore.Telemetry'),
  Logger: Symbol.for('usecasecore.Logger'),
  /** The exchange names queues are named after (`Exchanges`); amqpModule binds its own, the default otherwise. */
  Exchanges: Symbol.for('usecasecore.Exchanges'),
} as const;
