// The audit requests: the newest records (GET /audit) and every record as a stream (GET /audit/export).
import * as v from 'valibot';
import { Query } from '../../lib/core/index.js';
import type { AuditRecord } from '../../lib/audit/index.js';
import { listLimit } from '../shared/schemas.js';

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

/** The view of a record (or of a row with the same fields); `code` only when there is one. */
export function auditView(record: {
  readonly id: string;
  readonly at: string | Date;
  readonly actor: string | null;
  readonly type: string;
  readonly outcome: AuditRecord['outcome'];
  readonly code?: string | null | undefined;
}): AuditView {
  const { id, actor, type, outcome, code } = record;
  const at = typeof record.at === 'string' ? record.at : record.at.toISOString();
  return code === undefined || code === null
    ? { id, at, actor, type, outcome }
    : { id, at, actor, type, outcome, code };
}

/** The newest audit records, newest first (`limit` is the query-string text, 1–500). */
export class GetAuditLog extends Query(v.object({ limit: listLimit }))<AuditView[]> {}

/**
 * Every sealed audit record, in commit order, streamed (`mediator.stream`): the caller pulls, so the service holds one
 * batch whatever the log's size. Managers only.
 */
export class ExportAudit extends Query(v.object({}))<AsyncIterable<AuditView>> {}
