// usecasecore/testing: the port contract suites for adapter authors, a settable clock, and settled().
export { runAuditStoreContract, type AuditStoreFixture } from './audit-store.contract.js';
export { ManualClock, manualClock, type Instant } from './clock.js';
export { withFixture, type Closable, type TestApi } from './harness.js';
export { runIdempotencyStoreContract, type IdempotencyStoreFixture } from './idempotency-store.contract.js';
export { runInboxContract, type InboxContractOptions, type InboxFixture } from './inbox.contract.js';
export { runJobStoreContract, type JobStoreContractOptions, type JobStoreFixture } from './job-store.contract.js';
export { runMessagingContract, type DeadLetter, type MessagingFixture } from './messaging.contract.js';
export {
  runProcessStoreContract,
  type ProcessStoreContractOptions,
  type ProcessStoreFixture,
} from './process-store.contract.js';
export { runOutboxContract, type OutboxContractOptions, type OutboxFixture } from './outbox.contract.js';
export { runUnitOfWorkContract, type Probe, type UnitOfWorkFixture } from './unit-of-work.contract.js';
export { settled } from './settled.js';
