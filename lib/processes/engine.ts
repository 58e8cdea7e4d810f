// A send as one step of an outside durable-execution engine (DBOS, Temporal, Restate). Such engines retry a step
// at least once; the step's identity, which the engine keeps across its retries and restarts, becomes the send's
// idempotency key, so a step run twice is one effect and its second run answers the first one's result.
import type { Mediator } from '../core/mediator.js';
import type { SendOptions } from '../core/context.js';
import { UseCaseError } from '../core/errors.js';
import { FAILURES } from '../core/failures.js';
import { sha256 } from '../core/json.js';
import type { AnyRequest, FailureOf, ResultOf } from '../core/request.js';
import type { AnyResult, Result } from '../core/result.js';

/** Who is running a send: an engine's step, as stable as the engine keeps it. */
export interface EngineStep {
  /** The engine (`dbos`, `temporal`): two engines' steps never share a key. */
  readonly engine: string;
  /** The workflow's id, the same after a restart (DBOS's workflow id; Temporal's workflow id). */
  readonly workflowId: string;
  /** The step within that workflow (DBOS's step number; Temporal's run id and activity id). */
  readonly stepId: string;
}

/** The idempotency key's format, as `validation()` checks it (middleware/validation.ts): 1–255 printable ASCII. */
const KEY_FORMAT = /^[\x21-\x7e]{1,255}$/;

/**
 * The idempotency key of an engine's step: `<engine>:<workflowId>:<stepId>`, or `<engine>:sha256:<hex>` of that when
 * it would not pass as a key (an engine's ids may hold spaces or non-ASCII, or run long), so no send is refused for it.
 * @example engineStepKey({ engine: 'dbos', workflowId: 'order-42', stepId: '1' }) // 'dbos:order-42:1'
 */
export function engineStepKey(step: EngineStep): string {
  const key = `${step.engine}:${step.workflowId}:${step.stepId}`;
  return KEY_FORMAT.test(key) ? key : `${step.engine}:sha256:${sha256(key)}`;
}

/**
 * Sends `request` as `step` of an engine's workflow: exactly one effect however often the engine runs the step. A
 * result (a success or a lasting failure such as a domain code) is returned for the workflow to act on; a transient
 * failure (`unavailable`, `conflict`, `in_progress`) is thrown as a `UseCaseError` of kind `failed`, with the
 * failure as its `cause`, so the engine's own retry policy tries the step again under the same key.
 * @example
 * // in a Temporal activity (its Context from @temporalio/activity):
 * const { workflowExecution, activityId } = Context.current().info;
 * const step = { engine: 'temporal', workflowId: workflowExecution.workflowId,
 *   stepId: `${workflowExecution.runId}:${activityId}` };
 * return sendAsStep(mediator, new ChargeCard(input), step, { actor });
 */
export async function sendAsStep<R extends AnyRequest>(
  mediator: Mediator,
  request: R,
  step: EngineStep,
  options: Omit<SendOptions, 'idempotencyKey'> = {},
): Promise<Result<ResultOf<R>, FailureOf<R>>> {
  const result = (await mediator.send(request, { ...options, idempotencyKey: engineStepKey(step) })) as AnyResult;
  if (!result.ok && FAILURES[result.failure.kind].transient)
    throw new UseCaseError('failed', `${engineStepKey(step)} failed for now: ${result.failure.message}`, {
      cause: result.failure,
    });
  return result as Result<ResultOf<R>, FailureOf<R>>;
}
