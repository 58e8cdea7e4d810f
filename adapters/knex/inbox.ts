// The inbox in Postgres: the primary key (consumer, message id) makes a second record a no-op.
import type { Inbox } from '../../lib/ports.js';
import type { KnexUnitOfWork } from './unit-of-work.js';

/** The knex Inbox; `record` joins the handler's transaction, so the mark and the effect commit together. */
export class KnexInbox implements Inbox {
  constructor(private readonly uow: KnexUnitOfWork, private readonly table: string) {}

  async record(consumer: string, messageId: string): Promise<boolean> {
    const db = await this.uow.db();
    const { rows } = await db.raw(`INSERT INTO ?? (consumer, message_id) VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING message_id`, [this.table, consumer, messageId]);
    return rows.length > 0;
  }
}
