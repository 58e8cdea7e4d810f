// Retention deletes in Postgres: bounded batches, so a first purge of a mature table never runs as one statement.
import type { Knex } from 'knex';

/** Rows one DELETE removes at most: short statements and locks, and no backlog of months in one transaction. */
export const PURGE_BATCH_SIZE = 5_000;

/**
 * Deletes the rows of `table` matching `where` (SQL with `?` bindings), `batchSize` at a time, until a batch comes
 * back short; returns how many went. Each batch picks its rows by ctid and checks `where` again as it deletes, so a
 * row changed meanwhile is left alone. Out of a transaction, every batch commits by itself.
 * @example await deleteInBatches(knex, 'ucc_inbox', 'processed_at < ?', [cutoff]);
 */
export async function deleteInBatches(
  db: Knex | Knex.Transaction,
  table: string,
  where: string,
  bindings: readonly Knex.Value[],
  batchSize = PURGE_BATCH_SIZE,
): Promise<number> {
  let deleted = 0;
  for (;;) {
    const result = await db.raw(
      `DELETE FROM ?? WHERE ctid = ANY(ARRAY(SELECT ctid FROM ?? WHERE ${where} LIMIT ?)) AND (${where})`,
      [table, table, ...bindings, batchSize, ...bindings],
    );
    const count = Number(result.rowCount ?? 0); // pg and knex-pglite both report it for a raw DELETE
    deleted += count;
    if (count < batchSize) return deleted;
  }
}
