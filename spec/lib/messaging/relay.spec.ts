// createRelay's pipeline: the next batch is claimed and published while earlier ones await their confirms, never more
// than `pipeline` batches out, and every guarantee of the serial relay kept (DESIGN "Guarantees" 8). The bus here is
// gated: each publish resolves only when the spec confirms it. Parking, nacks and drain() are in publish.spec.ts.
import { expect, use } from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { MemoryBus, MemoryOutbox, MemoryUnitOfWork } from '../../../adapters/memory/index.js';
import {
  createRelay,
  type BusState,
  type MessageBus,
  type Outbox,
  type OutboxMessage,
  type PublishReport,
  type RelayOptions,
} from '../../../lib/messaging/index.js';

use(chaiAsPromised);

const ids = (messages: readonly OutboxMessage[]) => messages.map((m) => m.id);

/** One publish the spec answers by hand. */
interface Call {
  readonly batch: readonly OutboxMessage[];
  /** Confirms every message of the batch (or answers with `report`). */
  confirm(report?: PublishReport): void;
  /** The bus turns out unreachable for this batch. */
  fail(error?: Error): void;
}

/** A bus whose publishes wait for the spec, or are answered a macrotask later by `auto`. */
class GatedBus implements MessageBus {
  readonly calls: Call[] = [];
  /** Publishes not answered yet, oldest first. */
  readonly open: Call[] = [];
  /** Message ids in the order the broker confirmed them. */
  readonly confirmed: string[] = [];
  maxOpen = 0;
  constructor(private auto?: (batch: readonly OutboxMessage[]) => PublishReport | Error) {}

  publish(batch: readonly OutboxMessage[]): Promise<PublishReport> {
    return new Promise((resolve, reject) => {
      const answer = (outcome: PublishReport | Error) => {
        const at = this.open.indexOf(call);
        if (at < 0) throw new Error('a publish was answered twice');
        this.open.splice(at, 1);
        if (outcome instanceof Error) return reject(outcome);
        this.confirmed.push(...outcome.sent);
        resolve(outcome);
      };
      const call: Call = {
        batch,
        confirm: (report = { sent: ids(batch), failed: [] }) => answer(report),
        fail: (error = new Error('connection refused')) => answer(error),
      };
      this.calls.push(call);
      this.open.push(call);
      this.maxOpen = Math.max(this.maxOpen, this.open.length);
      const auto = this.auto;
      if (auto) setImmediate(() => answer(auto(batch)));
    });
  }

  /** Confirms every open publish, and every later one as it comes. */
  confirmAll(): void {
    this.auto = (batch) => ({ sent: ids(batch), failed: [] });
    for (const call of [...this.open]) call.confirm();
  }
}

/** A gated bus with flow control the spec sets, as a broker's `connection.blocked` / `unblocked` would. */
class FlowBus extends GatedBus {
  #state: BusState = { blocked: false };
  readonly #listeners = new Set<(state: BusState) => void>();
  state(): BusState {
    return this.#state;
  }
  onStateChange(listener: (state: BusState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  /** How many listeners the relay left subscribed (it should leave none once it stops waiting). */
  get listening(): number {
    return this.#listeners.size;
  }
  block(reason = 'low on memory'): void {
    this.#set({ blocked: true, reason, since: new Date(0).toISOString() });
  }
  unblock(): void {
    this.#set({ blocked: false });
  }
  #set(state: BusState): void {
    this.#state = state;
    for (const listener of [...this.#listeners]) listener(state);
  }
}

/**
 * The memory outbox, watched: which rows are out (claimed and not yet marked, released or failed), the most that
 * ever were, and claims a spec can hold back.
 */
class WatchedOutbox implements Outbox {
  readonly inner = new MemoryOutbox(new MemoryUnitOfWork());
  readonly out = new Set<string>();
  maxOut = 0;
  claims = 0;
  readonly released: string[] = [];
  /** While set, a claim waits for it before it returns. */
  hold: Promise<void> | undefined;
  /** Called with each batch as it is claimed, before the relay sees it. */
  onClaim: ((batch: readonly OutboxMessage[]) => void) | undefined;

  add(messages: readonly OutboxMessage[]) {
    return this.inner.add(messages);
  }
  async claim(limit: number) {
    this.claims++;
    const batch = await this.inner.claim(limit);
    for (const m of batch) this.out.add(m.id);
    await this.hold; // a claim that took the rows but is slow to return them
    this.maxOut = Math.max(this.maxOut, this.out.size);
    this.onClaim?.(batch);
    return batch;
  }
  async markSent(ids: readonly string[]) {
    for (const id of ids) this.out.delete(id);
    return this.inner.markSent(ids);
  }
  async markFailed(id: string, error: string, park: boolean) {
    this.out.delete(id);
    return this.inner.markFailed(id, error, park);
  }
  async release(ids: readonly string[]) {
    for (const id of ids) this.out.delete(id);
    this.released.push(...ids);
    return this.inner.release(ids);
  }
  pending() {
    return this.inner.pending();
  }
}

let n = 0;
function message(aggregateId?: string): OutboxMessage {
  const id = `${aggregateId ?? 'm'}${++n}`;
  return {
    id,
    kind: 'event',
    type: 'spec.noted',
    payload: { id },
    occurredAt: new Date(0).toISOString(),
    aggregateId,
    headers: {},
  };
}

function relayOver(bus: MessageBus, options: RelayOptions = {}) {
  const outbox = new WatchedOutbox();
  const relay = createRelay(outbox, bus, { batchSize: 2, pipeline: 2, backoffMs: [1, 4], ...options });
  return { outbox, relay };
}

/** Waits (macrotask by macrotask) until `condition` holds. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (const deadline = Date.now() + 2_000; !condition();) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Lets every pending callback run, so "nothing happened" is observed after the relay had its chance. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('createRelay', () => {
  describe('pipeline', () => {
    it('should claim and publish the next batch while the first awaits its confirms', async () => {
      const bus = new GatedBus();
      const { outbox, relay } = relayOver(bus);
      const messages = [message(), message(), message(), message()];
      await outbox.add(messages);
      relay.wake();
      await until(() => bus.calls.length === 2, 'a second publish');
      expect(ids(bus.calls[0]!.batch)).to.deep.equal(ids(messages.slice(0, 2)));
      expect(ids(bus.calls[1]!.batch)).to.deep.equal(ids(messages.slice(2)));
      expect(bus.confirmed, 'nothing is confirmed yet').to.deep.equal([]);
      expect(await outbox.pending(), 'nothing is marked sent before its confirm').to.equal(4);
      bus.calls[1]!.confirm(); // confirms may come in any order: each batch marks only its own rows
      await until(() => outbox.out.size === 2, 'the second batch marked');
      expect([...outbox.out]).to.deep.equal(ids(messages.slice(0, 2)));
      bus.calls[0]!.confirm();
      await relay.drain();
      expect(await outbox.pending()).to.equal(0);
    });

    it('should run batches one after another with pipeline: 1', async () => {
      const bus = new GatedBus();
      const { outbox, relay } = relayOver(bus, { pipeline: 1 });
      await outbox.add([message(), message(), message(), message()]);
      relay.wake();
      await until(() => bus.calls.length === 1, 'a publish');
      await settle();
      expect(bus.calls).to.have.length(1);
      expect(outbox.claims).to.equal(1);
      bus.calls[0]!.confirm();
      await until(() => bus.calls.length === 2, 'the next publish');
      bus.calls[1]!.confirm();
      await relay.drain();
    });

    for (const pipeline of [1, 2, 3]) {
      it(`should never have more than ${pipeline} batch(es) in flight (pipeline: ${pipeline})`, async () => {
        const bus = new GatedBus();
        const { outbox, relay } = relayOver(bus, { pipeline, batchSize: 3 });
        await outbox.add(Array.from({ length: 40 }, () => message()));
        let draining = true,
          full = 0;
        const confirming = (async () => {
          // Answer the oldest open publish a little late, so the relay keeps running into its bound.
          while (draining) {
            await settle();
            if (bus.open.length === pipeline) full++;
            bus.open[0]?.confirm();
          }
        })();
        await relay.drain();
        draining = false;
        await confirming;
        expect(bus.maxOpen).to.equal(pipeline);
        expect(outbox.maxOut).to.be.at.most(pipeline * 3);
        expect(full, 'the relay reached its bound').to.be.greaterThan(0);
        expect(new Set(bus.confirmed).size).to.equal(40);
        expect(bus.confirmed).to.have.length(40);
      });
    }
  });

  describe('outage', () => {
    it('should release every claimed row with no attempt counted when the bus fails mid-pipeline', async () => {
      const bus = new GatedBus();
      const { outbox, relay } = relayOver(bus, { maxAttempts: 1, backoffMs: [30, 30] });
      const messages = Array.from({ length: 6 }, () => message());
      await outbox.add(messages);
      relay.wake();
      await until(() => bus.calls.length === 2, 'two batches in flight');
      bus.calls[0]!.fail();
      bus.calls[1]!.fail();
      await until(() => outbox.out.size === 0, 'every claim released');
      expect(outbox.released).to.have.members(ids(messages.slice(0, 4)));
      const during = bus.calls.length;
      await settle(); // backing off: nothing claimed, nothing published
      expect(outbox.out.size).to.equal(0);
      expect(bus.calls.length).to.equal(during);
      // After the backoff one batch probes the bus (an outage never holds two); once it goes through, the pipeline
      // refills. Every row goes out once, none parked although maxAttempts is 1.
      await until(() => bus.calls.length === during + 1, 'a probe');
      await settle();
      expect(bus.open).to.have.length(1);
      bus.open[0]!.confirm();
      await until(() => bus.open.length === 2, 'the pipeline refilled');
      for (const call of bus.calls.slice(during)) expect(call.batch.map((m) => m.attempts)).to.deep.equal([0, 0]);
      bus.confirmAll();
      await relay.drain();
      expect(bus.confirmed).to.have.members(ids(messages));
      expect(outbox.inner.parked()).to.deep.equal([]);
    });

    it('should release rows claimed ahead while a batch fails, rather than publish them into the outage', async () => {
      const bus = new GatedBus();
      const { outbox, relay } = relayOver(bus, { backoffMs: [30, 30] });
      const messages = Array.from({ length: 4 }, () => message());
      await outbox.add(messages);
      let open!: () => void;
      outbox.onClaim = (batch) => {
        if (batch.length > 0 && outbox.claims === 1) outbox.hold = new Promise((resolve) => (open = resolve));
      };
      relay.wake();
      await until(() => bus.calls.length === 1 && outbox.claims === 2, 'a publish and a claim under way');
      bus.calls[0]!.fail();
      await until(() => outbox.released.length === 2, 'the failed batch released');
      outbox.hold = undefined;
      open(); // the claim under way returns its rows now
      await until(() => outbox.released.length === 4, 'the rows claimed ahead released');
      expect(outbox.released).to.deep.equal(ids(messages));
      expect(bus.calls, 'nothing published into the outage').to.have.length(1);
      await relay.stop();
    });

    it('should fail the pass once every batch in flight has settled when the outbox cannot mark', async () => {
      const bus = new GatedBus();
      const errors: unknown[] = [];
      const { outbox, relay } = relayOver(bus, { onError: (error) => errors.push(error) });
      await outbox.add(Array.from({ length: 4 }, () => message()));
      const markSent = outbox.markSent.bind(outbox);
      outbox.markSent = async (sent) => {
        if (sent.includes(bus.calls[0]!.batch[0]!.id)) throw new Error('database down');
        return markSent(sent);
      };
      relay.wake();
      await until(() => bus.calls.length === 2, 'two batches in flight');
      bus.calls[0]!.confirm();
      await settle();
      expect(errors, 'the pass waits for the other batch').to.deep.equal([]);
      bus.calls[1]!.confirm();
      await until(() => errors.length === 1, 'the pass failing');
      expect((errors[0] as Error).message).to.equal('database down');
      expect(bus.calls, 'no batch claimed after the failure').to.have.length(2);
      expect(await outbox.pending()).to.equal(2); // the unmarked rows stay; their lease runs out, nothing is lost
      await relay.stop();
    });
  });

  describe('blocked bus (flow control)', () => {
    it('should claim nothing while the bus is blocked, count no attempt nor error, and resume after', async () => {
      const bus = new FlowBus();
      const errors: unknown[] = [];
      const { outbox, relay } = relayOver(bus, { maxAttempts: 1, onError: (error) => errors.push(error) });
      bus.block();
      const messages = Array.from({ length: 4 }, () => message());
      await outbox.add(messages);
      relay.wake();
      await settle();
      expect(outbox.claims, 'claims while blocked').to.equal(0);
      expect(bus.calls).to.deep.equal([]);
      expect(relay.status()).to.deep.equal({
        running: false,
        bus: { blocked: true, reason: 'low on memory', since: new Date(0).toISOString() },
        backoffMs: 0,
      });
      await expect(relay.drain(30)).to.be.rejectedWith(
        /4 messages pending; the broker has blocked publishing since 1970-01-01T00:00:00.000Z \(low on memory\)/,
      );
      expect(bus.listening, 'the waiting relay listens for the change').to.equal(1);
      bus.confirmAll();
      bus.unblock();
      await relay.drain();
      expect(bus.confirmed).to.deep.equal(ids(messages));
      expect(errors).to.deep.equal([]);
      expect(outbox.inner.parked()).to.deep.equal([]);
      expect(bus.listening, 'no listener left behind').to.equal(0);
      expect(relay.status().bus).to.deep.equal({ blocked: false });
    });

    it('should keep a batch in flight waiting when the bus blocks, and hand back one claimed meanwhile', async () => {
      const bus = new FlowBus();
      const { outbox, relay } = relayOver(bus, { pipeline: 2 });
      const messages = Array.from({ length: 4 }, () => message());
      await outbox.add(messages);
      let open!: () => void;
      outbox.onClaim = (batch) => {
        // The second claim returns only once the bus has blocked (the broker answered the first publish so).
        if (outbox.claims === 1 && batch.length > 0) outbox.hold = new Promise((resolve) => (open = resolve));
      };
      relay.wake();
      await until(() => bus.calls.length === 1 && outbox.claims === 2, 'a publish and a second claim under way');
      bus.block();
      outbox.hold = undefined;
      open();
      await until(() => outbox.released.length === 2, 'the batch claimed while blocking handed back');
      expect(outbox.released).to.deep.equal(ids(messages.slice(2)));
      await settle();
      expect(bus.calls, 'nothing published while blocked').to.have.length(1);
      expect(outbox.out.size, 'the first batch still waits for its confirms').to.equal(2);
      bus.confirmAll(); // the broker lets go: it confirms what it had, then takes more
      bus.unblock();
      await relay.drain();
      expect(bus.confirmed).to.deep.equal(ids(messages));
      expect(outbox.inner.parked()).to.deep.equal([]);
    });

    it('should stop at once while blocked with nothing in flight', async () => {
      const bus = new FlowBus();
      const { outbox, relay } = relayOver(bus);
      bus.block();
      await outbox.add([message()]);
      relay.start(10_000);
      expect(relay.status().running).to.equal(true);
      await settle();
      await relay.stop();
      expect(relay.status().running).to.equal(false);
      expect(bus.listening).to.equal(0);
      expect(await outbox.pending()).to.equal(1);
    });

    it('should report the memory bus as never blocked', async () => {
      const bus = new MemoryBus();
      expect(bus.state()).to.deep.equal({ blocked: false });
      const relay = createRelay(new MemoryOutbox(new MemoryUnitOfWork()), bus);
      expect(relay.status()).to.deep.equal({ running: false, bus: { blocked: false }, backoffMs: 0 });
    });
  });

  describe('drain()', () => {
    it('should poll, not spin, while the pending rows are out of its reach (another relay holds them)', async () => {
      const bus = new GatedBus((batch) => ({ sent: ids(batch), failed: [] }));
      const { outbox, relay } = relayOver(bus);
      await outbox.add([message()]);
      await outbox.inner.claim(10); // a relay that died holding it: its lease has not run out yet
      await expect(relay.drain(200)).to.be.rejectedWith(/did not drain within 200 ms: 1 messages pending$/);
      // One claim per 25 ms poll, give or take: a spinning drain claims thousands of times in 200 ms.
      expect(outbox.claims).to.be.within(2, 12);
    });
  });

  describe('stop()', () => {
    it('should wait for every batch in flight, and claim nothing more', async () => {
      const bus = new GatedBus();
      const { outbox, relay } = relayOver(bus);
      const messages = Array.from({ length: 6 }, () => message());
      await outbox.add(messages);
      relay.wake();
      await until(() => bus.calls.length === 2, 'two batches in flight');
      let stopped = false;
      const stopping = relay.stop().then(() => (stopped = true));
      await settle();
      expect(stopped).to.equal(false);
      bus.calls[0]!.confirm();
      await settle();
      expect(stopped, 'one batch is still out').to.equal(false);
      bus.calls[1]!.confirm();
      await stopping;
      expect(bus.confirmed).to.deep.equal(ids(messages.slice(0, 4)));
      expect(outbox.out.size, 'every claim settled').to.equal(0);
      expect(bus.calls).to.have.length(2);
      expect(await outbox.pending()).to.equal(2); // the rest waits for the next relay
    });
  });

  describe('order', () => {
    it('should never publish a later message of an aggregate while an earlier one is out, with confirms, nacks and outages mixed', async () => {
      const tries = new Map<string, number>();
      const bus = new GatedBus((batch) => {
        const call = bus.calls.length;
        if (call % 7 === 3) return new Error('connection reset'); // an outage now and then
        const report: { sent: string[]; failed: Array<{ id: string; error: string; permanent: boolean }> } = {
          sent: [],
          failed: [],
        };
        for (const m of batch) {
          const attempt = (tries.get(m.id) ?? 0) + 1;
          tries.set(m.id, attempt);
          if (attempt === 1 && Number(m.id.slice(1)) % 5 === 0)
            report.failed.push({ id: m.id, error: 'nack', permanent: false });
          else report.sent.push(m.id);
        }
        return report;
      });
      const { outbox, relay } = relayOver(bus, { pipeline: 3, batchSize: 4, maxAttempts: 10 });
      const messages = Array.from({ length: 60 }, (_, i) => message(['A', 'B', 'C', undefined][i % 4]));
      const rank = new Map(messages.map((m, i) => [m.id, i]));
      const violations: string[] = [];
      outbox.onClaim = (batch) => {
        for (const m of batch) {
          if (m.aggregateId === undefined) continue;
          const earlier = [...outbox.out].filter(
            (id) => id !== m.id && rank.get(id)! < rank.get(m.id)! && id.startsWith(m.aggregateId!),
          );
          if (earlier.length > 0) violations.push(`${m.id} handed out while ${earlier.join(', ')} was out`);
        }
      };
      await outbox.add(messages);
      await relay.drain();
      expect(violations).to.deep.equal([]);
      expect(bus.maxOpen).to.be.greaterThan(1);
      for (const aggregate of ['A', 'B', 'C']) {
        const confirmed = bus.confirmed.filter((id) => id.startsWith(aggregate));
        expect(confirmed, aggregate).to.deep.equal(ids(messages.filter((m) => m.aggregateId === aggregate)));
      }
      expect(bus.confirmed).to.have.length(60);
    });
  });
});
