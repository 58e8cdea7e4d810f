// Regressions found in review: commit hooks after the outcome, nested failures audited, unstorable strings refused.
import { injectable } from 'inversify';
import * as v from 'valibot';
import {
  Command,
  fail,
  handles,
  ok,
  withRules,
  type Context,
  type Handler,
  type Next,
} from '../../../lib/core/index.js';
import {
  audit,
  everyone,
  idempotency,
  policy,
  publish,
  transition,
  unitOfWork,
  validation,
} from '../../../middleware/index.js';
import { ACCOUNT_HANDLERS, Deposit, Withdraw, alice, expect, wire } from '../../support/helpers.js';

class Attempt extends Command(v.object({ account: v.string() }))<void, 'nested_failed'> {}
@handles(Attempt)
@injectable()
class AttemptHandler implements Handler<Attempt> {
  async handle(cmd: Attempt, ctx: Context<Attempt>) {
    const nested = await ctx.send(new Withdraw({ account: cmd.account, amount: 1_000 }));
    return nested.ok ? ok(undefined) : fail('nested_failed');
  }
}

const rules = [everyone(Deposit), everyone(Withdraw), everyone(Attempt)];

describe('regressions', () => {
  it('should keep a committed send committed when an afterCommit hook fails (no rollback hooks, no error audit)', async () => {
    const reported: unknown[] = [];
    const rolledBack: unknown[] = [];
    const flakyHook = withRules(async function flakyHook(ctx: Context, next: Next) {
      ctx.afterCommit(() => {
        throw new Error('mailer down');
      });
      ctx.afterRollback(() => {
        rolledBack.push(ctx.type);
      });
      return next();
    }, {});
    const w = wire({
      middleware: [
        validation(),
        unitOfWork({ onHookError: (e) => reported.push(e) }),
        audit(),
        idempotency(),
        flakyHook,
        policy(rules),
        transition([]),
        publish(),
      ],
    });
    const result = await w.mediator.send(Deposit.from({ account: 'h1', amount: 5 }), alice);
    expect(result).to.deep.equal({ ok: true, value: { balance: 5 } });
    expect(w.accounts.balances.get('h1')).to.equal(5);
    expect(rolledBack).to.deep.equal([]);
    expect(reported).to.have.length(1);
    expect((await w.audit.list()).map((r) => r.outcome)).to.deep.equal(['ok']);
  });

  it('should audit a nested failure once even when the outer send rolls back', async () => {
    const w = wire({
      middleware: [validation(), unitOfWork(), audit(), idempotency(), policy(rules), transition([]), publish()],
      handlers: [...ACCOUNT_HANDLERS, AttemptHandler],
    });
    const result = await w.mediator.send(Attempt.from({ account: 'n1' }), alice);
    expect(result).to.have.nested.property('failure.code', 'nested_failed');
    const rows = await w.audit.list({ order: 'asc' });
    expect(rows.map((r) => `${r.type}:${r.outcome}:${r.code}`)).to.deep.equal([
      'Withdraw:domain:insufficient_funds',
      'Attempt:domain:nested_failed',
    ]);
  });

  const unstorable: Array<[string, unknown]> = [
    ['a NUL character in a value', { account: 'a\u0000b', amount: 1 }],
    ['a lone surrogate in a value', { account: '\ud800', amount: 1 }],
    ['a NUL character in an (unknown) key', { account: 'a', amount: 1, ['x\u0000']: 1 }],
  ];
  for (const [name, body] of unstorable) {
    it(`should refuse ${name} as a validation failure that writes nothing`, async () => {
      const w = wire({
        middleware: [validation(), unitOfWork(), audit(), idempotency(), policy(rules), transition([]), publish()],
      });
      const result = await w.mediator.send(Deposit.from(body), alice);
      expect(result).to.have.nested.property('failure.kind', 'validation');
      expect(await w.audit.list()).to.deep.equal([]);
      expect(w.accounts.runs('Deposit')).to.equal(0);
    });
  }
});
