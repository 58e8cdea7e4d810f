// The memory adapters against every port contract.
import { MemoryAuditStore, MemoryIdempotencyStore, MemoryInbox, MemoryOutbox, MemoryUnitOfWork, TransactionalMap } from '../../adapters/memory/index.js';
import { auditStoreContract } from './audit-store.contract.js';
import { idempotencyStoreContract } from './idempotency-store.contract.js';
import { inboxContract } from './inbox.contract.js';
import { outboxContract } from './outbox.contract.js';
import { unitOfWorkContract } from './unit-of-work.contract.js';

const closed = async () => undefined;

unitOfWorkContract('memory', async () => {
  const uow = new MemoryUnitOfWork();
  const table = new TransactionalMap<string, number>(uow);
  return { uow, close: closed, probe: { read: async (k) => table.get(k), write: async (k, v) => table.set(k, v) } };
});
idempotencyStoreContract('memory', async (clock) => {
  const uow = new MemoryUnitOfWork();
  return { uow, store: new MemoryIdempotencyStore(uow, clock), close: closed };
});
auditStoreContract('memory', async () => {
  const uow = new MemoryUnitOfWork();
  return { uow, store: new MemoryAuditStore(uow), close: closed };
});
outboxContract('memory', async () => {
  const uow = new MemoryUnitOfWork();
  return { uow, outbox: new MemoryOutbox(uow), close: closed };
});
inboxContract('memory', async () => {
  const uow = new MemoryUnitOfWork();
  return { uow, inbox: new MemoryInbox(uow), close: closed };
});
