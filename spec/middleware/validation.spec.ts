// validation(): parse untrusted input first, bound it before recursing, strip what the schema does not name,
// and write nothing anywhere when it fails (DESIGN "Guarantees" 1; RELIABILITY 5, 13, 31–34).
import { injectable } from 'inversify';
import * as v from 'valibot';
import { Command, handles, ok, type Handler, type StandardSchemaV1 } from '../../lib/core/index.js';
import {
  audit,
  everyone,
  idempotency,
  policy,
  publish,
  rule,
  transition,
  unitOfWork,
  validation,
} from '../../middleware/index.js';
import { ACCOUNT_HANDLERS, Deposit, Explode, GetBalance, Withdraw, alice, expect, wire } from '../support/helpers.js';

// ---- fixtures --------------------------------------------------------------------------------------------------

const line = v.object({ sku: v.pipe(v.string(), v.minLength(1)), qty: v.pipe(v.number(), v.integer(), v.minValue(1)) });
class PlaceOrder extends Command(
  v.object({
    customer: v.object({ name: v.string(), address: v.object({ zip: v.pipe(v.string(), v.regex(/^\d{5}$/)) }) }),
    lines: v.pipe(v.array(line), v.minLength(1)),
  }),
)<{ lines: number }> {}

/** A request with a secret-looking field, a field its class calls sensitive, and a message that shows its value. */
class Register extends Command(
  v.object({
    login: v.pipe(v.string(), v.minLength(3)),
    pin: v.pipe(v.string(), v.regex(/^\d{4}$/)),
    password: v.pipe(
      v.string(),
      v.minLength(8, (issue) => `${String(issue.input)} is too short`),
    ),
  }),
) {
  static readonly sensitive = ['pin'];
}
@handles(Register)
@injectable()
class RegisterHandler implements Handler<Register> {
  handle() {
    return ok(undefined);
  }
}

/** Every request the PlaceOrder handler (and its policy rule) saw. */
const seen: PlaceOrder[] = [];
const policySaw: unknown[] = [];

@handles(PlaceOrder)
@injectable()
class PlaceOrderHandler implements Handler<PlaceOrder> {
  handle(cmd: PlaceOrder) {
    seen.push(cmd);
    return ok({ lines: cmd.lines.length });
  }
}

// Hand-written Standard Schemas (no valibot): one synchronous, one answering with a Promise.
interface Ping {
  n: number;
}
function checkPing(value: unknown, pathStyle: 'object' | 'plain') {
  const n = typeof value === 'object' && value !== null ? (value as Record<string, unknown>).n : undefined;
  if (typeof n === 'number' && Number.isFinite(n)) return { value: { n } };
  return { issues: [{ message: 'n must be a finite number', path: [pathStyle === 'object' ? { key: 'n' } : 'n'] }] };
}
const syncPingSchema: StandardSchemaV1<unknown, Ping> = {
  '~standard': { version: 1, vendor: 'hand-written', validate: (value) => checkPing(value, 'object') },
};
const asyncPingSchema: StandardSchemaV1<unknown, Ping> = {
  '~standard': {
    version: 1,
    vendor: 'hand-written-async',
    validate: async (value) => {
      await new Promise((resolve) => setImmediate(resolve));
      return checkPing(value, 'plain');
    },
  },
};
class SyncPing extends Command(syncPingSchema)<{ n: number; keys: string[] }> {}
class AsyncPing extends Command(asyncPingSchema)<{ n: number; keys: string[] }> {}

@handles(SyncPing)
@injectable()
class SyncPingHandler implements Handler<SyncPing> {
  handle(cmd: SyncPing) {
    return ok({ n: cmd.n, keys: Object.keys(cmd) });
  }
}
@handles(AsyncPing)
@injectable()
class AsyncPingHandler implements Handler<AsyncPing> {
  handle(cmd: AsyncPing) {
    return ok({ n: cmd.n, keys: Object.keys(cmd) });
  }
}

const rules = [
  everyone(Deposit),
  everyone(Withdraw),
  everyone(Explode),
  everyone(GetBalance),
  everyone(SyncPing),
  everyone(AsyncPing),
  everyone(Register),
  rule(PlaceOrder, (ctx) => {
    policySaw.push((ctx.request as unknown as Record<string, unknown>).isAdmin);
    return true;
  }),
];

function setup() {
  seen.length = 0;
  policySaw.length = 0;
  return wire({
    handlers: [...ACCOUNT_HANDLERS, PlaceOrderHandler, SyncPingHandler, AsyncPingHandler, RegisterHandler],
    middleware: [validation(), unitOfWork(), audit(), idempotency(), policy(rules), transition([]), publish()],
  });
}

const validOrder = () => ({
  customer: { name: 'Ada', address: { zip: '12345' } },
  lines: [
    { sku: 'A', qty: 1 },
    { sku: 'B', qty: 2 },
  ],
});

/** Asserts a validation failure and returns its issue paths. */
function pathsOf(result: { ok: boolean; failure?: unknown }): string[] {
  expect(result.ok).to.equal(false);
  const failure = (result as { failure: { kind: string; message: string; issues: Array<{ path: string }> } }).failure;
  expect(failure.kind).to.equal('validation');
  expect(failure.message).to.match(/^Invalid request: /);
  return failure.issues.map((i) => i.path);
}

/** Asserts that nothing at all was written or run. */
async function expectNothingWritten(w: ReturnType<typeof setup>) {
  expect(await w.audit.list()).to.have.length(0);
  expect(await w.outbox.pending()).to.equal(0);
  expect(seen).to.have.length(0);
  expect(w.accounts.runs('Deposit')).to.equal(0);
  expect(w.accounts.balances.size).to.equal(0);
}

// ---- specs -----------------------------------------------------------------------------------------------------

describe('validation()', () => {
  describe('issue paths', () => {
    const cases: Array<[string, (o: any) => void, string]> = [
      [
        'an array item field of the wrong type',
        (o) => {
          o.lines[0].qty = 'two';
        },
        'lines.0.qty',
      ],
      [
        'an array item field below its minimum',
        (o) => {
          o.lines[1].qty = 0;
        },
        'lines.1.qty',
      ],
      [
        'a missing array item field',
        (o) => {
          delete o.lines[1].sku;
        },
        'lines.1.sku',
      ],
      [
        'a nested field failing its pipe',
        (o) => {
          o.customer.address.zip = 'abc';
        },
        'customer.address.zip',
      ],
      [
        'a missing nested object',
        (o) => {
          delete o.customer.address;
        },
        'customer.address',
      ],
      [
        'a missing top-level field',
        (o) => {
          delete o.lines;
        },
        'lines',
      ],
      [
        'an empty array failing minLength',
        (o) => {
          o.lines = [];
        },
        'lines',
      ],
    ];
    for (const [name, mutate, path] of cases) {
      it(`should report ${name} at '${path}'`, async () => {
        const w = setup();
        const input = validOrder();
        mutate(input);
        const result = await w.mediator.send(PlaceOrder.from(input), alice);
        expect(pathsOf(result)).to.deep.equal([path]);
        await expectNothingWritten(w);
      });
    }

    it('should report every issue, each with its own path', async () => {
      const w = setup();
      const input: any = validOrder();
      input.lines[0].qty = -1;
      input.customer.name = 7;
      const result = await w.mediator.send(PlaceOrder.from(input), alice);
      expect(pathsOf(result)).to.have.members(['customer.name', 'lines.0.qty']);
      await expectNothingWritten(w);
    });
  });

  describe('wrong types and missing fields', () => {
    const cases: Array<[string, unknown, string]> = [
      ['a string for a number', { account: 'a', amount: '10' }, 'amount'],
      ['NaN', { account: 'a', amount: NaN }, 'amount'],
      ['Infinity', { account: 'a', amount: Infinity }, 'amount'],
      ['-Infinity', { account: 'a', amount: -Infinity }, 'amount'],
      ['a fraction for an integer', { account: 'a', amount: 1.5 }, 'amount'],
      ['a number for a string', { account: 42, amount: 1 }, 'account'],
      ['an empty string below minLength', { account: '', amount: 1 }, 'account'],
      ['a missing field', { account: 'a' }, 'amount'],
      ['another missing field', { amount: 1 }, 'account'],
      ['null for the whole request', null, ''],
      ['an array for the whole request (its fields are missing)', [], 'account'],
      ['a string for the whole request', 'deposit 10', ''],
    ];
    for (const [name, input, path] of cases) {
      it(`should reject ${name} with path '${path}' and run nothing`, async () => {
        const w = setup();
        const result = await w.mediator.send(Deposit.from(input), { ...alice, idempotencyKey: 'key-1' });
        expect(pathsOf(result)).to.include(path);
        await expectNothingWritten(w);
      });
    }
  });

  describe('unknown keys', () => {
    it('should strip keys the schema does not name, at every depth, before the handler', async () => {
      const w = setup();
      const input: any = validOrder();
      input.isAdmin = true;
      input.customer.vip = true;
      input.lines[0].price = 0;
      const result = await w.mediator.send(PlaceOrder.from(input), alice);
      expect(result).to.deep.equal({ ok: true, value: { lines: 2 } });
      expect(seen).to.have.length(1);
      const cmd = seen[0]!;
      expect(cmd).to.be.instanceOf(PlaceOrder);
      expect(Object.keys(cmd)).to.have.members(['customer', 'lines']);
      expect(Object.keys(cmd.customer)).to.have.members(['name', 'address']);
      expect(cmd.lines.map((l) => Object.keys(l).sort())).to.deep.equal([
        ['qty', 'sku'],
        ['qty', 'sku'],
      ]);
      const [record] = await w.audit.list();
      expect(record!.payload).to.deep.equal(validOrder());
    });

    it('should strip unknown keys on a directly constructed request too', async () => {
      const w = setup();
      const result = await w.mediator.send(new SyncPing({ n: 1, isAdmin: true } as unknown as Ping), alice);
      expect(result).to.deep.equal({ ok: true, value: { n: 1, keys: ['n'] } });
    });
  });

  describe('prototype keys', () => {
    const order = '"customer":{"name":"Ada","address":{"zip":"12345"}},"lines":[{"sku":"A","qty":1}]';
    const payloads: Array<[string, string]> = [
      ['__proto__', `{"__proto__":{"isAdmin":true},${order}}`],
      ['constructor.prototype', `{"constructor":{"prototype":{"isAdmin":true}},${order}}`],
      ['prototype', `{"prototype":{"isAdmin":true},${order}}`],
      [
        'nested __proto__ and constructor',
        '{"customer":{"__proto__":{"isAdmin":true},"constructor":{"prototype":{"isAdmin":true}},' +
          '"name":"Ada","address":{"zip":"12345","__proto__":{"isAdmin":true}}},"lines":[{"__proto__":{"isAdmin":true},"sku":"A","qty":1}]}',
      ],
    ];
    for (const [name, json] of payloads) {
      it(`should never let a ${name} payload reach the policy or the handler, nor pollute Object.prototype`, async () => {
        const w = setup();
        const result = await w.mediator.send(PlaceOrder.from(JSON.parse(json)), alice);
        expect(result).to.deep.equal({ ok: true, value: { lines: 1 } });
        expect(seen).to.have.length(1);
        const cmd = seen[0]! as unknown as Record<string, any>;
        expect(Object.getPrototypeOf(cmd)).to.equal(PlaceOrder.prototype);
        expect(Object.keys(cmd)).to.have.members(['customer', 'lines']);
        expect(cmd.isAdmin).to.equal(undefined);
        expect(cmd.customer.isAdmin).to.equal(undefined);
        expect(cmd.customer.address.isAdmin).to.equal(undefined);
        expect(cmd.lines[0].isAdmin).to.equal(undefined);
        expect(Object.getPrototypeOf(cmd.customer)).to.equal(Object.prototype);
        expect(Object.getPrototypeOf(cmd.lines[0])).to.equal(Object.prototype);
        expect(policySaw).to.deep.equal([undefined]);
        expect(({} as Record<string, unknown>).isAdmin).to.equal(undefined);
        expect(Object.prototype).not.to.have.own.property('isAdmin');
        const [record] = await w.audit.list();
        expect(JSON.stringify(record!.payload)).not.to.contain('isAdmin');
      });
    }
  });

  describe('input limits', () => {
    function deepObject(depth: number): unknown {
      let value: unknown = { zip: '12345' };
      for (let i = 0; i < depth; i++) value = { next: value };
      return value;
    }
    const cases: Array<[string, () => unknown, RegExp]> = [
      [
        'a 1e6-item array',
        () => ({ ...validOrder(), lines: new Array(1_000_000).fill({ sku: 'A', qty: 1 }) }),
        /more than 10000 values/,
      ],
      [
        'a 10 MB string',
        () => ({ ...validOrder(), customer: { name: 'x'.repeat(10 * 1024 * 1024), address: { zip: '12345' } } }),
        /more than 1000000 characters/,
      ],
      ['a 10 MB key', () => ({ ...validOrder(), ['k'.repeat(10 * 1024 * 1024)]: 1 }), /more than 1000000 characters/],
      [
        'an object nested 10,000 deep',
        () => ({ ...validOrder(), customer: { name: 'Ada', address: deepObject(10_000) } }),
        /nested deeper than 32 levels/,
      ],
      [
        'an array nested 10,000 deep',
        () => {
          let value: unknown = [];
          for (let i = 0; i < 10_000; i++) value = [value];
          return { ...validOrder(), lines: value };
        },
        /nested deeper than 32 levels/,
      ],
    ];
    for (const [name, build, message] of cases) {
      it(`should fail ${name} with a validation failure (no RangeError) and store nothing`, async () => {
        const w = setup();
        const input = build();
        const result = await w.mediator.send(PlaceOrder.from(input), { ...alice, idempotencyKey: 'limits-1' });
        expect(pathsOf(result)).to.deep.equal(['']);
        expect((result as any).failure.issues[0].message).to.match(message);
        await expectNothingWritten(w);
        // Nothing was stored under the key: the corrected request runs (not a replay, not a mismatch).
        const retry = await w.mediator.send(PlaceOrder.from(validOrder()), { ...alice, idempotencyKey: 'limits-1' });
        expect(retry).to.deep.equal({ ok: true, value: { lines: 2 } });
        expect(seen).to.have.length(1);
      });
    }

    it('should apply custom limits given to validation()', async () => {
      const w = wire({
        handlers: [...ACCOUNT_HANDLERS, PlaceOrderHandler],
        middleware: [validation({ limits: { maxDepth: 2 } }), unitOfWork(), audit(), policy(rules), publish()],
      });
      seen.length = 0;
      const result = await w.mediator.send(PlaceOrder.from(validOrder()), alice);
      expect(pathsOf(result)).to.deep.equal(['']);
      expect(seen).to.have.length(0);
      expect(await w.mediator.send(Deposit.from({ account: 'a', amount: 1 }), alice)).to.deep.equal({
        ok: true,
        value: { balance: 1 },
      });
    });
  });

  describe('idempotency keys', () => {
    const bad: Array<[string, string]> = [
      ['empty', ''],
      ['256 characters', 'k'.repeat(256)],
      ['a newline', 'abc\ndef'],
      ['a NUL', 'abc\u0000def'],
      ['a tab', 'abc\tdef'],
      ['DEL', 'abc\u007f'],
      ['an escape sequence', '\u001b[31mred'],
      ['a space', 'two words'],
      ['only a space', ' '],
    ];
    for (const [name, key] of bad) {
      it(`should reject a key with ${name} at path 'idempotencyKey' and write nothing`, async () => {
        const w = setup();
        const result = await w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), {
          ...alice,
          idempotencyKey: key,
        });
        expect(pathsOf(result)).to.deep.equal(['idempotencyKey']);
        await expectNothingWritten(w);
      });
    }

    const good: Array<[string, string]> = [
      ['one character', 'k'],
      ['255 characters', 'k'.repeat(255)],
      ['SQL-looking printable text', `'OR'1'='1';--`],
      ['every printable ASCII punctuation', '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'],
    ];
    for (const [name, key] of good) {
      it(`should accept a key with ${name} literally`, async () => {
        const w = setup();
        const first = await w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), {
          ...alice,
          idempotencyKey: key,
        });
        expect(first).to.deep.equal({ ok: true, value: { balance: 5 } });
        const replay = await w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), {
          ...alice,
          idempotencyKey: key,
        });
        expect(replay).to.deep.equal({ ok: true, value: { balance: 5 }, replayed: true });
        // A key that differs in one character is another key (nothing is normalized or trimmed).
        const otherKey = key.length < 255 ? `${key}~` : `${key.slice(1)}~`;
        const other = await w.mediator.send(Deposit.from({ account: 'a', amount: 5 }), {
          ...alice,
          idempotencyKey: otherKey,
        });
        expect(other).to.deep.equal({ ok: true, value: { balance: 10 } });
        expect(w.accounts.runs('Deposit')).to.equal(2);
      });
    }
  });

  describe('values JSON cannot hold', () => {
    // JSON.parse('1e309') is Infinity, which v.number() accepts and JSON.stringify stores as null: the stored
    // fingerprint, audit record and outbox row would not hold what the handler saw.
    const bodies: Array<[string, string, string]> = [
      ['1e309 (Infinity)', '{"account":"a","amount":1e309}', 'amount'],
      ['-1e309 (-Infinity)', '{"account":"a","amount":-1e309}', 'amount'],
      [
        'a non-finite number deep in a nested value',
        '{"customer":{"name":"Ada","address":{"zip":"1"}},"lines":[{"sku":"A","qty":1e400}]}',
        'lines.0.qty',
      ],
    ];
    for (const [name, json, path] of bodies) {
      it(`should refuse ${name} with a validation issue at '${path}', whatever the schema, writing nothing`, async () => {
        const w = setup();
        const request = json.includes('customer') ? PlaceOrder.from(JSON.parse(json)) : Deposit.from(JSON.parse(json));
        const result = await w.mediator.send(request, { ...alice, idempotencyKey: `nonfinite-${path}` });
        expect(pathsOf(result)).to.deep.equal([path]);
        expect(!result.ok && result.failure.message).to.match(/non-finite number .*JSON cannot hold/);
        await expectNothingWritten(w);
      });
    }

    it('should refuse NaN, a bigint and a function from a programmatic caller', async () => {
      const w = setup();
      for (const amount of [Number.NaN, 10n, () => 10]) {
        expect(pathsOf(await w.mediator.send(Deposit.from({ account: 'a', amount }), alice))).to.deep.equal(['amount']);
      }
      await expectNothingWritten(w);
    });
  });

  describe('a failed validation', () => {
    it('should write no audit row, no idempotency record and no outbox row', async () => {
      const w = setup();
      const bad = await w.mediator.send(Deposit.from({ account: 'a', amount: 'ten' }), {
        ...alice,
        idempotencyKey: 'retry-me',
      });
      expect(pathsOf(bad)).to.deep.equal(['amount']);
      await expectNothingWritten(w);
      await w.settled();
      expect(w.bus.published).to.have.length(0);
      // No idempotency record: the corrected retry with the same key runs (neither a replay nor a mismatch).
      const fixed = await w.mediator.send(Deposit.from({ account: 'a', amount: 10 }), {
        ...alice,
        idempotencyKey: 'retry-me',
      });
      expect(fixed).to.deep.equal({ ok: true, value: { balance: 10 } });
      expect(w.accounts.runs('Deposit')).to.equal(1);
      const records = await w.audit.list();
      expect(records.map((r) => r.outcome)).to.deep.equal(['ok']);
      await w.settled();
      expect(w.bus.published).to.have.length(1);
    });
  });

  describe('sensitive fields', () => {
    it("should keep a sensitive field's value out of the failure, and what was expected in it", async () => {
      const w = setup();
      const result = await w.mediator.send(Register.from({ login: 'al', pin: '12x4', password: 'hunter2' }), alice);
      expect(pathsOf(result)).to.have.members(['login', 'pin', 'password']);
      const messages = Object.fromEntries((result as any).failure.issues.map((i: any) => [i.path, i.message]));
      expect(messages).to.deep.equal({
        login: 'Invalid length: Expected >=3 but received 2', // not sensitive: the schema's message as it is
        pin: 'Invalid format: Expected /^\\d{4}$/', // the class's `sensitive`: what was expected, not what came
        password: 'Invalid value (not shown: the field is sensitive)', // the schema's own message shows the value
      });
      for (const secret of ['12x4', 'hunter2']) expect(JSON.stringify(result)).not.to.contain(secret);
      await expectNothingWritten(w);
    });
  });

  describe('Standard Schema', () => {
    const schemas: Array<[string, typeof SyncPing | typeof AsyncPing]> = [
      ['a synchronous', SyncPing],
      ['an asynchronous', AsyncPing],
    ];
    for (const [name, Type] of schemas) {
      it(`should accept ${name} hand-written (non-valibot) Standard Schema`, async () => {
        const w = setup();
        const good = await w.mediator.send(Type.from({ n: 3, extra: 'dropped' }), alice);
        expect(good).to.deep.equal({ ok: true, value: { n: 3, keys: ['n'] } });
        const bad = await w.mediator.send(Type.from({ n: 'three' }), { ...alice, idempotencyKey: 'ping-1' });
        expect(pathsOf(bad)).to.deep.equal(['n']);
        expect((bad as any).failure.issues[0].message).to.equal('n must be a finite number');
        const records = await w.audit.list();
        expect(records.map((r) => r.outcome)).to.deep.equal(['ok']);
      });
    }
  });
});
