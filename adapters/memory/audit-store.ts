// Audit records in memory: kept with their commit, chained per tenant when sealed (at the latest, when listed).
import { chainAfter } from '../../lib/audit/chain.js';
import type { AuditEntry, AuditRecord, AuditStore } from '../../lib/core/ports.js';
import type { MemoryUnitOfWork } from './unit-of-work.js';

/** The memory AuditStore. Memory transactions commit one at a time, so commit order is the order of `#committed`. */
export class MemoryAuditStore implements AuditStore {
  readonly #committed: AuditEntry[] = [];
  readonly #byTenant = new Map<string, AuditRecord[]>();
  readonly #all: AuditRecord[] = [];
  constructor(private readonly uow: MemoryUnitOfWork) {}

  async append(entry: AuditEntry): Promise<void> {
    this.uow.defer(() => this.#committed.push(entry), entry.outcome !== 'ok');
  }

  /** Chains the committed entries, in commit order (hashing is left out of the send: it happens here). */
  async seal(): Promise<number> {
    return this.#seal();
  }

  async list(query: { tenant?: string; limit?: number; order?: 'asc' | 'desc' } = {}): Promise<AuditRecord[]> {
    this.#seal();
    const source = query.tenant === undefined ? this.#all : (this.#byTenant.get(query.tenant) ?? []);
    const ordered = query.order === 'desc' ? [...source].reverse() : [...source];
    return ordered.slice(0, query.limit ?? ordered.length);
  }

  #seal(): number {
    const entries = this.#committed.splice(0);
    for (const entry of entries) {
      const chain = this.#byTenant.get(entry.tenant) ?? [];
      this.#byTenant.set(entry.tenant, chain);
      const record = chainAfter(chain.at(-1), entry);
      chain.push(record);
      this.#all.push(record);
    }
    return entries.length;
  }
}
