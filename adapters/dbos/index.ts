// DBOS Transact for usecasecore: `sendInDbos` makes a `mediator.send` one exactly-once step of a DBOS workflow.
// DBOS runs a step at least once (a crash after the send's COMMIT, before DBOS checkpointed the step's output, runs
// it again on recovery); the step's identity, the same on that second run, is the send's idempotency key, so the
// effect commits once and the second run answers the first one's result (`replayed: true`). Needs the optional peer
// `@dbos-inc/dbos-sdk` (5.3). All this file knows of DBOS is how to read a step's identity and its retry options.
import { DBOS, type StepConfig } from '@dbos-inc/dbos-sdk';
import type { SendOptions } from '../../lib/core/context.js';
import { UseCaseError } from '../../lib/core/errors.js';
import type { Mediator } from '../../lib/core/mediator.js';
import { typeOf, type AnyRequest, type FailureOf, type RequestClass, type ResultOf } from '../../lib/core/request.js';
import type { Result } from '../../lib/core/result.js';
import { sendAsStep, type EngineStep } from '../../lib/processes/engine.js';

/** Options of `sendInDbos`: the send's own (actor, tenant…; DBOS gives the idempotency key) and the step's. */
export interface DbosSendOptions extends Omit<SendOptions, 'idempotencyKey'> {
  /** DBOS's step options, over `DBOS_STEP_DEFAULTS`; `name` is the request's type unless given. */
  readonly dbos?: StepConfig;
}

/**
 * The step options `sendInDbos` starts from. A transient failure (`unavailable`, `conflict`, `in_progress`) is
 * thrown so DBOS retries it: 5 attempts, 1 s apart and doubling. Any other throw is retried too, as the library's
 * consumers retry a handler that throws, except a UseCaseError reporting a mistake (no handler, misuse): the same
 * code would fail the same way. When the attempts run out DBOS throws `DBOSMaxStepRetriesError` into the workflow.
 * @example await sendInDbos(mediator, new ChargeCard(input), { actor, dbos: { maxAttempts: 10 } }) // the rest stays
 */
export const DBOS_STEP_DEFAULTS: Readonly<StepConfig> = Object.freeze({
  retriesAllowed: true,
  maxAttempts: 5,
  intervalSeconds: 1,
  backoffRate: 2,
  shouldRetry: (error: unknown) => !UseCaseError.is(error) || error.kind === 'failed',
});

/**
 * Sends `request` as a step of the calling DBOS workflow (call it from the workflow function, never inside a step):
 * its effect commits once however often DBOS runs the step, and the workflow gets the Result — a success, or a lasting
 * failure such as a domain code to act on. The key is `dbos:<workflowID>:<stepID>`; both survive a restart, as long as
 * the workflow is deterministic (the same steps in the same order), which DBOS asks of every workflow anyway.
 * @example
 * const checkout = DBOS.registerWorkflow(
 *   async (input: { orderId: string }) => {
 *     const reserved = await sendInDbos(mediator, new Reserve(input), { actor });
 *     if (!reserved.ok) return reserved;
 *     return sendInDbos(mediator, new Charge({ ...input, reservationId: reserved.value.reservationId }), { actor });
 *   },
 *   { name: 'checkout' },
 * );
 */
export async function sendInDbos<R extends AnyRequest>(
  mediator: Mediator,
  request: R,
  options: DbosSendOptions = {},
): Promise<Result<ResultOf<R>, FailureOf<R>>> {
  refuseOutsideWorkflow();
  const { dbos, ...send } = options;
  const name = typeOf(request.constructor as RequestClass);
  // No await before runStep: DBOS numbers a workflow's steps in the order they are called, and that number is the key.
  return DBOS.runStep(() => sendAsStep(mediator, request, currentStep(), send), {
    ...DBOS_STEP_DEFAULTS,
    name,
    ...dbos,
  });
}

/** Throws the fix unless called by a workflow function itself (DBOS would run the send outside any step). */
function refuseOutsideWorkflow(): void {
  if (DBOS.isInWorkflow()) return;
  const fix = DBOS.isWithinWorkflow()
    ? 'it was called inside a DBOS step or transaction, whose sends would share one key: call it from the workflow ' +
      'function (it makes its own step)'
    : 'call it from a function registered with DBOS.registerWorkflow (or @DBOS.workflow()) after DBOS.launch(); ' +
      'outside a workflow use mediator.send with an idempotency key of your own';
  throw new UseCaseError('misuse', `sendInDbos needs a DBOS workflow: ${fix}`);
}

/** The running step as DBOS numbers it: the workflow's id and the step's position in it, read inside the step. */
function currentStep(): EngineStep {
  const [workflowId, stepId] = [DBOS.workflowID, DBOS.stepID];
  if (workflowId === undefined || stepId === undefined)
    throw new UseCaseError('misuse', 'sendInDbos: DBOS reported no workflow or step id inside the step');
  return { engine: 'dbos', workflowId, stepId: String(stepId) };
}
