// W3C trace context from the request: what a client (or a proxy) sends in `traceparent`, `tracestate` and `baggage`
// becomes the active context while a route runs, so the send's span is its child and the events it publishes carry
// the same trace id (in the outbox row, then in the AMQP headers).
import { context } from '@opentelemetry/api';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { extractTraceContext } from '../../adapters/otel/index.js';

/**
 * Wraps an Express handler so that it runs in the context the request's trace headers carry. It takes effect once a
 * context manager is registered (samples/telemetry.ts does at start-up); without one it only calls the handler.
 * Wrap the handler itself, after the body parser: a middleware's `next()` called from a stream event would run
 * outside the context.
 * @example app.use(inRequestContext(api.express));
 */
export function inRequestContext(
  handler: (req: Request, res: Response, next: NextFunction) => unknown,
): RequestHandler {
  return (req, res, next) => context.with(extractTraceContext(req.headers), () => handler(req, res, next));
}
