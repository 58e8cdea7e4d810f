// Express glue for usecasecore/http: write a reply (status, headers, JSON body) built by the library's helpers.
import type { Response } from 'express';
import type { HttpReply, ProblemOptions } from '../../adapters/http/index.js';

/** The sample's domain codes that mean "the current state does not allow it": 409 rather than 422. */
export const SAMPLE_PROBLEMS: ProblemOptions = { domainStatus: { insufficient_stock: 409 } };

/** Writes a reply (status, headers, JSON body) to an Express response. */
export function sendReply(res: Response, reply: HttpReply): void {
  res.status(reply.status).set(reply.headers);
  if (reply.body === undefined) res.end();
  else res.send(JSON.stringify(reply.body));
}
