// Retention on memory, PGlite and Postgres: runs that never overlap and stop cleanly, and bounded batched deletes.
// (What each purge may take is the Outbox and Inbox contracts' business: spec/adapters.)
import { randomUUID } from 'node:crypto';
import { Container } from 'inversify';
import type { Knex } from 'knex';
import {
  KnexIdempotencyStore,
  KnexInbox,
  KnexOutbox,
  KnexUnitOfWork,
  tables,
  type Tables,
} from '../../../adapters/knex/index.js';
import { PURGE_BATCH_SIZE } from '../../../adapters/knex/purge.js';
import {
  MemoryIdempotencyStore,
  MemoryInbox,
  MemoryOutbox,
  MemoryUnitOfWork,
  memoryModule,
} from '../../../adapters/memory/index.js';
import { ManualClock } from '../../../lib/testing/clock.js';
import { TOKENS, UseCaseError, type IdempotencyStore, type UnitOfWork } from '../../../lib/core/index.js';
import { retention } from '../../../lib/ops/index.js';
import type { Inbox, Outbox, OutboxMessage } from '../../../lib/messaging/index.js';
import type { JobStore } from '../../../lib/jobs/index.js';
import type { ProcessState, ProcessStore } from '../../../lib/processes/index.js';
import { dropSchema, freshSchema, postgres, sharedPglite } from '../../support/db.js';
import { expect } from '../../support/helpers.js';

const DAY = 86_400_000;
const START = Date.parse('2026-01-01T00:00:00Z');

interface Ports {
  uow: UnitOfWork;
  outbox: Outbox & { purgeSent(olderThanMs: number): Promise<number> };
  inbox: Inbox & { purge(olderThanMs: number): Promise<number> };
  idempotency: IdempotencyStore;
  /** What is left in the outbox. */
  counts(): Promise<{ unsent: number; parked: number; sent: number }>;
  close(): Promise<void>;
}

const message = (type: string): OutboxMessage => ({
  id: randomUUID(),
  kind: 'event',
  type,
  payload: { type },
  occurredAt: new Date(START).toISOString(),
  headers: {},
});

/** The suite, on the ports `make` gives; it skips when `available` gives undefined. */
function retentionSuite(
  name: string,
  make: (clock: ManualClock) => Promise<Ports>,
  available?: () => Promise<unknown>,
): void {
  describe(`retention on ${name}`, () => {
    let clock: ManualClock, ports: Ports;
    before(async function () {
      if (available && !(await available())) this.skip();
    });
    beforeEach(async function () {
      this.timeout(30_000); // the first case may start the shared PGlite and migrate it
      clock = new ManualClock(START);
      ports = await make(clock);
    });
    afterEach(() => ports.close());

    it('should run every configured purge once with runOnce(), and count what each removed', async () => {
      const { uow, outbox, inbox, idempotency } = ports;
      const [sent, waiting] = [message('sent'), message('waiting')];
      await uow.transaction(
        () => outbox.add([sent, waiting]),
        () => true,
      );
      await outbox.claim(1);
      await outbox.markSent([sent.id]);
      await inbox.record('billing', 'm-1');
      const stored = (key: string, ttlMs: number) =>
        uow.transaction(
          async () => {
            await idempotency.claim({ scope: 't', key }, 'f', 1_000);
            await idempotency.complete({ scope: 't', key }, 'f', { ok: true, value: key }, ttlMs);
          },
          () => true,
        );
      await stored('expired', 1_000);
      clock.set(START + 40 * DAY);
      await stored('live', 60_000);

      const cleanup = retention(
        { outbox, inbox, idempotency },
        { outboxSentMs: 7 * DAY, inboxMs: 30 * DAY, idempotency: true },
      );
      try {
        expect(await cleanup.runOnce()).to.deep.equal({ outbox: 1, inbox: 1, idempotency: 1, jobs: 0, processes: 0 });
        expect(await cleanup.runOnce()).to.deep.equal({ outbox: 0, inbox: 0, idempotency: 0, jobs: 0, processes: 0 });
        expect(await ports.counts()).to.deep.equal({ unsent: 1, parked: 0, sent: 0 });
      } finally {
        await cleanup.stop();
      }
    });
  });
}

retentionSuite('memory', async (clock) => {
  const uow = new MemoryUnitOfWork();
  const outbox = new MemoryOutbox(uow, clock);
  return {
    uow,
    outbox,
    inbox: new MemoryInbox(uow, clock),
    idempotency: new MemoryIdempotencyStore(uow, clock),
    counts: async () => ({ unsent: await outbox.pending(), parked: outbox.parked().length, sent: outbox.sent() }),
    close: async () => undefined,
  };
});

/** The knex adapters in a fresh schema of the database `open` gives (the suite skips when it gives undefined). */
function knexPorts(open: () => Promise<Knex | undefined>) {
  return async (clock: ManualClock): Promise<Ports> => {
    const db = (await open())!; // the suite skipped when there is none
    const options = await freshSchema(db);
    const t = tables(options),
      uow = new KnexUnitOfWork(db);
    const outbox = new KnexOutbox(uow, t.outbox, clock);
    return {
      uow,
      outbox,
      inbox: new KnexInbox(uow, t.inbox, clock),
      idempotency: new KnexIdempotencyStore(uow, t.idempotency, clock),
      counts: async () => {
        const { totals } = await outbox.status();
        return { unsent: totals.unsent, parked: totals.parked, sent: totals.sent };
      },
      close: () => dropSchema(db, options.schema),
    };
  };
}

retentionSuite('PGlite', knexPorts(sharedPglite));
let pg: Promise<Knex | undefined> | undefined;
const openPostgres = () => (pg ??= postgres());
retentionSuite('Postgres', knexPorts(openPostgres), openPostgres);

/** The three knex purges on rows the way a mature database holds them: more than two batches' worth. */
function batchedSuite(name: string, open: () => Promise<Knex | undefined>): void {
  describe(`batched purges on ${name}`, function () {
    this.timeout(60_000);
    const n = 2 * PURGE_BATCH_SIZE + 1; // two full batches and a short one
    const clock = new ManualClock(START + 100 * DAY);
    let db: Knex, schema: string, t: Tables, uow: KnexUnitOfWork, deletes: string[];
    const onQuery = (query: { sql: string }) => {
      if (/^\s*delete\b/i.test(query.sql)) deletes.push(query.sql);
    };
    before(async function () {
      const found = await open();
      if (!found) return this.skip();
      db = found;
    });
    beforeEach(async () => {
      ({ schema } = await freshSchema(db));
      t = tables({ schema });
      uow = new KnexUnitOfWork(db);
      deletes = [];
      db.on('query', onQuery);
    });
    afterEach(async () => {
      db.off('query', onQuery);
      await dropSchema(db, schema);
    });
    const old = new Date(START),
      young = new Date(START + 99 * DAY);

    /** `n` copies of `row` with ids `old-1`… in `column`, made in one statement. */
    const many = (table: string, column: string, row: Record<string, unknown>) => {
      const columns = Object.keys(row);
      return db.raw(
        `INSERT INTO ?? (??, ${columns.map(() => '??').join(', ')})
         SELECT 'old-' || g, ${columns.map(() => '?').join(', ')} FROM generate_series(1, ?) g`,
        [table, column, ...columns, ...Object.values(row), n] as Knex.RawBinding[],
      );
    };

    it('should purge sent outbox rows in bounded DELETE statements, keeping unsent, parked and young rows', async () => {
      const row = (id: string, sentAt: Date | null, parkedAt: Date | null = null) => ({
        id,
        kind: 'event',
        type: 't',
        payload: '{}',
        headers: '{}',
        occurred_at: old,
        sent_at: sentAt,
        parked_at: parkedAt,
      });
      const { id: _, ...sent } = row('', old);
      await many(t.outbox, 'id', sent);
      await db(t.outbox).insert([row('young', young), row('unsent', null), row('parked', null, old)]);
      expect(await new KnexOutbox(uow, t.outbox, clock).purgeSent(DAY)).to.equal(n);
      expect(deletes, 'one statement per batch').to.have.length(3);
      expect(await db(t.outbox).orderBy('id').pluck('id')).to.deep.equal(['parked', 'unsent', 'young']);
    });

    it('should purge inbox records in bounded DELETE statements, keeping young ones', async () => {
      await many(t.inbox, 'message_id', { consumer: 'billing', processed_at: old });
      await db(t.inbox).insert({ consumer: 'billing', message_id: 'young', processed_at: young });
      expect(await new KnexInbox(uow, t.inbox, clock).purge(DAY)).to.equal(n);
      expect(deletes).to.have.length(3);
      expect(await db(t.inbox).pluck('message_id')).to.deep.equal(['young']);
    });

    it('should reap idempotency records in bounded DELETE statements, keeping live records', async () => {
      const now = clock.now();
      const row = (key: string, expiresAt: number) => ({
        scope: 't',
        key,
        fingerprint: 'f',
        response: '{}',
        expires_at: expiresAt,
      });
      const { key: _, ...expired } = row('', now - 1);
      await many(t.idempotency, 'key', expired); // n expired records
      await db(t.idempotency).insert([row('live', now + DAY)]);
      expect(await new KnexIdempotencyStore(uow, t.idempotency, clock).reap()).to.equal(n);
      expect(deletes).to.have.length(3);
      expect(await db(t.idempotency).orderBy('key').pluck('key')).to.deep.equal(['live']);
    });
  });
}

batchedSuite('PGlite', sharedPglite);
batchedSuite('Postgres', openPostgres);

describe('retention()', () => {
  it('should purge on its timer until stopped', async () => {
    const clock = new ManualClock(START),
      uow = new MemoryUnitOfWork(),
      outbox = new MemoryOutbox(uow, clock);
    const sent = message('sent');
    await outbox.add([sent]);
    await outbox.claim(1);
    await outbox.markSent([sent.id]);
    clock.set(START + 8 * DAY);
    let calls = 0,
      purged!: (n: number) => void;
    const firstPurge = new Promise<number>((resolve) => {
      purged = resolve;
    });
    const watched = {
      async purgeSent(ms: number) {
        calls++;
        const n = await outbox.purgeSent(ms);
        if (n > 0) purged(n);
        return n;
      },
    };

    const cleanup = retention({ outbox: watched }, { outboxSentMs: 7 * DAY, everyMs: 1 });
    expect(await firstPurge).to.equal(1);
    await cleanup.stop();
    const stoppedAt = calls;
    await new Promise((resolve) => setTimeout(resolve, 10)); // proving that nothing runs needs some time to pass
    expect(calls).to.equal(stoppedAt);
  });

  /** A purge that waits until `open()`, counting its calls. */
  function gate() {
    let calls = 0,
      open!: () => void;
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    const purge = async () => {
      calls++;
      await opened;
      return 1;
    };
    return { purge, open, calls: () => calls };
  }

  it('should never overlap runs: a runOnce() or a tick during a run joins or skips it', async () => {
    const slow = gate();
    const cleanup = retention({ outbox: { purgeSent: slow.purge } }, { outboxSentMs: DAY, everyMs: 1 });
    try {
      const first = cleanup.runOnce(),
        second = cleanup.runOnce();
      await new Promise((resolve) => setTimeout(resolve, 20)); // ticks of the 1 ms timer come and go
      expect(slow.calls(), 'one run, however it was started').to.equal(1);
      slow.open();
      expect(await first).to.deep.equal({ outbox: 1, inbox: 0, idempotency: 0, jobs: 0, processes: 0 });
      expect(await second).to.deep.equal({ outbox: 1, inbox: 0, idempotency: 0, jobs: 0, processes: 0 });
    } finally {
      slow.open();
      await cleanup.stop();
    }
  });

  it('should stop a run under way after its current purge, and resolve stop() once it ended', async () => {
    const slow = gate();
    let reaped = 0;
    const cleanup = retention(
      { outbox: { purgeSent: slow.purge }, idempotency: { reap: async () => ++reaped } },
      { outboxSentMs: DAY, idempotency: true },
    );
    const run = cleanup.runOnce();
    let stopped = false;
    const stopping = cleanup.stop().then(() => {
      stopped = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(stopped, 'stop() waits for the purge under way').to.equal(false);
    slow.open();
    await stopping;
    expect(await run).to.deep.equal({ outbox: 1, inbox: 0, idempotency: 0, jobs: 0, processes: 0 });
    expect(reaped, 'the purge not started when stop() was called never runs').to.equal(0);
    await expect(cleanup.runOnce()).to.be.rejectedWith(UseCaseError, /retention was stopped/);
  });

  it('should report a failed timed run to onError and try again at the next tick', async () => {
    let calls = 0,
      reported!: (error: unknown) => void,
      retried!: () => void;
    const failure = new Promise<unknown>((resolve) => {
      reported = resolve;
    });
    const again = new Promise<void>((resolve) => {
      retried = resolve;
    });
    const flaky = {
      async reap() {
        if (++calls === 1) throw new Error('database down');
        retried();
        return 0;
      },
    };
    const cleanup = retention({ idempotency: flaky }, { idempotency: true, everyMs: 1, onError: reported });
    try {
      expect(await failure).to.have.property('message', 'database down');
      await again;
      expect(calls).to.be.at.least(2);
    } finally {
      await cleanup.stop();
    }
  });

  it("should take a container's bound ports", async () => {
    const clock = new ManualClock(START),
      container = new Container();
    container.load(memoryModule({ clock }));
    const outbox = container.get(MemoryOutbox),
      sent = message('sent');
    await outbox.add([sent]);
    await outbox.claim(1);
    await outbox.markSent([sent.id]);
    const jobs = container.get<JobStore>(TOKENS.JobStore);
    const at = new Date(START).toISOString();
    const job = { jobId: 'j-1', type: 'T', queue: 'q', tenant: 't', state: 'queued' as const, attempts: 0 };
    await jobs.add([{ ...job, enqueuedAt: at, runAt: at }]);
    await jobs.settle('j-1', { state: 'succeeded', result: null }, at);
    const processes = container.get<ProcessStore>(TOKENS.ProcessStore);
    const ended = (processId: string, state: ProcessState) => ({
      processId,
      type: 'Checkout',
      tenant: 't',
      state,
      input: {},
      steps: [],
      startedAt: at,
      updatedAt: at,
      ...(state === 'running' ? {} : { endedAt: at }),
    });
    for (const [id, state] of [
      ['p-done', 'completed'],
      ['p-failed', 'failed'],
      ['p-running', 'running'],
    ] as const)
      await processes.add(ended(id, state));
    clock.set(START + DAY);
    const cleanup = retention(container, {
      outboxSentMs: 0,
      inboxMs: 0,
      idempotency: true,
      jobsMs: 0,
      processesMs: 0,
    });
    try {
      expect(await cleanup.runOnce()).to.deep.equal({ outbox: 1, inbox: 0, idempotency: 0, jobs: 1, processes: 1 });
      expect(await jobs.status('j-1')).to.equal(undefined);
      const left = await processes.list();
      expect(left.map((p) => p.processId).sort(), 'failed and running ones stay').to.deep.equal([
        'p-failed',
        'p-running',
      ]);
    } finally {
      await cleanup.stop();
    }
  });

  it('should reject a run when a purge fails, after trying the others', async () => {
    let reaped = false;
    const cleanup = retention(
      {
        outbox: {
          purgeSent: async () => {
            throw new Error('outbox down');
          },
        },
        idempotency: {
          reap: async () => {
            reaped = true;
            return 0;
          },
        },
      },
      { outboxSentMs: DAY, idempotency: true },
    );
    try {
      await expect(cleanup.runOnce()).to.be.rejectedWith('outbox down');
      expect(reaped).to.equal(true);
    } finally {
      await cleanup.stop();
    }
  });

  const misuses: Array<[string, () => unknown, string]> = [
    ['nothing to do', () => retention({}, {}), 'misuse'],
    ['an outbox without purgeSent', () => retention({ outbox: {} }, { outboxSentMs: DAY }), 'missing_port'],
    ['no inbox', () => retention({}, { inboxMs: DAY }), 'missing_port'],
    ['no idempotency store', () => retention({}, { idempotency: true }), 'missing_port'],
    ['a process store without purge', () => retention({ processes: {} }, { processesMs: DAY }), 'missing_port'],
    ['a negative age', () => retention({ outbox: { purgeSent: async () => 0 } }, { outboxSentMs: -1 }), 'misuse'],
  ];
  for (const [what, call, kind] of misuses) {
    it(`should throw UseCaseError('${kind}') for ${what}`, () => {
      expect(call).to.throw(UseCaseError).with.property('kind', kind);
    });
  }
});
