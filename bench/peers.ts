// The peers: a direct handler call (the floor), koa-compose with 7 no-ops, mediatr-ts with 7 pipeline behaviors and
// @nestjs/cqrs's CommandBus — each ending in the same trivial handler.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CommandBus, CommandHandler, CqrsModule, type ICommandHandler } from '@nestjs/cqrs';
import compose from 'koa-compose';
import {
  Mediator as MediatrMediator,
  RequestData,
  pipelineBehavior,
  requestHandler,
  type Class,
  type PipelineBehavior,
  type RequestHandler,
  type Resolver,
} from 'mediatr-ts';
import { ok, type Ok } from '../lib/core/result.js';
import { check, type Case } from './harness.js';

export interface Payload {
  readonly productId: string;
  readonly qty: number;
}
export type Reply = Ok<{ productId: string; qty: number }>;

/** The request body every row starts from. */
export const INPUT: Payload = { productId: 'sku-1', qty: 3 };

/** The trivial handler every row ends in. */
export const trivial = {
  handle(cmd: Payload): Reply {
    return ok({ productId: cmd.productId, qty: cmd.qty });
  },
};

export const MIDDLEWARE_COUNT = 7;

/** Checks a result is the trivial handler's reply to INPUT. */
export function isExpected(result: unknown): boolean {
  const r = result as Reply | undefined;
  return (
    r?.ok === true && r.value.productId === INPUT.productId && r.value.qty === INPUT.qty && r.replayed === undefined
  );
}

// ---- 1. direct ------------------------------------------------------------------------------------------------

class PlainCommand implements Payload {
  constructor(
    readonly productId: string,
    readonly qty: number,
  ) {}
}

export function directCase(): Case {
  const run = () => trivial.handle(new PlainCommand(INPUT.productId, INPUT.qty));
  return {
    id: 'direct',
    label: 'direct handler call (floor)',
    run,
    async verify() {
      check(isExpected(run()), 'direct call did not return the expected result');
    },
  };
}

// ---- 2. koa-compose ---------------------------------------------------------------------------------------------

interface KoaCtx {
  command: Payload;
  result?: Reply;
}

export function koaCase(): Case {
  let ran = 0;
  const noop = async (_ctx: KoaCtx, next: () => Promise<unknown>) => {
    await next();
  };
  const counting = async (_ctx: KoaCtx, next: () => Promise<unknown>) => {
    ran++;
    await next();
  };
  const terminal = async (ctx: KoaCtx) => {
    ctx.result = trivial.handle(ctx.command);
  };
  const stack = Array.from({ length: MIDDLEWARE_COUNT }, () => noop);
  const run = async () => {
    const ctx: KoaCtx = { command: new PlainCommand(INPUT.productId, INPUT.qty) };
    await composed(ctx);
    return ctx.result;
  };
  let composed = compose<KoaCtx>([...stack, terminal]);
  return {
    id: 'koa',
    label: `koa-compose, ${MIDDLEWARE_COUNT} no-op middleware`,
    run,
    async verify() {
      // Same shape with counting no-ops, to prove all seven run; then the timed stack is put back.
      const timed = composed;
      ran = 0;
      composed = compose<KoaCtx>([...Array.from({ length: MIDDLEWARE_COUNT }, () => counting), terminal]);
      check(
        isExpected(await run()) && ran === MIDDLEWARE_COUNT,
        `koa-compose ran ${ran} middleware or returned the wrong result`,
      );
      composed = timed;
      check(isExpected(await run()), 'koa-compose did not return the expected result');
    },
  };
}

// ---- 3. mediatr-ts ----------------------------------------------------------------------------------------------

class MediatrCommand extends RequestData<Reply> {
  constructor(
    readonly productId: string,
    readonly qty: number,
  ) {
    super();
  }
}

@requestHandler(MediatrCommand)
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- registered by the decorator
class MediatrHandler implements RequestHandler<MediatrCommand, Reply> {
  handle(value: MediatrCommand): Promise<Reply> {
    return Promise.resolve(trivial.handle(value));
  }
}

let mediatrBehaviorRuns = 0;
let countBehaviors = false;
// Seven distinct behavior classes (mediatr-ts registers them globally, in declaration order).
for (let i = 0; i < MIDDLEWARE_COUNT; i++) {
  const Behavior = class implements PipelineBehavior {
    async handle(_request: RequestData<unknown>, next: () => unknown): Promise<unknown> {
      if (countBehaviors) mediatrBehaviorRuns++;
      return await next();
    }
  };
  Object.defineProperty(Behavior, 'name', { value: `NoopBehavior${i + 1}` });
  pipelineBehavior()(Behavior);
}

/** Singleton resolver (as a DI container would scope them); mediatr-ts's default one news up every class per send. */
class SingletonResolver implements Resolver {
  readonly #instances = new Map<Class<unknown>, unknown>();
  resolve<T>(type: Class<T>): T {
    let instance = this.#instances.get(type) as T | undefined;
    if (instance === undefined) {
      instance = new type();
      this.#instances.set(type, instance);
    }
    return instance;
  }
  add(): void {}
}

export function mediatrCase(): Case {
  const mediator = new MediatrMediator({ resolver: new SingletonResolver() });
  const run = () => mediator.send(new MediatrCommand(INPUT.productId, INPUT.qty));
  return {
    id: 'mediatr',
    label: `mediatr-ts, ${MIDDLEWARE_COUNT} pipeline behaviors`,
    run,
    async verify() {
      countBehaviors = true;
      mediatrBehaviorRuns = 0;
      const result = await run();
      countBehaviors = false;
      check(
        isExpected(result) && mediatrBehaviorRuns === MIDDLEWARE_COUNT,
        `mediatr-ts ran ${mediatrBehaviorRuns} behaviors or returned the wrong result`,
      );
    },
  };
}

// ---- 4. @nestjs/cqrs --------------------------------------------------------------------------------------------

class NestCommand {
  constructor(
    readonly productId: string,
    readonly qty: number,
  ) {}
}

let nestHandled = 0;

// No constructor injection: tsx emits no design:paramtypes.
@CommandHandler(NestCommand)
class NestHandler implements ICommandHandler<NestCommand, Reply> {
  execute(command: NestCommand): Promise<Reply> {
    nestHandled++;
    return Promise.resolve(trivial.handle(command));
  }
}

@Module({ imports: [CqrsModule.forRoot()], providers: [NestHandler] })
class BenchModule {}

export async function nestCase(): Promise<Case & { close(): Promise<void> }> {
  const app = await NestFactory.createApplicationContext(BenchModule, { logger: false });
  await app.init();
  const bus = app.get(CommandBus);
  const run = () => bus.execute<NestCommand, Reply>(new NestCommand(INPUT.productId, INPUT.qty));
  return {
    id: 'nest',
    label: '@nestjs/cqrs CommandBus.execute',
    run,
    async verify() {
      const before = nestHandled;
      check(isExpected(await run()) && nestHandled === before + 1, '@nestjs/cqrs did not reach the handler');
    },
    close: () => app.close(),
  };
}
