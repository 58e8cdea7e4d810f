// How one job of a process moves it: the one place a step is run, waited on, given up on or undone. A Move holds
// the process locked for the job's transaction; what it decides (the step's effect, the process's state, the next
// job) commits together, or not at all.
import type { Context } from '../core/context.js';
import { UseCaseError } from '../core/errors.js';
import { FAILURES } from '../core/failures.js';
import type { ProcessFailure, ProcessRecord, ProcessStore, StepRecord } from '../core/ports.js';
import { typeOf } from '../core/request.js';
import type { AnyResult, Failure } from '../core/result.js';
import { isoTime } from '../core/time.js';
import { correlation, deadlineOf, stageRun, stageStep, tell, type PHASES } from './commands.js';
import type { ProcessClass, ProcessStepDef, SendStep, WaitStep } from './declare.js';

/** What a job that found nothing to do answers (a duplicate, a step already settled, an ended process). */
const NOTHING: AnyResult = { ok: true, value: { moved: false } };
const MOVED: AnyResult = { ok: true, value: { moved: true } };
type Phase = 'run' | 'compensate' | 'end';

/** The states a step can still be run from. */
const OPEN = new Set<StepRecord['state']>(['pending', 'running', 'waiting']);

/**
 * The idempotency key of a step's send: the same on every retry and redelivery of that step. `round` counts an
 * operator's retries of a compensation that failed (its failure is stored under the key: a retry needs a new one).
 */
export function stepKey(processId: string, step: number, phase: 'run' | 'compensate' | 'end', round = 0): string {
  return `process:${processId}:${step}:${phase}${round > 0 ? `:${round}` : ''}`;
}

/** The failure a step or a process records. */
export function failureOf(failure: Failure): ProcessFailure {
  return { kind: failure.kind, message: failure.message, ...(failure.kind === 'domain' ? { code: failure.code } : {}) };
}

/** One job's move of one locked process. */
export class Move {
  constructor(
    private readonly ctx: Context,
    private readonly store: ProcessStore,
    private readonly definition: ProcessClass,
    private process: ProcessRecord,
  ) {
    const declared = definition.steps.map((s) => s.name).join(', ');
    const started = process.steps.map((s) => s.name).join(', ');
    if (declared !== started)
      throw new UseCaseError(
        'misuse',
        `Process ${process.processId} was started as ${process.type} with steps [${started}], now declared with ` +
          `[${declared}] — declare the new steps under another name (${process.type}V2) until the old ones end`,
      );
  }

  /** The process as this move left it. */
  get record(): ProcessRecord {
    return this.process;
  }

  /** Runs step `index` (a send, a wait or a sleep), if it is still to run. */
  async run(index: number): Promise<AnyResult> {
    const current = this.process.steps[index];
    if (this.process.state !== 'running' || !current || !OPEN.has(current.state)) return NOTHING;
    const definition = this.definition.steps[index]!;
    if (definition.kind === 'send') return this.#send(index, definition);
    const input = this.#inputOf(index);
    if (definition.kind === 'wait') return this.#wait(index, definition, input);
    const until = new Date(definition.until(input, this.ctx.ports.clock.now())).getTime();
    if (!(until > this.ctx.ports.clock.now())) return this.#advance(index, input);
    this.#step(index, { state: 'waiting', attempts: current.attempts + 1, startedAt: this.#now() });
    stageStep(this.ctx, this.process, index, 'resume', isoTime(until));
    return this.#save();
  }

  /** A sleep ended: the step goes on with its input. */
  async resume(index: number): Promise<AnyResult> {
    if (!this.#waiting(index, 'sleep')) return NOTHING;
    return this.#advance(index, this.#inputOf(index));
  }

  /** The awaited event arrived (`payload`): the step goes on, or the process compensates if it is refused. */
  async arrived(index: number, payload: unknown): Promise<AnyResult> {
    if (!this.#waiting(index, 'wait')) return NOTHING;
    return this.#accepted(index, this.definition.steps[index] as WaitStep, payload);
  }

  /** The wait of step `index` ran out: the process compensates. */
  async timeout(index: number): Promise<AnyResult> {
    const definition = this.definition.steps[index];
    if (!this.#waiting(index, 'wait') || definition?.kind !== 'wait') return NOTHING;
    await this.#unwait(index, definition);
    const message = `no ${typeOf(definition.event)} within ${definition.timeoutMs} ms`;
    return this.#failStep(index, { kind: 'timeout', message });
  }

  /** The deadline of the process (`index` -1) or of step `index` passed: the process compensates. */
  async deadline(index: number): Promise<AnyResult> {
    if (this.process.state !== 'running') return NOTHING;
    const open = this.process.steps.findIndex((s) => OPEN.has(s.state));
    if (open < 0 || (index >= 0 && open !== index)) return NOTHING;
    const definition = this.definition.steps[open]!;
    if (definition.kind === 'wait' && this.process.steps[open]!.state === 'waiting')
      await this.#unwait(open, definition);
    const whose = index < 0 ? `${this.process.type}'s deadline` : `the deadline of ${definition.name}`;
    return this.#failStep(open, { kind: 'deadline', message: `${whose} passed` });
  }

  /** A step's job was given up on (its retries ran out): the step fails, or its compensation does. */
  async gaveUp(index: number, phase: (typeof PHASES)[number], failure: ProcessFailure): Promise<AnyResult> {
    if (phase === 'compensate') {
      if (this.process.state !== 'compensating') return NOTHING;
      return this.#end('failed', { ...failure, message: `compensating step ${index} gave up: ${failure.message}` });
    }
    if (phase === 'deadline') return index < 0 || this.process.state !== 'running' ? NOTHING : this.deadline(index);
    const current = this.process.steps[index];
    if (this.process.state !== 'running' || !current || !OPEN.has(current.state)) return NOTHING;
    return this.#failStep(index, failure);
  }

  /** Cancels a running process: its open step fails as cancelled, and what is done is undone. */
  async cancel(): Promise<AnyResult> {
    if (this.process.state !== 'running') return NOTHING;
    const open = this.process.steps.findIndex((s) => OPEN.has(s.state));
    const definition = this.definition.steps[open];
    if (definition?.kind === 'wait' && this.process.steps[open]!.state === 'waiting')
      await this.#unwait(open, definition);
    return this.#failStep(Math.max(0, open), { kind: 'cancelled', message: `${this.process.type} was cancelled` });
  }

  /** Undoes completed step `index` with its compensating command, then the one before, until none is left. */
  async compensate(index: number): Promise<AnyResult> {
    const current = this.process.steps[index];
    const definition = this.definition.steps[index];
    if (this.process.state !== 'compensating' || current?.state !== 'completed' || definition?.kind !== 'send')
      return NOTHING;
    const result = await this.#sendStep(
      definition.compensate!,
      current.result,
      index,
      'compensate',
      current.compensations,
    );
    if (!result.ok) {
      if (FAILURES[result.failure.kind].transient) return result; // the job retries it
      const failure = failureOf(result.failure);
      this.#step(index, { failure, compensations: current.compensations + 1 });
      return this.#end('failed', { ...failure, message: `compensating ${definition.name} failed: ${failure.message}` });
    }
    this.#step(index, { state: 'compensated', compensations: current.compensations + 1, settledAt: this.#now() });
    return this.#compensateFrom(index);
  }

  /** Puts a process that failed while compensating back to compensating, from the step it could not undo. */
  async retry(): Promise<AnyResult> {
    const undo = this.process.state === 'failed' ? this.#lastToUndo(this.process.steps.length) : -1;
    if (undo < 0) return NOTHING;
    const { endedAt: _ended, ...rest } = this.process;
    this.process = { ...rest, state: 'compensating' };
    stageStep(this.ctx, this.process, undo, 'compensate');
    return this.#save();
  }

  async #send(index: number, definition: SendStep): Promise<AnyResult> {
    const current = this.process.steps[index]!;
    // A transient failure rolls its attempt back with the job: the job's delivery count says how many ran.
    const attempts = Math.max(current.attempts + 1, this.ctx.meta.message?.attempt ?? 1);
    this.#step(index, { state: 'running', attempts, startedAt: current.startedAt ?? this.#now() });
    const result = await this.#sendStep(definition.command, this.#inputOf(index), index, 'run');
    if (result.ok) return this.#advance(index, result.value);
    if (FAILURES[result.failure.kind].transient) return result; // rolled back with the job, which retries it
    return this.#failStep(index, failureOf(result.failure));
  }

  async #wait(index: number, definition: WaitStep, input: unknown): Promise<AnyResult> {
    const key = definition.key(input);
    if (key === undefined) return this.#advance(index, input);
    const waiter = { processId: this.process.processId, step: index };
    const arrived = await this.store.wait(correlation(this.process.tenant, typeOf(definition.event), key), waiter);
    if (arrived) return this.#accepted(index, definition, arrived.payload);
    const current = this.process.steps[index]!;
    this.#step(index, { state: 'waiting', attempts: current.attempts + 1, startedAt: this.#now() });
    const at = isoTime(this.ctx.ports.clock.now() + definition.timeoutMs);
    stageStep(this.ctx, this.process, index, 'timeout', at);
    return this.#save();
  }

  #accepted(index: number, definition: WaitStep, payload: unknown): Promise<AnyResult> {
    const verdict = definition.accept(payload);
    if (verdict === true) return this.#advance(index, this.#inputOf(index));
    return this.#failStep(index, { kind: 'domain', code: 'refused', message: verdict });
  }

  /** Step `index` completed with `result`: the next step's job, or the process's end. */
  #advance(index: number, result: unknown): Promise<AnyResult> {
    this.#step(index, { state: 'completed', result, settledAt: this.#now() });
    if (index === this.process.steps.length - 1) return this.#end('completed');
    stageRun(this.ctx, this.process, index + 1, deadlineOf(this.definition.steps[index + 1]));
    return this.#save();
  }

  /** Step `index` failed for good: undo what is done, or end `failed` when nothing is. */
  #failStep(index: number, failure: ProcessFailure): Promise<AnyResult> {
    this.#step(index, { state: 'failed', failure, settledAt: this.#now() });
    this.process = { ...this.process, failure };
    if (!this.process.steps.some((s) => s.state === 'completed')) return this.#end('failed', failure);
    this.process = { ...this.process, state: 'compensating' };
    return this.#compensateFrom(index);
  }

  /** Stages the compensation of the last completed step before `index` that has one, or ends `compensated`. */
  #compensateFrom(index: number): Promise<AnyResult> {
    const undo = this.#lastToUndo(index);
    if (undo < 0) return this.#end('compensated', this.process.failure);
    stageStep(this.ctx, this.process, undo, 'compensate');
    return this.#save();
  }

  #lastToUndo(before: number): number {
    for (let i = before - 1; i >= 0; i--) {
      const definition = this.definition.steps[i];
      if (this.process.steps[i]!.state === 'completed' && definition?.kind === 'send' && definition.compensate)
        return i;
    }
    return -1;
  }

  /** Ends the process; a failed or compensated one sends its `onFailure` command (once: its key). */
  async #end(state: 'completed' | 'compensated' | 'failed', failure?: ProcessFailure): Promise<AnyResult> {
    const onFailure = this.definition.options.onFailure;
    if (state !== 'completed' && onFailure) {
      const input = { processId: this.process.processId, input: this.process.input, failure };
      const result = await this.#sendStep(onFailure, input, -1, 'end');
      if (!result.ok && FAILURES[result.failure.kind].transient) return result; // retried with the job
    }
    this.process = {
      ...this.process,
      state,
      ...(failure ? { failure } : {}),
      endedAt: this.#now(),
    };
    tell(this.ctx, { kind: 'ended', type: this.process.type, state });
    return this.#save();
  }

  /** Sends a step's command as the process's actor and tenant, under the step's key. */
  #sendStep(command: SendStep['command'], input: unknown, index: number, phase: Phase, round = 0) {
    const key = stepKey(this.process.processId, index, phase, round);
    const ref = { processId: this.process.processId, type: this.process.type, step: index, phase, key };
    return this.ctx.send(command.from(input) as never, {
      idempotencyKey: key,
      tenant: this.process.tenant,
      actor: this.process.actor,
      process: ref,
    }) as Promise<AnyResult>;
  }

  async #unwait(index: number, definition: WaitStep): Promise<void> {
    const key = definition.key(this.#inputOf(index));
    if (key !== undefined) await this.store.unwait(correlation(this.process.tenant, typeOf(definition.event), key));
  }

  #waiting(index: number, kind: ProcessStepDef['kind']): boolean {
    return (
      this.process.state === 'running' &&
      this.process.steps[index]?.state === 'waiting' &&
      this.definition.steps[index]?.kind === kind
    );
  }

  #inputOf(index: number): unknown {
    return index === 0 ? this.process.input : this.process.steps[index - 1]!.result;
  }

  #step(index: number, change: Partial<StepRecord>): void {
    const steps = this.process.steps.map((s, i) => (i === index ? { ...s, ...change } : s));
    this.process = { ...this.process, steps };
    const step = steps[index]!;
    if (change.settledAt && step.startedAt) {
      const seconds = Math.max(0, Date.parse(change.settledAt) - Date.parse(step.startedAt)) / 1000;
      tell(this.ctx, { kind: 'step', type: this.process.type, step: step.name, state: step.state, seconds });
    }
  }

  #now(): string {
    return isoTime(this.ctx.ports.clock.now());
  }

  async #save(): Promise<AnyResult> {
    await this.store.save({ ...this.process, updatedAt: this.#now() });
    return MOVED;
  }
}
