// auditSealer(): seals on a timer, never two runs at once, a call made during a run gets a run of its own, clean stop.
import { Container } from 'inversify';
import { memoryModule } from '../../../adapters/memory/index.js';
import { UseCaseError } from '../../../lib/core/index.js';
import { auditSealer } from '../../../lib/audit/index.js';
import { expect } from '../../support/helpers.js';

/** A fake store: each seal() waits until the spec releases it, and counts how many run at once. */
function gatedStore() {
  const gates: Array<(n: number) => void> = [];
  const state = { calls: 0, running: 0, most: 0 };
  return {
    state,
    gates,
    seal: () => {
      state.calls++;
      state.most = Math.max(state.most, ++state.running);
      return new Promise<number>((resolve) =>
        gates.push((n) => {
          state.running--;
          resolve(n);
        }),
      );
    },
  };
}
const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

describe('auditSealer()', () => {
  it('should seal on its timer, never overlapping a slow run', async () => {
    const store = gatedStore();
    const sealer = auditSealer(store, { everyMs: 5 });
    try {
      await tick(40);
      expect(store.state).to.deep.include({ calls: 1, running: 1 }); // the first run is still under way
      store.gates.shift()!(3);
      await tick(40);
      expect(store.state.calls).to.equal(2);
      expect(store.state.most).to.equal(1);
    } finally {
      store.gates.forEach((release) => release(0));
      await sealer.stop();
    }
  });

  it('should give a call made during a run one more run, shared by every such call', async () => {
    const store = gatedStore();
    const sealer = auditSealer(store, { everyMs: 60_000 });
    const first = sealer.sealOnce();
    const [second, third] = [sealer.sealOnce(), sealer.sealOnce()];
    expect(store.state.calls).to.equal(1);
    store.gates.shift()!(4);
    expect(await first).to.equal(4);
    await tick();
    expect(store.state.calls, 'one follow-up run for both calls').to.equal(2);
    store.gates.shift()!(2);
    expect(await Promise.all([second, third])).to.deep.equal([2, 2]);
    expect(store.state.most).to.equal(1);
    await sealer.stop();
  });

  it('should report a failed timed run to onError and try again on the next tick', async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const sealer = auditSealer(
      {
        seal: async () => {
          if (++calls === 1) throw new Error('database down');
          return 0;
        },
      },
      { everyMs: 5, onError: (error) => errors.push(error) },
    );
    await tick(40);
    await sealer.stop();
    expect(errors.map((e) => (e as Error).message)).to.deep.equal(['database down']);
    expect(calls).to.be.above(1);
  });

  it('should wait for the run under way on stop(), then refuse sealOnce()', async () => {
    const store = gatedStore();
    const sealer = auditSealer(store, { everyMs: 60_000 });
    void sealer.sealOnce();
    let stopped = false;
    const stopping = sealer.stop().then(() => (stopped = true));
    await tick();
    expect(stopped).to.equal(false);
    store.gates.shift()!(1);
    await stopping;
    await expect(sealer.sealOnce()).to.be.rejectedWith(UseCaseError, /stopped/);
  });

  it("should seal a container's AuditStore (a no-op for the memory store, which chains at once)", async () => {
    const container = new Container();
    container.load(memoryModule());
    const sealer = auditSealer(container);
    expect(await sealer.sealOnce()).to.equal(0);
    await sealer.stop();
  });

  it('should say what is missing: no AuditStore bound, or a bad everyMs', () => {
    expect(() => auditSealer(new Container())).to.throw(UseCaseError, /needs an AuditStore — bind one/);
    for (const everyMs of [0, -1, Number.NaN]) {
      expect(() => auditSealer({ seal: async () => 0 }, { everyMs }), String(everyMs)).to.throw(
        UseCaseError,
        /everyMs/,
      );
    }
  });
});
