// The testing kit's own helpers: the settable clock and the per-case fixture.
import { ManualClock, manualClock, withFixture } from '../../../lib/testing/index.js';
import type { Clock } from '../../../lib/core/index.js';
import { expect } from '../../support/helpers.js';

describe('manualClock()', () => {
  it('should stand still until set or advanced', () => {
    const clock: Clock & ManualClock = manualClock(1_000);
    expect([clock.now(), clock.now()]).to.deep.equal([1_000, 1_000]);
    clock.advance(250);
    expect(clock.now()).to.equal(1_250);
    clock.advance(-50);
    expect(clock.now()).to.equal(1_200);
  });

  it('should be set from epoch ms, a Date or an ISO string', () => {
    const clock = manualClock();
    for (const [time, ms] of [
      [5, 5],
      [new Date('2026-03-04T05:06:07.008Z'), 1772600767008],
      ['2026-03-04T05:06:07.008Z', 1772600767008],
    ] as const) {
      clock.set(time);
      expect(clock.now(), String(time)).to.equal(ms);
    }
  });

  it('should start at the real time when given no start', () => {
    const before = Date.now();
    const now = manualClock().now();
    expect(now).to.be.within(before, Date.now());
  });

  it('should refuse a time that is not one', () => {
    expect(() => manualClock('yesterday')).to.throw(RangeError, /not a point in time/);
    expect(() => new ManualClock().set(new Date('nope'))).to.throw(RangeError);
    expect(() => new ManualClock().advance(Number.NaN)).to.throw(RangeError, /finite/);
  });
});

describe('withFixture()', () => {
  it("should close the fixture after the case, also when the case throws, and keep the case's error", async () => {
    const closes: string[] = [];
    const make =
      (name: string, closeFails = false) =>
      async () => ({
        async close() {
          closes.push(name);
          if (closeFails) throw new Error(`close of ${name} failed`);
        },
      });
    expect(await withFixture(make('passes'), async () => 'value')).to.equal('value');
    await expect(
      withFixture(make('throws', true), async () => {
        throw new Error('case failed');
      }),
    ).to.be.rejectedWith('case failed');
    await expect(withFixture(make('close fails', true), async () => 'value')).to.be.rejectedWith(
      'close of close fails failed',
    );
    expect(closes).to.deep.equal(['passes', 'throws', 'close fails']);
  });
});
