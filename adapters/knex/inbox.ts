// The inbox in Postgres: the primary key (consumer, message id) makes a second record a no-op.
import type { Clock, Inbox } from '../../lib/core/ports.js';
import { deleteInBatches } from './purge.js';
import type { KnexUnitOfWork } from './unit-of-work.js';

/** The knex Inbox; `record` joins the handler's transaction, so the mark and the effect commit together. */
export class KnexInbox implements Inbox {
  constructor(
    private readonly uow: KnexUnitOfWork,
    private readonly table: string,
    private readonly clock: Clock = Date,
  ) {}

  async record(consumer: string, messageId: string): Promise<boolean> {
    const db = await this.uow.db();
    // processed_at from the Clock, not the server: `purge` judges ages by the same clock.
    const { rows } = await db.raw(
      `INSERT INTO ?? (consumer, message_id, processed_at) VALUES (?, ?, ?)
       ON CONFLICT DO NOTHING RETURNING message_id`,
      [this.table, consumer, messageId, new Date(this.clock.now())],
    );
    return rows.length > 0;
  }

  /** Deletes records processed more than `olderThanMs` ago, in batches; returns how many. */
  async purge(olderThanMs: number): Promise<number> {
    return deleteInBatches(this.uow.knex, this.table, 'processed_at < ?', [new Date(this.clock.now() - olderThanMs)]);
  }
}
