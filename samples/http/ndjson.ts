// Streamed queries over HTTP: `mediator.stream()` opened with the request's actor, its items written as NDJSON (one
// JSON object per line) at the pace the client reads, and closed (cursor, connection) when the client goes away.
import type { Request, RequestHandler, Response } from 'express';
import { readSendOptions, toReply } from '../../adapters/http/index.js';
import type { AnyRequest, Mediator, Request as UseCaseRequest } from '../../lib/core/index.js';
import { SAMPLE_HEADERS } from './actor.js';
import { SAMPLE_PROBLEMS, sendReply } from './reply.js';

/** Lines are gathered up to this many characters per write (one write per line would be one chunk per line). */
const CHUNK = 64 * 1024;

/**
 * A GET handler that streams the items of the query `toRequest` builds as `application/x-ndjson`. The opening
 * answers like a declared query route (403 from the policy, 422, … as problem+json); then each item is one line. A
 * write the socket cannot take yet waits for `drain`, so a slow client holds back the reading (one batch in memory).
 * When the client disconnects before the end (the response closes unfinished), the stream's signal aborts: the source
 * closes (a cursor's transaction ends, its connection goes back to the pool). An error after the first line cuts the
 * connection (the status is sent already), so a client never takes a truncated export for a whole one.
 * @example app.get('/audit/export', ndjson(mediator, () => ExportAudit.from({}), console.error));
 */
export function ndjson<Q extends AnyRequest & UseCaseRequest<AsyncIterable<unknown>, string>>(
  mediator: Mediator,
  toRequest: (req: Request) => Q,
  logError: (error: unknown) => void,
): RequestHandler {
  return async (req, res, next) => {
    const read = readSendOptions((name) => req.get(name), SAMPLE_HEADERS);
    if (!read.ok) return sendReply(res, read.reply);
    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort(new Error('The client disconnected before the end of the stream'));
    });
    try {
      const opened = await mediator.stream(toRequest(req), { ...read.options, signal: gone.signal });
      if (!opened.ok) return sendReply(res, toReply(opened, SAMPLE_PROBLEMS));
      const items: AsyncIterable<unknown> = opened.value;
      res.status(200).set({ 'Content-Type': 'application/x-ndjson; charset=utf-8', 'Cache-Control': 'no-store' });
      if (req.method === 'HEAD') {
        await items[Symbol.asyncIterator]().return?.(); // nothing was read: release the source
        return void res.end();
      }
      let lines = '';
      for await (const item of items) {
        lines += `${JSON.stringify(item)}\n`;
        if (lines.length < CHUNK) continue;
        const more = res.write(lines);
        lines = '';
        if (!more) await drained(res);
      }
      res.end(lines);
    } catch (error) {
      if (gone.signal.aborted) return; // the client left: the source is closed, nobody to answer
      if (!res.headersSent) return next(error); // the error handler answers 500 problem+json
      logError(error);
      res.destroy(error as Error); // a cut response, never a clean end of a partial export
    }
  };
}

/** Resolves once `res` can take more (`drain`), or is closed (the client left: the loop then stops at the signal). */
function drained(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.on('drain', done).on('close', done);
  });
}
