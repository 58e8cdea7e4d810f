// The Logger port: JSON lines by default, pino through fromPino, and the library's own failures logged once with
// their ids through the container's Logger (no console.* in the library).
import 'reflect-metadata';
import { Container, injectable } from 'inversify';
import * as v from 'valibot';
import { MemoryBus, memoryModule } from '../../../adapters/memory/index.js';
import { settled } from '../../../lib/testing/index.js';
import { auditSealer } from '../../../lib/audit/index.js';
import {
  Command,
  createMediator,
  Event,
  fromPino,
  handles,
  jsonLogger,
  ok,
  TOKENS,
  type Context,
  type Logger,
} from '../../../lib/core/index.js';
import { consume, createRelay, type BusState, type MessageBus, type Outbox } from '../../../lib/messaging/index.js';
import { recommendedStack, rule } from '../../../middleware/index.js';
import { alice, expect } from '../../support/helpers.js';

class Notify extends Command(v.object({ to: v.string() }))<{ sent: boolean }> {}

/** Sends a notice: publishes it, and registers an afterCommit hook that fails when told to. */
const hooks = { fail: false };
const broken = new Error('mailer down');
@handles(Notify)
@injectable()
class NotifyHandler {
  handle(cmd: Notify, ctx: Context<Notify>) {
    ctx.publish(new Noticed({ to: cmd.to }));
    ctx.afterCommit(() => {
      if (hooks.fail) throw broken;
    });
    return ok({ sent: true });
  }
}

/** A Logger that keeps what it was told. */
function recording() {
  const lines: Array<{ level: string; message: string; fields: Record<string, unknown> | undefined }> = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    lines.push({ level, message, fields });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { lines, logger };
}

describe('Logger', () => {
  afterEach(() => {
    hooks.fail = false;
  });
  it('jsonLogger writes one JSON line per entry from its level up, errors as objects', () => {
    const lines: string[] = [];
    const logger = jsonLogger({ level: 'info', write: (line) => lines.push(line) });
    logger.debug('hidden');
    logger.info('relay started', { batch: 500 });
    const error = Object.assign(new Error('connection lost'), { code: 'ECONNRESET' });
    logger.error('publish failed', { messageId: 'm-1', error });
    expect(lines).to.have.length(2);
    expect(lines.every((line) => line.endsWith('\n') && !line.slice(0, -1).includes('\n'))).to.equal(true);
    const [info, failed] = lines.map((line) => JSON.parse(line));
    expect(info).to.include({ level: 'info', msg: 'relay started', batch: 500, name: 'usecasecore' });
    expect(Date.parse(info.time)).to.be.a('number').and.not.NaN;
    expect(failed).to.deep.include({ level: 'error', msg: 'publish failed', messageId: 'm-1' });
    expect(failed.error).to.include({ type: 'Error', message: 'connection lost', code: 'ECONNRESET' });
    expect(failed.error.stack).to.match(/connection lost/);
  });

  it('jsonLogger defaults to warnings and errors', () => {
    const lines: string[] = [];
    const logger = jsonLogger({ write: (line) => lines.push(line) });
    logger.info('not shown');
    logger.warn('shown');
    expect(lines.map((line) => JSON.parse(line).msg)).to.deep.equal(['shown']);
  });

  it('fromPino hands pino its fields first, then the message', () => {
    const calls: unknown[][] = [];
    const pino = {
      debug: (...args: unknown[]) => calls.push(['debug', ...args]),
      info: (...args: unknown[]) => calls.push(['info', ...args]),
      warn: (...args: unknown[]) => calls.push(['warn', ...args]),
      error: (...args: unknown[]) => calls.push(['error', ...args]),
    };
    const logger = fromPino(pino);
    logger.warn('parked', { messageId: 'm' });
    logger.info('plain');
    expect(calls).to.deep.equal([
      ['warn', { messageId: 'm' }, 'parked'],
      ['info', {}, 'plain'],
    ]);
  });

  it("sends a failing commit hook to the container's Logger with the send's type and request id", async () => {
    const { lines, logger } = recording();
    hooks.fail = true;
    const container = new Container();
    container.load(memoryModule());
    container.bind(TOKENS.Logger).toConstantValue(logger);
    const mediator = createMediator(container, {
      handlers: [NotifyHandler],
      middleware: recommendedStack({ rules: [rule(Notify, () => true)] }),
    });
    const result = await mediator.send(Notify.from({ to: 'ops' }), alice);
    expect(result, 'the outcome stands').to.deep.include({ ok: true });
    expect(lines).to.have.length(1);
    expect(lines[0]).to.deep.include({ level: 'error', message: 'a commit hook failed; the outcome stands' });
    expect(lines[0]!.fields).to.include({ type: 'Notify', error: broken });
    expect(lines[0]!.fields!.requestId).to.be.a('string').and.not.equal('');
  });

  it("sends a failing seal to the container's Logger", async () => {
    const { lines, logger } = recording();
    const container = new Container();
    const failure = new Error('database gone');
    container.bind(TOKENS.AuditStore).toConstantValue({ seal: () => Promise.reject(failure) });
    container.bind(TOKENS.Logger).toConstantValue(logger);
    const sealer = auditSealer(container, { everyMs: 1 });
    await expect(sealer.sealOnce()).to.be.rejectedWith('database gone');
    while (lines.length === 0) await new Promise((resolve) => setImmediate(resolve));
    await sealer.stop();
    expect(lines[0]).to.deep.include({ level: 'error', message: 'audit sealing failed; retrying' });
    expect(lines[0]!.fields).to.deep.equal({ error: failure });
  });

  it('logs a relay outage once (and its end) and each parked message with its id', async () => {
    const { lines, logger } = recording();
    const container = new Container();
    container.load(memoryModule({ bus: false })); // no relay of its own: the rows wait for the one below
    container.bind(TOKENS.Logger).toConstantValue(logger);
    const mediator = createMediator(container, {
      handlers: [NotifyHandler],
      middleware: recommendedStack({ rules: [rule(Notify, () => true)] }),
    });
    for (const to of ['a', 'b']) await mediator.send(Notify.from({ to }), alice);
    let failures = 2;
    const bus: MessageBus = {
      async publish(messages) {
        if (failures-- > 0) throw new Error('broker down');
        const [first, ...rest] = messages;
        return { sent: rest.map((m) => m.id), failed: [{ id: first!.id, error: 'unroutable', permanent: true }] };
      },
    };
    const relay = createRelay(container.get<Outbox>(TOKENS.Outbox), bus, { logger, backoffMs: [1, 2] });
    await relay.drain();
    expect(lines.map((l) => `${l.level}: ${l.message}`)).to.deep.equal([
      'warn: relay: the bus is unreachable; rows stay in the outbox, backing off',
      'info: relay: the bus is reachable again; publishing',
      'error: relay: parked a message its publishes failed for; retry it with usecasecore outbox retry',
    ]);
    expect(lines[2]!.fields).to.include({ type: 'noticed', attempts: 1, error: 'unroutable' });
    expect(lines[2]!.fields!.messageId).to.be.a('string');
  });

  it('logs a blocked broker once per spell, and its end', async () => {
    const { lines, logger } = recording();
    const container = new Container();
    container.load(memoryModule({ bus: false }));
    container.bind(TOKENS.Logger).toConstantValue(logger);
    const mediator = createMediator(container, {
      handlers: [NotifyHandler],
      middleware: recommendedStack({ rules: [rule(Notify, () => true)] }),
    });
    await mediator.send(Notify.from({ to: 'a' }), alice);
    let blocked = true;
    const listeners = new Set<(state: BusState) => void>();
    const bus: MessageBus = {
      publish: async (messages) => ({ sent: messages.map((m) => m.id), failed: [] }),
      state: () => (blocked ? { blocked: true, reason: 'low on memory', since: 'now' } : { blocked: false }),
      onStateChange: (listener) => {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    const relay = createRelay(container.get<Outbox>(TOKENS.Outbox), bus, { logger });
    const draining = relay.drain();
    while (lines.length === 0) await new Promise((resolve) => setImmediate(resolve));
    blocked = false;
    for (const listener of listeners) listener({ blocked: false });
    await draining;
    expect(lines.map((l) => `${l.level}: ${l.message}`)).to.deep.equal([
      'warn: relay: the broker blocks publishing; waiting, nothing is lost',
      'info: relay: the broker takes publishes again',
    ]);
    expect(lines[0]!.fields).to.deep.equal({ reason: 'low on memory' });
  });

  it('logs a message a consumer dead-letters, once, with its id and reason', async () => {
    const { lines, logger } = recording();
    const container = new Container();
    container.load(memoryModule());
    container.bind(TOKENS.Logger).toConstantValue(logger);
    const mediator = createMediator(container, {
      handlers: [NotifyHandler, PoisonedHandler],
      middleware: recommendedStack({ rules: [rule(Notify, () => true), rule(Noticed, () => true)], inbox: true }),
    });
    await consume(mediator, container.get(MemoryBus), 'notices', [Noticed], { maxAttempts: 2 });
    await mediator.send(Notify.from({ to: 'ops' }), alice);
    await settled(container);
    const dead = lines.filter((l) => l.message.startsWith('consumer: dead-lettered'));
    expect(dead).to.have.length(1);
    expect(dead[0]!.fields).to.include({ queue: 'notices', type: 'noticed', attempt: 2 });
    expect((dead[0]!.fields!.reason as Error).message).to.equal('poisoned');
  });
});

class Noticed extends Event(v.object({ to: v.string() })) {
  static readonly type = 'noticed';
}

@handles(Noticed)
@injectable()
class PoisonedHandler {
  handle(): never {
    throw new Error('poisoned');
  }
}
