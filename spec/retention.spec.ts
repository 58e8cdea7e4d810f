// Retention on memory, PGlite and Postgres: purges take only what is old enough, and never an unsent or parked row.
import { randomUUID } from 'node:crypto';
import { Container } from 'inversify';
import type { Knex } from 'knex';
import { KnexIdempotencyStore, KnexInbox, KnexOutbox, KnexUnitOfWork, tables } from '../adapters/knex/index.js';
import {
  MemoryIdempotencyStore,
  MemoryInbox,
  MemoryOutbox,
  MemoryUnitOfWork,
  memoryModule,
} from '../adapters/memory/index.js';
import {
  UseCaseError,
  retention,
  type IdempotencyStore,
  type Inbox,
  type Outbox,
  type OutboxMessage,
  type UnitOfWork,
} from '../lib/index.js';
import { dropSchema, freshSchema, postgres, sharedPglite } from './db.js';
import { expect } from './helpers.js';

const DAY = 86_400_000;
const START = Date.parse('2026-01-01T00:00:00Z');

/** A clock the spec moves by hand. */
function manualClock() {
  return {
    at: START,
    now() {
      return this.at;
    },
  };
}

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

type Clock = ReturnType<typeof manualClock>;

/** The suite, on the ports `make` gives; it skips when `available` gives undefined. */
function retentionSuite(
  name: string,
  make: (clock: Clock) => Promise<Ports>,
  available?: () => Promise<unknown>,
): void {
  describe(`retention on ${name}`, () => {
    let clock: Clock, ports: Ports;
    before(async function () {
      if (available && !(await available())) this.skip();
    });
    beforeEach(async () => {
      clock = manualClock();
      ports = await make(clock);
    });
    afterEach(() => ports.close());

    it('should purge only sent outbox rows older than the cut-off, never unsent, in-flight or parked', async () => {
      const { uow, outbox } = ports;
      const [oldSent, youngSent, unsent, inFlight, parked] = [
        'old-sent',
        'young-sent',
        'unsent',
        'in-flight',
        'parked',
      ].map(message);
      await uow.transaction(
        () => outbox.add([oldSent!, youngSent!, unsent!, inFlight!, parked!]),
        () => true,
      );
      expect(await outbox.claim(10)).to.have.length(5);
      await outbox.markSent([oldSent!.id]);
      await outbox.release([unsent!.id]);
      await outbox.markFailed(parked!.id, 'unroutable', true);
      clock.at = START + 5 * DAY;
      await outbox.markSent([youngSent!.id]);
      clock.at = START + 8 * DAY; // old-sent went 8 days ago, young-sent 3; every row occurred 8 days ago

      expect(await outbox.purgeSent(7 * DAY)).to.equal(1);
      expect(await ports.counts()).to.deep.equal({ unsent: 2, parked: 1, sent: 1 });
      expect(await outbox.purgeSent(0), 'a zero cut-off takes every sent row, and only those').to.equal(1);
      expect(await ports.counts()).to.deep.equal({ unsent: 2, parked: 1, sent: 0 });
      // (the knex in-flight row's 30 s lease ran out in those 8 days, so a relay may take it again: no assertion)
      expect(
        (await outbox.claim(10)).map((m) => m.type),
        'unsent rows still flow',
      ).to.include('unsent');
    });

    it('should forget inbox records older than the cut-off, and only those', async () => {
      const { inbox } = ports;
      expect(await inbox.record('billing', 'm-old')).to.equal(true);
      clock.at = START + 10 * DAY;
      expect(await inbox.record('billing', 'm-young')).to.equal(true);
      clock.at = START + 31 * DAY;
      expect(await inbox.purge(30 * DAY)).to.equal(1);
      expect(await inbox.record('billing', 'm-young'), 'still remembered').to.equal(false);
      expect(await inbox.record('billing', 'm-old'), 'forgotten').to.equal(true);
    });

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
      await idempotency.claim({ scope: 't', key: 'abandoned' }, 'f', 1_000);
      clock.at = START + 40 * DAY;
      await idempotency.claim({ scope: 't', key: 'live' }, 'f', 60_000);

      const cleanup = retention(
        { outbox, inbox, idempotency },
        { outboxSentMs: 7 * DAY, inboxMs: 30 * DAY, idempotency: true },
      );
      try {
        expect(await cleanup.runOnce()).to.deep.equal({ outbox: 1, inbox: 1, idempotency: 1 });
        expect(await cleanup.runOnce()).to.deep.equal({ outbox: 0, inbox: 0, idempotency: 0 });
        expect(await ports.counts()).to.deep.equal({ unsent: 1, parked: 0, sent: 0 });
      } finally {
        cleanup.stop();
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
  return async (clock: Clock): Promise<Ports> => {
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

describe('retention()', () => {
  it('should purge on its timer until stopped', async () => {
    const clock = manualClock(),
      uow = new MemoryUnitOfWork(),
      outbox = new MemoryOutbox(uow, clock);
    const sent = message('sent');
    await outbox.add([sent]);
    await outbox.claim(1);
    await outbox.markSent([sent.id]);
    clock.at = START + 8 * DAY;
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
    cleanup.stop();
    const stoppedAt = calls;
    await new Promise((resolve) => setTimeout(resolve, 10)); // proving that nothing runs needs some time to pass
    expect(calls).to.equal(stoppedAt);
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
      cleanup.stop();
    }
  });

  it("should take a container's bound ports", async () => {
    const clock = manualClock(),
      container = new Container();
    container.load(memoryModule({ clock }));
    const outbox = container.get(MemoryOutbox),
      sent = message('sent');
    await outbox.add([sent]);
    await outbox.claim(1);
    await outbox.markSent([sent.id]);
    clock.at = START + DAY;
    const cleanup = retention(container, { outboxSentMs: 0, inboxMs: 0, idempotency: true });
    try {
      expect(await cleanup.runOnce()).to.deep.equal({ outbox: 1, inbox: 0, idempotency: 0 });
    } finally {
      cleanup.stop();
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
      cleanup.stop();
    }
  });

  const misuses: Array<[string, () => unknown, string]> = [
    ['nothing to do', () => retention({}, {}), 'misuse'],
    ['an outbox without purgeSent', () => retention({ outbox: {} }, { outboxSentMs: DAY }), 'missing_port'],
    ['no inbox', () => retention({}, { inboxMs: DAY }), 'missing_port'],
    ['no idempotency store', () => retention({}, { idempotency: true }), 'missing_port'],
    ['a negative age', () => retention({ outbox: { purgeSent: async () => 0 } }, { outboxSentMs: -1 }), 'misuse'],
  ];
  for (const [what, call, kind] of misuses) {
    it(`should throw UseCaseError('${kind}') for ${what}`, () => {
      expect(call).to.throw(UseCaseError).with.property('kind', kind);
    });
  }
});
