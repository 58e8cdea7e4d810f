// The audit feature: the newest audit records, read through the mediator so `limit` is validated.
import express from 'express';
import { inject, injectable } from 'inversify';
import * as v from 'valibot';
import { handles, ok, Query, TOKENS, type AuditRecord, type AuditStore, type Handler } from '../../lib/index.js';
import { everyone } from '../../middleware/index.js';
import { mediate } from '../http/reply.js';
import type { Feature } from '../shared/feature.js';

/** How many records `GET /audit` returns without `?limit`. */
export const DEFAULT_AUDIT_LIMIT = 50;

/** One audit record as the API shows it (the payload and hash chain stay inside). */
export interface AuditView {
  readonly id: string;
  readonly at: string;
  readonly actor: string | null;
  readonly type: string;
  readonly outcome: AuditRecord['outcome'];
  readonly code?: string;
}

/** The newest audit records, newest first (`limit` is the query-string text, 1–500). */
export class GetAuditLog extends Query(
  v.object({
    limit: v.optional(
      v.pipe(
        v.string(),
        v.digits('Must be a whole number'),
        v.transform(Number),
        v.minValue(1, 'Must be at least 1'),
        v.maxValue(500, 'Must be at most 500'),
      ),
    ),
  }),
)<AuditView[]> {}

/** Lists the bound AuditStore's sealed records, newest first, after sealing the committed ones. */
@handles(GetAuditLog)
@injectable()
export class GetAuditLogHandler implements Handler<GetAuditLog> {
  constructor(@inject(TOKENS.AuditStore) private readonly store: AuditStore) {}

  async handle(query: GetAuditLog) {
    // Records join the list once sealed: seal what has committed, so a client reads its own writes. (Before any
    // read through the unit of work: on PGlite's one connection, seal() waits for an open transaction.)
    await this.store.seal?.();
    const records = await this.store.list({ limit: query.limit ?? DEFAULT_AUDIT_LIMIT, order: 'desc' });
    return ok(
      records.map(({ id, at, actor, type, outcome, code }): AuditView =>
        code === undefined ? { id, at, actor, type, outcome } : { id, at, actor, type, outcome, code },
      ),
    );
  }
}

/** `GET /audit?limit=N`: readable by anyone, as the sample's HTTP contract says. */
export const auditLog: Feature = {
  path: '/audit',
  handlers: [GetAuditLogHandler],
  rules: [everyone(GetAuditLog)],
  routes(mediator) {
    const router = express.Router();
    router.get(
      '/',
      mediate(mediator, (req) => GetAuditLog.from({ limit: req.query.limit })),
    );
    return router;
  },
};
