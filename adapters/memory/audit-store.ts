// Audit records in memory, chained per tenant as their transactions commit (memory commits one at a time).
import { chainAfter } from '../../lib/audit-chain.js';
import type { AuditEntry, AuditRecord, AuditStore } from '../../lib/ports.js';
import type { MemoryUnitOfWork } from './unit-of-work.js';

/** The memory AuditStore. */
export class MemoryAuditStore implements AuditStore {
  readonly #byTenant = new Map<string, AuditRecord[]>();
  readonly #all: AuditRecord[] = [];
  constructor(private readonly uow: MemoryUnitOfWork) {}

  async append(entry: AuditEntry): Promise<void> {
    this.uow.defer(() => {
      const chain = this.#byTenant.get(entry.tenant) ?? [];
      this.#byTenant.set(entry.tenant, chain);
      const record = chainAfter(chain.at(-1), entry);
      chain.push(record);
      this.#all.push(record);
    }, entry.outcome !== 'ok');
  }

  /** Entries are chained as they commit: nothing is ever left to seal. */
  async seal(): Promise<number> {
    return 0;
  }

  async list(query: { tenant?: string; limit?: number; order?: 'asc' | 'desc' } = {}): Promise<AuditRecord[]> {
    const source = query.tenant === undefined ? this.#all : (this.#byTenant.get(query.tenant) ?? []);
    const ordered = query.order === 'desc' ? [...source].reverse() : [...source];
    return ordered.slice(0, query.limit ?? ordered.length);
  }
}
