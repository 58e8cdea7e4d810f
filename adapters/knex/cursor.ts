// Server-side cursors: rows read a batch at a time on a connection of their own, released however reading ends.
import type { Knex } from 'knex';
import { UseCaseError } from '../../lib/core/errors.js';

/** Options of `cursor()`. */
export interface CursorOptions {
  /** Rows per FETCH. Default 500. */
  readonly batchSize?: number;
}

let cursors = 0;

/**
 * The rows of `sql` (a SELECT with `?` bindings), read through a server-side cursor in a read-only transaction of
 * its own: memory holds one batch, whatever the result's size. The caller pulls (backpressure); however the
 * iteration ends — done, `break`, an error, `mediator.stream`'s abort — the cursor closes and the connection goes
 * back to the pool. Never inside a unit of work's transaction (it takes its own connection: on PGlite, which has one,
 * read it after the unit of work ended).
 * @example for await (const row of cursor(knex, 'SELECT * FROM ucc_audit ORDER BY position', [])) out.write(row);
 */
export async function* cursor<Row = Record<string, unknown>>(
  knex: Knex,
  sql: string,
  bindings: readonly unknown[],
  options: CursorOptions = {},
): AsyncGenerator<Row> {
  const batchSize = options.batchSize ?? 500;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new UseCaseError('misuse', `cursor({ batchSize }) must be a whole number ≥ 1, got ${batchSize}`);
  }
  const name = `ucc_cursor_${++cursors}`;
  const trx = await knex.transaction({ readOnly: true });
  try {
    await trx.raw(`DECLARE ${name} NO SCROLL CURSOR FOR ${sql}`, bindings as Knex.RawBinding[]);
    for (;;) {
      const { rows } = (await trx.raw(`FETCH ${batchSize} FROM ${name}`)) as { rows: Row[] };
      for (const row of rows) yield row;
      if (rows.length < batchSize) break;
    }
  } finally {
    // Ends the transaction, which closes the cursor; the connection returns to the pool.
    await trx.rollback().catch(() => undefined);
  }
}
