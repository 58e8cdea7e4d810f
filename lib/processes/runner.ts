// Running declared processes: the handlers of their step jobs and of the events their steps wait for, the policy
// rules those need, and the job types to work. `processes([Checkout])` gathers them for createMediator and work().
import { injectable } from 'inversify';
import type { Context, HandlerClass } from '../core/context.js';
import { UseCaseError } from '../core/errors.js';
import { handles, on } from '../core/handler.js';
import type { Decision } from '../core/policy.js';
import { payloadOf, typeOf, type AnyRequest, type RequestClass } from '../core/request.js';
import { notFound, type AnyResult } from '../core/result.js';
import { correlation, ProcessStep, ProcessStepGaveUp, storeOf } from './commands.js';
import type { ProcessClass, WaitStep } from './declare.js';
import { Move } from './advance.js';
import { processRequestHandlers } from './requests.js';

/** What `processes()` gives: register the handlers and rules, work the jobs, subscribe for the waits. */
export interface ProcessRuntime {
  /** The starting handler of each process, the step runner, and a subscriber per event a step waits for. */
  readonly handlers: readonly HandlerClass[];
  /** Policy rules that let the step jobs run (as jobs only): add them to your rules. */
  readonly rules: ReadonlyArray<{ readonly type: RequestClass; readonly check: (ctx: Context) => Decision }>;
  /** The job types a worker must run: `await work(mediator, source, runtime.jobs)`. */
  readonly jobs: readonly RequestClass[];
  /** The events steps wait for (their subscribers come with `subscribe(mediator, source, service)`). */
  readonly events: readonly RequestClass[];
}

/** Only a worker may run a step job: a client sending one is denied. */
const asJobOnly = (ctx: Context): Decision =>
  ctx.meta.job !== undefined || { allow: false, reason: `${ctx.type} runs only as a job of a process` };

/**
 * The handlers, rules, job types and awaited events that run `definitions`. Two steps that wait for one event type
 * must correlate it the same way (one `match`).
 * @example
 * const runtime = processes([Checkout]);
 * const mediator = createMediator(container, { handlers: [...mine, ...runtime.handlers],
 *   middleware: recommendedStack({ rules: [...myRules, ...runtime.rules], inbox: true }) });
 * await work(mediator, source, runtime.jobs); await subscribe(mediator, source, 'shop');
 */
export function processes(definitions: readonly ProcessClass[]): ProcessRuntime {
  const registry = new Map(definitions.map((d) => [d.type, d]));
  if (registry.size !== definitions.length)
    throw new UseCaseError('misuse', 'processes(): two processes share a name — give each its own');
  const waits = awaitedEvents(definitions);
  return {
    handlers: [
      ...definitions.map((d) => d.handler),
      stepRunner(registry),
      gaveUpHandler(registry),
      ...processRequestHandlers(registry),
      ...[...waits].map(([event, wait]) => waitSubscriber(event, wait, registry)),
    ],
    rules: [
      { type: ProcessStep, check: asJobOnly },
      { type: ProcessStepGaveUp, check: asJobOnly },
    ],
    jobs: [ProcessStep, ProcessStepGaveUp],
    events: [...waits.keys()],
  };
}

/** Each awaited event with its correlation (one per event type). */
function awaitedEvents(definitions: readonly ProcessClass[]): Map<RequestClass, WaitStep> {
  const waits = new Map<RequestClass, WaitStep>();
  for (const definition of definitions)
    for (const step of definition.steps) {
      if (step.kind !== 'wait') continue;
      const known = waits.get(step.event);
      if (known && known.match !== step.match)
        throw new UseCaseError(
          'misuse',
          `Two steps wait for ${typeOf(step.event)} with different match functions — correlate an event type one ` +
            'way (declare its match once and share it)',
        );
      waits.set(step.event, step);
    }
  return waits;
}

/** The process of `processId`, locked for the job's transaction, with its definition; undefined if unknown. */
async function locked(ctx: Context, registry: Map<string, ProcessClass>, processId: string) {
  const store = storeOf(ctx);
  const process = await store.lock(processId);
  if (!process) return undefined;
  const definition = registry.get(process.type);
  if (!definition)
    throw new UseCaseError(
      'misuse',
      `Process ${processId} is a ${process.type}, which this mediator does not run — add it to processes([...])`,
    );
  return new Move(ctx, store, definition, process);
}

const noProcess = (processId: string) => notFound(`No process ${processId}`);

function stepRunner(registry: Map<string, ProcessClass>): HandlerClass {
  @handles(ProcessStep)
  @injectable()
  class RunProcessStep {
    async handle(job: ProcessStep, ctx: Context<ProcessStep>): Promise<AnyResult> {
      const move = await locked(ctx, registry, job.processId);
      if (!move) return noProcess(job.processId);
      switch (job.phase) {
        case 'run':
          return move.run(job.step);
        case 'resume':
          return move.resume(job.step);
        case 'timeout':
          return move.timeout(job.step);
        case 'deadline':
          return move.deadline(job.step);
        case 'compensate':
          return move.compensate(job.step);
        case 'cancel':
          return move.cancel();
        case 'retry':
          return move.retry();
      }
    }
  }
  return RunProcessStep;
}

function gaveUpHandler(registry: Map<string, ProcessClass>): HandlerClass {
  @handles(ProcessStepGaveUp)
  @injectable()
  class OnProcessStepGaveUp {
    async handle(job: ProcessStepGaveUp, ctx: Context<ProcessStepGaveUp>): Promise<AnyResult> {
      const move = await locked(ctx, registry, job.payload.processId);
      if (!move) return noProcess(job.payload.processId);
      return move.gaveUp(job.payload.step, job.payload.phase, job.failure);
    }
  }
  return OnProcessStepGaveUp;
}

/** The subscriber of an awaited event: it wakes the step that waits for it, or keeps it for the step to come. */
function waitSubscriber(event: RequestClass, wait: WaitStep, registry: Map<string, ProcessClass>): HandlerClass {
  class ProcessWait {
    static readonly subscription = `processes.${typeOf(event)}`;
    async handle(arrived: AnyRequest, ctx: Context): Promise<AnyResult> {
      const payload = payloadOf(arrived);
      const where = correlation(ctx.meta.tenant, typeOf(event), wait.match(arrived));
      const waiter = await storeOf(ctx).signal(where, payload);
      if (!waiter) return { ok: true, value: { moved: false } }; // kept for the wait to come
      const move = await locked(ctx, registry, waiter.processId);
      return move ? move.arrived(waiter.step, payload) : noProcess(waiter.processId);
    }
  }
  Object.defineProperty(ProcessWait, 'name', { value: `ProcessWait${typeOf(event).replace(/\W/g, '')}` });
  injectable()(ProcessWait);
  on(event as never)(ProcessWait as never);
  return ProcessWait;
}
