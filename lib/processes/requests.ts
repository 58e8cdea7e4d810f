// GetProcess, CancelProcess and RetryProcess: a process read, stopped (what it did is undone) and retried through the
// mediator, like any request, scoped to the sender's tenant.
import { injectable } from 'inversify';
import * as v from 'valibot';
import type { Context, HandlerClass } from '../core/context.js';
import { handles } from '../core/handler.js';
import type { ProcessRecord, ProcessState } from '../core/ports.js';
import { Command, Query } from '../core/request.js';
import { fail, notFound, ok, type Fail, type Result } from '../core/result.js';
import { Move } from './advance.js';
import { stageStep, storeOf } from './commands.js';
import type { ProcessClass } from './declare.js';

const byId = v.object({ processId: v.pipe(v.string(), v.maxLength(100)) });

/** What CancelProcess and RetryProcess answer: the process's state once moved. */
export interface ProcessMoved {
  readonly processId: string;
  readonly state: ProcessState;
  /**
   * True when this mediator does not run the process (the CLI's): a worker that does was asked, with a job, and
   * `state` is the state before it moves it.
   */
  readonly queued?: boolean;
}

/**
 * Reads a process of the sender's tenant (`not_found` for another tenant's), with its steps.
 * @example const process = await mediator.send(new GetProcess({ processId }), { actor, tenant });
 */
export class GetProcess extends Query(byId)<ProcessRecord> {}

/**
 * Cancels a running process of the sender's tenant: its open step fails as `cancelled` and what is done is undone
 * (its state is then `compensating`, or `failed` when nothing was done). A process that ended is the domain failure
 * `not_running` (its `details.state` says how it ended).
 * @example await mediator.send(new CancelProcess({ processId }), { actor });
 */
export class CancelProcess extends Command(byId)<ProcessMoved, 'not_running'> {}

/**
 * Retries a process that `failed` while undoing a step (its compensation kept failing): it compensates again from
 * that step. Any other process is the domain failure `not_retryable`.
 * @example await mediator.send(new RetryProcess({ processId }), { actor }); // an operator, after fixing the cause
 */
export class RetryProcess extends Command(byId)<ProcessMoved, 'not_retryable'> {}

const noProcess = (processId: string) =>
  notFound(`No process ${processId} — check the id its start returned (and the tenant)`);

/** The process, if the sender's tenant owns it; locked when `lock` (the caller's transaction changes it). */
async function ofTenant(ctx: Context, processId: string, lock: boolean): Promise<ProcessRecord | undefined> {
  const store = storeOf(ctx);
  const process = await (lock ? store.lock(processId) : store.get(processId));
  return process?.tenant === ctx.meta.tenant ? process : undefined;
}

@handles(GetProcess)
@injectable()
class GetProcessHandler {
  async handle(query: GetProcess, ctx: Context<GetProcess>): Promise<Result<ProcessRecord>> {
    const process = await ofTenant(ctx, query.processId, false);
    return process ? ok(process) : noProcess(query.processId);
  }
}

/** The handlers of GetProcess, CancelProcess and RetryProcess for these processes (`processes()` adds them). */
export function processRequestHandlers(registry: ReadonlyMap<string, ProcessClass>): HandlerClass[] {
  /**
   * The process locked, and its move when this mediator runs its type; a mediator that does not (the CLI's, built
   * with `processes([])`) asks a worker that does, with a job.
   */
  const target = async (ctx: Context, processId: string) => {
    const process = await ofTenant(ctx, processId, true);
    const definition = process && registry.get(process.type);
    return process && { process, move: definition && new Move(ctx, storeOf(ctx), definition, process) };
  };
  const queued = (ctx: Context, process: ProcessRecord, phase: 'cancel' | 'retry') => {
    stageStep(ctx, process, -1, phase);
    return ok({ processId: process.processId, state: process.state, queued: true });
  };

  @handles(CancelProcess)
  @injectable()
  class CancelProcessHandler {
    async handle(command: CancelProcess, ctx: Context<CancelProcess>) {
      const found = await target(ctx, command.processId);
      if (!found) return noProcess(command.processId);
      const { process, move } = found;
      if (process.state !== 'running')
        return fail('not_running', { state: process.state }, `Process ${command.processId} is ${process.state}`);
      if (!move) return queued(ctx, process, 'cancel');
      const cancelled = await move.cancel();
      // Not cancelled (the onFailure command of a process with nothing to undo failed): say why, and roll back.
      if (!cancelled.ok) return cancelled as Fail<never>;
      return ok({ processId: command.processId, state: move.record.state });
    }
  }

  @handles(RetryProcess)
  @injectable()
  class RetryProcessHandler {
    async handle(command: RetryProcess, ctx: Context<RetryProcess>) {
      const found = await target(ctx, command.processId);
      if (!found) return noProcess(command.processId);
      const { process, move } = found;
      if (!move && process.state === 'failed') return queued(ctx, process, 'retry');
      const moved = move && (await move.retry());
      if (moved?.ok && (moved.value as { moved: boolean }).moved)
        return ok({ processId: command.processId, state: move!.record.state });
      return fail(
        'not_retryable',
        { state: process.state },
        `Process ${command.processId} is ${process.state}: only one that failed while compensating is retried`,
      );
    }
  }
  return [GetProcessHandler, CancelProcessHandler, RetryProcessHandler];
}
