// Express glue for usecasecore/http: send a request built from the HTTP request, reply with its result.
import type { Request, RequestHandler, Response } from 'express';
import { readSendOptions, toReply, type HttpReply, type ProblemOptions } from '../../adapters/http/index.js';
import type { AnyRequest, Mediator } from '../../lib/index.js';
import { SAMPLE_HEADERS } from './actor.js';

/** The sample's domain codes that mean "the current state does not allow it": 409 rather than 422. */
export const SAMPLE_PROBLEMS: ProblemOptions = { domainStatus: { insufficient_stock: 409 } };

/** Writes a reply (status, headers, JSON body) to an Express response. */
export function sendReply(res: Response, reply: HttpReply): void {
  res.status(reply.status).set(reply.headers);
  if (reply.body === undefined) res.end();
  else res.send(JSON.stringify(reply.body));
}

/**
 * A route handler that sends the request built from the HTTP request (with its actor and idempotency key) and
 * replies with the result: the value with `successStatus`, or problem+json.
 * @example router.post('/moves', requireActor, mediate(mediator, (req) => MoveInventory.from(req.body)));
 */
export function mediate(
  mediator: Mediator,
  toRequest: (req: Request) => AnyRequest,
  successStatus = 200,
): RequestHandler {
  return async (req, res) => {
    const read = readSendOptions((name) => req.get(name), SAMPLE_HEADERS);
    if (!read.ok) return sendReply(res, read.reply);
    sendReply(res, toReply(await mediator.send(toRequest(req), read.options), { ...SAMPLE_PROBLEMS, successStatus }));
  };
}
