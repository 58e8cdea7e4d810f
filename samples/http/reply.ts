// Turns a mediator Result into the HTTP response: the value with the success status, or a problem.
import type { Request, RequestHandler, Response } from 'express';
import type { AnyRequest, Mediator, Result } from '../../lib/index.js';
import { sendOptionsOf } from './actor.js';
import { problemOf, sendProblem } from './problem.js';

/**
 * Replies with `result`: its value as JSON with `successStatus`, or its failure as problem+json. A replay of an
 * idempotent request carries `Idempotent-Replayed: true` (and the stored status and body).
 * @example sendAndReply(res, await mediator.send(PlaceOrder.from(req.body), sendOptionsOf(req)), 201);
 */
export function sendAndReply(res: Response, result: Result<unknown, string>, successStatus = 200): void {
  if (result.replayed) res.set('Idempotent-Replayed', 'true');
  if (result.ok) res.status(successStatus).json(result.value);
  else sendProblem(res, problemOf(result.failure));
}

/**
 * A route handler that sends the request built from the HTTP request (with its actor and idempotency key) and
 * replies with the result.
 * @example router.post('/moves', requireActor, mediate(mediator, (req) => MoveInventory.from(req.body)));
 */
export function mediate(mediator: Mediator, toRequest: (req: Request) => AnyRequest, successStatus = 200): RequestHandler {
  return async (req, res) => {
    sendAndReply(res, await mediator.send(toRequest(req), sendOptionsOf(req)), successStatus);
  };
}
