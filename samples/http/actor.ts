// Who is calling: the actor comes from the X-Actor and X-Roles headers (a stand-in for real authentication).
import type { NextFunction, Request, Response } from 'express';
import type { Actor, SendOptions } from '../../lib/index.js';
import { problem, sendProblem } from './problem.js';

/** The actor named by `X-Actor` (id) and `X-Roles` (comma-separated), or undefined without a usable `X-Actor`. */
export function actorFrom(req: Request): Actor | undefined {
  const id = req.get('X-Actor')?.trim();
  if (!id) return undefined;
  const roles = (req.get('X-Roles') ?? '').split(',').map((role) => role.trim()).filter((role) => role !== '');
  return { id, roles };
}

/** Express middleware for writes: answers 401 problem+json when the request names no actor. */
export function requireActor(req: Request, res: Response, next: NextFunction): void {
  if (actorFrom(req)) return next();
  sendProblem(res, problem('unauthenticated', 'Send the X-Actor header to say who is acting'));
}

/**
 * The mediator options of an HTTP request: its actor and its `Idempotency-Key`.
 * @example await mediator.send(MoveInventory.from(req.body), sendOptionsOf(req))
 */
export function sendOptionsOf(req: Request): SendOptions {
  return { actor: actorFrom(req), idempotencyKey: req.get('Idempotency-Key') };
}
