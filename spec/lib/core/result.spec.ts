// The result helpers: map, mapFailure, andThen, match, unwrap — what they return, and what the compiler checks.
import { expectTypeOf } from 'expect-type';
import {
  andThen,
  fail,
  failure,
  map,
  mapFailure,
  match,
  notFound,
  ok,
  unwrap,
  UseCaseError,
  type Failure,
  type Result,
} from '../../../lib/core/index.js';
import { expect } from '../../support/helpers.js';

type Moved = Result<{ qty: number }, 'insufficient_stock' | 'same_bin'>;
const moved = (r: Moved) => r;
const success = moved(ok({ qty: 3 }));
const short = moved(fail('insufficient_stock', { available: 1 }));
const missing = moved(notFound('No bin B9'));

/** Every case of a Moved result, for match(). */
const statusOf = (r: Moved) =>
  match(r, {
    ok: () => 200,
    validation: () => 422,
    forbidden: () => 403,
    not_found: () => 404,
    invalid_transition: () => 409,
    conflict: () => 409,
    idempotency_mismatch: () => 422,
    in_progress: () => 409,
    unavailable: () => 503,
    domain: { insufficient_stock: () => 409, same_bin: () => 422 },
  });

describe('result helpers', () => {
  describe('map', () => {
    it('should transform a success and keep replayed; a failure passes through as it is', () => {
      expect(map(success, (v) => v.qty * 2)).to.deep.equal({ ok: true, value: 6 });
      expect(map({ ...success, replayed: true }, (v) => v.qty)).to.deep.equal({ ok: true, value: 3, replayed: true });
      expect(map(short, () => expect.fail('mapped a failure'))).to.equal(short);
      expectTypeOf(map(success, (v) => String(v.qty))).toEqualTypeOf<
        Result<string, 'insufficient_stock' | 'same_bin'>
      >();
    });
  });

  describe('mapFailure', () => {
    it('should transform a failure, possibly to other codes; a success passes through as it is', () => {
      const renamed = mapFailure(missing, (f) => (f.kind === 'not_found' ? { ...f, message: 'gone' } : f));
      expect(renamed).to.deep.equal({ ok: false, failure: { kind: 'not_found', message: 'gone' } });
      expect(mapFailure(success, () => expect.fail('mapped a success'))).to.equal(success);
      const recoded = mapFailure(short, (f): Failure<'out_of_stock'> =>
        f.kind === 'domain'
          ? { kind: 'domain', code: 'out_of_stock', message: f.message }
          : { kind: 'conflict', message: f.message },
      );
      expect(recoded).to.deep.include({ ok: false }).and.nested.include({ 'failure.code': 'out_of_stock' });
      expectTypeOf(recoded).toEqualTypeOf<Result<{ qty: number }, 'out_of_stock'>>();
    });
  });

  describe('andThen', () => {
    it('should run the next step on a success, sync or async, and stop at the first failure', async () => {
      const next = andThen(success, (v) => (v.qty > 2 ? ok(v.qty) : fail('too_few')));
      expect(next).to.deep.equal({ ok: true, value: 3 });
      expectTypeOf(next).toEqualTypeOf<Result<number, 'insufficient_stock' | 'same_bin' | 'too_few'>>();

      const later = andThen(success, async (v) => ok(`${v.qty} moved`));
      expectTypeOf(later).toEqualTypeOf<Promise<Result<string, 'insufficient_stock' | 'same_bin'>>>();
      expect(await later).to.deep.equal({ ok: true, value: '3 moved' });

      let ran = false;
      const stopped = andThen(short, (v) => {
        ran = true;
        return ok(v);
      });
      expect(ran).to.equal(false);
      expect(stopped).to.equal(short);
    });
  });

  describe('match', () => {
    it('should pick the case of the outcome: ok, a kind, or a domain code', () => {
      expect([success, short, missing, moved(fail('same_bin'))].map(statusOf)).to.deep.equal([200, 409, 404, 422]);
    });

    it('should hand each case its narrowed value or failure', () => {
      const text = match(short, {
        ok: (v) => `moved ${v.qty}`,
        otherwise: (f) => f.kind,
        domain: { insufficient_stock: (f) => `short: ${f.code} ${JSON.stringify(f.details)}` },
      });
      expect(text).to.equal('short: insufficient_stock {"available":1}');
      expect(match(missing, { ok: () => 'ok', otherwise: (f) => `other ${f.kind}` })).to.equal('other not_found');
    });

    it('should be checked for exhaustiveness by the compiler', () => {
      const cases = {
        ok: () => 0,
        validation: () => 0,
        forbidden: () => 0,
        not_found: () => 0,
        invalid_transition: () => 0,
        conflict: () => 0,
        idempotency_mismatch: () => 0,
        in_progress: () => 0,
        unavailable: () => 0,
      };
      // @ts-expect-error a declared domain code has no case
      match(short, { ...cases, domain: { insufficient_stock: () => 0 } });
      // @ts-expect-error a code the request does not declare
      match(short, { ...cases, domain: { insufficient_stock: () => 0, same_bin: () => 0, typo: () => 0 } });
      // @ts-expect-error a failure kind has no case and there is no otherwise
      match(short, { ok: () => 0, validation: () => 0, domain: { insufficient_stock: () => 0, same_bin: () => 0 } });
      // A request without domain codes needs no domain cases.
      expect(match(ok(1) as Result<number>, cases)).to.equal(0);
      expectTypeOf(statusOf).returns.toEqualTypeOf<number>();
    });

    it('should throw a UseCaseError when a code nobody declared comes back at run time', () => {
      const untyped = fail('surprise') as unknown as Moved;
      expect(() => statusOf(untyped)).to.throw(UseCaseError, /no case for domain failure 'surprise'/);
    });
  });

  describe('unwrap', () => {
    it('should return the value of a success', () => {
      expect(unwrap(success)).to.deep.equal({ qty: 3 });
      expectTypeOf(unwrap(success)).toEqualTypeOf<{ qty: number }>();
    });

    it('should throw UseCaseError (kind failed) with the failure attached', () => {
      const thrown = (() => {
        try {
          unwrap(failure({ kind: 'forbidden', message: 'clerks only' }));
        } catch (error) {
          return error;
        }
        return expect.fail('unwrap of a failure returned');
      })() as UseCaseError & { failure: Failure };
      expect(UseCaseError.is(thrown)).to.equal(true);
      expect(thrown.kind).to.equal('failed');
      expect(thrown.message).to.equal("unwrap() of a failed result: 'forbidden' failure — clerks only");
      expect(thrown.failure).to.deep.equal({ kind: 'forbidden', message: 'clerks only' });
      expect(thrown.cause).to.equal(thrown.failure);
    });
  });
});
