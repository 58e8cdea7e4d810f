// The jobs a process runs on: one step (run it, undo it, time its wait out, end it at its deadline) and the
// callback of a step job given up on. Workers run them like any job (`work()`), through the whole stack.
import * as v from 'valibot';
import type { Context } from '../core/context.js';
import { UseCaseError } from '../core/errors.js';
import type { ProcessMovement, ProcessRecord, ProcessStore } from '../core/ports.js';
import { isoTime } from '../core/time.js';
import { Command } from '../core/request.js';

/** What the job of a step does. */
export const PHASES = ['run', 'compensate', 'timeout', 'resume', 'deadline', 'cancel', 'retry'] as const;

/**
 * One step of one process: run step `step` (or go on after its sleep: `resume`), undo it (`compensate`), time out
 * its wait (`timeout`), or end the process past its deadline (`deadline`, step -1 for the process's own). `cancel`
 * and `retry` (step -1) are CancelProcess and RetryProcess asked of a worker by a mediator that does not run the
 * process (the CLI's).
 */
export class ProcessStep extends Command(
  v.object({
    processId: v.pipe(v.string(), v.maxLength(100)),
    step: v.pipe(v.number(), v.integer(), v.minValue(-1)),
    phase: v.picklist(PHASES),
  }),
)<unknown, string> {
  static readonly type = 'usecasecore.ProcessStep';
  /** A transient failure of a step retries with this backoff; past its attempts the step is given up on. */
  static readonly retry = { attempts: 8, baseMs: 200, maxMs: 10_000 };
}

/**
 * The job of a step given up on (its retries ran out, or it threw every time): the `onFailure` callback of every
 * ProcessStep job, so the process compensates or fails instead of staying `running` for good.
 */
export class ProcessStepGaveUp extends Command(
  v.object({
    payload: v.object({ processId: v.string(), step: v.number(), phase: v.picklist(PHASES) }),
    failure: v.object({ kind: v.string(), message: v.string(), code: v.optional(v.string()) }),
  }),
)<unknown, string> {
  static readonly type = 'usecasecore.ProcessStepGaveUp';
}

/**
 * Stages the job of a step in the transaction of `ctx` (it leaves with the commit, or not at all), given up on
 * through ProcessStepGaveUp, and sent under the process's trace (linked to what staged it).
 */
export function stageStep(
  ctx: Context,
  process: Pick<ProcessRecord, 'processId' | 'trace'>,
  step: number,
  phase: (typeof PHASES)[number],
  runAt?: string,
): void {
  ctx.enqueue(new ProcessStep({ processId: process.processId, step, phase }), {
    onFailure: ProcessStepGaveUp,
    ...(runAt === undefined ? {} : { runAt }),
    ...(process.trace ? { trace: process.trace } : {}),
  });
}

/**
 * Stages the run of step `index` and, when the step has a deadline, the job that ends it then: the deadline counts
 * from now, when the step becomes due, and is a job of its own, so retries of the step cannot roll it back.
 */
export function stageRun(
  ctx: Context,
  process: Pick<ProcessRecord, 'processId' | 'trace'>,
  index: number,
  deadlineMs: number | undefined,
): void {
  stageStep(ctx, process, index, 'run');
  if (deadlineMs !== undefined) stageStep(ctx, process, index, 'deadline', isoTime(ctx.ports.clock.now() + deadlineMs));
}

/** A step's own deadline (ms): a send step's `deadlineMs`, when it declares one. */
export function deadlineOf(
  step: { readonly kind: string; readonly deadlineMs?: number | undefined } | undefined,
): number | undefined {
  return step?.kind === 'send' ? step.deadlineMs : undefined;
}

/**
 * Where a wait and its event meet: the event's type and the key, within the tenant, so that another tenant's event
 * with the same key never wakes (nor is kept for) this tenant's process.
 */
export function correlation(tenant: string, event: string, key: string): { event: string; key: string } {
  return { event, key: `${tenant}\u001f${key}` };
}

/** The ProcessStore of the mediator, or the fix when none is bound. */
export function storeOf(ctx: Context): ProcessStore {
  if (ctx.ports.processes) return ctx.ports.processes;
  throw new UseCaseError(
    'missing_port',
    `${ctx.type} needs a ProcessStore — load memoryModule() or knexModule(...), or bind TOKENS.ProcessStore`,
  );
}

/** Tells the telemetry how a process moved, once the move commits (a rolled-back move never happened). */
export function tell(ctx: Context, moved: ProcessMovement): void {
  const telemetry = ctx.ports.telemetry;
  if (telemetry?.processMoved) ctx.afterCommit(() => telemetry.processMoved!(moved));
}
