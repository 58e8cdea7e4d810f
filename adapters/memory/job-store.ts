// Job states in memory: records added or settled in a transaction are undone with it.
import type { JobOutcome, JobRecord, JobStore } from '../../lib/core/ports.js';
import type { Clock } from '../../lib/core/ports.js';
import type { MemoryUnitOfWork } from './unit-of-work.js';

const OPEN = new Set<JobRecord['state']>(['queued', 'running']);

/** The memory JobStore. */
export class MemoryJobStore implements JobStore {
  readonly #jobs = new Map<string, JobRecord>();
  constructor(
    private readonly uow: MemoryUnitOfWork,
    private readonly clock: Clock = Date,
  ) {}

  async add(jobs: readonly JobRecord[]): Promise<void> {
    for (const job of jobs) if (!this.#jobs.has(job.jobId)) this.#set(job.jobId, job);
  }

  async start(jobId: string, at: string): Promise<JobRecord | undefined> {
    const job = this.#jobs.get(jobId);
    if (!job || !OPEN.has(job.state)) return job;
    const started = { ...job, state: 'running' as const, attempts: job.attempts + 1, startedAt: job.startedAt ?? at };
    this.#jobs.set(jobId, started); // committed at once, as the port says: never undone
    return started;
  }

  async settle(jobId: string, outcome: JobOutcome, at: string): Promise<boolean> {
    const job = this.#jobs.get(jobId);
    if (!job || !OPEN.has(job.state)) return false;
    this.#set(jobId, { ...job, ...outcome, settledAt: at });
    return true;
  }

  async cancel(jobId: string, at: string): Promise<boolean> {
    const job = this.#jobs.get(jobId);
    if (job?.state !== 'queued') return false;
    this.#set(jobId, { ...job, state: 'cancelled', settledAt: at });
    return true;
  }

  async status(jobId: string): Promise<JobRecord | undefined> {
    return this.#jobs.get(jobId);
  }

  /** Deletes jobs settled more than `olderThanMs` ago (keyed ones never); returns how many. */
  async purge(olderThanMs: number): Promise<number> {
    const cutoff = this.clock.now() - olderThanMs;
    let removed = 0;
    for (const [jobId, job] of this.#jobs)
      if (job.key === undefined && job.settledAt !== undefined && Date.parse(job.settledAt) < cutoff) {
        this.#jobs.delete(jobId);
        removed++;
      }
    return removed;
  }

  /** Writes a record, undone if the ambient transaction rolls back. */
  #set(jobId: string, job: JobRecord): void {
    const before = this.#jobs.get(jobId);
    this.#jobs.set(jobId, job);
    this.uow.current()?.onRollback(() => (before ? this.#jobs.set(jobId, before) : this.#jobs.delete(jobId)));
  }
}
