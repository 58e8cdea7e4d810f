// Helpers of the RabbitMQ relay bench (bench/amqp.bench.ts): the run's own broker topology, pass-through wrappers
// that time the relay's phases, payloads of a fixed size, and small statistics.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { Exchanges } from '../adapters/amqp/index.js';
import type { Outbox, OutboxMessage } from '../lib/core/ports.js';
import { readdirSync, readFileSync } from 'node:fs';
import { quantile } from './pg-common.js';

const TICK_US = 1e6 / 100; // CLK_TCK on Linux x86-64

/**
 * CPU µs (utime + stime) per pid of every process whose command name is one of `names` and whose command line passes
 * `keep` (from /proc; empty without it).
 */
export function processCpu(names: readonly string[], keep?: (cmdline: string) => boolean): Map<string, number> {
  const cpu = new Map<string, number>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return cpu;
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      if (!names.includes(stat.slice(stat.indexOf('(') + 1, close))) continue;
      if (keep && !keep(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))) continue;
      const fields = stat.slice(close + 2).split(' ');
      cpu.set(pid, (Number(fields[11]) + Number(fields[12])) * TICK_US);
    } catch {
      // exited meanwhile
    }
  }
  return cpu;
}

export interface CpuSnapshot {
  readonly node: number;
  readonly pg: ReadonlyMap<string, number>;
  readonly rabbit: ReadonlyMap<string, number>;
}

/**
 * CPU of this process, Postgres and the RabbitMQ broker (the beam.smp running `rabbit boot`, not the short-lived
 * beam.smp of a `rabbitmqctl` someone runs), per pid.
 */
export function cpuSnapshot(): CpuSnapshot {
  const { user, system } = process.cpuUsage();
  return {
    node: user + system,
    pg: processCpu(['postgres']),
    rabbit: processCpu(['beam.smp'], (cmdline) => cmdline.includes('rabbit\0boot')),
  };
}

/**
 * CPU µs used since `before`, per process kind: summed per pid over the processes alive now (a process started
 * meanwhile counts from its start), so it is never negative; a process that exited meanwhile (a Postgres backend of a
 * closed connection) is lost.
 */
export function cpuSince(before: CpuSnapshot): { node: number; pg: number; rabbit: number } {
  const after = cpuSnapshot();
  const delta = (now: ReadonlyMap<string, number>, then: ReadonlyMap<string, number>) => {
    let total = 0;
    for (const [pid, us] of now) total += Math.max(0, us - (then.get(pid) ?? 0));
    return total;
  };
  return {
    node: after.node - before.node,
    pg: delta(after.pg, before.pg),
    rabbit: delta(after.rabbit, before.rabbit),
  };
}

/** Exchange and queue names of this run only (`ucc-bench-<random>.*`), like spec/broker.ts `isolatedTopology`. */
export function benchTopology(): { prefix: string; exchanges: Exchanges; queue(name: string): string } {
  const prefix = `ucc-bench-${randomUUID().slice(0, 8)}`;
  return {
    prefix,
    exchanges: { events: `${prefix}.events`, jobs: `${prefix}.jobs`, dead: `${prefix}.dead` },
    queue: (name) => `${prefix}.${name}`,
  };
}

/**
 * Declares the exchanges with the arguments the library uses (so AmqpBus's own declarations agree) and one durable
 * classic queue per routing key, bound to the events exchange.
 */
export async function declareTopology(
  channel: ConfirmChannel,
  exchanges: Exchanges,
  queues: ReadonlyArray<{ queue: string; routingKey: string }>,
): Promise<void> {
  await channel.assertExchange(exchanges.events, 'topic', { durable: true });
  await channel.assertExchange(exchanges.jobs, 'direct', { durable: true });
  await channel.assertExchange(exchanges.dead, 'direct', { durable: true });
  for (const { queue, routingKey } of queues) {
    await channel.assertQueue(queue, { durable: true });
    await channel.bindQueue(queue, exchanges.events, routingKey);
  }
}

/** The queues `subscribe()` declares for one subscriber queue: the queue, its `.retry` and its `.dead`. */
export function withRetryAndDead(queues: readonly string[]): string[] {
  return queues.flatMap((queue) => [queue, `${queue}.retry`, `${queue}.dead`]);
}

/**
 * The type (`classic`, `quorum`, …) of each of the given queues, as the broker reports it (`rabbitmqctl list_queues
 * name type`, read-only). Only asked when the broker is on this machine; `undefined` when it cannot be known.
 */
export async function queueTypes(url: string, queues: readonly string[]): Promise<Map<string, string> | undefined> {
  const host = new URL(url).hostname;
  if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) return undefined;
  try {
    const { stdout } = await promisify(execFile)(
      'rabbitmqctl',
      ['list_queues', '-q', '--no-table-headers', 'name', 'type'],
      { timeout: 60_000 },
    );
    const types = new Map<string, string>();
    for (const line of stdout.split('\n')) {
      const [name, type] = line.trim().split(/\s+/);
      if (name && type && queues.includes(name)) types.set(name, type);
    }
    return types;
  } catch {
    return undefined;
  }
}

/**
 * How long the broker blocked publishing (a memory or disk alarm: `AmqpConnection`'s 'blocked' / 'unblocked'), in ms
 * so far. On a shared broker someone else's alarm stalls the relay: results taken meanwhile are not representative.
 */
export class BlockedClock {
  #total = 0;
  #since: number | undefined;
  spells = 0;
  constructor(connection: { on(event: 'blocked' | 'unblocked', listener: () => void): unknown }) {
    connection.on('blocked', () => {
      if (this.#since !== undefined) return;
      this.#since = performance.now();
      this.spells++;
    });
    connection.on('unblocked', () => {
      if (this.#since === undefined) return;
      this.#total += performance.now() - this.#since;
      this.#since = undefined;
    });
  }
  get ms(): number {
    return this.#total + (this.#since === undefined ? 0 : performance.now() - this.#since);
  }
}

/** Deletes the queues and exchanges (on a connection of its own, so a broken channel does not stop the cleanup). */
export async function deleteTopology(url: string, exchanges: Exchanges, queues: readonly string[]): Promise<string[]> {
  const model: ChannelModel = await connect(url);
  const done: string[] = [];
  try {
    const channel = await model.createChannel();
    for (const queue of queues) {
      const { messageCount } = await channel.deleteQueue(queue);
      done.push(`queue ${queue} (${messageCount} messages)`);
    }
    for (const exchange of Object.values(exchanges)) {
      await channel.deleteExchange(exchange);
      done.push(`exchange ${exchange}`);
    }
  } finally {
    await model.close().catch(() => undefined);
  }
  return done;
}

/** A JSON payload whose serialized body is exactly `bytes` long (seq + padding), as the relay and raw rows send. */
export function payloadOf(seq: number, bytes = 200): { seq: number; pad: string } {
  const bare = JSON.stringify({ seq, pad: '' }).length;
  return { seq, pad: 'x'.repeat(Math.max(0, bytes - bare)) };
}

/** Outbox messages as `ctx.publish` makes them: random UUID, an event type, no aggregate id, the usual headers. */
export function makeMessages(n: number, type: string, bytes = 200): OutboxMessage[] {
  const occurredAt = new Date().toISOString();
  return Array.from({ length: n }, (_, seq) => ({
    id: randomUUID(),
    kind: 'event' as const,
    type,
    payload: payloadOf(seq, bytes),
    occurredAt,
    aggregateId: undefined,
    headers: { requestId: randomUUID(), tenant: 'default', causationType: 'BenchEmit' },
  }));
}

/**
 * Time (ms) and calls spent in each relay phase, summed over a run. `bus` = from a non-empty claim's return to the
 * `markSent` call for its rows: encoding, publishing and waiting for every confirm of the batch (AmqpBus.publish).
 * With a pipelined relay the phases of different batches overlap, so their sum exceeds the wall time.
 */
export interface PhaseTimes {
  claim: number;
  claims: number;
  emptyClaims: number;
  emptyClaim: number;
  bus: number;
  markSent: number;
  marks: number;
  claimed: number;
  /** The most batches that were claimed and not yet settled (marked, released or failed) at one time. */
  maxInFlight: number;
}
export const zeroPhases = (): PhaseTimes => ({
  claim: 0,
  claims: 0,
  emptyClaims: 0,
  emptyClaim: 0,
  bus: 0,
  markSent: 0,
  marks: 0,
  claimed: 0,
  maxInFlight: 0,
});

/**
 * A pass-through Outbox that times `claim` and `markSent`, counts the batches in flight, and reports `add`ed
 * messages and `markSent` calls (a `markSent(ids)` call happens right after the bus resolved with those ids confirmed).
 */
export class TimedOutbox implements Outbox {
  phases = zeroPhases();
  /** Per claimed id not settled yet: when its claim returned, and which batch it came in. */
  readonly #out = new Map<string, { claimedAt: number; batch: number }>();
  /** Rows not settled yet, per batch. */
  readonly #left = new Map<number, number>();
  #batches = 0;
  constructor(
    private readonly inner: Outbox,
    private readonly hooks: {
      added?(messages: readonly OutboxMessage[]): void;
      confirmed?(ids: readonly string[], at: number): void;
      marked?(ids: readonly string[], at: number): void;
    } = {},
  ) {}
  async add(messages: readonly OutboxMessage[]): Promise<void> {
    this.hooks.added?.(messages);
    return this.inner.add(messages);
  }
  async claim(limit: number): Promise<OutboxMessage[]> {
    const t = performance.now();
    const rows = await this.inner.claim(limit);
    const end = performance.now();
    this.phases.claim += end - t;
    this.phases.claims++;
    this.phases.claimed += rows.length;
    if (rows.length === 0) {
      this.phases.emptyClaims++;
      this.phases.emptyClaim += end - t;
      return rows;
    }
    const batch = this.#batches++;
    for (const { id } of rows) this.#out.set(id, { claimedAt: end, batch });
    this.#left.set(batch, rows.length);
    this.phases.maxInFlight = Math.max(this.phases.maxInFlight, this.#left.size);
    return rows;
  }
  async markSent(ids: readonly string[]): Promise<void> {
    const t = performance.now();
    const claimedAt = this.#out.get(ids[0] ?? '')?.claimedAt;
    if (claimedAt !== undefined) this.phases.bus += t - claimedAt;
    this.hooks.confirmed?.(ids, t);
    await this.inner.markSent(ids);
    this.#settle(ids);
    const end = performance.now();
    this.hooks.marked?.(ids, end);
    this.phases.markSent += end - t;
    this.phases.marks++;
  }
  async markFailed(id: string, error: string, park: boolean): Promise<void> {
    await this.inner.markFailed(id, error, park);
    this.#settle([id]);
  }
  async release(ids: readonly string[]): Promise<void> {
    await this.inner.release(ids);
    this.#settle(ids);
  }
  pending(): Promise<number> {
    return this.inner.pending();
  }
  #settle(ids: readonly string[]): void {
    for (const id of ids) {
      const out = this.#out.get(id);
      if (!out) continue;
      this.#out.delete(id);
      const left = (this.#left.get(out.batch) ?? 1) - 1;
      if (left > 0) this.#left.set(out.batch, left);
      else this.#left.delete(out.batch);
    }
  }
}

/** Publishes on a confirm channel, waiting for 'drain' when amqplib asks to (returns false). */
export async function publishOrWait(
  channel: ConfirmChannel,
  exchange: string,
  routingKey: string,
  content: Buffer,
  options: Parameters<ConfirmChannel['publish']>[3],
): Promise<void> {
  if (!channel.publish(exchange, routingKey, content, options)) await once(channel, 'drain');
}

export interface Summary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}
export function summarize(values: readonly number[]): Summary {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    n: sorted.length,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    max: sorted[sorted.length - 1] ?? NaN,
    mean: sum / sorted.length,
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
export const ms = (v: number, digits = 1) => `${v.toFixed(digits)} ms`;
export const rate = (v: number) => Math.round(v).toLocaleString('en-US');
