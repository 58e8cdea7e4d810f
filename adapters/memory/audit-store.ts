// Audit records in memory, chained per tenant; an append in a transaction is undone with it.
import { chainAfter } from '../../lib/audit-chain.js';
import type { AuditEntry, AuditRecord, AuditStore } from '../../lib/ports.js';
import type { MemoryUnitOfWork } from './unit-of-work.js';

/** The memory AuditStore. */
export class MemoryAuditStore implements AuditStore {
  readonly #byTenant = new Map<string, AuditRecord[]>();
  readonly #all: AuditRecord[] = [];
  constructor(private readonly uow: MemoryUnitOfWork) {}

  readonly #heads = new Map<string, Promise<void>>();

  async append(entry: AuditEntry): Promise<AuditRecord> {
    const tx = this.uow.current();
    if (!tx) {
      for (let head = this.#heads.get(entry.tenant); head; head = this.#heads.get(entry.tenant)) await head;
    } else if (!this.#heads.has(entry.tenant)) {
      let release!: () => void;
      this.#heads.set(
        entry.tenant,
        new Promise<void>((resolve) => {
          release = resolve;
        }),
      );
      tx.onEnd(() => {
        this.#heads.delete(entry.tenant);
        release();
      });
    }
    const chain = this.#byTenant.get(entry.tenant) ?? [];
    this.#byTenant.set(entry.tenant, chain);
    const record = chainAfter(chain.at(-1), entry);
    chain.push(record);
    this.#all.push(record);
    this.uow.current()?.onRollback(() => {
      chain.splice(chain.indexOf(record), 1);
      this.#all.splice(this.#all.indexOf(record), 1);
    });
    return record;
  }

  async list(query: { tenant?: string; limit?: number; order?: 'asc' | 'desc' } = {}): Promise<AuditRecord[]> {
    const source = query.tenant === undefined ? this.#all : (this.#byTenant.get(query.tenant) ?? []);
    const ordered = query.order === 'desc' ? [...source].reverse() : [...source];
    return ordered.slice(0, query.limit ?? ordered.length);
  }
}
