// Where GET /audit/export reads the audit log: a server-side cursor on Postgres and PGlite, the store's list in memory.
import { inject, injectable } from 'inversify';
import type { Knex } from 'knex';
import { cursor } from '../../adapters/knex/index.js';
import { TOKENS } from '../../lib/core/index.js';
import type { AuditStore } from '../../lib/audit/index.js';
import { auditView, type AuditView } from './requests.js';

/** The container token of the AuditExport. */
export const AUDIT_EXPORT = Symbol.for('usecasecore.samples.AuditExport');

/** The sealed audit records, in commit order, read as the caller pulls (sealing is the caller's business). */
export interface AuditExport {
  records(): AsyncIterable<AuditView>;
}

/** The row the export selects. */
interface AuditRow {
  readonly id: string;
  readonly at: Date | string;
  readonly actor: string | null;
  readonly type: string;
  readonly outcome: AuditView['outcome'];
  readonly code: string | null;
}

/**
 * Reads the library's audit table (`table`, as `tables()` names it for the container's knexModule) through
 * `cursor()`: a read-only transaction on a connection of its own, 500 rows per FETCH, closed however reading ends.
 * Never inside a unit of work: the stream is read after `mediator.stream()`'s opening committed.
 */
export class SqlAuditExport implements AuditExport {
  constructor(
    private readonly knex: Knex,
    private readonly table: string,
  ) {}

  async *records(): AsyncGenerator<AuditView> {
    const rows = cursor<AuditRow>(
      this.knex,
      'SELECT id, at, actor, type, outcome, code FROM ?? WHERE seq IS NOT NULL ORDER BY position',
      [this.table],
      { batchSize: 500 },
    );
    for await (const row of rows) yield auditView(row);
  }
}

/**
 * The bound AuditStore's list, one record at a time: for the memory store, whose records are in memory already
 * (on Postgres, `list()` would read the whole table at once: use SqlAuditExport).
 */
@injectable()
export class MemoryAuditExport implements AuditExport {
  constructor(@inject(TOKENS.AuditStore) private readonly store: AuditStore) {}

  async *records(): AsyncGenerator<AuditView> {
    for (const record of await this.store.list({ order: 'asc' })) yield auditView(record);
  }
}
