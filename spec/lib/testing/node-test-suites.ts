// Runs two contract suites on the memory adapters under node:test (spawned by node-test.spec.ts, not by mocha).
import { describe, it } from 'node:test';
import { MemoryBus, MemoryInbox, MemoryUnitOfWork } from '../../../adapters/memory/index.js';
import { runInboxContract, runMessagingContract } from '../../../lib/testing/index.js';

runInboxContract({ describe, it }, 'memory under node:test', async () => {
  const uow = new MemoryUnitOfWork();
  return { uow, inbox: new MemoryInbox(uow), close: async () => undefined };
});
runMessagingContract({ describe, it }, 'memory under node:test', async () => {
  const bus = new MemoryBus();
  return {
    bus,
    source: bus,
    close: async () => undefined,
    deadLetters: async (queue) =>
      bus.deadLetters(queue).map((d) => ({ id: d.message.id, attempt: d.attempts, reason: d.reason })),
  };
});
