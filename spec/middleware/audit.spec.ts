// audit(): exactly one record per send that passed validation, whatever the outcome; success written in the business
// transaction; redacted payload; a per-tenant hash chain a verifier can check (DESIGN "Guarantees" 7;
// RELIABILITY 29, 30).
import { injectable } from 'inversify';
import * as v from 'valibot';
import { TransactionalMap } from '../../adapters/memory/index.js';
import {
  Command,
  fail,
  handles,
  lifecycle,
  notFound,
  ok,
  type Context,
  type Handler,
  type RequestClass,
  type Result,
} from '../../lib/core/index.js';
import { GENESIS_HASH, chainHash, verifyAuditChain, type AuditRecord } from '../../lib/audit/index.js';
import {
  audit,
  everyone,
  guard,
  idempotency,
  policy,
  publish,
  transition,
  unitOfWork,
  validation,
} from '../../middleware/index.js';
import {
  ACCOUNT_HANDLERS,
  Deposit,
  Explode,
  FakeClock,
  GetBalance,
  Withdraw,
  alice,
  expect,
  wire,
} from '../support/helpers.js';

// ---- fixtures --------------------------------------------------------------------------------------------------

/** A command no rule allows (forbidden). */
class CloseAccount extends Command(v.object({ account: v.string() }))<void> {}
@handles(CloseAccount)
@injectable()
class CloseAccountHandler implements Handler<CloseAccount> {
  handle() {
    return ok(undefined);
  }
}

/** Parcels with a tiny lifecycle (invalid_transition, not_found). */
let parcels: TransactionalMap<string, string>;
const parcelLifecycle = lifecycle({ ship: { from: ['packed'], to: 'shipped' } });
class ShipParcel extends Command(v.object({ parcelId: v.string() }))<{ status: string }> {}
@handles(ShipParcel)
@injectable()
class ShipParcelHandler implements Handler<ShipParcel, string | undefined> {
  load(cmd: ShipParcel) {
    return parcels.get(cmd.parcelId);
  }
  handle(cmd: ShipParcel, ctx: Context<ShipParcel, string | undefined>) {
    if (ctx.state === undefined) return notFound(`No parcel ${cmd.parcelId}`);
    parcels.set(cmd.parcelId, 'shipped');
    return ok({ status: 'shipped' });
  }
}

/** Succeeds, but a beforeCommit hook fails after audit's frame returned: the commit fails. */
class LateFail extends Command(v.object({ account: v.string() }))<void> {}
@handles(LateFail)
@injectable()
class LateFailHandler implements Handler<LateFail> {
  handle(cmd: LateFail, ctx: Context<LateFail>) {
    ctx.beforeCommit(() => {
      throw new Error('commit failed');
    });
    return ok(undefined);
  }
}

/** A request full of secrets, with its own sensitive field and routing name. */
const passwordsSeen: string[] = [];
class SignUp extends Command(
  v.object({
    email: v.string(),
    password: v.string(),
    note: v.string(),
    profile: v.object({
      displayName: v.string(),
      apiToken: v.string(),
      card: v.object({ number: v.string(), cvv: v.string() }),
      cardNumber: v.string(),
    }),
    headers: v.object({ Authorization: v.string() }),
    sessions: v.array(v.object({ token: v.string(), device: v.string() })),
  }),
)<{ email: string }, 'email_taken'> {
  static readonly type = 'users.sign-up';
  static readonly sensitive = ['note'];
}
@handles(SignUp)
@injectable()
class SignUpHandler implements Handler<SignUp> {
  handle(cmd: SignUp) {
    passwordsSeen.push(cmd.password);
    if (cmd.email === 'crash@example.com') throw new Error('mailer down');
    if (cmd.email === 'taken@example.com') return fail('email_taken');
    if (cmd.email === 'declined@example.com') {
      const { card } = cmd.profile;
      return fail('email_taken', undefined, `Card ${card.number} (cvv ${card.cvv}) declined: ${cmd.note}`);
    }
    return ok({ email: cmd.email });
  }
}

const signUpInput = (email: string) => ({
  email,
  password: 'hunter2',
  note: 'private remark',
  profile: {
    displayName: 'Ada',
    apiToken: 'tok_live_123',
    card: { number: '4242424242424242', cvv: '123' },
    cardNumber: '4000056655665556',
  },
  headers: { Authorization: 'Bearer eyJhbGciOi' },
  sessions: [
    { token: 'sess_abc', device: 'phone' },
    { token: 'sess_def', device: 'laptop' },
  ],
});
const SECRETS = [
  'hunter2',
  'private remark',
  'tok_live_123',
  '4242424242424242',
  '123"',
  '4000056655665556',
  'Bearer',
  'sess_abc',
  'sess_def',
];

const rules = ([Deposit, Withdraw, Explode, GetBalance, ShipParcel, LateFail, SignUp] as RequestClass[]).map((t) =>
  everyone(t),
);

function setup(clock = new FakeClock()) {
  passwordsSeen.length = 0;
  const w = wire({
    handlers: [...ACCOUNT_HANDLERS, CloseAccountHandler, ShipParcelHandler, LateFailHandler, SignUpHandler],
    middleware: [
      validation(),
      unitOfWork(),
      audit(),
      idempotency(),
      policy(rules),
      transition([guard(ShipParcel, parcelLifecycle, 'ship', (s: string | undefined) => s)]),
      publish(),
    ],
    memory: { clock },
  });
  parcels = new TransactionalMap(w.uow);
  parcels.set('p-new', 'new');
  parcels.set('p-packed', 'packed');
  return w;
}
type Wired = ReturnType<typeof setup>;

// ---- specs -----------------------------------------------------------------------------------------------------

describe('audit()', () => {
  describe('one record per send that passed validation', () => {
    interface Case {
      readonly name: string;
      readonly prepare?: (w: Wired) => Promise<unknown>;
      readonly send: (w: Wired) => Promise<Result<unknown, string>>;
      readonly rejects?: RegExp;
      readonly expected: Partial<AuditRecord>;
    }
    const cases: Case[] = [
      {
        name: 'ok',
        send: (w) => w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), alice),
        expected: { outcome: 'ok', code: undefined, replayed: undefined },
      },
      {
        name: 'a domain failure (with its code)',
        send: (w) => w.mediator.send(Withdraw.from({ account: 'empty', amount: 5 }), alice),
        expected: { outcome: 'domain', code: 'insufficient_funds' },
      },
      {
        name: 'forbidden',
        send: (w) => w.mediator.send(CloseAccount.from({ account: 'a' }), alice),
        expected: { outcome: 'forbidden', type: 'CloseAccount' },
      },
      {
        name: 'invalid_transition',
        send: (w) => w.mediator.send(ShipParcel.from({ parcelId: 'p-new' }), alice),
        expected: { outcome: 'invalid_transition' },
      },
      {
        name: 'not_found',
        send: (w) => w.mediator.send(ShipParcel.from({ parcelId: 'p-missing' }), alice),
        expected: { outcome: 'not_found' },
      },
      {
        name: 'a replay (replayed: true)',
        prepare: (w) => w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), { ...alice, idempotencyKey: 'k1' }),
        send: (w) => w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), { ...alice, idempotencyKey: 'k1' }),
        expected: { outcome: 'ok', replayed: true },
      },
      {
        name: 'a replayed domain failure',
        prepare: (w) =>
          w.mediator.send(Withdraw.from({ account: 'empty', amount: 5 }), { ...alice, idempotencyKey: 'k2' }),
        send: (w) =>
          w.mediator.send(Withdraw.from({ account: 'empty', amount: 5 }), { ...alice, idempotencyKey: 'k2' }),
        expected: { outcome: 'domain', code: 'insufficient_funds', replayed: true },
      },
      {
        name: 'idempotency_mismatch',
        prepare: (w) => w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), { ...alice, idempotencyKey: 'k3' }),
        send: (w) => w.mediator.send(Deposit.from({ account: 'a', amount: 6 }), { ...alice, idempotencyKey: 'k3' }),
        // Its message names the key, which records never hold (RELIABILITY 13).
        expected: {
          outcome: 'idempotency_mismatch',
          reason: 'Idempotency key "[REDACTED]" was used with another request — use a new key for a new request',
        },
      },
      {
        name: 'an exception (outcome error, the promise rejects)',
        send: (w) => w.mediator.send(Explode.from({ account: 'a' }), alice),
        rejects: /boom/,
        expected: { outcome: 'error', code: undefined },
      },
    ];
    for (const c of cases) {
      it(`should write exactly one record for ${c.name}`, async () => {
        const w = setup();
        await c.prepare?.(w);
        const before = (await w.audit.list()).length;
        let result: Result<unknown, string> | undefined;
        if (c.rejects) await expect(c.send(w)).to.be.rejectedWith(Error, c.rejects);
        else result = await c.send(w);
        const records = (await w.audit.list()).slice(before);
        expect(records).to.have.length(1);
        expect(records[0]).to.include({ actor: 'alice', tenant: 'default', ...c.expected });
        // Why it failed: the failure's message; none for a success, nor for an exception (its message may hold SQL).
        if (!('reason' in c.expected)) {
          expect(records[0]!.reason).to.equal(result?.ok === false ? result.failure.message : undefined);
        }
        if (result?.ok === false) expect(records[0]!.reason).to.be.a('string').that.is.not.empty;
        expect(verifyAuditChain(await w.audit.list({ tenant: 'default' })).ok).to.equal(true);
      });
    }

    it('should write no record for a validation failure (payload or idempotency key)', async () => {
      const w = setup();
      expect((await w.mediator.send(Deposit.from({ account: 'a', amount: 'x' }), alice)).ok).to.equal(false);
      expect(
        (await w.mediator.send(Deposit.from({ account: 'a', amount: 1 }), { ...alice, idempotencyKey: '' })).ok,
      ).to.equal(false);
      expect((await w.mediator.send(SignUp.from({ email: 'x' }), alice)).ok).to.equal(false);
      expect(await w.audit.list()).to.have.length(0);
    });

    it('should write no record for a query (queries skip audit)', async () => {
      const w = setup();
      expect((await w.mediator.send(GetBalance.from({ account: 'a' }), alice)).ok).to.equal(true);
      expect(await w.audit.list()).to.have.length(0);
    });

    it('should roll back the success record when the transaction fails after it was written, and record the error', async () => {
      const w = setup();
      await expect(w.mediator.send(LateFail.from({ account: 'a' }), alice)).to.be.rejectedWith(Error, 'commit failed');
      const records = await w.audit.list();
      expect(records.map((r) => r.outcome)).to.deep.equal(['error']);
      expect(records[0]!.seq).to.equal(1);
      expect(verifyAuditChain(records).ok).to.equal(true);
    });
  });

  it('should record actor, tenant, type, request id, time and payload', async () => {
    const clock = new FakeClock(Date.parse('2026-03-04T05:06:07.008Z'));
    const w = setup(clock);
    await w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), {
      actor: { id: 'alice' },
      tenant: 't-9',
      requestId: 'req-42',
    });
    await w.mediator.send(Deposit.from({ account: 'a', amount: 6 }));
    await w.mediator.send(Deposit.from({ account: 'a', amount: 7 }));
    const [first, second, third] = await w.audit.list();
    expect(first).to.deep.include({
      tenant: 't-9',
      actor: 'alice',
      type: 'Deposit',
      requestId: 'req-42',
      outcome: 'ok',
      at: '2026-03-04T05:06:07.008Z',
      payload: { account: 'a', amount: 5 },
      seq: 1,
      prevHash: GENESIS_HASH,
    });
    expect(first!.id).to.match(/^[0-9a-f-]{36}$/);
    expect(second).to.deep.include({ tenant: 'default', actor: null, type: 'Deposit', outcome: 'ok', seq: 1 });
    // Without a given request id, each send gets its own.
    expect(second!.requestId).to.be.a('string').that.is.not.empty;
    expect(third!.requestId).to.be.a('string').that.is.not.empty;
    expect(second!.requestId).not.to.equal(third!.requestId);
    expect(new Set([first!.id, second!.id, third!.id]).size).to.equal(3);
  });

  describe('redaction', () => {
    it("should redact password/token/authorization/card fields at any depth and the request's sensitive fields", async () => {
      const w = setup();
      expect(await w.mediator.send(SignUp.from(signUpInput('ada@example.com')), alice)).to.deep.equal({
        ok: true,
        value: { email: 'ada@example.com' },
      });
      const [record] = await w.audit.list();
      expect(record!.type).to.equal('users.sign-up');
      expect(record!.payload).to.deep.equal({
        email: 'ada@example.com',
        password: '[REDACTED]',
        note: '[REDACTED]',
        profile: { displayName: 'Ada', apiToken: '[REDACTED]', card: '[REDACTED]', cardNumber: '[REDACTED]' },
        headers: { Authorization: '[REDACTED]' },
        sessions: [
          { token: '[REDACTED]', device: 'phone' },
          { token: '[REDACTED]', device: 'laptop' },
        ],
      });
      expect(passwordsSeen).to.deep.equal(['hunter2']); // the handler still gets the real value
    });

    it('should keep secrets out of every record, whatever the outcome', async () => {
      const w = setup();
      await w.mediator.send(SignUp.from(signUpInput('ada@example.com')), alice);
      await w.mediator.send(SignUp.from(signUpInput('taken@example.com')), alice);
      await w.mediator.send(SignUp.from(signUpInput('declined@example.com')), alice);
      await expect(w.mediator.send(SignUp.from(signUpInput('crash@example.com')), alice)).to.be.rejectedWith(
        Error,
        'mailer down',
      );
      const records = await w.audit.list();
      expect(records.map((r) => r.outcome)).to.deep.equal(['ok', 'domain', 'domain', 'error']);
      // The handler's message quoted the card and the note: crossed out as they are in the payload.
      expect(records[2]!.reason).to.equal('Card [REDACTED] (cvv [REDACTED]) declined: [REDACTED]');
      const text = JSON.stringify(records);
      for (const secret of SECRETS) expect(text).not.to.contain(secret);
      expect(verifyAuditChain(records).ok).to.equal(true);
    });
  });

  describe('hash chain', () => {
    let records: AuditRecord[];
    let outcomes: Record<string, number>;

    before(async () => {
      const w = setup();
      const sends = Array.from({ length: 1_000 }, (_, i) => {
        switch (i % 5) {
          case 0:
            return w.mediator.send(Deposit.from({ account: `acc-${i % 7}`, amount: i + 1 }), alice);
          case 1:
            return w.mediator.send(Withdraw.from({ account: 'empty', amount: 5 }), alice);
          case 2:
            return w.mediator.send(Deposit.from({ account: 'dup', amount: 1 }), { ...alice, idempotencyKey: 'dup' });
          case 3:
            return w.mediator.send(CloseAccount.from({ account: 'a' }), { actor: { id: `user-${i}` } });
          default:
            return w.mediator.send(Explode.from({ account: 'a' }), alice);
        }
      });
      const settled = await Promise.allSettled(sends);
      expect(settled.filter((s) => s.status === 'rejected')).to.have.length(200);
      records = await w.audit.list({ tenant: 'default', order: 'asc' });
      outcomes = records.reduce<Record<string, number>>(
        (acc, r) => ({ ...acc, [r.outcome]: (acc[r.outcome] ?? 0) + 1 }),
        {},
      );
    });

    it('should pass verification on 1,000 records from concurrent sends in one tenant', () => {
      expect(records).to.have.length(1_000);
      expect(outcomes).to.deep.equal({ ok: 400, domain: 200, forbidden: 200, error: 200 });
      expect(records.filter((r) => r.replayed === true)).to.have.length(199);
      expect(verifyAuditChain(records)).to.deep.equal({ ok: true, count: 1_000 });
    });

    const copy = () => records.map((r) => ({ ...r }));
    const tampers: Array<[string, () => AuditRecord[], number, RegExp]> = [
      [
        'an edited payload',
        () => {
          const c = copy();
          c[500] = { ...c[500]!, payload: { account: 'acc-1', amount: 1_000_000 } };
          return c;
        },
        500,
        /edited/,
      ],
      [
        'an edited outcome of the first record',
        () => {
          const c = copy();
          c[0] = { ...c[0]!, outcome: 'ok' === c[0]!.outcome ? 'forbidden' : 'ok' };
          return c;
        },
        0,
        /edited/,
      ],
      [
        'an edited actor of the last record',
        () => {
          const c = copy();
          c[999] = { ...c[999]!, actor: 'mallory' };
          return c;
        },
        999,
        /edited/,
      ],
      [
        'an edit whose own hash was recomputed',
        () => {
          const c = copy();
          const edited = { ...c[500]!, actor: 'mallory' };
          c[500] = { ...edited, hash: chainHash(edited.prevHash, edited.seq, edited) };
          return c;
        },
        501,
        /prevHash/,
      ],
      [
        'a deleted record',
        () => {
          const c = copy();
          c.splice(500, 1);
          return c;
        },
        500,
        /removed or reordered/,
      ],
      [
        'a deleted first record',
        () => {
          const c = copy();
          c.splice(0, 1);
          return c;
        },
        0,
        /removed or reordered/,
      ],
      [
        'two swapped records',
        () => {
          const c = copy();
          [c[500], c[501]] = [c[501]!, c[500]!];
          return c;
        },
        500,
        /removed or reordered/,
      ],
      [
        'the first and last records swapped',
        () => {
          const c = copy();
          [c[0], c[999]] = [c[999]!, c[0]!];
          return c;
        },
        0,
        /removed or reordered/,
      ],
      [
        'a swap with renumbered seqs',
        () => {
          const c = copy();
          [c[500], c[501]] = [
            { ...c[501]!, seq: 501 },
            { ...c[500]!, seq: 502 },
          ];
          return c;
        },
        500,
        /prevHash|edited/,
      ],
      [
        'an inserted (forged) record',
        () => {
          const c = copy();
          c.splice(300, 0, { ...c[300]!, id: 'forged' });
          return c;
        },
        300,
        /edited/,
      ],
      [
        'an inserted duplicate record',
        () => {
          const c = copy();
          c.splice(301, 0, { ...c[300]! });
          return c;
        },
        301,
        /removed or reordered/,
      ],
    ];
    for (const [name, tamper, index, reason] of tampers) {
      it(`should report the first broken index for ${name}`, () => {
        const result = verifyAuditChain(tamper());
        expect(result.ok).to.equal(false);
        expect(result).to.include({ index });
        expect(!result.ok && result.reason).to.match(reason);
        expect(verifyAuditChain(records).ok).to.equal(true); // the originals were not touched
      });
    }
  });

  it('should keep a separate chain per tenant', async () => {
    const w = setup();
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        w.mediator.send(Deposit.from({ account: 'a', amount: i + 1 }), { ...alice, tenant: `t${i % 3}` }),
      ),
    );
    for (const tenant of ['t0', 't1', 't2']) {
      const chain = await w.audit.list({ tenant, order: 'asc' });
      expect(chain).to.have.length(10);
      expect(chain.every((r) => r.tenant === tenant)).to.equal(true);
      expect(chain.map((r) => r.seq)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(chain[0]!.prevHash).to.equal(GENESIS_HASH);
      expect(verifyAuditChain(chain)).to.deep.equal({ ok: true, count: 10 });
    }
    // Mixing tenants is not a chain.
    expect(verifyAuditChain(await w.audit.list({ order: 'asc' })).ok).to.equal(false);
    // newest first, limited
    const latest = await w.audit.list({ tenant: 't1', order: 'desc', limit: 2 });
    expect(latest.map((r) => r.seq)).to.deep.equal([10, 9]);
  });

  // Regression: a rolled-back success record used to be spliced out after another send of the tenant had appended,
  // leaving a hole; records now join the chain as their transactions commit.
  it('should keep the chain verifiable when sends commit, fail and fail at commit concurrently', async () => {
    const w = setup();
    const outcomes = await Promise.allSettled([
      w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), { ...alice, idempotencyKey: 'k1' }),
      w.mediator.send(LateFail.from({ account: 'a' }), alice),
      w.mediator.send(Withdraw.from({ account: 'b', amount: 5 }), alice),
      w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), { ...alice, idempotencyKey: 'k1' }),
    ]);
    expect(outcomes.map((o) => o.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const records = await w.audit.list({ tenant: 'default', order: 'asc' });
    expect(records.map((r) => [r.type, r.outcome, r.replayed ?? false])).to.deep.equal([
      ['Deposit', 'ok', false],
      ['LateFail', 'error', false],
      ['Withdraw', 'domain', false],
      ['Deposit', 'ok', true],
    ]);
    expect(verifyAuditChain(records)).to.deep.equal({ ok: true, count: 4 });
  });
});
