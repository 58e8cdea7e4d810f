// The memory adapters against every port contract, through usecasecore/testing.
import {
  MemoryAuditStore,
  MemoryBus,
  MemoryIdempotencyStore,
  MemoryInbox,
  MemoryJobStore,
  MemoryProcessStore,
  MemoryOutbox,
  MemoryUnitOfWork,
  TransactionalMap,
} from '../../../adapters/memory/index.js';
import {
  runAuditStoreContract,
  runIdempotencyStoreContract,
  runInboxContract,
  runJobStoreContract,
  runProcessStoreContract,
  runMessagingContract,
  runOutboxContract,
  runUnitOfWorkContract,
} from '../../../lib/testing/index.js';

const mocha = { describe, it };
const closed = async () => undefined;

runUnitOfWorkContract(mocha, 'memory', async () => {
  const uow = new MemoryUnitOfWork();
  const table = new TransactionalMap<string, number>(uow);
  return { uow, close: closed, probe: { read: async (k) => table.get(k), write: async (k, v) => table.set(k, v) } };
});
runIdempotencyStoreContract(mocha, 'memory', async (clock) => {
  const uow = new MemoryUnitOfWork();
  return { uow, store: new MemoryIdempotencyStore(uow, clock), close: closed };
});
runAuditStoreContract(mocha, 'memory', async () => {
  const uow = new MemoryUnitOfWork();
  return { uow, store: new MemoryAuditStore(uow), close: closed };
});
runOutboxContract(
  mocha,
  'memory',
  async (clock) => {
    const uow = new MemoryUnitOfWork();
    return { uow, outbox: new MemoryOutbox(uow, clock), close: closed };
  },
  { purgeSent: true },
);
runInboxContract(
  mocha,
  'memory',
  async (clock) => {
    const uow = new MemoryUnitOfWork();
    return { uow, inbox: new MemoryInbox(uow, clock), close: closed };
  },
  { purge: true },
);
runJobStoreContract(
  mocha,
  'memory',
  async (clock) => {
    const uow = new MemoryUnitOfWork();
    return { uow, store: new MemoryJobStore(uow, clock), close: closed };
  },
  { purge: true },
);
runProcessStoreContract(
  mocha,
  'memory',
  async (clock) => {
    const uow = new MemoryUnitOfWork();
    return { uow, store: new MemoryProcessStore(uow, clock), close: closed };
  },
  { purge: true },
);
runMessagingContract(mocha, 'memory', async () => {
  const bus = new MemoryBus();
  return {
    bus,
    source: bus,
    close: closed,
    deadLetters: async (queue) =>
      bus.deadLetters(queue).map((d) => ({ id: d.message.id, attempt: d.attempts, reason: d.reason })),
  };
});
