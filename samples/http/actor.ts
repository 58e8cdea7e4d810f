// Who is calling: the actor comes from the X-Actor and X-Roles headers (a stand-in for real authentication).
import type { NextFunction, Request, Response } from 'express';
import type { Actor } from '../../lib/core/index.js';
import { problem, type SendOptionsReader } from '../../adapters/http/index.js';
import { sendReply } from './reply.js';

/** The actor named by `X-Actor` (id) and `X-Roles` (comma-separated), or undefined without a usable `X-Actor`. */
export function actorFrom(get: (name: string) => string | undefined): Actor | undefined {
  const id = get('X-Actor')?.trim();
  if (!id) return undefined;
  const roles = (get('X-Roles') ?? '')
    .split(',')
    .map((role) => role.trim())
    .filter((role) => role !== '');
  return { id, roles };
}

/** How the sample reads send options from headers (see `readSendOptions`). */
export const SAMPLE_HEADERS: SendOptionsReader = { actor: actorFrom };

/** The detail of the 401 a command gets without an actor (see samples/routes.ts). */
export const UNAUTHENTICATED = 'Send the X-Actor header to say who is acting';

/**
 * Express middleware: answers 400 when a request repeats `X-Actor` or `X-Roles` (Node would join the values into
 * one made-up identity, `alice, mallory`).
 */
export function oneIdentity(req: Request, res: Response, next: NextFunction): void {
  const repeated = ['x-actor', 'x-roles'].find((name) => (req.headersDistinct[name]?.length ?? 0) > 1);
  if (!repeated) return next();
  sendReply(
    res,
    problem('bad_request', `Send one ${repeated === 'x-actor' ? 'X-Actor' : 'X-Roles'} header, not several`),
  );
}
