// The audit handlers: seal what has committed, then list the newest records or stream them all.
import { inject, injectable } from 'inversify';
import { handles, ok, TOKENS, type Handler } from '../../lib/core/index.js';
import type { AuditStore } from '../../lib/audit/index.js';
import { AUDIT_EXPORT, type AuditExport } from './export.js';
import { auditView, DEFAULT_AUDIT_LIMIT, ExportAudit, GetAuditLog } from './requests.js';

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
    return ok(records.map(auditView));
  }
}

/**
 * Opens the export of every sealed record, in commit order, after sealing the committed ones (as GetAuditLog does).
 * Nothing is read here: the records are read as the caller pulls them, after the opening's transaction ended.
 */
@handles(ExportAudit)
@injectable()
export class ExportAuditHandler implements Handler<ExportAudit> {
  constructor(
    @inject(TOKENS.AuditStore) private readonly store: AuditStore,
    @inject(AUDIT_EXPORT) private readonly source: AuditExport,
  ) {}

  async handle() {
    await this.store.seal?.();
    return ok(this.source.records());
  }
}
