// Errors outside the mediator's Results (bad JSON, huge bodies, unknown routes, exceptions) as problem+json.
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { problem, type HttpErrorKind } from '../../adapters/http/index.js';
import { sendReply } from './reply.js';

/** Answers requests no route matched with a 404 problem. */
export const unknownRoute: RequestHandler = (req, res) => {
  sendReply(res, problem('route_not_found', `No route for ${req.method} ${req.path}`));
};

/**
 * The last Express error handler: body-parser errors become 400/413 problems; anything else is logged and
 * answered with a 500 problem that reveals nothing about the error.
 */
export function problemErrorHandler(logError: (error: unknown) => void): ErrorRequestHandler {
  return (error: unknown, _req, res, next) => {
    if (res.headersSent) return next(error);
    const kind = clientErrorKind(error);
    if (kind === 'internal') logError(error);
    sendReply(
      res,
      problem(kind, kind === 'internal' ? 'Something went wrong; nothing was committed' : (error as Error).message),
    );
  };
}

/** What kind of client mistake a body-parser error reports (`internal` for every other error). */
function clientErrorKind(error: unknown): HttpErrorKind {
  const { type, status } = (error ?? {}) as { type?: unknown; status?: unknown };
  if (type === 'entity.parse.failed') return 'malformed_json';
  if (type === 'entity.too.large') return 'payload_too_large';
  if (typeof type === 'string' && typeof status === 'number' && status >= 400 && status < 500) return 'bad_request';
  return 'internal';
}
