// RELIABILITY.md scenarios that need no server of their own, on the run's shared PGlite: redaction in what is
// stored and logged (30), and hostile identifiers in the library's table options and the sample's routes (35).
// The ones on Postgres and real processes are in spec/reliability/postgres-*.spec.ts, RabbitMQ in
// spec/adapters/amqp/scenarios-*.spec.ts.
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Container, injectable } from 'inversify';
import type { Knex } from 'knex';
import * as v from 'valibot';
import { KnexAuditStore, KnexOutbox, knexModule, migrate, tables } from '../../adapters/knex/index.js';
import { memoryBusModule } from '../../adapters/memory/index.js';
import { ManualClock } from '../../lib/testing/index.js';
import {
  Command,
  Event,
  TOKENS,
  createMediator,
  fail,
  handles,
  ok,
  UseCaseError,
  type Context,
  type Handler,
  type Mediator,
  type Result,
} from '../../lib/core/index.js';
import { retention } from '../../lib/ops/index.js';
import { verifyAuditChain } from '../../lib/audit/index.js';
import type { RunningRelay } from '../../lib/messaging/index.js';
import { everyone, recommendedStack } from '../../middleware/index.js';
import { createApp } from '../../samples/app.js';
import { createSampleTables, sqlRepositories } from '../../samples/sql.js';
import { dropSchema, freshSchema, sharedPglite } from '../support/db.js';
import { Deposit, alice, expect, wire } from '../support/helpers.js';

// ---- fixtures --------------------------------------------------------------------------------------------------

const secrets = {
  password: 'hunter2-correct-horse',
  apiToken: 'tok_live_51abcsecret',
  authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.secret',
  cardNumber: '4242424242424242',
  cvc: '987',
};
const SECRETS = Object.values(secrets);
/**
 * Whether `text` holds `secret` as itself, not as a piece of a longer token: the 3-digit cvc turns up by chance in
 * hashes, ids and a timestamp's milliseconds.
 */
const leaks = (text: string, secret: string) =>
  new RegExp(`(?<![0-9A-Za-z.])${secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![0-9A-Za-z])`).test(text);

class SignUp extends Command(
  v.object({
    email: v.pipe(v.string(), v.email()),
    password: v.pipe(v.string(), v.minLength(8)),
    apiToken: v.pipe(v.string(), v.regex(/^tok_[a-z0-9_]+$/)),
    headers: v.object({ Authorization: v.string() }),
    card: v.object({ number: v.pipe(v.string(), v.regex(/^\d{16}$/)), cvc: v.string() }),
  }),
)<{ email: string }, 'email_taken'> {
  static readonly type = 'scn.sign-up';
}
class SignedUp extends Event(v.object({ email: v.string() })) {
  static readonly type = 'scn.signed-up';
}

@handles(SignUp)
@injectable()
class SignUpHandler implements Handler<SignUp> {
  handle(cmd: SignUp, ctx: Context<SignUp>) {
    if (cmd.email.startsWith('crash')) throw new Error('mailer down');
    if (cmd.email.startsWith('taken')) return fail('email_taken', { email: cmd.email });
    ctx.publish(new SignedUp({ email: cmd.email }));
    return ok({ email: cmd.email });
  }
}

const signUp = (email: string, overrides: Partial<typeof secrets> = {}) => {
  const s = { ...secrets, ...overrides };
  return {
    email,
    password: s.password,
    apiToken: s.apiToken,
    headers: { Authorization: s.authorization },
    card: { number: s.cardNumber, cvc: s.cvc },
  };
};

/** Collects what the process logs (console and the standard streams) while `work` runs. */
async function logsOf(work: () => Promise<void>): Promise<string> {
  const lines: string[] = [];
  const methods = ['log', 'info', 'warn', 'error', 'debug'] as const;
  const consoles = methods.map((m) => [m, console[m]] as const);
  const [out, err] = [process.stdout.write, process.stderr.write];
  const capture = (...args: unknown[]) => void lines.push(args.map(String).join(' '));
  const swallow = ((chunk: unknown) => {
    capture(chunk);
    return true;
  }) as typeof process.stdout.write;
  for (const m of methods) console[m] = capture;
  process.stdout.write = swallow;
  process.stderr.write = swallow;
  try {
    await work();
  } finally {
    for (const [m, fn] of consoles) console[m] = fn;
    process.stdout.write = out;
    process.stderr.write = err;
  }
  return lines.join('\n');
}

const kindOf = (r: Result<unknown, string>) => (r.ok ? (r.replayed ? 'replayed' : 'ok') : r.failure.kind);

// ---- specs -----------------------------------------------------------------------------------------------------

describe('RELIABILITY scenarios in process (PGlite)', () => {
  let db: Knex;
  before(async () => {
    db = await sharedPglite();
  });

  describe('26 · no policy registered', () => {
    // "No rule for Deposit" and "the rule said no" must not look the same in the log.
    it('should audit a denial with its principal, command and reason', async () => {
      const w = wire({ middleware: recommendedStack({ rules: [] }) });
      const result = await w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), alice);
      if (result.ok) return expect.fail('a send with no rule must be denied');
      expect(result.failure.kind).to.equal('forbidden');
      const [record] = await w.audit.list();
      expect(record).to.include({ actor: 'alice', type: 'Deposit', outcome: 'forbidden' });
      expect(JSON.stringify(record), 'the reason').to.contain(result.failure.message);
    });
  });

  describe('30 · redaction', () => {
    let schema: string, mediator: Mediator, container: Container;
    const rows = async (table: string) =>
      (await db.raw(`SELECT * FROM ??`, [`${schema}.${table}`])).rows as Array<Record<string, unknown>>;
    const ann = (idempotencyKey?: string) => ({ actor: { id: 'ann' }, tenant: 'scn30', idempotencyKey });

    beforeEach(async () => {
      ({ schema } = await freshSchema(db));
      container = new Container();
      container.load(knexModule({ knex: db, schema }), memoryBusModule());
      mediator = createMediator(container, {
        handlers: [SignUpHandler],
        middleware: recommendedStack({ rules: [everyone(SignUp)] }),
      });
    });
    afterEach(async () => {
      await container.get<RunningRelay>(TOKENS.Relay).stop();
      await dropSchema(db, schema);
    });

    it('should store [REDACTED] for password, token, authorization and card fields, and log none', async () => {
      const outcomes: string[] = [];
      const logged = await logsOf(async () => {
        outcomes.push(kindOf(await mediator.send(SignUp.from(signUp('ada@example.com')), ann('k30-ok'))));
        outcomes.push(kindOf(await mediator.send(SignUp.from(signUp('taken@example.com')), ann('k30-taken'))));
        await mediator.send(SignUp.from(signUp('crash@example.com')), ann()).then(
          () => outcomes.push('no exception'),
          () => outcomes.push('exception'),
        );
      });
      expect(outcomes).to.deep.equal(['ok', 'domain', 'exception']);
      const audit = await rows('ucc_audit');
      expect(audit.map((r) => r.outcome)).to.have.members(['ok', 'domain', 'error']);
      for (const record of audit) {
        expect(record.payload).to.deep.equal({
          email: (record.payload as { email: string }).email,
          password: '[REDACTED]',
          apiToken: '[REDACTED]',
          headers: { Authorization: '[REDACTED]' },
          card: '[REDACTED]',
        });
      }
      const stored = JSON.stringify([audit, await rows('ucc_outbox')]);
      for (const secret of SECRETS) {
        expect(leaks(stored, secret), `${secret} in audit and outbox rows`).to.equal(false);
        expect(leaks(logged, secret), `${secret} in logs`).to.equal(false);
      }
    });

    it('should store no request secret with a key, and fingerprint the real payload', async () => {
      const first = await mediator.send(SignUp.from(signUp('ada@example.com')), ann('k30-1'));
      const refused = await mediator.send(SignUp.from(signUp('taken@example.com')), ann('k30-2'));
      expect([kindOf(first), kindOf(refused)]).to.deep.equal(['ok', 'domain']);
      const records = await rows('ucc_idempotency');
      expect(records.map((r) => r.key)).to.have.members(['k30-1', 'k30-2']);
      expect(JSON.parse(records.find((r) => r.key === 'k30-2')!.response as string)).to.deep.equal(refused);
      for (const secret of SECRETS) expect(leaks(JSON.stringify(records), secret), secret).to.equal(false);

      // The same request, its keys in another order: the same fingerprint, a replay.
      const { card, ...rest } = signUp('ada@example.com');
      const reordered = { card: { cvc: card.cvc, number: card.number }, ...rest };
      expect(await mediator.send(SignUp.from(reordered), ann('k30-1'))).to.deep.equal({ ...first, replayed: true });
      // Only a secret differs: another request (a fingerprint of the redacted payload would replay it).
      for (const other of [{ password: 'another-password' }, { cardNumber: '4000056655665556' }]) {
        expect(kindOf(await mediator.send(SignUp.from(signUp('ada@example.com', other)), ann('k30-1')))).to.equal(
          'idempotency_mismatch',
        );
      }
      // The audit chain hashes what it stores (redacted): it verifies from the database.
      const store = container.get<KnexAuditStore>(TOKENS.AuditStore);
      await store.seal();
      const chain = await store.list({ tenant: 'scn30', order: 'asc' });
      expect(chain).to.have.length(5);
      expect(verifyAuditChain(chain)).to.deep.equal({ ok: true, count: 5 });
      expect((await store.verify({ tenant: 'scn30' })).ok).to.equal(true);
    });

    // valibot's messages name the value they received ('… but received "tok_LIVE-…"'), and a failure reaches the
    // sample's 422 problem+json and any log of failures.
    it('should keep secret values out of validation failures', async () => {
      const badToken = 'tok_LIVE-Secret-Value!',
        badCard = '4242 4242 4242 4242';
      const result = await mediator.send(
        SignUp.from(signUp('ada@example.com', { apiToken: badToken, cardNumber: badCard })),
        ann(),
      );
      expect(result).to.have.nested.property('failure.kind', 'validation');
      expect(
        !result.ok && result.failure.kind === 'validation' && result.failure.issues.map((i) => i.path),
      ).to.have.members(['apiToken', 'card.number']);
      for (const secret of [badToken, badCard]) expect(JSON.stringify(result)).not.to.contain(secret);
    });
  });

  describe('35 · hostile identifiers', () => {
    class Note extends Command(v.object({ text: v.string() }))<{ text: string }> {}
    class Noted extends Event(v.object({ text: v.string() })) {
      static readonly type = 'scn.noted';
    }
    @handles(Note)
    @injectable()
    class NoteHandler implements Handler<Note> {
      handle(cmd: Note, ctx: Context<Note>) {
        ctx.publish(new Noted({ text: cmd.text }), { aggregateId: 'notes' });
        return ok({ text: cmd.text });
      }
    }

    it('should quote schema and prefix names through every store, relay and purge', async () => {
      // Mixed case: unquoted, Postgres would fold these names to lower case and find none of the tables.
      const schema = `Scn35_${randomUUID().slice(0, 8)}`;
      const prefix = 'Ucc35_';
      const container = new Container();
      const clock = new ManualClock(Date.now());
      try {
        await migrate(db, { schema, prefix });
        container.load(knexModule({ knex: db, schema, prefix, clock }), memoryBusModule());
        const mediator = createMediator(container, {
          handlers: [NoteHandler],
          middleware: recommendedStack({ rules: [everyone(Note)] }),
        });
        const sent = await mediator.send(Note.from({ text: 'hello' }), { tenant: 't35', idempotencyKey: 'k35' });
        expect(sent).to.deep.equal({ ok: true, value: { text: 'hello' } });
        expect(await mediator.send(Note.from({ text: 'hello' }), { tenant: 't35', idempotencyKey: 'k35' })).to.include({
          replayed: true,
        });
        await container.get<RunningRelay>(TOKENS.Relay).drain();
        const outbox = container.get(KnexOutbox);
        expect((await outbox.status()).totals).to.include({ unsent: 0, sent: 1, parked: 0 });
        clock.advance(1_000);
        const cleanup = retention(container, { outboxSentMs: 0, inboxMs: 0, idempotency: true });
        try {
          expect(await cleanup.runOnce()).to.deep.equal({ outbox: 1, inbox: 0, idempotency: 0, jobs: 0, processes: 0 });
        } finally {
          await cleanup.stop();
        }
        const audit = container.get<KnexAuditStore>(TOKENS.AuditStore);
        expect(await audit.seal()).to.equal(2);
        expect(await audit.verify()).to.include({ ok: true, records: 2 });

        const created = await db('information_schema.tables').where({ table_schema: schema }).pluck('table_name');
        const t = tables({ schema, prefix });
        expect(created).to.include.members(
          [t.idempotency, t.audit, t.auditHeads, t.outbox, t.inbox].map((name) => name.slice(schema.length + 1)),
        );
      } finally {
        if (container.isBound(TOKENS.Relay)) await container.get<RunningRelay>(TOKENS.Relay).stop();
        await db.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
      }
    });

    // knex reads a `?` inside a quoted name as a placeholder (`u?_` → tables named `u$1_migrations`) and a `.` as the
    // end of the schema: migrate() would fail half-way and leave tables behind.
    it('should refuse a schema or prefix outside an allow-list before creating anything', async () => {
      const refusals: Array<[name: string, options: { schema?: string; prefix?: string }, says: RegExp]> = [
        ['u?_', { prefix: 'u?_' }, /prefix "u\?_" is not allowed/i],
        ['a.b_', { prefix: 'a.b_' }, /prefix "a\.b_" is not allowed/i],
        ['SQL in a prefix', { prefix: `p'); DROP TABLE scn_victim; --_` }, /prefix .* is not allowed/i],
        ['a prefix too long for 63 bytes', { prefix: `${'p'.repeat(38)}_` }, /prefix .* is too long.* at most 37/i],
        ['SQL in a schema', { schema: `scn35"; DROP TABLE scn_victim; --` }, /schema .* is not allowed/i],
        ['a schema longer than 63 bytes', { schema: 's'.repeat(64) }, /schema .* is not allowed/i],
      ];
      for (const [name, options, says] of refusals) {
        const { schema } = await freshSchema(db);
        try {
          const refused = await migrate(db, { schema, ...options }).then(
            () => expect.fail(`${name}: migrate() accepted it`),
            (error: unknown) => error,
          );
          expect(UseCaseError.is(refused) && refused.kind, name).to.equal('misuse');
          expect((refused as Error).message, name)
            .to.match(says)
            .and.match(/letters, digits and underscores|at most/);
          const left = await db('information_schema.tables')
            .where({ table_schema: options.schema ?? schema })
            .whereNot('table_name', 'like', 'ucc_%')
            .pluck('table_name');
          expect(left, `${name}: tables left behind`).to.deep.equal([]);
          if (options.schema)
            expect(await db('information_schema.schemata').where({ schema_name: options.schema })).to.deep.equal([]);
        } finally {
          await dropSchema(db, schema);
        }
      }
    });

    describe("the sample's routes", () => {
      let url: string, close: () => Promise<void>, app: ReturnType<typeof createApp>;
      let statements: string[] | undefined;
      const onQuery = (query: { sql: string }) => statements?.push(query.sql);

      before(async () => {
        await migrate(db);
        await createSampleTables(db);
        const container = new Container();
        container.load(knexModule({ knex: db }), memoryBusModule(), sqlRepositories());
        app = createApp(container);
        const server = createServer(app.app).listen(0);
        await once(server, 'listening');
        url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        close = () =>
          new Promise((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          });
        db.on('query', onQuery);
      });
      after(async () => {
        db.off('query', onQuery);
        await close?.();
        await app?.container.get<RunningRelay>(TOKENS.Relay).stop();
      });

      const call = async (method: string, path: string, body?: unknown) => {
        const response = await fetch(`${url}${path}`, {
          method,
          headers: { 'X-Actor': 'clerk-1', 'X-Roles': 'clerk', 'Content-Type': 'application/json' },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        return { status: response.status, body: (await response.json()) as any };
      };

      it('should answer objects, arrays and SQL where an id or a limit goes with 422, before any SQL', async () => {
        const drop = encodeURIComponent(`'; DROP TABLE sample_stock; --`);
        const move = { productId: 'p', fromBinId: 'A', toBinId: 'B', qty: 1, reason: 'r' };
        const attempts: Array<[string, string, unknown?]> = [
          ['GET', `/inventory/${drop}`],
          ['GET', `/orders/${drop}`],
          ['GET', '/orders/%7B%22%24ne%22%3A%22%22%7D'],
          ['GET', '/audit?limit=1&limit=2'],
          ['GET', `/audit?limit=1${drop}`],
          ['POST', '/inventory/moves', { ...move, productId: { $ne: '' } }],
          ['POST', '/inventory/moves', { ...move, fromBinId: ['A', 'B'] }],
          ['POST', '/orders', { productId: `x${decodeURIComponent(drop)}`, binId: 'A', qty: 1 }],
        ];
        for (const [method, path, body] of attempts) {
          statements = [];
          const reply = await call(method, path, body);
          const ran = statements;
          statements = undefined;
          expect([reply.status, reply.body.kind], `${method} ${path}`).to.deep.equal([422, 'validation']);
          expect(ran, `${method} ${path}: statements`).to.deep.equal([]);
        }
        expect(await db.schema.hasTable('sample_stock')).to.equal(true);
      });

      it('should ignore sort and filter parameters the routes do not name, never turning them into SQL', async () => {
        await call('POST', '/inventory/moves', { productId: 'p35', fromBinId: 'A', toBinId: 'B', qty: 1, reason: 'r' });
        statements = [];
        // (Express's query parser makes no objects: `limit[$gt]=0` is a parameter of that name, ignored too.)
        const reply = await call(
          'GET',
          '/audit?limit=1&sort=id;DROP%20TABLE%20sample_stock&order=desc;--&tenant=x&limit[$gt]=0',
        );
        const ran = statements;
        statements = undefined;
        expect(reply.status).to.equal(200);
        expect(reply.body).to.have.length(1);
        expect(ran.length, 'it read the log').to.be.above(0);
        expect(ran.filter((sql) => /drop|sort|;--/i.test(sql))).to.deep.equal([]);
        expect(await db.schema.hasTable('sample_stock')).to.equal(true);
      });
    });
  });
});
