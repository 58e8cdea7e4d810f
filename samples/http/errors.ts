// Errors outside the mediator's Results (bad JSON, huge bodies, unknown routes, exceptions) as problem+json.
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { problem, problemOfError } from '../../adapters/http/index.js';
import { sendReply } from './reply.js';

/** Answers requests no route matched with a 404 problem. */
export const unknownRoute: RequestHandler = (req, res) => {
  sendReply(res, problem('route_not_found', `No route for ${req.method} ${req.path}`));
};

/**
 * The last Express error handler: errors the framework raised before a route ran become 4xx problems
 * (`problemOfError`); anything else is logged and answered with a 500 problem that reveals nothing about the error.
 */
export function problemErrorHandler(logError: (error: unknown) => void): ErrorRequestHandler {
  return (error: unknown, _req, res, next) => {
    if (res.headersSent) return next(error);
    const reply = problemOfError(error);
    if (reply.status >= 500) logError(error);
    sendReply(res, reply);
  };
}
