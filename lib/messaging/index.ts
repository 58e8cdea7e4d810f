// usecasecore/messaging: the transactional outbox's relay, consumers and subscribers, queue names, and the ports a
// bus, a source or an outbox store implements.
export { createRelay, type RelayOptions } from './relay.js';
export { consume, subscribe, type ConsumerOptions, type Subscribed } from './consume.js';
export { DEFAULT_EXCHANGES, queueNames, type Exchanges, type QueueNames } from '../core/queues.js';
export type { Inbox, Outbox, OutboxMessage, ProcessMovement, Relay, Telemetry } from '../core/ports.js';
export type {
  BusState,
  Delivery,
  Disposition,
  MessageBus,
  MessageSource,
  MessagingTelemetry,
  PublishReport,
  QueueOptions,
  RelayStatus,
  RunningRelay,
} from './ports.js';
